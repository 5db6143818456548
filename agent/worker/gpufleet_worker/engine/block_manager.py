"""KV block accounting (vLLM's paged attention, nano-vllm's block_manager.py): pure bookkeeping, no tensors.

A block holds `block_size` consecutive tokens of one sequence for every layer. Blocks are reference-counted so an
export in flight (the P/D hand-off, Llumnix's staged migration) can pin the blocks it copies while the sequence
itself is freed or keeps decoding: `fork_for_export` takes a reference, `release` drops it.
"""

from __future__ import annotations

from collections import deque

from .sequence import Sequence


class OutOfBlocksError(RuntimeError):
    """More blocks were asked for than are free; callers check `can_allocate` first."""


def blocks_for(num_tokens: int, block_size: int) -> int:
    return -(-num_tokens // block_size)


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError(f"num_blocks and block_size must be positive, got {num_blocks}, {block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._ref_counts = [0] * num_blocks
        self._free: deque[int] = deque(range(num_blocks))

    @property
    def num_free_blocks(self) -> int:
        return len(self._free)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    def ref_count(self, block_id: int) -> int:
        return self._ref_counts[block_id]

    def blocks_needed(self, seq: Sequence, num_tokens: int) -> int:
        """Extra blocks `seq` needs so that its table covers `num_tokens` tokens."""
        return max(0, blocks_for(num_tokens, self.block_size) - len(seq.block_table))

    def can_allocate(self, num_blocks: int) -> bool:
        return num_blocks <= len(self._free)

    def ensure_capacity(self, seq: Sequence, num_tokens: int) -> list[int]:
        """Grows seq.block_table to cover num_tokens; returns the new block ids. All or nothing."""
        need = self.blocks_needed(seq, num_tokens)
        if need > len(self._free):
            raise OutOfBlocksError(f"request {seq.request_id} needs {need} blocks, {len(self._free)} free")
        new = [self._take() for _ in range(need)]
        seq.block_table.extend(new)
        return new

    def free(self, seq: Sequence) -> None:
        """Drops the sequence's references; blocks pinned by an export stay allocated until released."""
        self.release(seq.block_table)
        seq.block_table = []
        seq.num_computed_tokens = 0

    def fork_for_export(self, seq: Sequence, num_tokens: int | None = None) -> list[int]:
        """Pins the blocks holding seq's first num_tokens computed tokens (all computed ones by default)."""
        n = seq.num_computed_tokens if num_tokens is None else num_tokens
        if n > seq.num_computed_tokens:
            raise ValueError(f"request {seq.request_id}: {n} tokens asked, {seq.num_computed_tokens} have KV")
        blocks = seq.block_table[: blocks_for(n, self.block_size)]
        for b in blocks:
            self._ref_counts[b] += 1
        return list(blocks)

    def release(self, blocks: list[int]) -> None:
        for b in blocks:
            if self._ref_counts[b] <= 0:
                raise ValueError(f"block {b} released more often than taken")
            self._ref_counts[b] -= 1
            if self._ref_counts[b] == 0:
                self._free.append(b)

    def _take(self) -> int:
        b = self._free.popleft()
        self._ref_counts[b] = 1
        return b
