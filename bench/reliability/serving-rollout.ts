/**
 * Leader chaos in a serving rollout: two operator replicas with leader election run a ServingDeployment (Llama-3-8B,
 * summarization traffic, disaggregated); once it is Available its TTFT SLO is tightened (250 → 100 ms, which takes
 * the prefill pool from one instance to two, so every pod gets a new plan hash) and the leader is SIGKILLed when its
 * proxy sees its k-th pod write of that rollout (the rollout surges first: its first writes create the new plan's
 * pods, the later ones delete the old plan's).
 *
 * Expected: the follower takes the Lease within leaseDuration + retryPeriod and finishes the rollout: the live pods
 * end as exactly the new plan's slots (one Ready pod per role, instance and worker, all with the new plan hash), no
 * old-plan pod left, the deployment Available at the new generation; no slot ever has two live pods; every role keeps
 * a Ready instance throughout (old pods go only once new ones stand in for them, whoever leads).
 */
import { KubernetesObjectApi } from "@kubernetes/client-node";
import { servingDeployment } from "../../test/support/builders.js";
import { waitFor } from "../../test/harness/wait.js";
import { startReplicas, type Replica, type ReplicaSet } from "./replicas.js";
import { round, type ChaosContext, type LeaseSettings, type ReliabilityRow } from "./row.js";
import {
  deleteServing,
  hashOf,
  readServing,
  patchServingSpec,
  waitRolled,
  watchServing,
  type ServingEnd,
} from "./serving.js";

export interface ServingRolloutFaultOptions {
  lease: LeaseSettings;
  /** The leader's pod write of the rollout (a create or a delete, counted from the SLO change) it is killed at. */
  faultAtPodWrite: number;
  /** Bound on each wait (Available, takeover, rolled). */
  timeoutMs: number;
  /** Also run the same rollout with no fault first, on the same replicas: the row's baseline. */
  baseline?: boolean;
}

const SUMMARIZATION = { arrivalRatePerSec: 10, preset: "summarization" as const };
/** The SLO change of the rollout: with the calibrated latency model, 100 ms TTFT needs a second prefill instance. */
const TIGHTER_SLO = { slo: { ttftMs: 100 } };

const podWritePattern = (namespace: string, name: string) =>
  new RegExp(`/api/v1/namespaces/${namespace}/pods/${name}-[^/?]*(\\?|$)`);

interface Rollout {
  before: ServingEnd;
  appliedAtMs: number;
}

/** Applies the deployment, waits until it is Available, and tightens its SLO: the rollout starts. */
async function startRollout(
  ctx: ChaosContext,
  namespace: string,
  name: string,
  timeoutMs: number,
  beforeChange: () => void = () => undefined,
): Promise<Rollout> {
  await KubernetesObjectApi.makeApiClient(ctx.kubeConfig).create(
    servingDeployment(name, namespace, { workload: SUMMARIZATION }),
  );
  const before = await waitRolled(ctx.kubeConfig, namespace, name, { generation: 1, timeoutMs });
  beforeChange();
  const appliedAtMs = performance.now();
  await patchServingSpec(ctx.kubeConfig, namespace, name, TIGHTER_SLO);
  return { before, appliedAtMs };
}

/** The same rollout with no fault: SLO change → every pod on the new plan, Available. */
async function rolloutWithoutFault(
  ctx: ChaosContext,
  namespace: string,
  name: string,
  timeoutMs: number,
): Promise<{ ms: number; podsCreated: number; duplicated: number; roleGaps: number }> {
  const watch = await watchServing(ctx.kubeConfig, namespace, name);
  try {
    const { appliedAtMs } = await startRollout(ctx, namespace, name, timeoutMs, () => watch.armAvailability());
    await waitRolled(ctx.kubeConfig, namespace, name, { generation: 2, timeoutMs });
    return {
      ms: round(performance.now() - appliedAtMs),
      podsCreated: watch.created,
      duplicated: watch.duplicateSlots,
      roleGaps: watch.roleGaps,
    };
  } finally {
    watch.stop();
    await deleteServing(ctx.kubeConfig, namespace, name);
  }
}

/**
 * Arms every replica's proxy (the Lease may move under load between a leader check and the rollout): the acting
 * leader is killed when its `k`-th pod write of the deployment reaches its proxy (that write is forwarded, having
 * been sent before the fault). Returns a getter of the killed replica and the moment.
 */
function armKill(set: ReplicaSet, pattern: RegExp, k: number): () => { replica: Replica; atMs: number } | undefined {
  let fault: { replica: Replica; atMs: number } | undefined;
  for (const replica of set.replicas) {
    let podWrites = 0;
    replica.proxy.setRule((request) => {
      if (fault === undefined && request.method !== "GET" && pattern.test(request.url) && ++podWrites === k) {
        replica.faulted = true;
        replica.process.child.kill("SIGKILL");
        fault = { replica, atMs: performance.now() };
      }
      return "forward";
    });
  }
  return () => fault;
}

const podWritesOf = (replica: Replica, pattern: RegExp, fromMs: number) =>
  replica.proxy.requests
    .filter((r) => r.atMs >= fromMs && r.method !== "GET" && pattern.test(r.url))
    .map((r) => `${r.method} ${r.url.split("?")[0]!.split("/").pop()}`);

export async function leaderKillDuringServingRollout(
  ctx: ChaosContext,
  opts: ServingRolloutFaultOptions,
): Promise<ReliabilityRow> {
  const namespace = await ctx.freshNamespace("chaos-rollout");
  const set = await startReplicas(ctx, { namespace, lease: opts.lease });
  const name = "chat";
  const notes: string[] = [];
  let watch: Awaited<ReturnType<typeof watchServing>> | undefined;
  try {
    await set.leader(opts.timeoutMs);
    // A name the fault's pod-write pattern (pods `chat-…`) does not match.
    const baseline = opts.baseline ? await rolloutWithoutFault(ctx, namespace, "baseline", opts.timeoutMs) : undefined;

    watch = await watchServing(ctx.kubeConfig, namespace, name);
    const pattern = podWritePattern(namespace, name);
    let faultOf: ReturnType<typeof armKill> = () => undefined;
    const { before, appliedAtMs } = await startRollout(ctx, namespace, name, opts.timeoutMs, () => {
      watch!.armAvailability();
      faultOf = armKill(set, pattern, opts.faultAtPodWrite);
    });
    const fault = await waitFor(() => faultOf(), {
      get description() {
        return `the leader's pod write ${opts.faultAtPodWrite} of the rollout (the moment of the fault); pod writes so far: ${set.replicas
          .map((r) => `${r.identity} [${podWritesOf(r, pattern, appliedAtMs).join(", ")}]`)
          .join("; ")}`;
      },
      timeoutMs: opts.timeoutMs,
    });
    const leader = fault.replica;
    const follower = set.replicas.find((r) => r !== leader) as Replica;
    const atFault = await readServing(ctx.kubeConfig, namespace, name);
    const newPodsAtFault = atFault.pods.filter((p) => hashOf(p) !== before.targetHash).length;
    const oldPodsAtFault = atFault.pods.length - newPodsAtFault;
    const leaderWrites = podWritesOf(leader, pattern, appliedAtMs);
    ctx.log(
      `SIGKILL to ${leader.identity} ${round(fault.atMs - appliedAtMs)} ms after the SLO change, at its pod write ${opts.faultAtPodWrite} (${leaderWrites.join(", ")}); ${newPodsAtFault} new and ${oldPodsAtFault} old pods live just after`,
    );

    await waitFor(async () => (await set.holder()) === follower.identity, {
      description: `${follower.identity} takes the Lease`,
      timeoutMs: opts.timeoutMs,
      intervalMs: 100,
    });
    const takeoverAtMs = performance.now();
    await set.leader(opts.timeoutMs);
    const leadingAtMs = performance.now();
    // A rollout that does not end on exactly the new plan is a failed row with what is there, not an error: the
    // counts (a slot with two pods, one missing) say what went wrong.
    let rolled = true;
    const end = await waitRolled(ctx.kubeConfig, namespace, name, { generation: 2, timeoutMs: opts.timeoutMs }).catch(
      async (error: unknown) => {
        rolled = false;
        notes.push(`not rolled: ${(error as Error).message}`);
        return readServing(ctx.kubeConfig, namespace, name);
      },
    );
    const rolledAtMs = performance.now();
    const followerWrites = podWritesOf(follower, pattern, takeoverAtMs);

    const oldPods = before.pods.length;
    const newPods = end.wantedSlots;
    const lost = end.missingSlots;
    const duplicated = watch.duplicateSlots + end.extraPods;
    const failoverBoundMs = opts.lease.leaseDurationMs + opts.lease.retryPeriodMs;
    const timingsMs: Record<string, number> = {
      changeToFaultMs: round(fault.atMs - appliedAtMs),
      failoverMs: round(takeoverAtMs - fault.atMs),
      faultToNewLeaderReconcilingMs: round(leadingAtMs - fault.atMs),
      ...(rolled
        ? { faultToRolledMs: round(rolledAtMs - fault.atMs), changeToRolledMs: round(rolledAtMs - appliedAtMs) }
        : {}),
      ...(baseline ? { baselineChangeToRolledMs: baseline.ms } : {}),
    };
    const counts: Record<string, number> = {
      oldPlanPods: oldPods,
      newPlanPods: newPods,
      livePodsAtEnd: end.pods.length,
      newPodsAtFault,
      oldPodsAtFault,
      podsCreatedInAll: watch.created,
      podWritesOfNewLeader: followerWrites.length,
      roleGaps: watch.roleGaps,
      unplannedReplicaExits: set.replicas.reduce((n, r) => n + r.unplannedExits, 0),
      ...(baseline
        ? {
            baselinePodsCreated: baseline.podsCreated,
            baselineDuplicated: baseline.duplicated,
            baselineRoleGaps: baseline.roleGaps,
          }
        : {}),
    };
    const replanned = end.targetHash !== before.targetHash && end.planSummary !== before.planSummary;
    const passed =
      rolled &&
      replanned &&
      lost === 0 &&
      duplicated === 0 &&
      watch.roleGaps === 0 &&
      end.otherPlanPods === 0 &&
      end.available &&
      (!baseline || (baseline.duplicated === 0 && baseline.roleGaps === 0));
    if (!replanned) notes.push(`the SLO change did not change the plan (${before.planSummary}): no rollout to fault`);
    if (newPodsAtFault >= newPods && oldPodsAtFault === 0)
      notes.push("the rollout was over just after the fault: the kill landed at its end, not in its middle");
    if (watch.duplicatedSlotNames.length > 0)
      notes.push(`slots with two live pods: ${watch.duplicatedSlotNames.slice(0, 5).join(", ")}`);
    notes.push(
      `the killed leader's pod writes of the rollout: ${leaderWrites.join(", ")}; the new leader's: ${followerWrites.join(", ") || "none"}`,
    );
    notes.push(
      `failover bound (leaseDuration + retryPeriod) ${failoverBoundMs} ms; measured ${timingsMs.failoverMs} ms`,
    );
    if (baseline && rolled)
      notes.push(
        `baseline: the same rollout on the same replicas with no fault took ${baseline.ms} ms (change → rolled); with the fault ${timingsMs.changeToRolledMs} ms (${(timingsMs.changeToRolledMs! / baseline.ms).toFixed(2)}×)`,
      );
    return {
      scenario: "leader SIGKILL mid serving rollout",
      injected: `SIGKILL to the leader ${leader.identity} at its pod write ${opts.faultAtPodWrite} of a serving rollout (${before.planSummary} → ${end.planSummary}; ${newPodsAtFault} new and ${oldPodsAtFault} old pods live just after)`,
      expected: `${follower.identity} leads within ${failoverBoundMs} ms and finishes the rollout: exactly the new plan's ${newPods} pods (one per role/instance/worker, new plan hash), no old-plan pod, Available; never two live pods for a slot; every role keeps a Ready instance`,
      happened: `${follower.identity} took the Lease after ${timingsMs.failoverMs} ms; ${rolled ? `rolled ${timingsMs.faultToRolledMs} ms after the fault` : `not rolled within ${opts.timeoutMs} ms`}: ${end.pods.length} live pods (plan ${end.targetHash} wants ${newPods}), ${end.missingSlots} slot(s) missing, ${end.extraPods} extra, ${end.otherPlanPods} old-plan pod(s) left, ${watch.created} pods created in all, ${watch.roleGaps} moment(s) a role had no Ready instance`,
      passed,
      lost,
      duplicated,
      scale: {
        gpus: end.sd.status?.plan?.totalGpus ?? 0,
        pods: newPods,
        replicas: set.replicas.length,
        ...opts.lease,
      },
      timingsMs,
      counts,
      notes,
    };
  } finally {
    watch?.stop();
    await deleteServing(ctx.kubeConfig, namespace, name).catch((error: unknown) =>
      ctx.log(`cleanup of ${namespace}/${name}: ${String(error)}`),
    );
    await set.stop();
  }
}
