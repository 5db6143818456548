/**
 * What to do about a C4D report (pure: no client, clock or logger; time comes in as `nowMs`).
 *
 * The detector (../c4d/) says which component is guilty and what it suggests (isolate the node, mark a NIC, only
 * restart); this planner decides what the operator actually does, under rules that keep it from doing harm:
 *
 *  - One action per gang attempt. Any action restarts the whole gang, so once a fault of the current attempt was
 *    acted on (its record is in status.faults or in the monitor's memory), later reports of the same attempt change
 *    nothing: a fault is never acted on twice, across reconciles and across a leader change (status survives it).
 *  - A verdict is acted on only when it names a node of the current gang. A verdict about any other node, or more
 *    distinct nodes than `maxNodesPerFault` at once (a switch or a detector bug looks like that, not a node), is
 *    treated as ambiguous: reported, never tainted.
 *  - Ambiguous evidence gives an Event and the FaultSuspected condition, at most once per attempt and kind, and no
 *    taint and no restart.
 *  - An already isolated node is not tainted again (an admin's taint value is kept); the gang still restarts.
 */
import type { ConditionUpdate } from "../../../../crds/src/conditions.js";
import { Reason, TrainingCondition } from "../../../../crds/src/reasons.js";
import {
  MAX_FAULT_RECORDS,
  type FaultAction,
  type FaultClass,
  type FaultRecord,
} from "../../../../crds/src/training-job.js";
import type { C4dAmbiguity, C4dReport, C4dVerdict } from "../c4d/index.js";
import type { PendingEvent } from "../../runtime/status.js";

export interface FaultPlanInput {
  /** `namespace/name` of the TrainingJob. */
  job: string;
  /** The current gang attempt (the attempt annotation of its pods). */
  attempt: number;
  report: C4dReport;
  /** status.faults as the job holds them now. */
  recorded: readonly FaultRecord[];
  /** Records this process wrote that the cached status may not show yet. */
  remembered: readonly FaultRecord[];
  /** The current gang's nodes. */
  gangNodes: ReadonlySet<string>;
  /** Nodes that already carry the gpufleet.io/isolated taint. */
  isolatedNodes: ReadonlySet<string>;
  nowMs: number;
  /** Most distinct nodes one fault may blame before the evidence counts as ambiguous; default 2. */
  maxNodesPerFault?: number;
}

export interface NodeTaint {
  node: string;
  /** Taint value (a label value): `c4d-<class>`. */
  value: string;
  /** One line for the node annotation: which job, which evidence. */
  reason: string;
}

export interface NicMark {
  node: string;
  nic: string;
  message: string;
}

export interface NodeEvent {
  node: string;
  event: PendingEvent;
}

export interface FaultPlan {
  /** New records for status.faults (acted and ambiguous). */
  records: FaultRecord[];
  taints: NodeTaint[];
  nicMarks: NicMark[];
  /** Whether the gang restarts (every acted fault restarts it; ambiguity does not). */
  restart: boolean;
  conditions: ConditionUpdate[];
  jobEvents: PendingEvent[];
  nodeEvents: NodeEvent[];
}

export const EMPTY_PLAN: FaultPlan = {
  records: [],
  taints: [],
  nicMarks: [],
  restart: false,
  conditions: [],
  jobEvents: [],
  nodeEvents: [],
};

export const DEFAULT_MAX_NODES_PER_FAULT = 2;

/** Condition reason per fault class. */
export const FAULT_REASON: Record<FaultClass, Reason> = {
  hang: Reason.CommunicationHang,
  unfinished: Reason.UnfinishedTransfer,
  "slow-sender": Reason.SlowSender,
  "slow-receiver": Reason.SlowReceiver,
  "slow-link": Reason.SlowLink,
  straggler: Reason.Straggler,
  "job-hang": Reason.JobHang,
  ambiguous: Reason.AmbiguousEvidence,
};

/** Id of a fault: the same component blamed for the same class in the same attempt is one fault. */
export function faultId(attempt: number, faultClass: string, node: string | undefined, nic?: string): string {
  return [String(attempt), faultClass, node ?? "", ...(nic ? [nic] : [])].join("-").slice(0, 253);
}

/** Whether a record made the operator do something (and so restart the gang). */
export function isActed(record: Pick<FaultRecord, "action">): boolean {
  return record.action !== "none";
}

export function planFaultActions(input: FaultPlanInput): FaultPlan {
  const known = [...input.recorded, ...input.remembered];
  const handled = new Set(known.map((r) => r.id));
  if (known.some((r) => r.attempt === input.attempt && isActed(r))) return EMPTY_PLAN;

  const maxNodes = input.maxNodesPerFault ?? DEFAULT_MAX_NODES_PER_FAULT;
  // A restart-only verdict may blame no node at all (a job-wide hang): nothing to check it against.
  const placed = (v: C4dVerdict) =>
    input.gangNodes.has(v.blame.node) || (v.action === "restart-only" && v.blame.node === "");
  const inGang = input.report.verdicts.filter(placed);
  const outside = input.report.verdicts.filter((v) => !placed(v));
  const blamedNodes = new Set(inGang.filter((v) => v.action !== "restart-only").map((v) => v.blame.node));
  const tooMany = blamedNodes.size > maxNodes;

  const ambiguous: AmbiguousFinding[] = [
    ...input.report.ambiguous.map((a) => ambiguityFinding(a, input.nowMs)),
    ...outside.map((v) =>
      verdictAsAmbiguity(v, `C4D blamed node ${v.blame.node}, which runs no rank of the current gang`),
    ),
    ...(tooMany
      ? inGang.map((v) =>
          verdictAsAmbiguity(
            v,
            `C4D blamed ${blamedNodes.size} nodes at once (${[...blamedNodes].sort().join(", ")}); more than ${maxNodes} looks like a shared component, not a node`,
          ),
        )
      : []),
  ];
  if (!tooMany && inGang.length > 0) return actOn(input, dedupe(inGang), handled);
  return reportAmbiguity(input, ambiguous, handled);
}

function actOn(input: FaultPlanInput, verdicts: C4dVerdict[], handled: ReadonlySet<string>): FaultPlan {
  const plan: FaultPlan = {
    ...EMPTY_PLAN,
    records: [],
    taints: [],
    nicMarks: [],
    conditions: [],
    jobEvents: [],
    nodeEvents: [],
    restart: true,
  };
  for (const verdict of verdicts) {
    const { blame } = verdict;
    // A NIC verdict without a NIC name cannot mark anything; the node is then the smallest thing we can name.
    const action: FaultAction = verdict.action === "mark-nic" && !blame.nic ? "isolate-node" : verdict.action;
    const id = faultId(input.attempt, verdict.faultClass, blame.node, action === "mark-nic" ? blame.nic : undefined);
    if (handled.has(id)) continue;
    const record = recordOf(input, verdict, id, action);
    const summary = summarize(record);
    plan.records.push(record);
    if (action === "isolate-node") {
      const already = input.isolatedNodes.has(blame.node);
      if (!already)
        plan.taints.push({
          node: blame.node,
          value: `c4d-${verdict.faultClass}`,
          reason: `${input.job} attempt ${input.attempt}: ${summary}`.slice(0, 1024),
        });
      plan.nodeEvents.push({
        node: blame.node,
        event: {
          type: "Warning",
          reason: Reason.NodeIsolated,
          message: `${already ? "already isolated; " : "tainted gpufleet.io/isolated:NoSchedule; "}TrainingJob ${input.job}: ${summary}`,
        },
      });
    } else if (action === "mark-nic") {
      plan.nicMarks.push({
        node: blame.node,
        nic: blame.nic!,
        message: `TrainingJob ${input.job}: ${summary}`.slice(0, 1024),
      });
      plan.nodeEvents.push({
        node: blame.node,
        event: {
          type: "Warning",
          reason: Reason.NicDegraded,
          message: `NIC ${blame.nic} marked degraded; TrainingJob ${input.job}: ${summary}`,
        },
      });
    }
    plan.jobEvents.push({
      type: "Warning",
      reason: FAULT_REASON[verdict.faultClass],
      message: `${summary}; ${actionText(record)}`,
    });
  }
  if (plan.records.length === 0) return EMPTY_PLAN;
  const first = plan.records[0]!;
  const more =
    plan.records.length > 1
      ? ` (and ${plan.records.length - 1} more: ${plan.records
          .slice(1)
          .map((r) => `${r.faultClass} on ${r.node}`)
          .join(", ")})`
      : "";
  plan.conditions.push({
    type: TrainingCondition.FaultDetected,
    status: "True",
    reason: FAULT_REASON[first.faultClass],
    message: `${summarize(first)}; ${actionText(first)}${more}`,
  });
  return plan;
}

interface AmbiguousFinding {
  kind: string;
  communicator: string;
  collective: string;
  sequence: number;
  ranks: number[];
  nodes: string[];
  detail: string;
  timesMs: Record<string, number>;
  firstAffectedUnixMs: number;
  detectedUnixMs: number;
}

function reportAmbiguity(
  input: FaultPlanInput,
  findings: readonly AmbiguousFinding[],
  handled: ReadonlySet<string>,
): FaultPlan {
  const records: FaultRecord[] = [];
  const seen = new Set<string>();
  for (const f of findings) {
    const id = faultId(input.attempt, "ambiguous", f.kind);
    if (handled.has(id) || seen.has(id)) continue;
    seen.add(id);
    records.push({
      id,
      attempt: input.attempt,
      faultClass: "ambiguous",
      action: "none",
      ...(f.nodes.length === 1 ? { node: f.nodes[0] } : {}),
      ranks: f.ranks.slice(0, 64),
      communicator: f.communicator.slice(0, 256),
      collective: f.collective.slice(0, 64),
      sequence: Math.max(0, Math.trunc(f.sequence)),
      evidenceRanks: f.ranks.slice(0, 64),
      detail: f.detail.slice(0, 1024),
      timesMs: boundedTimes(f.timesMs),
      firstAffectedTime: iso(f.firstAffectedUnixMs),
      detectedTime: iso(f.detectedUnixMs),
      actedTime: iso(input.nowMs),
    });
  }
  if (records.length === 0) return EMPTY_PLAN;
  const message = records
    .map((r) => `${summarize(r)}; nothing tainted`)
    .join(" | ")
    .slice(0, 4096);
  return {
    ...EMPTY_PLAN,
    records,
    conditions: [{ type: TrainingCondition.FaultSuspected, status: "True", reason: Reason.AmbiguousEvidence, message }],
    jobEvents: records.map((r) => ({
      type: "Warning" as const,
      reason: Reason.AmbiguousEvidence,
      message: `${summarize(r)}; ambiguous: nothing tainted, the gang keeps running`,
    })),
  };
}

/**
 * The fault conditions for a job whose gang attempt `attempt` runs without a fault of its own: both flip to False
 * (recalling the last fault) once a fresh attempt runs. Returns only conditions that exist and must change.
 */
export function settledConditions(
  attempt: number,
  faults: readonly FaultRecord[],
  current: readonly { type: string; status: string }[] | undefined,
): ConditionUpdate[] {
  const out: ConditionUpdate[] = [];
  const lastActed = [...faults].reverse().find(isActed);
  const detected = current?.find((c) => c.type === TrainingCondition.FaultDetected);
  if (detected?.status === "True" && lastActed && lastActed.attempt < attempt) {
    out.push({
      type: TrainingCondition.FaultDetected,
      status: "False",
      reason: Reason.NoFault,
      message: `no fault in attempt ${attempt}; last fault (attempt ${lastActed.attempt}): ${summarize(lastActed)}`,
    });
  }
  const suspected = current?.find((c) => c.type === TrainingCondition.FaultSuspected);
  const lastAmbiguous = [...faults].reverse().find((r) => !isActed(r));
  if (suspected?.status === "True" && (!lastAmbiguous || lastAmbiguous.attempt < attempt)) {
    out.push({
      type: TrainingCondition.FaultSuspected,
      status: "False",
      reason: Reason.NoFault,
      message: `no ambiguous evidence in attempt ${attempt}`,
    });
  }
  return out;
}

/** status.faults after adding `records`: de-duplicated by id, newest last, at most MAX_FAULT_RECORDS. */
export function mergeFaultRecords(
  existing: readonly FaultRecord[] | undefined,
  records: readonly FaultRecord[],
): FaultRecord[] {
  const ids = new Set(records.map((r) => r.id));
  return [...(existing ?? []).filter((r) => !ids.has(r.id)), ...records].slice(-MAX_FAULT_RECORDS);
}

/**
 * The faults of attempt `attempt` that demand a gang restart (read by the gang step): the nodes the next placement
 * avoids (both ends of a blamed link: neither is proven faulty) and one description per fault with the node it is on.
 */
export function faultRestartNodes(
  faults: readonly FaultRecord[] | undefined,
  attempt: number,
): { nodes: string[]; faults: { node: string | undefined; summary: string }[] } {
  const acted = (faults ?? []).filter((r) => r.attempt === attempt && isActed(r));
  return {
    nodes: [...new Set(acted.flatMap((r) => [r.node, r.peerNode].filter((n): n is string => Boolean(n))))].sort(),
    faults: acted.map((r) => ({
      node: r.node,
      summary: `${r.faultClass}${r.node ? ` on node ${r.node}` : ""}${r.nic ? ` (NIC ${r.nic})` : ""}${r.peerNode ? ` (link to ${r.peerNode})` : ""}`,
    })),
  };
}

/** One line telling the evidence: which collective, which ranks, what times. */
export function summarize(r: FaultRecord): string {
  const where = r.node
    ? ` node ${r.node}${r.nic ? ` NIC ${r.nic}` : ""}${r.peerNode ? ` (link to ${r.peerNode})` : ""}`
    : "";
  const ranks = r.ranks.length > 0 ? ` ranks ${rankList(r.ranks)}` : "";
  const times = Object.entries(r.timesMs)
    .slice(0, 6)
    .map(([k, v]) => `${k}=${Math.round(v * 10) / 10}ms`)
    .join(", ");
  const latencyMs = Date.parse(r.actedTime) - Date.parse(r.firstAffectedTime);
  return `C4D ${r.faultClass}:${where}${ranks} in ${r.collective || "collective"} #${r.sequence} of ${r.communicator} (evidence ranks ${rankList(r.evidenceRanks)}): ${r.detail}${times ? ` [${times}]` : ""}; first affected ${r.firstAffectedTime}, acted ${Number.isFinite(latencyMs) ? `${(latencyMs / 1000).toFixed(1)}s` : "?"} later`;
}

function actionText(r: FaultRecord): string {
  switch (r.action) {
    case "isolate-node":
      return `node ${r.node} isolated (taint gpufleet.io/isolated); restarting the gang on healthy nodes from the last checkpoint`;
    case "mark-nic":
      return `NIC ${r.nic} of node ${r.node} marked degraded (node condition); restarting the gang, avoiding the node`;
    case "restart-only":
      return "restarting the gang from the last checkpoint; nothing isolated";
    case "none":
      return "nothing done";
  }
}

function recordOf(input: FaultPlanInput, v: C4dVerdict, id: string, action: FaultAction): FaultRecord {
  return {
    id,
    attempt: input.attempt,
    faultClass: v.faultClass,
    action,
    ...(v.blame.node ? { node: v.blame.node } : {}),
    ...(action === "mark-nic" && v.blame.nic ? { nic: v.blame.nic.slice(0, 64) } : {}),
    ...(v.blame.peerNode ? { peerNode: v.blame.peerNode } : {}),
    ranks: v.blame.ranks.slice(0, 64),
    communicator: v.evidence.communicator.slice(0, 256),
    collective: v.evidence.collective.slice(0, 64),
    sequence: Math.max(0, Math.trunc(v.evidence.sequence)),
    evidenceRanks: v.evidence.ranks.slice(0, 64),
    detail: v.evidence.detail.slice(0, 1024),
    timesMs: boundedTimes(v.evidence.timesMs),
    firstAffectedTime: iso(v.firstAffectedUnixMs),
    detectedTime: iso(v.detectedUnixMs),
    actedTime: iso(input.nowMs),
  };
}

/** One verdict per (class, node, nic): the detector may report a fault once per communicator. */
function dedupe(verdicts: readonly C4dVerdict[]): C4dVerdict[] {
  const byId = new Map<string, C4dVerdict>();
  for (const v of verdicts) {
    const key = `${v.faultClass}|${v.blame.node}|${v.blame.nic ?? ""}`;
    const seen = byId.get(key);
    if (!seen || v.firstAffectedUnixMs < seen.firstAffectedUnixMs) byId.set(key, v);
  }
  return [...byId.values()];
}

function verdictAsAmbiguity(v: C4dVerdict, why: string): AmbiguousFinding {
  return {
    kind: `${v.faultClass}-unplaced`,
    communicator: v.evidence.communicator,
    collective: v.evidence.collective,
    sequence: v.evidence.sequence,
    ranks: v.blame.ranks,
    nodes: [v.blame.node],
    detail: `${why}; ${v.evidence.detail}`,
    timesMs: v.evidence.timesMs,
    firstAffectedUnixMs: v.firstAffectedUnixMs,
    detectedUnixMs: v.detectedUnixMs,
  };
}

function ambiguityFinding(a: C4dAmbiguity, nowMs: number): AmbiguousFinding {
  // An ambiguity carries no times of its own: it is reported when seen.
  return {
    kind: a.suspected,
    communicator: a.communicator,
    collective: "",
    sequence: a.sequence,
    ranks: a.ranks,
    nodes: a.nodes,
    detail: a.detail,
    timesMs: a.timesMs,
    firstAffectedUnixMs: nowMs,
    detectedUnixMs: nowMs,
  };
}

function boundedTimes(times: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(times)
      .filter(([, v]) => Number.isFinite(v))
      .slice(0, 16)
      .map(([k, v]) => [k.slice(0, 64), v]),
  );
}

function iso(ms: number): string {
  return new Date(Number.isFinite(ms) ? ms : 0).toISOString().replace(/\.(\d{3})Z$/, ".$1Z");
}

function rankList(ranks: readonly number[]): string {
  return ranks.length <= 8 ? ranks.join(",") : `${ranks.slice(0, 8).join(",")},… (${ranks.length})`;
}
