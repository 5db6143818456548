/**
 * A counting semaphore with a bounded FIFO queue and a wait deadline: the gateway's bound on concurrent
 * completions. A request either gets a slot at once, waits (at most `maxQueued` wait, each at most `timeoutMs`), or
 * is refused at once when the queue is full. Memory is O(maxInFlight + maxQueued) whatever the offered load.
 */
export const Refusal = { queueFull: "queue_full", queueTimeout: "queue_timeout", cancelled: "cancelled" } as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal];

export class SlotRefusedError extends Error {
  override name = "SlotRefusedError";
  constructor(
    readonly refusal: Refusal,
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  grant: (release: () => void) => void;
  refuse: (error: SlotRefusedError) => void;
}

export interface SlotLimits {
  maxInFlight: number;
  maxQueued: number;
  timeoutMs: number;
}

export class Slots {
  private held = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly limits: SlotLimits) {}

  get inFlight(): number {
    return this.held;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Resolves with a release function (idempotent); rejects with SlotRefusedError. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.held < this.limits.maxInFlight && this.queue.length === 0) return Promise.resolve(this.grant());
    if (this.queue.length >= this.limits.maxQueued) {
      return Promise.reject(
        new SlotRefusedError(
          Refusal.queueFull,
          `${this.held} requests in flight and ${this.queue.length} waiting, the most this gateway replica takes`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
      };
      const waiter: Waiter = {
        grant: (release) => {
          leave();
          resolve(release);
        },
        refuse: (error) => {
          leave();
          reject(error);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.refuse(
            new SlotRefusedError(
              Refusal.queueTimeout,
              `no slot within ${this.limits.timeoutMs} ms (${this.held} requests in flight)`,
            ),
          ),
        this.limits.timeoutMs,
      );
      const onAbort = () =>
        waiter.refuse(new SlotRefusedError(Refusal.cancelled, "the client went away while waiting"));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private grant(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      const next = this.queue[0];
      if (next && this.held < this.limits.maxInFlight) next.grant(this.grant());
    };
  }
}
