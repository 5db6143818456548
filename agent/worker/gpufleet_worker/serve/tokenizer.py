"""A stand-in tokenizer: the worker has random weights, so no real vocabulary exists to decode into.

Prompt: one token per 4 UTF-8 bytes (the same estimate the gateway's dispatch makes, common/src/engine-api.ts
`estimateTokens`), so `usage.prompt_tokens` agrees with what the gateway expected. Output: each token id becomes a
short word spelled from its id (distinct ids give distinct words), so the streamed text shows which tokens the
model produced.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 4
_LETTERS = "etaoinshrdlucmfw"  # 16 letters: a token id spelled in base 16


def encode(text: str, vocab_size: int) -> list[int]:
    data = text.encode("utf-8")
    if not data:
        raise ValueError("prompt is empty")
    return [
        int.from_bytes(data[i : i + BYTES_PER_TOKEN], "little") % vocab_size
        for i in range(0, len(data), BYTES_PER_TOKEN)
    ]


def decode_token(token_id: int) -> str:
    if token_id < 0:
        raise ValueError(f"token id must be non-negative, got {token_id}")
    digits = []
    n = token_id
    while True:
        digits.append(_LETTERS[n % 16])
        n //= 16
        if n == 0:
            break
    return " " + "".join(reversed(digits))
