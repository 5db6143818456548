"""Request state: the tokens of one request, how many of them have KV in the cache, and its block table."""

from __future__ import annotations

from dataclasses import dataclass, field


class SequenceStatus:
    WAITING = "waiting"  # admitted, no KV yet (or preempted: KV dropped, to be recomputed)
    RUNNING = "running"  # holds blocks; prefilling or decoding
    EXPORT_READY = "export-ready"  # prefill role: prompt done and first token sampled; waits for its KV to leave
    FINISHED = "finished"


@dataclass(slots=True)
class SamplingParams:
    max_tokens: int = 16
    ignore_eos: bool = True
    eos_token_id: int = -1

    def __post_init__(self) -> None:
        if self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")


@dataclass(slots=True, eq=False)  # identity: two requests with equal tokens are still two
class Sequence:
    """One request. token_ids holds prompt then output; KV exists for token_ids[:num_computed_tokens]."""

    request_id: str
    token_ids: list[int]
    num_prompt_tokens: int
    params: SamplingParams = field(default_factory=SamplingParams)
    status: str = SequenceStatus.WAITING
    num_computed_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    arrival_index: int = 0  # admission order; preemption takes the latest admitted first

    @classmethod
    def from_prompt(cls, request_id: str, prompt: list[int], params: SamplingParams | None = None) -> Sequence:
        if not prompt:
            raise ValueError(f"request {request_id}: empty prompt")
        return cls(request_id, list(prompt), len(prompt), params or SamplingParams())

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def num_uncomputed_tokens(self) -> int:
        return len(self.token_ids) - self.num_computed_tokens

    @property
    def is_prefilling(self) -> bool:
        """Prompt tokens still lack KV (a new request, a chunked prefill in progress, or a preempted one)."""
        return self.num_computed_tokens < self.num_prompt_tokens or self.num_uncomputed_tokens > 1

    @property
    def last_token(self) -> int:
        return self.token_ids[-1]

    def append_token(self, token_id: int) -> None:
        self.token_ids.append(token_id)

    def is_done(self) -> bool:
        if self.num_output_tokens >= self.params.max_tokens:
            return True
        return not self.params.ignore_eos and self.num_output_tokens > 0 and self.last_token == self.params.eos_token_id
