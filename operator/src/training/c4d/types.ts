/**
 * The C4D detector's API (C4: Dong et al., "Boosting Large-scale Parallel Training Efficiency with C4", 2024, §3.2).
 * Input: a job's collective telemetry as the read model holds it (per communicator, sequence -> rank -> record) and
 * where each rank runs. Output: verdicts that blame one component (a node, a NIC, the path between two nodes, or
 * nothing for a job-wide hang) with the evidence, and ambiguities that blame nobody.
 */
import type { CommunicatorView } from "../../telemetry/read-model.js";

/** What went wrong, in C4's terms. */
export const C4dFaultClass = {
  /** A rank never entered collective k while the others wait in it (communication hang): that rank's node. */
  hang: "hang",
  /** Every rank entered collective k and it never completed: the connections whose transfers did not finish. */
  unfinished: "unfinished",
  /** A slow row of the connection matrix: everything one endpoint sends is slow. */
  slowSender: "slow-sender",
  /** A slow column: everything one endpoint receives is slow. */
  slowReceiver: "slow-receiver",
  /** An isolated slow cell: both endpoints are fine elsewhere, so the path between them is slow. */
  slowLink: "slow-link",
  /** Non-communication slow: a rank consistently last to arrive at collectives (compute straggler). */
  straggler: "straggler",
  /** Non-communication hang: no rank progresses and no collective is open. */
  jobHang: "job-hang",
} as const;
export type C4dFaultClass = (typeof C4dFaultClass)[keyof typeof C4dFaultClass];

export const C4dAction = {
  /** Taint the blamed node `gpufleet.io/isolated` and restart the gang elsewhere. */
  isolateNode: "isolate-node",
  /** Mark the blamed NIC (a node condition) and restart. */
  markNic: "mark-nic",
  /** Restart from the last checkpoint; no node or NIC is proven guilty (a path between nodes, a job-wide hang). */
  restartOnly: "restart-only",
} as const;
export type C4dAction = (typeof C4dAction)[keyof typeof C4dAction];

export interface C4dInput {
  /** `namespace/name` of the TrainingJob. */
  job: string;
  communicators: readonly CommunicatorView[];
  /** Global rank -> node name. Record ranks are read as global ranks. */
  rankNodes: readonly string[];
  /** Global rank -> the NIC its inter-node transfers use, where known (ranks on one node may share one). */
  rankNics?: readonly (string | undefined)[];
}

export interface C4dEvidence {
  communicator: string;
  /** The collective sequence number the evidence is anchored at (the hung one, or the first affected slow one). */
  sequence: number;
  collective: string;
  ranks: number[];
  /** One sentence a person can check against the telemetry. */
  detail: string;
  /** Named times in milliseconds (waits, medians, baselines, thresholds). */
  timesMs: Record<string, number>;
}

export interface C4dBlame {
  /** The guilty node; "" when nothing node-local is to blame (job-hang). For a slow link: the sending end. */
  node: string;
  nic?: string;
  ranks: number[];
  /** The other end of a blamed link. */
  peerNode?: string;
}

export interface C4dVerdict {
  faultClass: C4dFaultClass;
  blame: C4dBlame;
  action: C4dAction;
  evidence: C4dEvidence;
  /** Start of the first collective the fault affected (a change-point estimate for slowdowns), Unix ms. */
  firstAffectedUnixMs: number;
  /** The `nowMs` of the call that produced the verdict. */
  detectedUnixMs: number;
}

/** Something looks wrong but the evidence does not single out one component: reported, never acted on. */
export interface C4dAmbiguity {
  /** The class the evidence would suggest if it were conclusive. */
  suspected: C4dFaultClass;
  communicator: string;
  sequence: number;
  ranks: number[];
  nodes: string[];
  /** Why nobody is blamed. */
  detail: string;
  timesMs: Record<string, number>;
}

export interface C4dReport {
  verdicts: C4dVerdict[];
  ambiguous: C4dAmbiguity[];
}
