/**
 * An informer that stays up: client-node's ListWatch relists on 410 Gone and reconnects when a watch ends, but
 * stops for good on any other error (connection reset, 5xx, 403). This wrapper restarts it with backoff and then
 * replays every cached object to the handlers, since a restart re-emits nothing by itself. It also restarts the
 * watch every `maxWatchAgeMs` (without a replay): client-node 1.x has no inactivity timeout, and a half-open
 * connection would otherwise stall forever without an error.
 *
 * Deadlines (docs/reliability.md, control-plane restart): client-node 1.x sets none on the list or on the watch
 * request (Watch builds a 30 s timeout signal and then overwrites it), and ListWatch holds no handle on a watch
 * until its response headers arrive, so stop() cannot abort it. An API server that accepts a connection and never
 * answers (half started, etcd not back) used to hang the restart forever. Here a list must settle within
 * `listTimeoutMs` and a watch must get its response within `watchEstablishTimeoutMs`, else the attempt fails and
 * the informer restarts with backoff. The backoff resets, and the cache is replayed as "resync", only once a
 * watch was actually established: before, a restart counted as good whenever a resourceVersion was left from an
 * earlier list, so a refused watch reset the backoff to 500 ms and replayed every cached object every 500 ms.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { systemClock, type Clock } from "./clock.js";
import { RequestDeadlineError, withDeadline } from "./deadline.js";
import type { Logger } from "./logger.js";

export { RequestDeadlineError, withDeadline } from "./deadline.js";

export type InformerEvent = "add" | "update" | "delete" | "resync";
export type InformerHandler<T> = (event: InformerEvent, object: T) => void;

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /api/v1/pods or /apis/gpufleet.io/v1alpha1/servingdeployments. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** Resource name for logs and metrics. */
  resource: string;
  logger: Logger;
  clock?: Clock;
  maxWatchAgeMs?: number;
  /**
   * A list that has not settled after this long fails. Default: adaptive, 10 × the last successful list's duration
   * within [listTimeoutFloorMs, 60 s]. A big pod list on a busy host may take seconds, but a list of a few custom
   * resources held by an API server still starting (seen after etcd and kube-apiserver restarted together) should not
   * hold its informer for the server's whole 60 s request timeout.
   */
  listTimeoutMs?: number;
  /** The adaptive list deadline's floor (default 10 s). */
  listTimeoutFloorMs?: number;
  /** A watch request without a response after this long fails (default 15 s). */
  watchEstablishTimeoutMs?: number;
  onRestart?: () => void;
  /**
   * Shared by the informers of one API server: when one of them lists and watches again after failures, the others
   * waiting out a backoff retry at once instead (the server is evidently back; a 16-30 s backoff step would leave
   * their caches stale for that long after it came back).
   */
  recovery?: ApiRecovery;
}

/** A signal the informers of one API server share: "a list and a watch just succeeded". */
export class ApiRecovery {
  private readonly listeners = new Set<(source: unknown) => void>();

  subscribe(listener: (source: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  announce(source: unknown): void {
    for (const listener of this.listeners) listener(source);
  }
}

type WatchCallback = Parameters<Watch["watch"]>[2];
type WatchDone = Parameters<Watch["watch"]>[3];
type WatchQuery = Parameters<Watch["watch"]>[1];

/**
 * A Watch whose request must be answered within `timeoutMs`. Otherwise `done` gets a RequestDeadlineError and
 * the late answer, if it ever comes, is aborted and its events dropped. `onEstablished` fires when the server
 * answered 200 and the stream is open (client-node resolves watch() then, having called done first on any error).
 */
export class DeadlineWatch {
  constructor(
    private readonly inner: Pick<Watch, "watch">,
    private readonly timeoutMs: number,
    private readonly clock: Clock,
    private readonly onEstablished: () => void,
  ) {}

  async watch(
    path: string,
    queryParams: WatchQuery,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController> {
    const outer = new AbortController();
    let finished = false;
    let failed = false; // an error or the deadline ended it, as opposed to a stream that opened and then closed
    const finish = (error: unknown) => {
      if (finished) return;
      finished = true;
      if (error) failed = true;
      outer.abort();
      done(error);
    };
    // Aborted by its owner (ListWatch stopping it, as every restart does): the AbortError that the closing stream
    // reports next is not a failure. Passed on, it made each restart schedule the next one 500 ms later, forever,
    // each replaying the whole cache (seen in this file's tests before the fix).
    let abortedByOwner = false;
    outer.signal.addEventListener(
      "abort",
      () => {
        if (finished) return;
        finished = true;
        abortedByOwner = true;
      },
      { once: true },
    );
    let timer: unknown;
    const deadline = new Promise<AbortController>((resolve) => {
      timer = this.clock.setTimeout(() => {
        finish(new RequestDeadlineError(`watch ${path}`, this.timeoutMs));
        resolve(outer);
      }, this.timeoutMs);
    });
    const established = this.inner
      .watch(path, queryParams, (...event) => (finished ? undefined : callback(...event)), finish)
      .then(
        (innerController) => {
          this.clock.clearTimeout(timer);
          // Late (after the deadline) or already over: close it; else tie its lifetime to ours. A stream that
          // opened and closed at once still was answered (ListWatch reconnects it itself).
          if (finished || outer.signal.aborted) innerController.abort();
          else outer.signal.addEventListener("abort", () => innerController.abort(), { once: true });
          if (!failed && !abortedByOwner) this.onEstablished();
          return outer;
        },
        (error: unknown) => {
          this.clock.clearTimeout(timer);
          finish(error);
          return outer;
        },
      );
    return Promise.race([established, deadline]);
  }
}

/** The API server's own default request timeout: no list deadline is longer. */
const MAX_LIST_TIMEOUT_MS = 60_000;

export class ResilientInformer<T extends KubernetesObject> {
  private readonly listWatch: ListWatch<T>;
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly clock: Clock;
  private restartAttempts = 0;
  private restartHandle: unknown;
  private ageHandle: unknown;
  private stopped = true;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  /** Set when the current attempt's watch got its response; read by restart() to judge the attempt. */
  private watchEstablished = false;
  private restarting = false;
  /** A restart asked for while one was running; run once that one ends, so no request is lost. */
  private restartAgain = false;
  /** A restart is scheduled after a failure (not the periodic age restart). */
  private backingOff = false;
  /** How long the last successful list took (the adaptive list deadline's base). */
  private lastListMs: number | undefined;
  private changes = 0;
  private unsubscribeRecovery: (() => void) | undefined;

  constructor(private readonly options: InformerOptions<T>) {
    this.clock = options.clock ?? systemClock;
    const listTimeoutMs = () =>
      options.listTimeoutMs ??
      Math.min(MAX_LIST_TIMEOUT_MS, Math.max(options.listTimeoutFloorMs ?? 10_000, 10 * (this.lastListMs ?? Infinity)));
    const watch = new DeadlineWatch(
      new Watch(options.kubeConfig),
      options.watchEstablishTimeoutMs ?? 15_000,
      this.clock,
      () => (this.watchEstablished = true),
    );
    // Cached objects drop metadata.managedFields as they arrive (list items and watch events): nothing here reads
    // them (server-side apply sends its own intent), and they were ~10% of the operator's live heap in the soak
    // (1,000 nodes, a few hundred pods; docs/soak.md). controller-runtime's TransformStripManagedFields does the same.
    const strippingWatch = {
      watch: (path: string, query: WatchQuery, callback: WatchCallback, done: WatchDone) =>
        watch.watch(path, query, (phase, object, raw) => callback(phase, withoutManagedFields(object), raw), done),
    };
    this.listWatch = new ListWatch<T>(
      options.path,
      strippingWatch as unknown as Watch, // ListWatch calls only watch(); this has its signature
      async () => {
        const list = await this.timedList(listTimeoutMs());
        for (const item of list.items) withoutManagedFields(item);
        return list;
      },
      false,
      options.labelSelector,
    );
    this.listWatch.on("add", (o) => this.emit("add", o));
    this.listWatch.on("update", (o) => this.emit("update", o));
    this.listWatch.on("delete", (o) => this.emit("delete", o));
    this.listWatch.on("error", (err) => this.onError(err));
  }

  /** Another informer of the same API server just recovered: stop waiting out our backoff and try now. */
  private readonly onApiRecovered = (): void => {
    if (this.stopped || !this.backingOff) return;
    this.backingOff = false;
    this.clock.clearTimeout(this.restartHandle);
    void this.restart();
  };

  private async timedList(timeoutMs: number): Promise<KubernetesListObject<T>> {
    const startedMs = this.clock.now();
    const list = await withDeadline(this.options.list(), timeoutMs, `list ${this.options.path}`, this.clock);
    this.lastListMs = this.clock.now() - startedMs;
    return list;
  }

  get resource(): string {
    return this.options.resource;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once a list has succeeded (at once if one has); a cache that never listed is empty, not "nothing". */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** Lists and starts watching; hasSynced tells whether the first list succeeded (else a restart is pending). */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.options.recovery && !this.unsubscribeRecovery)
      this.unsubscribeRecovery = this.options.recovery.subscribe((source) => {
        if (source !== this) this.onApiRecovered();
      });
    this.watchEstablished = false;
    await this.listWatch.start();
    this.changes++;
    // ListWatch reports a failed first list through its error handler (which schedules a restart) and resolves
    // anyway: only a list that happened leaves a resourceVersion behind.
    if (this.listWatch.latestResourceVersion() !== "") {
      this.markSynced();
      if (this.watchEstablished) this.options.recovery?.announce(this);
    }
    this.scheduleAgeRestart();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribeRecovery?.();
    this.unsubscribeRecovery = undefined;
    this.clock.clearTimeout(this.restartHandle);
    this.clock.clearTimeout(this.ageHandle);
    await this.listWatch.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.listWatch.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.listWatch.list(namespace);
  }

  /**
   * Grows whenever the cache may have changed (every add, update and delete, every (re)list; not a resync replay):
   * equal counts mean `list()` holds the same objects, so views computed from it can be reused.
   */
  get changeCount(): number {
    return this.changes;
  }

  private markSynced(): void {
    this.synced = true;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private emit(event: InformerEvent, object: T): void {
    // A resync replays what the cache already holds: views computed from it (the capacity summary) stay valid.
    if (event !== "resync") this.changes++;
    for (const handler of this.handlers) handler(event, object);
  }

  private onError(error: unknown): void {
    if (this.stopped) return;
    const delayMs = Math.min(30_000, 500 * 2 ** Math.min(this.restartAttempts++, 6));
    this.options.logger.warn({ resource: this.options.resource, err: error, delayMs }, "watch failed; restarting");
    this.clock.clearTimeout(this.restartHandle);
    this.backingOff = true;
    this.restartHandle = this.clock.setTimeout(() => {
      this.backingOff = false;
      void this.restart();
    }, delayMs);
  }

  get pendingRestartAttempts(): number {
    return this.restartAttempts;
  }

  private async restart(): Promise<void> {
    if (this.stopped) return;
    if (this.restarting) {
      this.restartAgain = true;
      return;
    }
    this.restarting = true;
    this.options.onRestart?.();
    const startedMs = performance.now();
    this.options.logger.debug({ resource: this.options.resource }, "informer restarting");
    try {
      await this.listWatch.stop();
      this.changes++;
      this.watchEstablished = false;
      await this.listWatch.start();
      this.changes++;
      // A failed list leaves no resourceVersion; a failed or unanswered watch leaves watchEstablished false. Either
      // way onError has scheduled the next attempt with a longer backoff.
      if (this.listWatch.latestResourceVersion() === "" || !this.watchEstablished || this.stopped) return;
      this.markSynced();
      const recovered = this.restartAttempts > 0;
      this.restartAttempts = 0;
      // After a failure, handlers see every cached object again (level-triggered, whatever the gap hid). An age
      // restart of a healthy watch needs none: the new watch resumes from the last resourceVersion (or a relist
      // emits the differences), and replaying 1,000s of pods every ten minutes re-enqueued every owner at once
      // (the soak's TrainingJob queue, docs/soak.md).
      if (recovered) for (const object of this.list()) this.emit("resync", object);
      this.options.logger.debug(
        { resource: this.options.resource, ms: Math.round(performance.now() - startedMs), objects: this.list().length },
        "informer restarted",
      );
      this.scheduleAgeRestart();
      if (recovered) this.options.recovery?.announce(this);
    } catch (error) {
      this.onError(error);
    } finally {
      this.restarting = false;
      if (this.restartAgain) {
        this.restartAgain = false;
        void this.restart();
      }
    }
  }

  private scheduleAgeRestart(): void {
    this.clock.clearTimeout(this.ageHandle);
    const maxAgeMs = this.options.maxWatchAgeMs ?? 10 * 60_000;
    this.ageHandle = this.clock.setTimeout(() => void this.restart(), maxAgeMs);
  }
}

/**
 * The informer's events, less those that leave `facts(object)` as it last was: for handlers that react only to what
 * `facts` reads. A Node's status heartbeat, say, rewrites the object (new resourceVersion, every condition's
 * lastHeartbeatTime) and nothing that placement reads; with 1,000 nodes those heartbeats arrive together every few
 * minutes, and passing each on re-enqueued every TrainingJob some 600 times a second for 25 s (docs/reliability.md).
 * A restart's replay of unchanged objects is dropped too; a delete always passes.
 */
export function changesOf<T extends KubernetesObject>(
  informer: Pick<ResilientInformer<T>, "on">,
  facts: (object: T) => string,
): Pick<ResilientInformer<T>, "on"> {
  const last = new Map<string, string>();
  const handlers: InformerHandler<T>[] = [];
  informer.on((event, object) => {
    const key = objectKey(object);
    if (event === "delete") last.delete(key);
    else {
      const now = facts(object);
      if (last.get(key) === now) return;
      last.set(key, now);
    }
    for (const handler of handlers) handler(event, object);
  });
  return { on: (handler) => void handlers.push(handler) };
}

/** Deletes metadata.managedFields in place (the object is the informer's own copy) and returns the object. */
export function withoutManagedFields<O>(object: O): O {
  const metadata = (object as KubernetesObject | undefined)?.metadata;
  if (metadata && "managedFields" in metadata) delete metadata.managedFields;
  return object;
}

/** Cache key of a namespaced object: "namespace/name". */
export function objectKey(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

export function parseKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
