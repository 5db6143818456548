import { describe, expect, it } from "vitest";
import { OperatorMetrics } from "../metrics.js";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Controller, type ReconcileResult } from "./controller.js";
import type { InformerHandler } from "./informer.js";
import { silentLogger } from "./logger.js";
import { WorkQueue } from "./queue.js";

/** Runs `controller` until `done()` holds, with a bound so a broken runner fails instead of hanging. */
async function until(done: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 1));
  }
}

function harness(
  behaviour: (key: string, attempt: number) => ReconcileResult | Promise<ReconcileResult>,
  workers?: number,
) {
  const metrics = new OperatorMetrics({ defaultMetrics: false });
  const calls: string[] = [];
  const attempts = new Map<string, number>();
  const controller = new Controller({
    reconciler: {
      name: "test",
      async reconcile(key) {
        const attempt = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, attempt);
        calls.push(key);
        return behaviour(key, attempt);
      },
    },
    metrics,
    logger: silentLogger,
    queue: new WorkQueue({ baseBackoffMs: 1, maxBackoffMs: 5 }),
    ...(workers === undefined ? {} : { workers }),
  });
  const count = async (result: string) =>
    (await metrics.reconcileTotal.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { controller, calls, metrics, count };
}

describe("Controller", () => {
  it("lets timers run between reconciles however long the queue is (the lease renewal must not starve)", async () => {
    const busyMs = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const { controller, calls } = harness(() => (busyMs(2), {}));
    for (let i = 0; i < 200; i++) controller.enqueue(`ns/j${i}`);
    let doneWhenTimerFired = -1;
    setTimeout(() => (doneWhenTimerFired = calls.length), 5);
    controller.start();
    await until(() => calls.length === 200, 10_000);
    await controller.stop();
    // 200 reconciles of 2 ms each take 400 ms; a timer due after 5 ms fires long before the last of them.
    expect(doneWhenTimerFired).toBeGreaterThanOrEqual(0);
    expect(doneWhenTimerFired).toBeLessThan(100);
  });

  it("retries a throwing reconcile with backoff until it succeeds, counting errors", async () => {
    const { controller, calls, count } = harness((_key, attempt) => {
      if (attempt < 3) throw new Error("apiserver unavailable");
      return {};
    });
    controller.start();
    controller.enqueue("ns/a");
    await until(() => calls.length === 3);
    await controller.stop();
    expect(await count("error")).toBe(2);
    expect(await count("success")).toBe(1);
    expect(controller.queue.failureCount("ns/a")).toBe(0);
  });

  it("treats a 409 conflict as a quiet requeue, not an error", async () => {
    const { controller, calls, count } = harness((_key, attempt) => {
      if (attempt === 1) throw Object.assign(new Error("conflict"), { code: 409 });
      return {};
    });
    controller.start();
    controller.enqueue("ns/a");
    await until(() => calls.length === 2);
    await controller.stop();
    expect(await count("conflict")).toBe(1);
    expect(await count("error")).toBe(0);
  });

  it("requeues after the requested delay", async () => {
    const { controller, calls } = harness((_key, attempt) => (attempt === 1 ? { requeueAfterMs: 5 } : {}));
    controller.start();
    controller.enqueue("ns/a");
    await until(() => calls.length === 2);
    await controller.stop();
    expect(calls).toEqual(["ns/a", "ns/a"]);
  });

  it("collapses a burst of events for one key into few reconciles", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const { controller, calls } = harness(async () => {
      await gate;
      return {};
    });
    controller.start();
    for (let i = 0; i < 100; i++) controller.enqueue("ns/a");
    release();
    await until(() => calls.length >= 1 && controller.queue.depth === 0);
    await new Promise((r) => setTimeout(r, 10));
    await controller.stop();
    expect(calls.length).toBeLessThanOrEqual(2);
  });
});

describe("Controller workers", () => {
  it("runs different keys at once, never one key twice at once, and stop() waits for all of them", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let inFlight = 0;
    let maxInFlight = 0;
    const active = new Set<string>();
    let overlapOfOneKey = false;
    const { controller, calls } = harness(async (key) => {
      if (active.has(key)) overlapOfOneKey = true;
      active.add(key);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await gate;
      inFlight--;
      active.delete(key);
      return {};
    }, 3);
    controller.start();
    for (const key of ["ns/a", "ns/b", "ns/c", "ns/d"]) controller.enqueue(key);
    await until(() => inFlight === 3);
    controller.enqueue("ns/a"); // while ns/a is in flight: run again after it, not beside it
    release();
    await until(() => calls.length === 5);
    await controller.stop();
    expect(maxInFlight).toBe(3);
    expect(overlapOfOneKey).toBe(false);
    expect(inFlight).toBe(0);
    expect(calls.filter((k) => k === "ns/a")).toHaveLength(2);
  });

  it("refuses a worker count that is not a positive integer", () => {
    expect(() => harness(() => ({}), 0).controller.start()).toThrow(/workers must be a positive integer, got 0/);
  });
});

describe("Controller.watchAll", () => {
  type Handler = InformerHandler<KubernetesObject>;
  const fakeInformer = () => {
    const handlers: Handler[] = [];
    return {
      on: (h: Handler) => handlers.push(h),
      emit: (o: KubernetesObject) => handlers.forEach((h) => h("resync", o)),
    };
  };

  it("maps a burst of events (a 1,000-node resync) to one pass over all keys, and a later burst to another", async () => {
    const { controller } = harness(() => ({}));
    const informer = fakeInformer();
    const jobs = Array.from({ length: 150 }, (_, i) => `ns/job-${i}`);
    let passes = 0;
    controller.watchAll(informer, () => {
      passes++;
      return jobs;
    });
    for (let n = 0; n < 1_000; n++) informer.emit({ metadata: { name: `node-${n}` } });
    expect(passes).toBe(0); // deferred to the end of the synchronous run
    await Promise.resolve();
    expect(passes).toBe(1);
    expect(controller.queue.depth).toBe(150);
    informer.emit({ metadata: { name: "node-0" } });
    await Promise.resolve();
    expect(passes).toBe(2);
    expect(controller.queue.depth).toBe(150); // de-duplicated keys
  });
});
