/**
 * The gateway's dispatch decision, apart from the HTTP calls that carry it out: the pool's candidates from the
 * instance view (latest reports plus this replica's reservations), admission (429 once every instance of the
 * pool has `maxQueuedPerInstance` waiting, twice that for high priority), the pool's policy, and the reservation
 * of the choice. The executor (executor.ts) calls it before each attempt; the gateway benchmark drives the very
 * same object on a simulated clock (bench/gateway/dispatch-sim.ts), so what it measures is what the gateway runs.
 */
import type { InstanceRole, Priority } from "../../../common/src/engine-api.js";
import {
  createPolicy,
  type Candidate,
  type DispatchPolicy,
  type DispatchPolicyName,
} from "../../../common/src/scheduler/dispatch.js";
import type { FreenessConfig } from "../../../common/src/scheduler/freeness.js";
import type { EngineKind } from "../../../crds/src/serving-deployment.js";
import type { InstanceView } from "../instances/view.js";
import type { GatewayMetrics } from "../metrics.js";
import { ErrorCode, GatewayError } from "../openai/errors.js";

export interface DispatcherConfig {
  dispatchPolicy: DispatchPolicyName;
  freeness: FreenessConfig;
  maxQueuedPerInstance: number;
  retryAfterS: number;
}

/** What dispatch needs of a request. */
export interface DispatchSubject {
  requestId: string;
  model: string;
  priority: Priority;
  promptTokens: number;
}

export class Dispatcher {
  private readonly policies = new Map<string, DispatchPolicy>();

  constructor(private readonly deps: { view: InstanceView; config: DispatcherConfig; metrics: GatewayMetrics }) {}

  /** One policy object per pool, so round-robin cycles per pool. Prefill pools always go by outstanding tokens
   * under the freeness policy (FreenessPolicy's prefill rule). */
  private policy(model: string, role: InstanceRole): DispatchPolicy {
    const key = `${model}\u0000${role}`;
    let policy = this.policies.get(key);
    if (!policy)
      this.policies.set(key, (policy = createPolicy(this.deps.config.dispatchPolicy, this.deps.config.freeness)));
    return policy;
  }

  /**
   * The instance for the next attempt, reserved until release(); undefined when no instance outside `tried` is
   * live (of `engine`, when given). Throws a 429 GatewayError when every live instance of the pool has too many
   * requests waiting.
   */
  choose(
    c: DispatchSubject,
    role: InstanceRole,
    tried: ReadonlySet<string>,
    nowMs: number,
    engine?: EngineKind,
  ): Candidate | undefined {
    const candidates = this.deps.view.candidates(c.model, role, nowMs, tried, engine);
    if (candidates.length === 0) return undefined;
    // High-priority requests may queue twice as deep: they are admitted where normal ones are turned away.
    const limit = this.deps.config.maxQueuedPerInstance * (c.priority === "high" ? 2 : 1);
    const admissible = candidates.filter((x) => x.load.queuedRequests < limit);
    if (admissible.length === 0) {
      throw new GatewayError(
        429,
        ErrorCode.overloaded,
        `every ${role} instance of '${c.model}' has ${limit} or more requests waiting`,
        { retryAfterS: this.deps.config.retryAfterS },
      );
    }
    const policy = this.policy(c.model, role);
    const chosen = policy.choose(admissible, { id: c.requestId, priority: c.priority, promptTokens: c.promptTokens });
    if (!chosen) return undefined;
    this.deps.view.reserve(
      c.requestId,
      chosen.id,
      { promptTokens: c.promptTokens, highPriority: c.priority === "high" },
      nowMs,
    );
    this.deps.metrics.dispatchDecisionsTotal.inc({ model: c.model, policy: policy.name, role });
    return chosen;
  }

  /** The request finished or moved on to its next phase: its reservation ends. */
  release(requestId: string): void {
    this.deps.view.release(requestId);
  }
}
