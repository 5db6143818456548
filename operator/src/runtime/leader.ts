/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: every replica tries to
 * acquire or renew every `retryPeriodMs`; writes are guarded by resourceVersion so two replicas can never both win;
 * a follower takes over only after it has watched the lease go unrenewed for `leaseDurationMs` of its own clock
 * (no cross-machine clock comparison); a leader that cannot renew within `renewDeadlineMs` (< leaseDuration) stops
 * leading before anyone else may start. On a clean shutdown the leader releases the lease so failover is immediate.
 *
 * Every Lease call is aborted at the renew deadline (client-go runs tryAcquireOrRenew under a context with that
 * timeout): a hung call would otherwise hold the tick, the deadline check would never run, and a follower would take
 * over while this replica still believes it leads. Deadlines are measured on a monotonic clock: a wall-clock step
 * (NTP) must neither extend leadership nor end it early. Wall time is used only for the timestamps in the Lease.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import {
  CoordinationV1Api,
  V1MicroTime,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type V1Lease,
} from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { systemClock, type Clock } from "./clock.js";
import { isConflict, isNotFound } from "./errors.js";
import type { Logger } from "./logger.js";

/** A lease call or a tick delay longer than this is logged (it eats into the renew deadline). */
const SLOW_LEASE_STEP_MS = 1000;

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  clock?: Clock;
  /** Monotonic milliseconds for deadlines; default performance.now. */
  monotonicMs?: () => number;
  onStartedLeading: () => void;
  /** Called once when leadership is lost; the process should stop reconciling at once (main exits). */
  onStoppedLeading: () => void;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly clock: Clock;
  private readonly monotonicMs: () => number;
  private leading = false;
  private lastRenewMs = 0;
  /** When the last successful renew was sent (before lastRenewMs, when its answer came). */
  private lastRenewStartMs = 0;
  /** The lease record as last observed, and when (our monotonic clock) it last changed. */
  private observed: { holder: string; renewTime: string; atMs: number; durationMs: number } | undefined;
  private timer: unknown;
  /** The lease as this replica last wrote it (the API's answer, with its resourceVersion). */
  private lastWritten: V1Lease | undefined;
  /** When (monotonic) the scheduled tick should fire; a late one tells of a stalled event loop. */
  private nextTickDueMs: number | undefined;
  /** The process's CPU time when the tick was scheduled: a late tick's log says how much of the wait was ours. */
  private cpuAtScheduleUs: NodeJS.CpuUsage | undefined;
  private stopped = false;

  constructor(private readonly options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs)
      throw new Error("leader election: renewDeadlineMs must be shorter than leaseDurationMs");
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.clock = options.clock ?? systemClock;
    this.monotonicMs = options.monotonicMs ?? (() => performance.now());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Whether this replica may write now: it leads and its last successful renew began less than renewDeadline ago on
   * the monotonic clock. Unlike isLeader, this does not wait for the next tick: after a freeze (SIGSTOP, a stalled
   * event loop) it turns false the instant the clock says so, before any timer or I/O callback of the leader runs.
   * A follower takes over no earlier than leaseDuration after it saw that renew land, and the renew began before it
   * landed, so the lease is never held by two writers.
   */
  holdsLease(): boolean {
    return this.leading && this.monotonicMs() - this.lastRenewStartMs < this.options.renewDeadlineMs;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Stops campaigning and, if leading, releases the lease so another replica can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    const call = this.boundedCall(this.options.renewDeadlineMs);
    try {
      const lease = await this.api.readNamespacedLease(
        { name: this.options.leaseName, namespace: this.options.namespace },
        call.options,
      );
      if (lease.spec?.holderIdentity === this.options.identity) {
        lease.spec = {
          ...lease.spec,
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          renewTime: new V1MicroTime(this.clock.now()),
        };
        await this.api.replaceNamespacedLease(
          { name: this.options.leaseName, namespace: this.options.namespace, body: lease },
          call.options,
        );
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, "could not release leader lease");
    } finally {
      call.done();
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    // A tick that fires late means the event loop was stalled: say so, since it eats into the renew deadline.
    const lateMs = this.nextTickDueMs === undefined ? 0 : this.monotonicMs() - this.nextTickDueMs;
    if (lateMs > SLOW_LEASE_STEP_MS) {
      // CPU time near the wait means this process kept its loop busy (work or GC); far below it, the machine
      // starved the process of CPU.
      const cpu = this.cpuAtScheduleUs && process.cpuUsage(this.cpuAtScheduleUs);
      this.options.logger.warn(
        { lateMs: Math.round(lateMs), processCpuMs: cpu && Math.round((cpu.user + cpu.system) / 1000) },
        "leader election: tick ran late (event loop stalled)",
      );
    }
    let renewed = false;
    // For the write fence the renew counts from when it was sent, not answered: the follower's leaseDuration starts
    // when the write lands, which is after it was sent, so the fence closes first however slow the answer was.
    const attemptStartMs = this.monotonicMs();
    // A leader's calls end at its renew deadline; a candidate's get a whole renew deadline.
    const budgetMs = this.leading
      ? this.lastRenewMs + this.options.renewDeadlineMs - this.monotonicMs()
      : this.options.renewDeadlineMs;
    const call = this.boundedCall(budgetMs);
    try {
      if (budgetMs > 0) renewed = await this.tryAcquireOrRenew(call.options);
    } catch (error) {
      if (call.aborted())
        this.options.logger.warn(
          { timeoutMs: Math.round(budgetMs) },
          "leader election: lease call aborted at the renew deadline",
        );
      else if (!isConflict(error)) this.options.logger.warn({ err: error }, "leader election: lease update failed");
    } finally {
      call.done();
    }
    const nowMs = this.monotonicMs();
    if (nowMs - attemptStartMs > SLOW_LEASE_STEP_MS)
      this.options.logger.warn(
        { durationMs: Math.round(nowMs - attemptStartMs), renewed, leading: this.leading },
        "leader election: lease call slow",
      );
    if (renewed) {
      this.lastRenewMs = nowMs;
      this.lastRenewStartMs = attemptStartMs;
      if (!this.leading) {
        this.leading = true;
        this.options.logger.info({ identity: this.options.identity, lease: this.options.leaseName }, "became leader");
        this.options.onStartedLeading();
      }
    } else if (this.leading && nowMs - this.lastRenewMs >= this.options.renewDeadlineMs) {
      this.leading = false;
      this.options.logger.error(
        { identity: this.options.identity },
        "lost leadership: could not renew the lease in time",
      );
      this.options.onStoppedLeading();
    }
    if (!this.stopped) {
      const delayMs = this.nextAttemptDelayMs();
      this.nextTickDueMs = this.monotonicMs() + delayMs;
      this.cpuAtScheduleUs = process.cpuUsage();
      this.timer = this.clock.setTimeout(() => void this.tick(), delayMs);
    }
  }

  /**
   * A follower watching another holder's lease tries again when that lease would expire, if that comes before the
   * next retryPeriod: waiting for the next tick after expiry added up to a whole retryPeriod to every failover. The
   * expiry is judged by the same rule as in tryAcquireOrRenew (our clock, from when we saw the last renew), so this
   * only moves the attempt earlier within one period; it never takes the lease any sooner than the rule allows.
   */
  private nextAttemptDelayMs(): number {
    const { retryPeriodMs, identity } = this.options;
    const observed = this.observed;
    if (this.leading || !observed || observed.holder === "" || observed.holder === identity) return retryPeriodMs;
    const untilExpiryMs = observed.atMs + observed.durationMs - this.monotonicMs();
    return untilExpiryMs >= 0 && untilExpiryMs < retryPeriodMs ? untilExpiryMs + 1 : retryPeriodMs;
  }

  /** An abort signal for one tick's Lease calls, fired after `timeoutMs`, as client-node call options. */
  private boundedCall(timeoutMs: number): { options: ConfigurationOptions; aborted: () => boolean; done: () => void } {
    const controller = new AbortController();
    const timer = this.clock.setTimeout(
      () => controller.abort(new Error(`lease call exceeded ${Math.round(timeoutMs)} ms`)),
      Math.max(0, timeoutMs),
    );
    // The object-parameter API takes observable middleware (client-node's own small Observable).
    const signalMiddleware: ObservableMiddleware = {
      pre: (context) => {
        context.setSignal(controller.signal);
        return new Observable(Promise.resolve(context));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    };
    return {
      options: { middleware: [signalMiddleware], middlewareMergeStrategy: "append" },
      aborted: () => controller.signal.aborted,
      done: () => this.clock.clearTimeout(timer),
    };
  }

  private async tryAcquireOrRenew(call: ConfigurationOptions): Promise<boolean> {
    const { namespace, leaseName: name, identity, leaseDurationMs } = this.options;
    const wallMs = this.clock.now();
    const nowMs = this.monotonicMs();
    const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
    // A leader renews the lease it wrote last without reading it first (one call a renew instead of two: under a
    // saturated API server each call can take seconds); a conflict means someone else wrote it, so the next tick
    // reads it again.
    const cached = this.leading ? this.lastWritten : undefined;
    this.lastWritten = undefined;
    let lease: V1Lease;
    try {
      lease = cached ?? (await this.api.readNamespacedLease({ name, namespace }, call));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.api.createNamespacedLease(
        {
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds,
              acquireTime: new V1MicroTime(wallMs),
              renewTime: new V1MicroTime(wallMs),
              leaseTransitions: 0,
            },
          },
        },
        call,
      );
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const renewTime = spec.renewTime ? new Date(spec.renewTime).toISOString() : "";
    const observedDurationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, atMs: nowMs, durationMs: observedDurationMs };
    }
    const heldByOther = holder !== "" && holder !== identity;
    if (heldByOther && nowMs - this.observed.atMs < observedDurationMs) return false;

    const takingOver = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: new V1MicroTime(wallMs),
      acquireTime: takingOver ? new V1MicroTime(wallMs) : spec.acquireTime,
      leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder !== "" ? 1 : 0),
    };
    this.lastWritten = await this.api.replaceNamespacedLease({ name, namespace, body: lease }, call);
    return true;
  }
}
