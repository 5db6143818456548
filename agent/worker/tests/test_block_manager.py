import pytest

from gpufleet_worker.engine.block_manager import BlockManager, OutOfBlocksError, blocks_for
from gpufleet_worker.engine.sequence import Sequence


def seq(n: int, rid: str = "r") -> Sequence:
    return Sequence.from_prompt(rid, list(range(n)))


@pytest.mark.parametrize(("tokens", "blocks"), [(1, 1), (16, 1), (17, 2), (32, 2), (33, 3)])
def test_blocks_for_rounds_up(tokens: int, blocks: int) -> None:
    assert blocks_for(tokens, 16) == blocks


def test_allocate_grows_the_table_and_free_returns_every_block() -> None:
    bm = BlockManager(8, 16)
    s = seq(20)
    assert bm.ensure_capacity(s, 20) == [0, 1]
    assert bm.ensure_capacity(s, 32) == []  # 32 tokens still fit in 2 blocks
    assert bm.ensure_capacity(s, 33) == [2]
    assert (bm.num_free_blocks, bm.num_used_blocks) == (5, 3)
    bm.free(s)
    assert (bm.num_free_blocks, s.block_table, s.num_computed_tokens) == (8, [], 0)


def test_allocation_is_all_or_nothing() -> None:
    bm = BlockManager(2, 16)
    s = seq(40)
    with pytest.raises(OutOfBlocksError, match="needs 3 blocks, 2 free"):
        bm.ensure_capacity(s, 40)
    assert bm.num_free_blocks == 2 and s.block_table == []


def test_fork_for_export_pins_blocks_past_free() -> None:
    bm = BlockManager(4, 16)
    s = seq(40)
    bm.ensure_capacity(s, 40)
    s.num_computed_tokens = 17  # KV exists for 2 blocks' worth
    pinned = bm.fork_for_export(s)
    assert pinned == s.block_table[:2]
    assert [bm.ref_count(b) for b in s.block_table] == [2, 2, 1]
    bm.free(s)
    assert bm.num_free_blocks == 2  # the unpinned third block came back; the pinned two did not
    bm.release(pinned)
    assert bm.num_free_blocks == 4
    with pytest.raises(ValueError, match="released more often"):
        bm.release(pinned)


def test_fork_refuses_tokens_without_kv() -> None:
    bm = BlockManager(4, 16)
    s = seq(10)
    bm.ensure_capacity(s, 10)
    s.num_computed_tokens = 5
    with pytest.raises(ValueError, match="6 tokens asked, 5 have KV"):
        bm.fork_for_export(s, 6)
