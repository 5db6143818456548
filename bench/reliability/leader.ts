/**
 * Leader chaos: two operator replicas with leader election; the leader is killed (SIGKILL) or frozen (SIGSTOP, the
 * stalled-renew case) in the middle of placing a large gang: when its proxy sees the leader's pod write ⌈nodes/2⌉.
 *
 * Expected: the follower takes the Lease within leaseDuration + retryPeriod of the fault; the gang ends whole
 * (every rank Running once, one attempt: a partial gang the dead leader left is deleted and placed anew, never left
 * bound); no rank ever has two live pods. Frozen: once thawed, the deposed leader sends no write (its proxy sees
 * none after the takeover) and the namespace's objects keep their resourceVersions until it has exited.
 */
import { CustomObjectsApi, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { waitFor } from "../../test/harness/wait.js";
import { deleteJob, gangJob, readGang, waitGangRunning, watchGang } from "./gang.js";
import { startReplicas, writesSince, type Replica } from "./replicas.js";
import { round, type ChaosContext, type LeaseSettings, type ReliabilityRow } from "./row.js";

export interface LeaderFaultOptions {
  /** Gang size in nodes (8 GPUs each). */
  nodes: number;
  lease: LeaseSettings;
  signal: "SIGKILL" | "SIGSTOP";
  /** Bound on each wait (takeover, gang Running, exit of the thawed leader). */
  timeoutMs: number;
}

/**
 * resourceVersion of every object in the namespace a controller writes (pods, services, jobs, events), by kind/name.
 */
async function resourceVersions(ctx: ChaosContext, namespace: string): Promise<Map<string, string>> {
  const objects = KubernetesObjectApi.makeApiClient(ctx.kubeConfig);
  const custom = ctx.kubeConfig.makeApiClient(CustomObjectsApi);
  const out = new Map<string, string>();
  const add = (kind: string, items: KubernetesObject[]) =>
    items.forEach((o) => out.set(`${kind}/${o.metadata?.name}`, o.metadata?.resourceVersion ?? ""));
  for (const kind of ["Pod", "Service", "Event"]) add(kind, (await objects.list("v1", kind, namespace)).items);
  add(
    "TrainingJob",
    (
      (await custom.listNamespacedCustomObject({
        group: "gpufleet.io",
        version: "v1alpha1",
        plural: "trainingjobs",
        namespace,
      })) as { items: KubernetesObject[] }
    ).items,
  );
  return out;
}

const changed = (before: Map<string, string>, after: Map<string, string>): string[] =>
  [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));

export async function leaderFaultDuringGang(ctx: ChaosContext, opts: LeaderFaultOptions): Promise<ReliabilityRow> {
  const namespace = await ctx.freshNamespace(opts.signal === "SIGKILL" ? "chaos-kill" : "chaos-freeze");
  const set = await startReplicas(ctx, { namespace, lease: opts.lease });
  const name = "gang";
  const gpus = opts.nodes * 8;
  const notes: string[] = [];
  try {
    await set.leader(opts.timeoutMs);
    // The fault lands inside the placement: when the acting leader's k-th pod write reaches its proxy (that write is
    // forwarded, having been sent before the fault), half of the gang created or in flight. Every replica's proxy
    // watches, since under load the Lease may have moved between the check above and the placement.
    const faultAtPodWrite = Math.ceil(opts.nodes / 2);
    let faultAtMs = 0;
    let faulted: Replica | undefined;
    for (const replica of set.replicas) {
      let podWrites = 0;
      replica.proxy.setRule((request) => {
        if (
          faultAtMs === 0 &&
          request.method !== "GET" &&
          /\/namespaces\/[^/]+\/pods(\/|\?|$)/.test(request.url) &&
          ++podWrites === faultAtPodWrite
        ) {
          replica.faulted = true;
          replica.process.child.kill(opts.signal);
          faultAtMs = performance.now();
          faulted = replica;
        }
        return "forward";
      });
    }
    const watch = await watchGang(ctx.kubeConfig, namespace, name);
    const appliedAtMs = performance.now();
    await KubernetesObjectApi.makeApiClient(ctx.kubeConfig).create(gangJob(name, namespace, opts.nodes));
    const leader = await waitFor(() => faulted, {
      get description() {
        return `the leader's pod write ${faultAtPodWrite} (the moment of the fault); writes so far: ${set.replicas
          .map(
            (r) =>
              `${r.identity} ${r.proxy.requests
                .filter((q) => q.method !== "GET" && !q.url.includes("/leases/"))
                .map((q) => `${q.method} ${q.url.split("?")[0]}`)
                .join(", ")}`,
          )
          .join("; ")}`;
      },
      timeoutMs: opts.timeoutMs,
    });
    const follower = set.replicas.find((r) => r !== leader) as Replica;
    const podsAtFault = (await readGang(ctx.kubeConfig, namespace, name, opts.nodes)).pods.length;
    ctx.log(
      `${opts.signal} to ${leader.identity} ${round(faultAtMs - appliedAtMs)} ms after apply, at its pod write ${faultAtPodWrite}; ${podsAtFault} of ${opts.nodes} pods exist just after`,
    );

    await waitFor(async () => (await set.holder()) === follower.identity, {
      description: `${follower.identity} takes the Lease`,
      timeoutMs: opts.timeoutMs,
      intervalMs: 100,
    });
    const takeoverAtMs = performance.now();
    await set.leader(opts.timeoutMs);
    const leadingAtMs = performance.now();
    const end = await waitGangRunning(ctx.kubeConfig, namespace, name, opts.nodes, opts.timeoutMs);
    const runningAtMs = performance.now();

    const counts: Record<string, number> = {
      podsAtFault,
      podsCreatedInAll: watch.created,
      unplannedReplicaExits: set.replicas.reduce((n, r) => n + r.unplannedExits, 0),
    };
    const timingsMs: Record<string, number> = {
      applyToFaultMs: round(faultAtMs - appliedAtMs),
      failoverMs: round(takeoverAtMs - faultAtMs),
      faultToNewLeaderReconcilingMs: round(leadingAtMs - faultAtMs),
      faultToGangRunningMs: round(runningAtMs - faultAtMs),
    };
    let staleWrites = 0;
    let rvChanged: string[] = [];
    if (opts.signal === "SIGSTOP") {
      // The new leader has finished the gang: from here nothing should change until the old one is gone.
      const before = await resourceVersions(ctx, namespace);
      const thawedAtMs = performance.now();
      leader.process.child.kill("SIGCONT");
      await waitFor(() => leader.exit, {
        description: `${leader.identity} exits after it is thawed (lost lease)`,
        timeoutMs: opts.timeoutMs,
      });
      timingsMs.thawToExitMs = round(leader.exit!.atMs - thawedAtMs);
      const stale = writesSince(leader, takeoverAtMs);
      staleWrites = stale.length;
      counts.staleWrites = staleWrites;
      counts.staleWritesAccepted = stale.filter((r) => r.status !== undefined && r.status < 300).length;
      counts.thawedExitCode = leader.exit!.code ?? -1;
      rvChanged = changed(before, await resourceVersions(ctx, namespace));
      counts.objectsChangedWhileThawed = rvChanged.length;
      if (stale.length > 0)
        notes.push(
          `writes of the deposed leader after the takeover: ${stale
            .slice(0, 5)
            .map((r) => `${r.method} ${r.url.split("?")[0]} → ${r.status ?? "no answer"}`)
            .join("; ")}${stale.length > 5 ? " …" : ""}`,
        );
      if (rvChanged.length > 0)
        notes.push(
          `objects whose resourceVersion changed while the old leader was thawed: ${rvChanged.slice(0, 5).join(", ")}`,
        );
    }
    const settled = await readGang(ctx.kubeConfig, namespace, name, opts.nodes);
    const lost = settled.missingRanks;
    const duplicated = watch.duplicateRanks + settled.extraPods;
    const failoverBoundMs = opts.lease.leaseDurationMs + opts.lease.retryPeriodMs;
    watch.stop();
    const passed =
      lost === 0 &&
      duplicated === 0 &&
      settled.attempts === 1 &&
      end.pods.length === opts.nodes &&
      staleWrites === 0 &&
      rvChanged.length === 0;
    if (podsAtFault === opts.nodes)
      notes.push(
        "every pod existed just after the fault: the kill landed at the end of the placement, not in its middle",
      );
    notes.push(
      `failover bound (leaseDuration + retryPeriod) ${failoverBoundMs} ms; measured ${timingsMs.failoverMs} ms`,
    );
    return {
      scenario:
        opts.signal === "SIGKILL"
          ? "leader SIGKILL mid gang placement"
          : "leader SIGSTOP (stalled renew) mid gang placement",
      injected: `${opts.signal} to the leader ${leader.identity} at its pod write ${faultAtPodWrite} of a ${gpus}-GPU gang (${podsAtFault} of ${opts.nodes} pods existed just after)${opts.signal === "SIGSTOP" ? "; SIGCONT after the new leader finished the gang" : ""}`,
      expected: `${follower.identity} leads within ${failoverBoundMs} ms; gang whole (${opts.nodes} ranks Running once, one attempt), never two live pods for a rank${opts.signal === "SIGSTOP" ? "; the thawed leader writes nothing and exits" : ""}`,
      happened:
        `${follower.identity} took the Lease after ${timingsMs.failoverMs} ms; gang Running ${timingsMs.faultToGangRunningMs} ms after the fault with ${settled.pods.length} pods, ${settled.attempts} attempt(s), ${watch.created} pods created in all` +
        (opts.signal === "SIGSTOP"
          ? `; thawed leader sent ${staleWrites} write(s) (${counts.staleWritesAccepted} accepted), exited with code ${counts.thawedExitCode} after ${timingsMs.thawToExitMs} ms; ${rvChanged.length} object(s) changed meanwhile`
          : ""),
      passed,
      lost,
      duplicated,
      scale: {
        gpus,
        pods: opts.nodes,
        replicas: set.replicas.length,
        ...opts.lease,
      },
      timingsMs,
      counts,
      notes,
    };
  } finally {
    await deleteJob(ctx.kubeConfig, namespace, name);
    await set.stop();
  }
}

/** The baseline of the leader rows: the same two replicas and gang, no fault (apply → every pod Running). */
export async function gangWithoutFault(
  ctx: ChaosContext,
  opts: { nodes: number; lease: LeaseSettings; timeoutMs: number },
): Promise<ReliabilityRow> {
  const namespace = await ctx.freshNamespace("chaos-baseline");
  const set = await startReplicas(ctx, { namespace, lease: opts.lease });
  const name = "gang";
  try {
    await set.leader(opts.timeoutMs);
    const watch = await watchGang(ctx.kubeConfig, namespace, name);
    const appliedAtMs = performance.now();
    await KubernetesObjectApi.makeApiClient(ctx.kubeConfig).create(gangJob(name, namespace, opts.nodes));
    const end = await waitGangRunning(ctx.kubeConfig, namespace, name, opts.nodes, opts.timeoutMs);
    const applyToGangRunningMs = round(performance.now() - appliedAtMs);
    watch.stop();
    const duplicated = watch.duplicateRanks + end.extraPods;
    return {
      scenario: "baseline: gang placement, no fault",
      injected: "nothing",
      expected: `${opts.nodes} ranks Running once`,
      happened: `gang Running ${applyToGangRunningMs} ms after apply, ${watch.created} pods created`,
      passed: end.missingRanks === 0 && duplicated === 0,
      lost: end.missingRanks,
      duplicated,
      scale: { gpus: opts.nodes * 8, pods: opts.nodes, replicas: set.replicas.length },
      timingsMs: { applyToGangRunningMs },
      counts: {
        podsCreatedInAll: watch.created,
        unplannedReplicaExits: set.replicas.reduce((n, r) => n + r.unplannedExits, 0),
      },
    };
  } finally {
    await deleteJob(ctx.kubeConfig, namespace, name);
    await set.stop();
  }
}
