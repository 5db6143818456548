import { describe, expect, it } from "vitest";
import { BlockAccountingError, BlockManager, blocksForTokens } from "./block-manager.js";

describe("BlockManager", () => {
  it.each([
    { name: "one token takes a block", tokens: 1, blocks: 1 },
    { name: "a full block", tokens: 16, blocks: 1 },
    { name: "one past a block boundary", tokens: 17, blocks: 2 },
    { name: "a 512-token prompt", tokens: 512, blocks: 32 },
  ])("allocate: $name", ({ tokens, blocks }) => {
    const m = new BlockManager(100, 16);
    expect(blocksForTokens(tokens, 16)).toBe(blocks);
    expect(m.allocate("r", tokens)).toBe(blocks);
    expect({ used: m.usedBlocks, free: m.freeBlocks, held: m.blocksOf("r") }).toEqual({
      used: blocks,
      free: 100 - blocks,
      held: blocks,
    });
  });

  it.each([
    { name: "inside a block: no new block", tokens: 17, added: 0 },
    { name: "on a boundary: one new block", tokens: 32, added: 1 },
  ])("append: $name", ({ tokens, added }) => {
    const m = new BlockManager(10, 16);
    m.allocate("r", tokens);
    const before = m.usedBlocks;
    expect(m.canAppend(tokens)).toBe(true);
    expect(m.append("r", tokens)).toBe(added);
    expect(m.usedBlocks).toBe(before + added);
  });

  it("free gives every block back; a full cache refuses allocations and boundary appends", () => {
    const m = new BlockManager(4, 16);
    m.allocate("a", 32);
    m.allocate("b", 32);
    expect(m.freeBlocks).toBe(0);
    expect(m.canAllocate(1)).toBe(false);
    expect(m.canAppend(32)).toBe(false);
    expect(m.canAppend(31)).toBe(true);
    expect(() => m.allocate("c", 1)).toThrow(BlockAccountingError);
    expect(() => m.append("a", 32)).toThrow(/none free/);
    expect(m.free("a")).toBe(2);
    expect(m.free("a")).toBe(0);
    expect({ used: m.usedBlocks, free: m.freeBlocks }).toEqual({ used: 2, free: 2 });
  });

  it("refuses double allocation, appends without blocks and bad sizes", () => {
    const m = new BlockManager(4, 16);
    m.allocate("a", 1);
    expect(() => m.allocate("a", 1)).toThrow(/already holds/);
    expect(() => m.append("x", 1)).toThrow(/holds no blocks/);
    expect(() => new BlockManager(-1, 16)).toThrow(RangeError);
    expect(() => new BlockManager(4, 0)).toThrow(RangeError);
  });
});
