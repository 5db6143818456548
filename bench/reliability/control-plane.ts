/**
 * Control-plane chaos: kube-apiserver, etcd, or both are killed (SIGKILL) and started again after `downMs`, under an
 * operator (in-process, its informers on the real API). Changes are made before the outage and the moment the API
 * answers again (while the operator's watches are still broken and backing off): K jobs created, K updated.
 *
 * Expected: every change is seen and reconciled (status.observedGeneration = metadata.generation for all 2K jobs);
 * lost = changes never reconciled within the bound. The staleness bound is measured: from the API answering again
 * to the last change reconciled, i.e. how long the operator acted on (or waited with) a view older than the API's.
 */
import { CustomObjectsApi, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import type { RestartableServer, RestartTimes } from "../../test/harness/cluster.js";
import { waitFor } from "../../test/harness/wait.js";
import { trainingJob } from "../../test/support/builders.js";
import { metricValue, startInProcessOperator } from "../../test/support/operator.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import { round, type ChaosContext, type ReliabilityRow } from "./row.js";

export interface ControlPlaneOptions {
  servers: RestartableServer[];
  downMs: number;
  /** Jobs created before the outage (updated after it) and jobs created after it. */
  changes: number;
  timeoutMs: number;
}

/** A job the operator reconciles to a condition without placing pods (16 GPUs per node: no node has them). */
const invalidJob = (name: string, namespace: string, nodes = 2): TrainingJob =>
  trainingJob(name, namespace, { nodes, gpusPerNode: 16, parallelism: { tp: 16, pp: 1, dp: nodes } });

const trainingGroup = { group: "gpufleet.io", version: "v1alpha1", plural: "trainingjobs" };

export async function controlPlaneRestart(ctx: ChaosContext, opts: ControlPlaneOptions): Promise<ReliabilityRow> {
  if (!ctx.restart) throw new Error("control-plane chaos needs a cluster the harness started (LocalCluster.restart)");
  const restart = ctx.restart;
  const label = opts.servers.join(" + ");
  const namespace = await ctx.freshNamespace(
    `chaos-${opts.servers.length > 1 ? "both" : opts.servers[0] === "etcd" ? "etcd" : "apiserver"}`,
  );
  const operator = await startInProcessOperator(ctx, `chaos-${namespace}`);
  const objects = KubernetesObjectApi.makeApiClient(ctx.kubeConfig);
  const custom = ctx.kubeConfig.makeApiClient(CustomObjectsApi);
  const metrics = async () => (await fetch(`http://127.0.0.1:${operator.httpPort}/metrics`)).text();
  const informerRestarts = async () =>
    ["trainingjobs", "pods", "nodes"].reduce(
      async (sum, resource) =>
        (await sum) + (metricValue(await metrics(), "gpufleet_operator_informer_restarts_total", { resource }) ?? 0),
      Promise.resolve(0),
    );
  const jobs = async () =>
    ((await custom.listNamespacedCustomObject({ ...trainingGroup, namespace })) as { items: TrainingJob[] }).items;
  const reconciled = (j: TrainingJob) => j.status?.observedGeneration === j.metadata.generation;
  try {
    const before = Array.from({ length: opts.changes }, (_, i) => `before-${i}`);
    for (const name of before) await objects.create(invalidJob(name, namespace));
    await waitFor(async () => (await jobs()).filter(reconciled).length === opts.changes || undefined, {
      description: `${opts.changes} jobs reconciled before the outage`,
      timeoutMs: opts.timeoutMs,
    });
    const restartsBefore = await informerRestarts();

    const times: RestartTimes = await restart(opts.servers, { downMs: opts.downMs });
    const apiBackAtMs = times.healthyAtMs;
    const killedAtMs = times.killedAtMs;
    // The API answers again: change everything at once, before the operator's watches have recovered.
    const changedAtMs = new Map<string, number>();
    const after = Array.from({ length: opts.changes }, (_, i) => `after-${i}`);
    await Promise.all([
      ...after.map(async (name) => {
        await waitFor(() => objects.create(invalidJob(name, namespace)), {
          description: `create ${name} once the API is back`,
          timeoutMs: opts.timeoutMs,
        });
        changedAtMs.set(name, performance.now());
      }),
      ...before.map(async (name) => {
        const patch = {
          apiVersion: "gpufleet.io/v1alpha1",
          kind: "TrainingJob",
          metadata: { name, namespace },
          spec: { nodes: 3, parallelism: { tp: 16, pp: 1, dp: 3 } },
        };
        await waitFor(() => objects.patch(patch, undefined, undefined, "chaos", undefined, PatchStrategy.MergePatch), {
          description: `update ${name} once the API is back`,
          timeoutMs: opts.timeoutMs,
        });
        changedAtMs.set(name, performance.now());
      }),
    ]);
    const allChangedAtMs = performance.now();

    // Each change's reconcile time, polled: the first time its status shows the generation.
    const reconciledAtMs = new Map<string, number>();
    let lastSeen: TrainingJob[] = [];
    await waitFor(
      async () => {
        lastSeen = await jobs();
        const now = performance.now();
        for (const j of lastSeen)
          if (reconciled(j) && changedAtMs.has(j.metadata.name!) && !reconciledAtMs.has(j.metadata.name!))
            reconciledAtMs.set(j.metadata.name!, now);
        return reconciledAtMs.size === changedAtMs.size || undefined;
      },
      {
        description: `all ${changedAtMs.size} changes made after the outage reconciled`,
        timeoutMs: opts.timeoutMs,
        intervalMs: 100,
      },
    ).catch(() => undefined);
    const lost = changedAtMs.size - reconciledAtMs.size;
    const lags = [...reconciledAtMs].map(([name, at]) => at - changedAtMs.get(name)!);
    const lastReconciledAtMs = Math.max(...reconciledAtMs.values());
    const timingsMs = {
      outageMs: round(apiBackAtMs - killedAtMs),
      changesMadeInMs: round(allChangedAtMs - apiBackAtMs),
      apiBackToAllReconciledMs: round(lastReconciledAtMs - apiBackAtMs),
      maxChangeToReconcileMs: round(Math.max(...lags)),
    };
    const counts = {
      changes: changedAtMs.size,
      reconciled: reconciledAtMs.size,
      informerRestarts: (await informerRestarts()) - restartsBefore,
    };
    const passed = lost === 0;
    return {
      scenario: `${label} restart`,
      injected: `SIGKILL to ${label}, started again after ${opts.downMs} ms (down ${timingsMs.outageMs} ms until /readyz or /health); ${opts.changes} jobs created and ${opts.changes} updated the moment the API answered`,
      expected: `every one of the ${changedAtMs.size} changes seen and reconciled (observedGeneration = generation); staleness bound measured`,
      happened: `${reconciledAtMs.size}/${changedAtMs.size} reconciled; the last ${timingsMs.apiBackToAllReconciledMs} ms after the API was back (slowest change ${timingsMs.maxChangeToReconcileMs} ms); ${counts.informerRestarts} informer restarts`,
      passed,
      lost,
      duplicated: 0,
      scale: { jobs: 2 * opts.changes, downMs: opts.downMs },
      timingsMs,
      counts,
      notes: [
        "duplicated is 0 by construction here (a reconcile of an invalid job writes only status); idempotence under restarts is covered by the leader rows",
        ...(lost > 0
          ? [
              `not reconciled: ${lastSeen
                .filter((j) => !reconciled(j))
                .map((j) => j.metadata.name)
                .join(", ")}`,
            ]
          : []),
      ],
    };
  } finally {
    await operator.stop();
  }
}
