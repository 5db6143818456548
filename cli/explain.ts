/**
 * `gpufleet explain sd/NAME | tj/NAME` (pure): the story of a live resource told from what the operator wrote, its
 * status, conditions and Events, and the pods it owns: why this plan, how far the rollout is, what the autoscaler
 * decided, what migrated, which faults were found and what was isolated. Nothing is inferred that the operator did
 * not record.
 */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import type { Condition } from "../crds/src/conditions.js";
import { OwnedLabel } from "../crds/src/reasons.js";
import type { ServingDeployment } from "../crds/src/serving-deployment.js";
import type { TrainingJob } from "../crds/src/training-job.js";
import { table } from "./format.js";
import { eventTime } from "./kube.js";

export function ago(iso: string | Date | undefined, nowMs: number): string {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((nowMs - new Date(iso).getTime()) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function conditionsSection(
  conditions: readonly Condition[] | undefined,
  generation: number | undefined,
  nowMs: number,
): string[] {
  if (!conditions?.length) return ["CONDITIONS  none yet (the operator has not reconciled it)"];
  const rows = conditions.map((c) => [
    c.type,
    c.status,
    c.reason,
    ago(c.lastTransitionTime, nowMs),
    `${c.observedGeneration !== undefined && generation !== undefined && c.observedGeneration < generation ? "(stale) " : ""}${c.message}`,
  ]);
  return ["CONDITIONS", table([["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], ...rows]).replace(/^/gm, "  ")];
}

function eventsSection(events: readonly CoreV1Event[], nowMs: number): string[] {
  if (events.length === 0) return ["EVENTS  none (Events expire after an hour by default)"];
  const rows = events.map((e) => [
    ago(new Date(eventTime(e)), nowMs),
    e.type ?? "",
    e.reason ?? "",
    e.count && e.count > 1 ? `×${e.count}` : "",
    e.message ?? "",
  ]);
  return [
    "EVENTS (oldest first)",
    table([["WHEN", "TYPE", "REASON", "COUNT", "MESSAGE"], ...rows]).replace(/^/gm, "  "),
  ];
}

const isReady = (p: V1Pod) => (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

export function explainServing(
  sd: ServingDeployment,
  events: readonly CoreV1Event[],
  pods: readonly V1Pod[],
  nowMs: number,
): string {
  const s = sd.status ?? {};
  const out: string[] = [];
  const gen = sd.metadata.generation;
  out.push(
    `ServingDeployment ${sd.metadata.namespace}/${sd.metadata.name}: ${s.phase ?? "not reconciled yet"}, ${s.ready ?? "0/0"} instances ready`,
  );
  if (gen !== undefined && s.observedGeneration !== undefined && s.observedGeneration < gen)
    out.push(
      `  the operator has seen generation ${s.observedGeneration} of ${gen}: the newest spec is not acted on yet`,
    );
  out.push(
    `  engine: ${sd.spec.engine.kind ?? "reference"} (${sd.spec.engine.image}); mode ${sd.spec.mode}; ${sd.spec.workload.arrivalRatePerSec} req/s under TTFT ≤ ${sd.spec.slo.ttftMs} ms, TPOT ≤ ${sd.spec.slo.tpotMs} ms`,
  );
  out.push("");
  if (s.plan) {
    const p = s.plan;
    out.push(`WHY THIS PLAN  ${s.planSummary ?? p.mode}`);
    out.push(
      `  predicted ${p.goodputPerGpu} req/s per GPU${p.colocatedGoodputPerGpu !== undefined ? ` (best colocated: ${p.colocatedGoodputPerGpu})` : ""}, attainment ${p.predictedAttainmentPercent ?? "-"}%`,
    );
    for (const part of (p.explanation ?? "").split("; ").filter(Boolean)) out.push(`  - ${part}`);
  } else {
    out.push("WHY NO PLAN  see the Planned condition below");
  }
  if (s.scaling) {
    const sc = s.scaling;
    out.push("");
    out.push(
      `SCALING  desired ${Object.entries(sc.desired)
        .map(([role, n]) => `${role} ${n}`)
        .join(", ")}${sd.spec.scaling.autoscale ? " (autoscaled)" : ""}`,
    );
    if (sc.lastDecision)
      out.push(
        `  last decision ${ago(sc.lastDecision.time, nowMs)}: ${sc.lastDecision.kind} ${sc.lastDecision.role}: ${sc.lastDecision.reason}`,
      );
    for (const d of sc.draining ?? [])
      out.push(
        `  draining ${d.pod} (${d.role} ${d.index}): ${d.state}, ${d.requestsLeft ?? "?"} requests left, deadline ${d.deadlineTime}`,
      );
  }
  out.push("");
  out.push(
    ...podsSection(
      pods,
      (p) => `${p.metadata?.labels?.[OwnedLabel.role] ?? "?"} ${p.metadata?.labels?.[OwnedLabel.instance] ?? "?"}`,
    ),
  );
  out.push("");
  out.push(...conditionsSection(s.conditions, gen, nowMs));
  out.push("");
  const migrations = events.filter((e) => e.reason?.startsWith("Migration"));
  if (migrations.length > 0)
    out.push(
      `MIGRATIONS  ${migrations.length} Event(s) below (MigrationCompleted / MigrationFailed / MigrationsSummarized)`,
      "",
    );
  out.push(...eventsSection(events, nowMs));
  return out.join("\n");
}

function podsSection(pods: readonly V1Pod[], label: (p: V1Pod) => string): string[] {
  if (pods.length === 0) return ["PODS  none"];
  const rows = [...pods]
    .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))
    .map((p) => [
      p.metadata?.name ?? "",
      label(p),
      p.spec?.nodeName ?? "(unbound)",
      p.status?.phase ?? "Pending",
      isReady(p) ? "ready" : "not ready",
    ]);
  return [
    `PODS  ${pods.filter(isReady).length}/${pods.length} ready`,
    table([["NAME", "WHAT", "NODE", "PHASE", "READY"], ...rows]).replace(/^/gm, "  "),
  ];
}

export function explainTraining(
  job: TrainingJob,
  events: readonly CoreV1Event[],
  pods: readonly V1Pod[],
  nowMs: number,
): string {
  const s = job.status ?? {};
  const out: string[] = [];
  out.push(
    `TrainingJob ${job.metadata.namespace}/${job.metadata.name}: ${s.phase ?? "not reconciled yet"}, ${s.ready ?? "0/0"} pods running, ${s.restarts ?? 0} restart(s) of ${job.spec.faultPolicy.maxRestarts} allowed`,
  );
  if (s.lastCheckpointStep !== undefined) out.push(`  last complete checkpoint: step ${s.lastCheckpointStep}`);
  if (s.nextRestartTime) out.push(`  next restart at ${s.nextRestartTime}`);
  out.push("");
  if (s.placement) {
    const p = s.placement;
    out.push(`WHY THIS PLACEMENT  ${s.planSummary ?? ""}`);
    out.push(
      `  islands ${p.islands.join(" → ")}; ranks per island ${Object.entries(p.ranksPerIsland)
        .map(([i, n]) => `${i} ${n}`)
        .join(", ")}; layers per stage ${p.layersPerStage.join(", ")}`,
    );
    out.push(
      `  predicted step ${p.predictedStepMs} ms${p.obliviousStepMs !== undefined ? ` vs ${p.obliviousStepMs} ms NIC-oblivious` : ""}`,
    );
  } else {
    out.push("WHY NO PLACEMENT  see the Unschedulable / Placed conditions below");
  }
  if (s.avoidNodes?.length)
    out.push(`  the next placement avoids ${s.avoidNodes.join(", ")} (members of the failed attempt)`);
  out.push("");
  if (s.faults?.length) {
    out.push("FAULTS (C4D, newest last)");
    for (const f of s.faults) {
      const where = [f.node && `node ${f.node}`, f.nic && `NIC ${f.nic}`, f.peerNode && `peer ${f.peerNode}`]
        .filter(Boolean)
        .join(", ");
      out.push(
        `  ${f.detectedTime} attempt ${f.attempt}: ${f.faultClass} on ${where || "no single component"} → ${f.action} (${f.communicator} ${f.collective} #${f.sequence}, ranks ${f.ranks.join(",")})`,
      );
      out.push(`    ${f.detail}`);
    }
  } else {
    out.push("FAULTS  none recorded");
  }
  out.push("");
  // Gang pods carry their node rank as the instance label.
  out.push(...podsSection(pods, (p) => `node rank ${p.metadata?.labels?.[OwnedLabel.instance] ?? "?"}`));
  out.push("");
  out.push(...conditionsSection(s.conditions, job.metadata.generation, nowMs));
  out.push("");
  out.push(...eventsSection(events, nowMs));
  return out.join("\n");
}
