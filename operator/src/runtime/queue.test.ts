import { describe, expect, it } from "vitest";
import type { Clock } from "./clock.js";
import { WorkQueue } from "./queue.js";

/** A clock whose timers fire only when the test advances it. */
class ManualClock implements Clock {
  private nowMs = 0;
  private timers: { dueMs: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  now(): number {
    return this.nowMs;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ dueMs: this.nowMs + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    this.nowMs += ms;
    const due = this.timers.filter((t) => t.dueMs <= this.nowMs).sort((a, b) => a.dueMs - b.dueMs);
    this.timers = this.timers.filter((t) => t.dueMs > this.nowMs);
    for (const t of due) t.fn();
  }
}

describe("WorkQueue", () => {
  it("de-duplicates keys waiting to be processed", async () => {
    const queue = new WorkQueue();
    queue.add("ns/a");
    queue.add("ns/a");
    queue.add("ns/b");
    expect(queue.depth).toBe(2);
    expect(await queue.get()).toBe("ns/a");
    expect(await queue.get()).toBe("ns/b");
  });

  it("never hands out a key being processed; re-queues it when done", async () => {
    const queue = new WorkQueue();
    queue.add("ns/a");
    const key = await queue.get();
    queue.add("ns/a");
    expect(queue.depth).toBe(0);
    queue.done(key!);
    expect(queue.depth).toBe(1);
    expect(await queue.get()).toBe("ns/a");
  });

  it("backs off exponentially per key and forgets on success", () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ baseBackoffMs: 100, maxBackoffMs: 1000, clock });
    expect([1, 2, 3, 4, 5, 6].map(() => queue.addRateLimited("k"))).toEqual([100, 200, 400, 800, 1000, 1000]);
    queue.forget("k");
    expect(queue.addRateLimited("k")).toBe(100);
  });

  it("adds delayed keys when due, keeping the earliest deadline", async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock });
    queue.addAfter("k", 1000);
    queue.addAfter("k", 300);
    queue.addAfter("k", 5000);
    clock.advance(299);
    expect(queue.depth).toBe(0);
    clock.advance(1);
    expect(queue.depth).toBe(1);
    clock.advance(10_000);
    expect(queue.depth).toBe(1);
  });

  it("wakes a waiting worker and returns undefined after shutdown", async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.add("ns/x");
    expect(await waiting).toBe("ns/x");
    const blocked = queue.get();
    queue.shutDown();
    expect(await blocked).toBeUndefined();
    queue.add("ns/y");
    expect(await queue.get()).toBeUndefined();
  });
});
