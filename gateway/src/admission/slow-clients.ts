/**
 * Closes responses whose client stopped reading. The routes write with back-pressure (they wait for 'drain'), so a
 * client that keeps its connection open but reads nothing would hold its slot, its upstream call and the engine's
 * KV cache for as long as it likes. Node has no event for "the write buffer stayed full", and a socket inactivity
 * timeout would also cut streams that are merely waiting for a slow prefill, so this sweeps the tracked responses
 * and destroys one that has needed a drain for longer than the stall timeout: its 'close' cancels the request.
 */
import type { ServerResponse } from "node:http";

interface Tracked {
  res: ServerResponse;
  /** When a sweep first saw the response needing a drain with no 'drain' since; undefined while it flows. */
  stalledSinceMs: number | undefined;
}

export class SlowClientReaper {
  private readonly tracked = new Set<Tracked>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stallTimeoutMs: number,
    private readonly onReap: (res: ServerResponse) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Watches `res` until the returned function is called (or it closes). */
  track(res: ServerResponse): () => void {
    const entry: Tracked = { res, stalledSinceMs: undefined };
    // Progress is a drain, not a sample of writableNeedDrain: a fast reader of big chunks needs a drain after almost
    // every write, yet never stalls.
    const onDrain = () => (entry.stalledSinceMs = undefined);
    res.on("drain", onDrain);
    this.tracked.add(entry);
    this.timer ??= setInterval(() => this.sweep(), Math.max(50, Math.floor(this.stallTimeoutMs / 4))).unref();
    const untrack = () => {
      res.off("drain", onDrain);
      this.tracked.delete(entry);
      if (this.tracked.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
    res.once("close", untrack);
    return untrack;
  }

  /** One pass: responses stalled past the timeout are destroyed. Public for tests. */
  sweep(): void {
    const nowMs = this.now();
    for (const entry of this.tracked) {
      if (entry.res.destroyed) continue;
      if (!entry.res.writableNeedDrain) {
        entry.stalledSinceMs = undefined;
        continue;
      }
      // Needing a drain since (at least) this sweep, with no drain in between: stalled for that long.
      entry.stalledSinceMs ??= nowMs;
      if (nowMs - entry.stalledSinceMs >= this.stallTimeoutMs) {
        this.onReap(entry.res);
        entry.res.destroy(new Error(`the client read nothing for ${this.stallTimeoutMs} ms`));
      }
    }
  }

  get size(): number {
    return this.tracked.size;
  }
}
