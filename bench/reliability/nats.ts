/**
 * NATS chaos: nats-server stopped for `downMs` (SIGTERM, then SIGKILL after its grace) and started again on the same
 * port and JetStream store, under a TrainingJob with an injected fault and a serving load through the gateway. Every
 * part is real: the operator (in-process, telemetry on), the agent (its own process, simulation mode: it runs the
 * training ranks and the serving instance), the gateway (its own process).
 *
 * The fault (rank 9 computes 2x slower) is injected the moment before NATS stops, so its evidence (the ranks'
 * collective records showing rank 9 late) is produced while NATS is down and must wait in the agent's bounded
 * publisher buffer. Expected: after NATS is back the operator detects the straggler and isolates its node (taint),
 * and the gang restarts; every collective record the agent published reached the operator exactly once (agent
 * acknowledged = operator received; operator-side duplicates 0; agent-side drops 0); every client request sent
 * through the gateway during the outage succeeded, served from the gateway's last view of its instances.
 */
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type V1Node } from "@kubernetes/client-node";
import { freePorts } from "../../test/harness/cluster.js";
import { waitFor } from "../../test/harness/wait.js";
import { trainingJob } from "../../test/support/builders.js";
import { startGatewayProcess, type GatewayProcess } from "../../test/support/gateway.js";
import { kubectl } from "../../test/support/kubectl.js";
import {
  metricValue,
  startInProcessOperator,
  startSimulatedAgent,
  type ComponentProcess,
} from "../../test/support/operator.js";
import { IsolatedTaintKey } from "../../crds/src/topology.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import { llama3ShapeJson } from "../../test/support/builders.js";
import type { OperatorHandle } from "../../operator/src/operator.js";
import { round, type ChaosContext, type ReliabilityRow } from "./row.js";

export interface NatsOutageOptions {
  /** How long nats-server stays down. */
  downMs: number;
  /** Bound of each wait (job Running, isolation after recovery, records drained). */
  timeoutMs: number;
  /** Client requests through the gateway, one every this many ms, from before the outage until after it. */
  requestIntervalMs?: number;
}

const trainingGroup = { group: "gpufleet.io", version: "v1alpha1", plural: "trainingjobs" };
const TAINT = { key: "gpufleet.io/test-only", effect: "NoSchedule" } as const;

/** Llama-3-8B's shape under a name of this scenario's own (no other instance is in the gateway's route). */
const servingShape = (model: string) => llama3ShapeJson(model);

/** A 2-node H100 job (16 ranks), checkpoints every 5 steps, restarts 1 s after a fault (as the fault e2e). */
const job = (name: string, namespace: string): TrainingJob =>
  trainingJob(name, namespace, {
    nodes: 2,
    gpusPerNode: 8,
    parallelism: { tp: 8, pp: 1, dp: 2 },
    checkpoint: { path: `/ckpt/${name}`, intervalSteps: 5 },
    faultPolicy: { maxRestarts: 3, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 1 },
    placement: { nicAware: true, gpuModel: "H100-80GB" },
  });

interface RequestOutcome {
  sentAtMs: number;
  status: number;
  error?: string;
}

export async function natsOutage(ctx: ChaosContext, opts: NatsOutageOptions): Promise<ReliabilityRow> {
  if (!ctx.nats || !ctx.natsUrl) throw new Error("NATS chaos needs a cluster whose NATS the harness runs");
  const nats = ctx.nats;
  const natsUrl = ctx.natsUrl;
  const suffix = Math.random().toString(36).slice(2, 8);
  const namespace = await ctx.freshNamespace("chaos-nats");
  const core = ctx.kubeConfig.makeApiClient(CoreV1Api);
  const custom = ctx.kubeConfig.makeApiClient(CustomObjectsApi);
  const objects = KubernetesObjectApi.makeApiClient(ctx.kubeConfig);
  const model = `chaos-nats-${suffix}`;
  const servingNode = `chaos-nats-serve-${suffix}`;
  const name = "straggle";
  let operator: OperatorHandle | undefined;
  let agent: ComponentProcess | undefined;
  let gateway: GatewayProcess | undefined;
  let load: { stop: () => Promise<RequestOutcome[]> } | undefined;
  const getJob = async () =>
    (await custom.getNamespacedCustomObject({ ...trainingGroup, namespace, name })) as TrainingJob;
  const isolation = (node: V1Node) => node.spec?.taints?.find((t) => t.key === IsolatedTaintKey);
  try {
    operator = await startInProcessOperator(ctx, `chaos-nats-${suffix}`, {
      natsUrl,
      durablePrefix: `chaos-nats-${suffix}`,
    });
    const [agentHttpPort] = (await freePorts(1)) as [number];
    agent = (
      await startSimulatedAgent({
        kubeconfigPath: ctx.kubeconfigPath,
        natsUrl,
        name: `agent-chaos-nats-${suffix}`,
        env: {
          GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
          GPUFLEET_AGENT_ENGINE_PORT: "0",
          GPUFLEET_AGENT_HTTP_PORT: String(agentHttpPort),
        },
      })
    ).agent;
    gateway = await startGatewayProcess({ GPUFLEET_GATEWAY_NATS_URL: natsUrl });
    const operatorMetrics = async () => (await fetch(`http://127.0.0.1:${operator!.httpPort}/metrics`)).text();
    const agentMetrics = async () => (await fetch(`http://127.0.0.1:${agentHttpPort}/metrics`)).text();
    const gatewayMetrics = async () => (await fetch(`${gateway!.url}/metrics`)).text();
    const agentPublished = async () =>
      metricValue(await agentMetrics(), "gpufleet_agent_telemetry_published_total", { stream: "collectives" }) ?? 0;
    const operatorAccepted = async () =>
      metricValue(await operatorMetrics(), "gpufleet_operator_telemetry_records_total", { result: "accepted" }) ?? 0;

    // The serving instance: a pod bound to a node of this scenario's own, run by the agent's simulation.
    await core.createNode({
      body: {
        metadata: {
          name: servingNode,
          annotations: {
            "kwok.x-k8s.io/node": "fake",
            "gpufleet.io/sim-gpu-count": "8",
            "gpufleet.io/sim-gpu-model": "H100-80GB",
          },
        },
        spec: { taints: [TAINT] },
      },
    });
    const env = { GPUFLEET_ROLE: "colocated", GPUFLEET_MODEL_SHAPE: servingShape(model), GPUFLEET_TP: "1" };
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: "serve-0",
          labels: { "gpufleet.io/serving-deployment": "manual", "gpufleet.io/role": "colocated" },
        },
        spec: {
          nodeName: servingNode,
          tolerations: [{ key: TAINT.key, operator: "Exists" }],
          containers: [
            {
              name: "engine",
              image: "vllm/vllm-openai:v0.11.0",
              env: Object.entries(env).map(([n, value]) => ({ name: n, value })),
            },
          ],
        },
      },
    });
    const routed = async () => {
      const body = (await (await fetch(`${gateway!.url}/v1/models`)).json()) as {
        data: { id: string; gpufleet: { instances: { colocated: number } } }[];
      };
      return body.data.find((m) => m.id === model)?.gpufleet.instances.colocated ?? 0;
    };
    await waitFor(async () => (await routed()) === 1, {
      description: `the gateway routing the serving instance of ${model}`,
      timeoutMs: opts.timeoutMs,
    });

    await objects.create(job(name, namespace));
    const before = await waitFor(
      async () => {
        const j = await getJob();
        return j.status?.phase === "Running" && (j.status.lastCheckpointStep ?? 0) >= 5 ? j : undefined;
      },
      { description: `${namespace}/${name} Running with a checkpoint`, timeoutMs: opts.timeoutMs },
    );
    const slowNode = before.status!.placement!.nodes[1]!; // ranks 8..15
    const otherNode = before.status!.placement!.nodes[0]!;

    load = serveLoad(gateway.url, model, opts.requestIntervalMs ?? 250);
    // Let the load run against a healthy system first: requests before the outage are the baseline.
    await new Promise((resolve) => setTimeout(resolve, 2000));

    const annotate = await kubectl(ctx.kubeconfigPath, [
      "annotate",
      "pod",
      "-n",
      namespace,
      `${name}-1`,
      "gpufleet.io/inject-fault=slow-rank=9:x2",
    ]);
    if (annotate.code !== 0) throw new Error(`annotating the fault failed: ${annotate.stderr}`);
    const injectedAtMs = performance.now();
    await nats.stop();
    const stoppedAtMs = performance.now();
    ctx.log(`nats-server stopped ${round(stoppedAtMs - injectedAtMs)} ms after the fault was injected`);
    await new Promise((resolve) => setTimeout(resolve, opts.downMs));
    // What the agent holds for the operator as NATS comes back: the evidence produced during the outage.
    const heldAtRestart = metricValue(await agentMetrics(), "gpufleet_agent_telemetry_buffered_items", {
      stream: "collectives",
    });
    const routedBeforeRestart = await routed();
    const viewHeldAtRestartS = metricValue(await gatewayMetrics(), "gpufleet_gateway_view_held_seconds") ?? 0;
    const acceptedBefore = await operatorAccepted();
    const publishedBefore = await agentPublished();
    const restartAtMs = performance.now();
    await nats.start();
    const backAtMs = performance.now();
    // When the operator reads records again (its consumer resumed): polled beside the wait for the taint.
    let resumedAtMs: number | undefined;
    const resumed = waitFor(
      async () => ((await operatorAccepted()) > acceptedBefore ? (resumedAtMs = performance.now()) : undefined),
      { description: "the operator reading records again", timeoutMs: opts.timeoutMs, intervalMs: 100 },
    ).catch(() => undefined);
    ctx.log(`nats-server back after ${round(backAtMs - stoppedAtMs)} ms; agent holds ${heldAtRestart} records`);
    let publishingAtMs: number | undefined;
    const publishing = waitFor(
      async () => ((await agentPublished()) > publishedBefore ? (publishingAtMs = performance.now()) : undefined),
      { description: "the agent's publishes acknowledged again", timeoutMs: opts.timeoutMs, intervalMs: 100 },
    ).catch(() => undefined);

    const taint = await waitFor(async () => isolation(await core.readNode({ name: slowNode })), {
      description: `taint ${IsolatedTaintKey} on ${slowNode} after NATS is back`,
      timeoutMs: opts.timeoutMs,
      intervalMs: 100,
    });
    const isolatedAtMs = performance.now();
    await Promise.all([resumed, publishing]);
    const after = await waitFor(
      async () => {
        const j = await getJob();
        return j.status?.phase === "Running" && (j.status.restarts ?? 0) === 1 ? j : undefined;
      },
      { description: `${namespace}/${name} Running again (restart 1)`, timeoutMs: opts.timeoutMs },
    );
    const restartedAtMs = performance.now();
    // A few seconds of serving after recovery, then the load stops.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const requests = await load.stop();
    load = undefined;
    const fault = after.status?.faults?.[0];
    const otherIsolated = isolation(await core.readNode({ name: otherNode })) !== undefined;

    // Records: stop the ranks, then wait until the agent holds nothing and the operator has read all it published.
    await custom.deleteNamespacedCustomObject({ ...trainingGroup, namespace, name });
    const recordCounts = async () => {
      const [a, o] = await Promise.all([agentMetrics(), operatorMetrics()]);
      const value = (text: string, metric: string, labels: Record<string, string>) =>
        metricValue(text, metric, labels) ?? 0;
      return {
        published: value(a, "gpufleet_agent_telemetry_published_total", { stream: "collectives" }),
        buffered: value(a, "gpufleet_agent_telemetry_buffered_items", { stream: "collectives" }),
        dropped: ["buffer_full", "too_large", "shutdown", "no_transport"].reduce(
          (sum, reason) => sum + value(a, "gpufleet_agent_telemetry_dropped_total", { stream: "collectives", reason }),
          0,
        ),
        retries: value(a, "gpufleet_agent_telemetry_publish_retries_total", { stream: "collectives" }),
        accepted: value(o, "gpufleet_operator_telemetry_records_total", { result: "accepted" }),
        duplicate: value(o, "gpufleet_operator_telemetry_records_total", { result: "duplicate" }),
        stale: value(o, "gpufleet_operator_telemetry_records_total", { result: "stale" }),
        redeliveries: value(o, "gpufleet_operator_telemetry_redeliveries_total", { stream: "collectives" }),
      };
    };
    let records = await recordCounts();
    let previous = -1;
    await waitFor(
      async () => {
        records = await recordCounts();
        const received = records.accepted + records.duplicate + records.stale;
        const settled = records.buffered === 0 && received >= records.published && records.published === previous;
        previous = records.published;
        return settled || undefined;
      },
      {
        description: "every record the agent published read by the operator",
        timeoutMs: opts.timeoutMs,
        intervalMs: 1000,
      },
    ).catch(() => undefined); // the row reports what is missing
    const received = records.accepted + records.duplicate + records.stale;
    const lostRecords = Math.max(0, records.published - received) + records.dropped;

    const during = requests.filter((r) => r.sentAtMs >= stoppedAtMs && r.sentAtMs < backAtMs);
    const failed = requests.filter((r) => r.status !== 200);
    const failedDuring = during.filter((r) => r.status !== 200);
    const gm = await gatewayMetrics();
    const timingsMs = {
      injectToStopMs: round(stoppedAtMs - injectedAtMs),
      outageMs: round(backAtMs - stoppedAtMs),
      natsStartMs: round(backAtMs - restartAtMs),
      ...(publishingAtMs ? { natsBackToAgentAckedMs: round(publishingAtMs - backAtMs) } : {}),
      ...(resumedAtMs ? { natsBackToRecordsReadMs: round(resumedAtMs - backAtMs) } : {}),
      natsBackToIsolatedMs: round(isolatedAtMs - backAtMs),
      natsBackToRunningAgainMs: round(restartedAtMs - backAtMs),
      ...(fault ? { detectionMs: Date.parse(fault.actedTime) - Date.parse(fault.firstAffectedTime) } : {}),
    };
    const counts = {
      recordsPublished: records.published,
      recordsReceived: received,
      recordsAccepted: records.accepted,
      recordsDuplicate: records.duplicate,
      recordsStale: records.stale,
      recordsDroppedAtAgent: records.dropped,
      recordsHeldAtRestart: heldAtRestart ?? 0,
      publishRetries: records.retries,
      redeliveries: records.redeliveries,
      requests: requests.length,
      requestsDuringOutage: during.length,
      requestsFailed: failed.length,
      requestsFailedDuringOutage: failedDuring.length,
      instancesRoutedBeforeRestart: routedBeforeRestart,
      gatewayViewHeldAtRestartMs: round(viewHeldAtRestartS * 1000),
      gatewayDisconnects: metricValue(gm, "gpufleet_gateway_load_source_disconnects_total") ?? 0,
    };
    const faultRight =
      taint.value === "c4d-straggler" &&
      fault?.faultClass === "straggler" &&
      fault.node === slowNode &&
      !after.status!.placement!.nodes.includes(slowNode) &&
      !otherIsolated;
    const passed =
      faultRight &&
      lostRecords === 0 &&
      records.duplicate === 0 &&
      (heldAtRestart ?? 0) > 0 &&
      during.length > 0 &&
      failed.length === 0;
    const firstFailure = failed[0];
    return {
      scenario: "NATS stop under training fault + serving load",
      injected: `slow rank (rank 9 x2 compute) injected, nats-server stopped ${timingsMs.injectToStopMs} ms later for ${timingsMs.outageMs} ms (same port and JetStream store on restart); one gateway request every ${opts.requestIntervalMs ?? 250} ms throughout`,
      expected:
        "the straggler detected and its node isolated after NATS is back; every collective record the agent published read by the operator, none twice; every gateway request served (from the gateway's last view during the outage)",
      happened: `${fault ? `${fault.faultClass} on ${fault.node}, taint ${taint.value}` : "no fault recorded"} ${timingsMs.natsBackToIsolatedMs} ms after NATS was back (gang Running again after ${timingsMs.natsBackToRunningAgainMs} ms); records ${received}/${records.published} received (agent held ${heldAtRestart ?? 0} at the restart, dropped ${records.dropped}, operator duplicates ${records.duplicate}); requests ${requests.length - failed.length}/${requests.length} ok (${during.length - failedDuring.length}/${during.length} during the outage)`,
      passed,
      lost: lostRecords + failed.length,
      duplicated: records.duplicate,
      scale: { ranks: 16, servingInstances: 1, downMs: opts.downMs },
      timingsMs,
      counts,
      notes: [
        "lost = collective records the agent had acknowledged by JetStream or dropped but the operator never read, plus failed client requests; duplicated = records the operator's read model saw twice (same communicator, rank, sequence)",
        ...(firstFailure ? [`first failed request: ${firstFailure.status} ${firstFailure.error ?? ""}`.trim()] : []),
      ],
    };
  } finally {
    await load?.stop();
    await gateway?.stop();
    await agent?.stop();
    await operator?.stop();
    await core.deleteNode({ name: servingNode }).catch(() => undefined);
    // Take back the isolation this scenario's operator made: a later scenario or test must find every node usable.
    for (const node of (await core.listNode()).items)
      if (isolation(node)?.value?.startsWith("c4d-"))
        await kubectl(ctx.kubeconfigPath, ["taint", "node", node.metadata!.name!, `${IsolatedTaintKey}-`]);
  }
}

/** Small non-streamed completions through the gateway, one every `intervalMs`, each awaited (bounded by 10 s). */
function serveLoad(url: string, model: string, intervalMs: number): { stop: () => Promise<RequestOutcome[]> } {
  const outcomes: RequestOutcome[] = [];
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const sentAtMs = performance.now();
      try {
        const response = await fetch(`${url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model, prompt: "x".repeat(64), max_tokens: 4 }),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        outcomes.push({ sentAtMs, status: response.status, ...(response.ok ? {} : { error: text.slice(0, 200) }) });
      } catch (error) {
        outcomes.push({ sentAtMs, status: 0, error: (error as Error).message });
      }
      const wait = intervalMs - (performance.now() - sentAtMs);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  let stopped: Promise<RequestOutcome[]> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        await loop;
        return outcomes;
      })()),
  };
}
