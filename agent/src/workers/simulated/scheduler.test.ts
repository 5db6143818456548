import { describe, expect, it } from "vitest";
import { BlockManager } from "./block-manager.js";
import { Scheduler } from "./scheduler.js";
import { RequestStatus, Sequence, type RequestSink } from "./sequence.js";

const sink: RequestSink = { token: () => {}, finish: () => {} };
const seq = (id: string, promptTokens: number, priority = 0, maxOutputTokens = 100, imported = 0) =>
  new Sequence({ requestId: id, promptTokens, maxOutputTokens, priority }, sink, 0, imported);
const ids = (s: readonly Sequence[]) => s.map((x) => x.id);

describe("Scheduler", () => {
  it.each([
    {
      name: "all fit the token budget",
      budget: 4096,
      prompts: [1000, 1000, 1000],
      prefilled: ["r0", "r1", "r2"],
      waiting: [],
    },
    {
      name: "budget stops admission in queue order",
      budget: 2500,
      prompts: [1000, 1000, 1000],
      prefilled: ["r0", "r1"],
      waiting: ["r2"],
    },
    {
      name: "a long head blocks shorter ones behind it (FIFO, no skipping)",
      budget: 2500,
      prompts: [1000, 2000, 100],
      prefilled: ["r0"],
      waiting: ["r1", "r2"],
    },
  ])("prefill within the token budget: $name", ({ budget, prompts, prefilled, waiting }) => {
    const s = new Scheduler(new BlockManager(1000, 16), { maxNumSeqs: 256, maxBatchedTokens: budget });
    prompts.forEach((p, i) => s.add(seq(`r${i}`, p)));
    const step = s.schedule()!;
    expect(step.kind).toBe("prefill");
    expect(ids(step.sequences)).toEqual(prefilled);
    expect(ids(s.waiting)).toEqual(waiting);
  });

  it("prefill comes first: a waiting request runs before the running batch decodes", () => {
    const s = new Scheduler(new BlockManager(1000, 16), { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    s.add(seq("a", 100));
    expect(s.schedule()!.kind).toBe("prefill");
    s.add(seq("b", 100));
    const step = s.schedule()!;
    expect(step.kind).toBe("prefill");
    expect(ids(step.sequences)).toEqual(["b"]);
    expect(s.schedule()!.kind).toBe("decode");
  });

  it("decodes the whole running batch when nothing waits, appending blocks at boundaries", () => {
    const blocks = new BlockManager(100, 16);
    const s = new Scheduler(blocks, { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    const a = seq("a", 16);
    const b = seq("b", 20);
    s.add(a);
    s.add(b);
    s.schedule();
    a.outputTokens = 1; // the prefill sampled one token each; kvTokens = prompt
    b.outputTokens = 1;
    expect(blocks.usedBlocks).toBe(1 + 2);
    const step = s.schedule()!;
    expect(step.kind).toBe("decode");
    expect(ids(step.sequences)).toEqual(["a", "b"]);
    expect(blocks.usedBlocks).toBe(2 + 2); // a crossed its boundary (16 -> 17 positions), b did not
  });

  it("higher priority is queued ahead; equal priorities keep arrival order", () => {
    const s = new Scheduler(new BlockManager(1000, 16), { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    s.add(seq("low-1", 10, 0));
    s.add(seq("high-1", 10, 5));
    s.add(seq("low-2", 10, 0));
    s.add(seq("high-2", 10, 5));
    expect(ids(s.waiting)).toEqual(["high-1", "high-2", "low-1", "low-2"]);
  });

  it("respects max_num_seqs", () => {
    const s = new Scheduler(new BlockManager(1000, 16), { maxNumSeqs: 2, maxBatchedTokens: 4096 });
    for (let i = 0; i < 3; i++) s.add(seq(`r${i}`, 10));
    expect(ids(s.schedule()!.sequences)).toEqual(["r0", "r1"]);
    expect(s.schedule()!.kind).toBe("decode"); // the batch is full: r2 waits
    expect(ids(s.waiting)).toEqual(["r2"]);
  });

  it("preempts from the tail when a decode needs a block and none is free, and recomputes it later", () => {
    const blocks = new BlockManager(4, 16);
    const s = new Scheduler(blocks, { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    const a = seq("a", 32);
    const b = seq("b", 32);
    s.add(a);
    s.add(b);
    expect(ids(s.schedule()!.sequences)).toEqual(["a", "b"]);
    a.outputTokens = 1;
    b.outputTokens = 1;
    expect(blocks.freeBlocks).toBe(0);
    const step = s.schedule()!; // a needs a 3rd block: b (the tail) is preempted
    expect(step.kind).toBe("decode");
    expect(ids(step.sequences)).toEqual(["a"]);
    expect(ids(step.preempted)).toEqual(["b"]);
    expect(b.status).toBe(RequestStatus.waiting);
    expect(ids(s.waiting)).toEqual(["b"]);
    expect({
      used: blocks.usedBlocks,
      a: blocks.blocksOf("a"),
      b: blocks.blocksOf("b"),
      preemptions: s.preemptions,
    }).toEqual({ used: 3, a: 3, b: 0, preemptions: 1 });
    expect(b.prefillTokens).toBe(33); // the recompute prefill covers the prompt and the token already sampled
  });

  it("a lone sequence that cannot grow preempts itself", () => {
    const blocks = new BlockManager(2, 16);
    const s = new Scheduler(blocks, { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    const a = seq("a", 32);
    s.add(a);
    s.schedule();
    a.outputTokens = 1;
    expect(s.schedule()).toBeUndefined();
    expect(ids(s.waiting)).toEqual(["a"]);
    expect(blocks.usedBlocks).toBe(0);
  });

  it("imported sequences are admitted by blocks alone and decode at once; they wait for blocks in queue order", () => {
    const blocks = new BlockManager(5, 16);
    const s = new Scheduler(blocks, { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    s.add(seq("x", 48, 0, 100, 1)); // 48 positions: 3 blocks
    s.add(seq("y", 48, 0, 100, 1));
    const step = s.schedule()!;
    expect(step.kind).toBe("decode");
    expect(ids(step.sequences)).toEqual(["x"]);
    expect(ids(s.waiting)).toEqual(["y"]);
    expect(blocks.usedBlocks).toBe(4); // 3 imported + 1 appended for x's next token
  });

  it("remove frees blocks from the queue or the batch", () => {
    const blocks = new BlockManager(10, 16);
    const s = new Scheduler(blocks, { maxNumSeqs: 256, maxBatchedTokens: 4096 });
    const a = seq("a", 32);
    s.add(a);
    s.schedule();
    expect(s.remove(a)).toBe(true);
    expect(blocks.usedBlocks).toBe(0);
    expect(s.remove(a)).toBe(false);
  });
});
