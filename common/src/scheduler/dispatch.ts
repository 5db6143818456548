/**
 * Dispatch policies: which instance of a pool a new request goes to. Pure: the caller passes candidate loads
 * (latest report plus its own reservations, see reservations.ts) and executes the choice.
 *
 * - `freeness` (Llumnix §4.4): decode-capable instances (colocated, decode) by highest freeness F; prefill
 *   instances by fewest outstanding prompt tokens (their cost is prompt compute, not KV held over time).
 * - `round-robin`: the named baseline; cycles through the healthy instances in id order, ignoring load.
 * - `waiting-prompt-tokens` (an option, not the default): every instance, colocated too, by fewest outstanding prompt
 *   tokens, the prefill rule above. It is the prefill-bound load metric of Llumnix's own code (AlibabaPAI/llumnix,
 *   llumnix/load_computation.py, `MissWaitingTokensLoad`, "miss_waiting_tokens": tokens of the waiting requests not
 *   yet computed), for instances whose TTFT is set by the prefill backlog rather than by KV memory.
 *
 * Draining instances are never chosen by either policy. Ties break on fewer running requests, then on the instance
 * this policy chose least recently (never chosen first), then on id: deterministic, but a tie does not always go to
 * the same instance (an id tie-break alone sent every tie, e.g. all instances idle at light load, to the first id).
 * dispatchBatch orders a burst high priority first (then arrival), and reserves each
 * choice before the next, so one burst spreads.
 */
import type { InstanceRole, Priority } from "../engine-api.js";
import { DEFAULT_FREENESS_CONFIG, freeness, type FreenessConfig, type InstanceLoad } from "./freeness.js";
import { withDemand, type Demand } from "./reservations.js";

export const DispatchPolicyName = {
  freeness: "freeness",
  roundRobin: "round-robin",
  waitingPromptTokens: "waiting-prompt-tokens",
} as const;
export type DispatchPolicyName = (typeof DispatchPolicyName)[keyof typeof DispatchPolicyName];

export interface Candidate {
  id: string;
  role: InstanceRole;
  load: InstanceLoad;
}

export interface DispatchRequest {
  id: string;
  priority: Priority;
  promptTokens: number;
}

export interface DispatchPolicy {
  readonly name: DispatchPolicyName;
  /** The instance for `request` among `candidates` (one role), or undefined when none can take it. */
  choose(candidates: readonly Candidate[], request: DispatchRequest): Candidate | undefined;
}

const byId = (a: Candidate, b: Candidate): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class FreenessPolicy implements DispatchPolicy {
  /** When (in this policy's choices) each instance was last chosen: the tie-break's only state. */
  private readonly lastChosen = new Map<string, number>();
  private choices = 0;

  /** byPromptTokensOnly: the `waiting-prompt-tokens` option, the prefill rule for every role. */
  constructor(
    private readonly config: FreenessConfig = DEFAULT_FREENESS_CONFIG,
    private readonly byPromptTokensOnly = false,
  ) {}

  get name(): DispatchPolicyName {
    return this.byPromptTokensOnly ? DispatchPolicyName.waitingPromptTokens : DispatchPolicyName.freeness;
  }

  choose(candidates: readonly Candidate[]): Candidate | undefined {
    const open = candidates.filter((c) => !c.load.draining);
    if (open.length === 0) return undefined;
    const chosen =
      this.byPromptTokensOnly || open.every((c) => c.role === "prefill")
        ? [...open].sort(
            (a, b) => a.load.outstandingPromptTokens - b.load.outstandingPromptTokens || this.tieBreak(a, b),
          )[0]
        : open
            .map((c) => ({ c, f: freeness(c.load, this.config) }))
            .sort((a, b) => b.f - a.f || this.tieBreak(a.c, b.c))[0]?.c;
    if (chosen) this.lastChosen.set(chosen.id, ++this.choices);
    return chosen;
  }

  private tieBreak(a: Candidate, b: Candidate): number {
    return (
      a.load.runningRequests - b.load.runningRequests ||
      (this.lastChosen.get(a.id) ?? 0) - (this.lastChosen.get(b.id) ?? 0) ||
      byId(a, b)
    );
  }
}

/** Cycles through the open candidates in id order; the cursor is the policy's only state. */
export class RoundRobinPolicy implements DispatchPolicy {
  readonly name = DispatchPolicyName.roundRobin;
  private cursor = 0;

  choose(candidates: readonly Candidate[]): Candidate | undefined {
    const open = candidates.filter((c) => !c.load.draining).sort(byId);
    if (open.length === 0) return undefined;
    const chosen = open[this.cursor % open.length];
    this.cursor = (this.cursor + 1) % Number.MAX_SAFE_INTEGER;
    return chosen;
  }
}

export function createPolicy(
  name: DispatchPolicyName,
  config: FreenessConfig = DEFAULT_FREENESS_CONFIG,
): DispatchPolicy {
  if (name === DispatchPolicyName.roundRobin) return new RoundRobinPolicy();
  return new FreenessPolicy(config, name === DispatchPolicyName.waitingPromptTokens);
}

export interface BatchAssignment {
  requestId: string;
  instanceId: string | undefined;
}

/**
 * Dispatches a burst: high priority first, each in arrival order, every choice reserved before the next is made.
 * Returns assignments in dispatch order (undefined instanceId: no instance could take the request).
 */
export function dispatchBatch(
  policy: DispatchPolicy,
  candidates: readonly Candidate[],
  requests: readonly DispatchRequest[],
): BatchAssignment[] {
  const ordered = requests
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r.priority) - rank(b.r.priority) || a.i - b.i)
    .map((x) => x.r);
  let pool = candidates.map((c) => ({ ...c }));
  return ordered.map((request) => {
    const chosen = policy.choose(pool, request);
    if (chosen) {
      const demand: Demand = { promptTokens: request.promptTokens, highPriority: request.priority === "high" };
      pool = pool.map((c) => (c.id === chosen.id ? { ...c, load: withDemand(c.load, demand) } : c));
    }
    return { requestId: request.id, instanceId: chosen?.id };
  });
}

function rank(priority: Priority): number {
  return priority === "high" ? 0 : 1;
}
