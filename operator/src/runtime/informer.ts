/**
 * An informer that stays up: client-node's ListWatch relists on 410 Gone and reconnects when a watch ends, but
 * stops for good on any other error (connection reset, 5xx, 403). This wrapper restarts it with backoff and then
 * replays every cached object to the handlers, since a restart re-emits nothing by itself. It also restarts the
 * watch every `maxWatchAgeMs`: client-node 1.x has no inactivity timeout, and a half-open connection would
 * otherwise stall forever without an error.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { systemClock, type Clock } from "./clock.js";
import type { Logger } from "./logger.js";

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
  onRestart?: () => void;
}

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

  constructor(private readonly options: InformerOptions<T>) {
    this.clock = options.clock ?? systemClock;
    this.listWatch = new ListWatch<T>(
      options.path,
      new Watch(options.kubeConfig),
      options.list,
      false,
      options.labelSelector,
    );
    this.listWatch.on("add", (o) => this.emit("add", o));
    this.listWatch.on("update", (o) => this.emit("update", o));
    this.listWatch.on("delete", (o) => this.emit("delete", o));
    this.listWatch.on("error", (err) => this.onError(err));
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
    await this.listWatch.start();
    // ListWatch reports a failed first list through its error handler (which schedules a restart) and resolves
    // anyway: only a list that happened leaves a resourceVersion behind.
    if (this.listWatch.latestResourceVersion() !== "") this.markSynced();
    this.scheduleAgeRestart();
  }

  async stop(): Promise<void> {
    this.stopped = true;
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

  private markSynced(): void {
    this.synced = true;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private emit(event: InformerEvent, object: T): void {
    for (const handler of this.handlers) handler(event, object);
  }

  private onError(error: unknown): void {
    if (this.stopped) return;
    const delayMs = Math.min(30_000, 500 * 2 ** Math.min(this.restartAttempts++, 6));
    this.options.logger.warn({ resource: this.options.resource, err: error, delayMs }, "watch failed; restarting");
    this.clock.clearTimeout(this.restartHandle);
    this.restartHandle = this.clock.setTimeout(() => void this.restart(), delayMs);
  }

  private async restart(): Promise<void> {
    if (this.stopped) return;
    this.options.onRestart?.();
    try {
      await this.listWatch.stop();
      await this.listWatch.start();
      if (this.listWatch.latestResourceVersion() === "") return; // the list failed again; onError retries
      this.markSynced();
      this.restartAttempts = 0;
      for (const object of this.list()) this.emit("resync", object);
      this.scheduleAgeRestart();
    } catch (error) {
      this.onError(error);
    }
  }

  private scheduleAgeRestart(): void {
    this.clock.clearTimeout(this.ageHandle);
    const maxAgeMs = this.options.maxWatchAgeMs ?? 10 * 60_000;
    this.ageHandle = this.clock.setTimeout(() => void this.restart(), maxAgeMs);
  }
}

/** Cache key of a namespaced object: "namespace/name". */
export function objectKey(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

export function parseKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
