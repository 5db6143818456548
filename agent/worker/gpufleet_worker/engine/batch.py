"""Flat model inputs for one scheduled step, computed without tensors so both runners (numpy, torch) share them.

Token t of a step belongs to sequence i at position p; its KV goes to slot block_table[p // B] * B + p % B.
Attention for sequence i covers context_lens[i] tokens (the ones already cached plus this step's).
"""

from __future__ import annotations

from dataclasses import dataclass

from .scheduler import SchedulerOutput


@dataclass(frozen=True, slots=True)
class StepInputs:
    kind: str
    request_ids: list[str]
    token_ids: list[int]  # flat over the batch
    positions: list[int]
    slot_mapping: list[int]
    query_lens: list[int]  # tokens per sequence this step
    context_lens: list[int]  # cached + new tokens per sequence
    block_tables: list[list[int]]
    sample_indices: list[int]  # flat index of the last token of each sequence that samples
    sample_request_ids: list[str]


def prepare_step(out: SchedulerOutput, block_size: int) -> StepInputs:
    tokens: list[int] = []
    positions: list[int] = []
    slots: list[int] = []
    query_lens: list[int] = []
    context_lens: list[int] = []
    tables: list[list[int]] = []
    sample_idx: list[int] = []
    sample_ids: list[str] = []
    for item in out.scheduled:
        seq, start = item.seq, item.seq.num_computed_tokens
        end = start + item.num_new_tokens
        if len(seq.block_table) * block_size < end:
            raise ValueError(f"request {seq.request_id}: block table covers fewer than {end} tokens")
        for p in range(start, end):
            tokens.append(seq.token_ids[p])
            positions.append(p)
            slots.append(seq.block_table[p // block_size] * block_size + p % block_size)
        query_lens.append(item.num_new_tokens)
        context_lens.append(end)
        tables.append(list(seq.block_table))
        if item.sample:
            sample_idx.append(len(tokens) - 1)
            sample_ids.append(seq.request_id)
    return StepInputs(
        out.kind,
        [s.seq.request_id for s in out.scheduled],
        tokens,
        positions,
        slots,
        query_lens,
        context_lens,
        tables,
        sample_idx,
        sample_ids,
    )


def prefill_graph_tokens(inp: StepInputs, token_step: int, max_tokens: int, max_prompts: int) -> int | None:
    """Tokens of the captured prefill graph that runs this step (its new tokens rounded up to token_step), or None
    where it runs eager: a decode step, more than max_tokens tokens or max_prompts prompts, or a chunk with a cached
    prefix (its attention reads the prefix through the block table; the graph's one varlen call attends only within
    each prompt's new tokens)."""
    tokens = len(inp.token_ids)
    if inp.kind != "prefill" or tokens == 0 or tokens > max_tokens or len(inp.query_lens) > max_prompts:
        return None
    if any(c != q for q, c in zip(inp.query_lens, inp.context_lens, strict=True)):
        return None
    return -(-tokens // token_step) * token_step
