import { describe, expect, it } from "vitest";
import { Refusal, SlotRefusedError, Slots } from "./slots.js";

const refusalOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return "granted";
  } catch (error) {
    return error instanceof SlotRefusedError ? error.refusal : `other: ${String(error)}`;
  }
};

describe("Slots", () => {
  it("grants up to maxInFlight at once, queues up to maxQueued, refuses the next at once", async () => {
    const slots = new Slots({ maxInFlight: 2, maxQueued: 1, timeoutMs: 10_000 });
    const a = await slots.acquire();
    await slots.acquire();
    const queued = slots.acquire();
    expect([slots.inFlight, slots.queued]).toEqual([2, 1]);
    expect(await refusalOf(slots.acquire())).toBe(Refusal.queueFull);
    a();
    a(); // idempotent: a second call frees nothing more
    await expect(queued).resolves.toBeTypeOf("function");
    expect([slots.inFlight, slots.queued]).toEqual([2, 0]);
  });

  it("hands slots to waiters in arrival order", async () => {
    const slots = new Slots({ maxInFlight: 1, maxQueued: 3, timeoutMs: 10_000 });
    const first = await slots.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => slots.acquire().then((release) => (order.push(n), release)));
    first();
    (await waiters[0]!)();
    (await waiters[1]!)();
    (await waiters[2]!)();
    expect(order).toEqual([1, 2, 3]);
    expect(slots.inFlight).toBe(0);
  });

  it("refuses a waiter after the timeout and forgets it", async () => {
    const slots = new Slots({ maxInFlight: 1, maxQueued: 1, timeoutMs: 30 });
    await slots.acquire();
    expect(await refusalOf(slots.acquire())).toBe(Refusal.queueTimeout);
    expect(slots.queued).toBe(0);
  });

  it("drops a waiter whose client left, and the slot goes to the next", async () => {
    const slots = new Slots({ maxInFlight: 1, maxQueued: 2, timeoutMs: 10_000 });
    const held = await slots.acquire();
    const gone = new AbortController();
    const leaving = slots.acquire(gone.signal);
    const staying = slots.acquire();
    gone.abort();
    expect(await refusalOf(leaving)).toBe(Refusal.cancelled);
    held();
    await expect(staying).resolves.toBeTypeOf("function");
  });

  it("with no queue refuses as soon as every slot is held", async () => {
    const slots = new Slots({ maxInFlight: 1, maxQueued: 0, timeoutMs: 10_000 });
    await slots.acquire();
    expect(await refusalOf(slots.acquire())).toBe(Refusal.queueFull);
  });
});
