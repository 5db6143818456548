"""The bytes of one request's KV on the wire (GET /gpufleet/v1/kv/{id}, docs/engine-api.md).

Layout: MAGIC, a 4-byte little-endian header length, a JSON header (request state: token ids, how many have KV,
max_tokens, block size, the payload's dtype and shape), then the payload: the request's KV blocks in the cache's
layout [layers, 2, blocks, block_size, kv_heads, head_dim], raw little-endian. The header is computed from the
request's state alone, so the prefill side can announce the exact byte count (`kv.bytes`) before anyone pulls.
Works for numpy payloads (float32, CPU runner) and torch ones (bfloat16 on the GPU; torch is imported only then).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.llm_engine import KVExport
from ..engine.sequence import SamplingParams

MAGIC = b"GFKV1\n"
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class KvWireError(ValueError):
    """Bytes that are not a KV payload of this format (truncated, wrong magic, sizes that disagree)."""


@dataclass(frozen=True, slots=True)
class KvHeader:
    request_id: str
    token_ids: list[int]
    num_prompt_tokens: int
    num_computed_tokens: int
    max_tokens: int
    block_size: int
    dtype: str
    shape: list[int]  # [layers, 2, blocks, block_size, kv_heads, head_dim]

    def to_bytes(self) -> bytes:
        body = json.dumps(
            {
                "request_id": self.request_id,
                "token_ids": self.token_ids,
                "num_prompt_tokens": self.num_prompt_tokens,
                "num_computed_tokens": self.num_computed_tokens,
                "max_tokens": self.max_tokens,
                "block_size": self.block_size,
                "dtype": self.dtype,
                "shape": self.shape,
            },
            separators=(",", ":"),
        ).encode()
        return MAGIC + struct.pack("<I", len(body)) + body

    @property
    def payload_bytes(self) -> int:
        n = DTYPE_BYTES[self.dtype]
        for d in self.shape:
            n *= d
        return n

    @property
    def total_bytes(self) -> int:
        return len(self.to_bytes()) + self.payload_bytes


def payload_dtype(payload: Any) -> str:
    name = str(payload.dtype)
    return name.removeprefix("torch.")


def encode(header: KvHeader, payload: Any) -> bytes:
    """header bytes + payload bytes; the payload must have the header's dtype and shape."""
    if payload_dtype(payload) != header.dtype or list(payload.shape) != header.shape:
        raise KvWireError(
            f"request {header.request_id}: payload {payload_dtype(payload)}{list(payload.shape)} "
            f"does not match header {header.dtype}{header.shape}"
        )
    if isinstance(payload, np.ndarray):
        raw = np.ascontiguousarray(payload).tobytes()
    else:  # a torch tensor: bytes through an integer view (numpy has no bfloat16)
        import torch

        raw = payload.contiguous().view(torch.int16 if header.dtype != "float32" else torch.int32).cpu().numpy()
        raw = raw.tobytes()
    return header.to_bytes() + raw


def decode(data: bytes) -> tuple[KvHeader, bytes]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise KvWireError("not a gpufleet KV payload (bad magic or truncated header)")
    (n,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        h = json.loads(data[start : start + n])
        header = KvHeader(
            str(h["request_id"]),
            [int(t) for t in h["token_ids"]],
            int(h["num_prompt_tokens"]),
            int(h["num_computed_tokens"]),
            int(h["max_tokens"]),
            int(h["block_size"]),
            str(h["dtype"]),
            [int(d) for d in h["shape"]],
        )
    except (ValueError, KeyError, TypeError) as err:
        raise KvWireError(f"KV header is not valid: {err}") from err
    if header.dtype not in DTYPE_BYTES:
        raise KvWireError(f"KV dtype {header.dtype!r} is not one of {', '.join(DTYPE_BYTES)}")
    raw = data[start + n :]
    if len(raw) != header.payload_bytes:
        raise KvWireError(
            f"request {header.request_id}: payload has {len(raw)} bytes, header says {header.payload_bytes}"
        )
    return header, raw


def payload_array(header: KvHeader, raw: bytes, like: Any) -> Any:
    """The payload as an array of the importing runner's kind (numpy, or a torch tensor on `like`'s device)."""
    if isinstance(like, np.ndarray):
        if header.dtype != "float32":
            raise KvWireError(f"this worker's cache is float32 (CPU); the KV is {header.dtype}")
        return np.frombuffer(raw, dtype=np.float32).reshape(header.shape).copy()
    import torch

    want = str(like.dtype).removeprefix("torch.")
    if header.dtype != want:
        raise KvWireError(f"this worker's cache is {want}; the KV is {header.dtype}")
    ints = torch.frombuffer(bytearray(raw), dtype=torch.int16).view(like.dtype)
    return ints.reshape(header.shape).to(like.device)


def to_export(header: KvHeader, payload: Any) -> KVExport:
    return KVExport(
        header.request_id,
        header.token_ids,
        header.num_prompt_tokens,
        header.num_computed_tokens,
        SamplingParams(max_tokens=header.max_tokens),
        header.block_size,
        payload,
    )
