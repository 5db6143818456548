/**
 * Runs a level-based reconciler: watch events only enqueue keys; `reconcile(key)` re-reads the cache and says when
 * to look again. `workers` reconciles run at once (default 1), as controller-runtime's MaxConcurrentReconciles: the
 * queue never hands one key to two workers, so a key is never reconciled concurrently with itself; different keys
 * overlap only in their awaits (API calls), which is where a reconcile spends its time. A reconciler that shares
 * state across keys must claim it before its first await (the gang step claims a placement's GPUs that way).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { isConflict } from "./errors.js";
import type { ResilientInformer } from "./informer.js";
import type { Logger } from "./logger.js";
import { WorkQueue } from "./queue.js";
import type { OperatorMetrics } from "../metrics.js";

export interface ReconcileResult {
  /** Look at this key again after this long even if nothing changes (level-based polling). */
  requeueAfterMs?: number;
}

export interface Reconciler {
  readonly name: string;
  reconcile(key: string): Promise<ReconcileResult>;
}

export interface ControllerOptions {
  reconciler: Reconciler;
  metrics: OperatorMetrics;
  logger: Logger;
  queue?: WorkQueue;
  /** Reconciles in flight at once, each on a different key (default 1). */
  workers?: number;
}

export class Controller {
  readonly queue: WorkQueue;
  private running: Promise<void> | undefined;

  constructor(private readonly options: ControllerOptions) {
    this.queue = options.queue ?? new WorkQueue();
  }

  get name(): string {
    return this.options.reconciler.name;
  }

  enqueue(key: string): void {
    this.queue.add(key);
    this.options.metrics.workqueueDepth.set({ controller: this.name }, this.queue.depth);
  }

  /** Enqueues the keys `mapToKeys` derives from every event of `informer` (its own key, an owner's, all of a kind…). */
  watch<T extends KubernetesObject>(informer: ResilientInformer<T>, mapToKeys: (object: T) => readonly string[]): void {
    informer.on((_event, object) => {
      for (const key of mapToKeys(object)) this.enqueue(key);
    });
  }

  /**
   * Enqueues every key `allKeys` lists on any event of `informer`, once per burst: events that arrive in one
   * synchronous run (a relist, a restart's resync replay, one chunk of watch lines) share one pass. Mapping each
   * event to all keys instead did O(events × keys) work on the event loop: a node informer restart on the
   * 1,000-node profile replayed 1,000 nodes, each listing and enqueueing every TrainingJob (~150k enqueues,
   * docs/reliability.md).
   */
  watchAll<T extends KubernetesObject>(
    informer: Pick<ResilientInformer<T>, "on">,
    allKeys: () => readonly string[],
  ): void {
    let pending = false;
    informer.on(() => {
      if (pending) return;
      pending = true;
      queueMicrotask(() => {
        pending = false;
        for (const key of allKeys()) this.enqueue(key);
      });
    });
  }

  start(): void {
    const workers = this.options.workers ?? 1;
    if (!(Number.isInteger(workers) && workers >= 1))
      throw new Error(`controller ${this.name}: workers must be a positive integer, got ${workers}`);
    this.running ??= Promise.all(Array.from({ length: workers }, () => this.loop())).then(() => undefined);
  }

  /** Stops taking keys; resolves when the reconciles in flight have finished. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { reconciler, metrics, logger } = this.options;
    const labels = { controller: reconciler.name };
    for (;;) {
      // Reconciles that read only caches resolve as microtasks, and a queue that never empties would then chain
      // them without end: timers (the leader's lease renewal) and I/O would not run. A soak lost its lease so,
      // after an 80 s stall of back-to-back TrainingJob reconciles. One turn of the event loop between keys.
      await new Promise((resolve) => setImmediate(resolve));
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.workqueueDepth.set(labels, this.queue.depth);
      const endTimer = metrics.reconcileDurationSeconds.startTimer(labels);
      const startedMs = performance.now();
      try {
        const result = await reconciler.reconcile(key);
        this.queue.forget(key);
        metrics.reconcileTotal.inc({ ...labels, result: "success" });
        logger.debug(
          { controller: reconciler.name, key, ms: Math.round(performance.now() - startedMs), depth: this.queue.depth },
          "reconciled",
        );
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (error) {
        const delayMs = this.queue.addRateLimited(key);
        if (isConflict(error)) {
          metrics.reconcileTotal.inc({ ...labels, result: "conflict" });
          logger.debug({ controller: reconciler.name, key, delayMs }, "conflict; requeued");
        } else {
          metrics.reconcileTotal.inc({ ...labels, result: "error" });
          metrics.reconcileErrorsTotal.inc(labels);
          logger.error(
            { controller: reconciler.name, key, err: error, delayMs, failures: this.queue.failureCount(key) },
            "reconcile failed; retrying with backoff",
          );
        }
      } finally {
        endTimer();
        this.queue.done(key);
      }
    }
  }
}
