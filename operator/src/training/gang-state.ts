/**
 * What a TrainingJob's gang is doing right now, as a pure function of the pods the reconciler observed: the one
 * place that turns a pile of pods into "nothing placed", "placing", "running", "a member failed", "a node was
 * isolated", "left over from an older attempt" or "done".
 *
 * The reconciler reads from caches that lag its own writes, so two facts come from its memory rather than the
 * cache (gang-memory.ts): pods it created that the cache has not shown yet (`awaitingPods`: the gang is still
 * being placed, not missing members), and pods it deleted that the cache still shows (`deletedPods`: going away,
 * not running). This is client-go's "expectations" idea, kept small.
 *
 * Every pod carries the restart attempt and the spec hash it was made for (annotations); a pod of another attempt
 * or spec is stale and is torn down before anything else happens, so a half-finished teardown or a spec change
 * can never mix with a fresh gang.
 */
import { createHash } from "node:crypto";
import { gangPodName } from "./gang.js";
import type { PodPhase } from "./restart.js";

export const GangAnnotation = {
  /** Restart attempt (status.restarts when the pod was made). */
  attempt: "gpufleet.io/attempt",
  /** Hash of the TrainingJob spec the pod was made for. */
  specHash: "gpufleet.io/spec-hash",
  /** Node rank of the pod in the placement. */
  nodeRank: "gpufleet.io/node-rank",
} as const;

/** A pod of the gang as the reconciler saw it. */
export interface ObservedPod {
  name: string;
  uid: string;
  nodeName: string;
  phase: PodPhase;
  /** metadata.deletionTimestamp is set. */
  deleting: boolean;
  attempt: number | undefined;
  specHash: string | undefined;
}

/** The planned nodes' health, from the capacity view. */
export interface GangNodeView {
  nodeName: string;
  isolated: boolean;
}

export interface GangObservationInput {
  jobName: string;
  /** spec.nodes: pods in a whole gang. */
  gangSize: number;
  /** Planned node of each node rank (status.placement.nodes), to name the node of a deleted member. */
  plannedNodes?: readonly string[];
  /** The restart attempt the gang should belong to now. */
  attempt: number;
  specHash: string;
  pods: readonly ObservedPod[];
  /** Names of pods this operator created that the cache does not show yet. */
  awaitingPods: ReadonlySet<string>;
  /** UIDs of pods this operator deleted. */
  deletedPods: ReadonlySet<string>;
  /** Every GPU node the cluster has now; a pod's node missing here is gone. */
  nodes: readonly GangNodeView[];
  /** Whether the job's status says the whole gang was placed (phase Placed or Running). */
  wasPlaced: boolean;
}

export const GangStateKind = {
  /** No pod of the gang exists: place it. */
  none: "none",
  /** Pods of an older attempt or spec, or pods being deleted: wait for them to go (deleting the stale ones). */
  draining: "draining",
  /** Pods were created and the cache has not shown all of them yet. */
  placing: "placing",
  /** Some pods exist without a whole gang and none is awaited: torn down (a crash mid-creation), not a restart. */
  partial: "partial",
  /** A member failed or was deleted while the gang was placed. */
  failedMember: "failed-member",
  /** A member's node carries the isolation taint or left the cluster. */
  isolatedNode: "isolated-node",
  /** The whole gang exists, not every pod is Running yet. */
  placedPending: "placed-pending",
  running: "running",
  succeeded: "succeeded",
} as const;
export type GangStateKind = (typeof GangStateKind)[keyof typeof GangStateKind];

export interface GangState {
  kind: GangStateKind;
  /** Pods of this attempt, by name (empty unless the gang exists at least in part). */
  current: readonly ObservedPod[];
  /** Pods to delete now: stale ones while draining; every pod for partial/failed/isolated gangs. */
  toDelete: readonly ObservedPod[];
  /** Failed or missing members, for decideRestart (phase "Failed"). */
  failed: readonly { name: string; nodeName: string; phase: PodPhase }[];
  /** Nodes of current pods that are isolated or gone. */
  isolatedNodes: readonly string[];
  running: number;
  /** Short human text for logs and messages. */
  detail: string;
}

/**
 * Classifies the gang. Order matters and follows what must happen first: stale pods are drained before a fresh
 * gang is judged; a gang still being created is not judged at all; failures are judged before readiness.
 */
export function observeGang(input: GangObservationInput): GangState {
  const live = input.pods.filter((p) => !input.deletedPods.has(p.uid));
  const going = input.pods.filter((p) => input.deletedPods.has(p.uid) || p.deleting);
  const stale = live.filter((p) => !p.deleting && (p.attempt !== input.attempt || p.specHash !== input.specHash));
  const current = live.filter((p) => !p.deleting && p.attempt === input.attempt && p.specHash === input.specHash);
  const base = { current, failed: [], isolatedNodes: [], running: count(current, "Running") };

  if (stale.length > 0) {
    return {
      ...base,
      kind: GangStateKind.draining,
      toDelete: stale,
      detail: `${stale.length} pod(s) of an older attempt or spec to delete`,
    };
  }
  // A member deleted by someone else while the gang was placed is a failed member, not something to wait for.
  const deletedByOthers = live.filter(
    (p) => p.deleting && p.attempt === input.attempt && p.specHash === input.specHash,
  );
  if (going.length > 0 && current.length === 0) {
    return { ...base, kind: GangStateKind.draining, toDelete: [], detail: `${going.length} pod(s) terminating` };
  }
  if (current.length === 0 && input.awaitingPods.size === 0 && !input.wasPlaced) {
    return { ...base, kind: GangStateKind.none, toDelete: [], detail: "no pods" };
  }
  const awaited = [...input.awaitingPods].filter((name) => !current.some((p) => p.name === name));
  if (awaited.length > 0) {
    return {
      ...base,
      kind: GangStateKind.placing,
      toDelete: [],
      detail: `${current.length} of ${input.gangSize} pods observed`,
    };
  }

  const nodeByName = new Map(input.nodes.map((n) => [n.nodeName, n]));
  const isolatedNodes = [
    ...new Set(current.filter((p) => nodeByName.get(p.nodeName)?.isolated !== false).map((p) => p.nodeName)),
  ].sort();
  const failed = [
    ...current
      .filter((p) => p.phase === "Failed")
      .map((p) => ({ name: p.name, nodeName: p.nodeName, phase: "Failed" as const })),
    ...deletedByOthers.map((p) => ({ name: p.name, nodeName: p.nodeName, phase: "Failed" as const })),
  ];
  const whole = current.length + deletedByOthers.length >= input.gangSize;
  if (!whole && !input.wasPlaced) {
    return {
      ...base,
      kind: GangStateKind.partial,
      toDelete: current,
      detail: `${current.length} of ${input.gangSize} pods exist and none is awaited`,
    };
  }
  if (!whole) {
    // Pods of a placed gang vanished (deleted): each missing rank is a failed member, on the node it was planned on.
    const present = new Set([...current, ...deletedByOthers].map((p) => p.name));
    for (let rank = 0; rank < input.gangSize; rank++) {
      const name = gangPodName(input.jobName, rank);
      if (!present.has(name)) failed.push({ name, nodeName: input.plannedNodes?.[rank] ?? "unknown", phase: "Failed" });
    }
  }
  if (failed.length > 0) {
    return {
      ...base,
      kind: GangStateKind.failedMember,
      toDelete: current,
      failed,
      isolatedNodes,
      detail: `${failed.length} member(s) failed or deleted`,
    };
  }
  if (isolatedNodes.length > 0) {
    return {
      ...base,
      kind: GangStateKind.isolatedNode,
      toDelete: current,
      isolatedNodes,
      detail: `node(s) ${isolatedNodes.join(", ")} isolated or gone`,
    };
  }
  if (current.every((p) => p.phase === "Succeeded")) {
    return { ...base, kind: GangStateKind.succeeded, toDelete: [], detail: `all ${current.length} pods succeeded` };
  }
  // Ranks that finished early while others still run do not make the gang less running.
  if (base.running > 0 && current.every((p) => p.phase === "Running" || p.phase === "Succeeded")) {
    return {
      ...base,
      kind: GangStateKind.running,
      toDelete: [],
      detail: `${base.running}/${input.gangSize} pods running`,
    };
  }
  return {
    ...base,
    kind: GangStateKind.placedPending,
    toDelete: [],
    detail: `${base.running}/${input.gangSize} pods running`,
  };
}

function count(pods: readonly ObservedPod[], phase: PodPhase): number {
  return pods.filter((p) => p.phase === phase).length;
}

/** Stable hash of a JSON value (object keys sorted), 16 hex characters: fits a label value. */
export function stableHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
