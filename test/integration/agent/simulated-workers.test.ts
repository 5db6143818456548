/**
 * Faithful simulated workers on the local cluster: the operator (in-process) plans and creates the pods, the agent
 * (its own process, simulation mode) runs a simulated worker for each pod bound to a kwok node.
 * - A disaggregated ServingDeployment's pods run as prefill and decode workers with the plan's model and TP: their
 *   load reports on NATS say so, and the decode workers receive the prefill workers' KV hand-offs (blocks used) of
 *   the synthetic load (turned on here with GPUFLEET_AGENT_SIM_REQUEST_RATE; it is off by default).
 * - Commands reach a simulated worker through the agent and are acted on: drain shows in its load report,
 *   migrate-out is rejected with the reason; SendWorkerCommand answers with the worker's own acknowledgement.
 * - A TrainingJob's rank 0 writes checkpoints every checkpoint.intervalSteps; a pod resuming at step 10 checkpoints
 *   at 12, 15, 18 with interval 3.
 */
import * as grpc from "@grpc/grpc-js";
import type { V1Pod } from "@kubernetes/client-node";
import { connect, type NatsConnection, type Subscription } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import type { ServingDeployment } from "../../../crds/src/serving-deployment.js";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { decodeLoad, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { startInProcessOperator, startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";
import { LLAMA_3_8B, servingDeployment, trainingJob } from "../../support/builders.js";

let cluster: TestCluster;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
let agentClient: NodeAgentClient | undefined;
let nats: NatsConnection | undefined;
let loadSub: Subscription | undefined;
const loads: LoadEntry[] = [];

beforeAll(async () => {
  cluster = testCluster();
  operator = await startInProcessOperator(cluster, "simworkers-it");
  const started = await startSimulatedAgent({
    kubeconfigPath: cluster.kubeconfigPath,
    natsUrl: cluster.natsUrl,
    name: "agent-simworkers",
    env: {
      GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
      GPUFLEET_AGENT_SIM_REQUEST_RATE: "4",
      GPUFLEET_AGENT_ENGINE_PORT: "0",
    },
  });
  agent = started.agent;
  agentClient = new NodeAgentClient(`127.0.0.1:${started.grpcPort}`, grpc.credentials.createInsecure(), 5000);
  nats = await connect({ servers: cluster.natsUrl });
  loadSub = nats.subscribe(subscriptionFor("load"), {
    callback: (_err, m) => loads.push(...decodeLoad(m.subject, m.data).reports),
  });
});

afterAll(async () => {
  loadSub?.unsubscribe();
  await nats?.close();
  agentClient?.close();
  await agent?.stop();
  await operator?.stop();
});

const servingGroup = { group: API_GROUP, version: API_VERSION, plural: "servingdeployments" };
const trainingGroup = { group: API_GROUP, version: API_VERSION, plural: "trainingjobs" };
const envOf = (pod: V1Pod, name: string) => pod.spec?.containers[0]?.env?.find((e) => e.name === name)?.value;
const logsWith = (msg: string) => (agent?.logs ?? []).filter((l) => l.msg === msg);
const latestLoad = (namespace: string, podName: string) =>
  loads.filter((l) => l.podNamespace === namespace && l.podName === podName).at(-1);

describe("simulated serving workers follow their pods", () => {
  it("a disaggregated plan's pods run as prefill and decode workers with the plan's model and TP, and hand KV from prefill to decode", async () => {
    const namespace = await cluster.freshNamespace("simworkers-serving");
    await cluster.objects.create(servingDeployment("chat", namespace));
    const pods = await waitFor(
      async () => {
        const list = (
          await cluster.core.listNamespacedPod({ namespace, labelSelector: "gpufleet.io/serving-deployment=chat" })
        ).items;
        const bound = list.filter((p) => p.spec?.nodeName);
        const roles = new Set(bound.map((p) => p.metadata?.labels?.["gpufleet.io/role"]));
        return roles.has("prefill") && roles.has("decode") ? bound : undefined;
      },
      { description: "bound prefill and decode pods", timeoutMs: 60_000 },
    );
    // The pods can be bound before the status write with the plan lands: wait for it rather than read it once.
    const plan = await waitFor(
      async () =>
        (
          (await cluster.customObjects.getNamespacedCustomObject({
            ...servingGroup,
            namespace,
            name: "chat",
          })) as ServingDeployment
        ).status?.plan,
      { description: "the plan in status", timeoutMs: 30_000 },
    );
    expect(plan?.mode).toBe("disaggregated");

    for (const pod of pods) {
      const role = pod.metadata!.labels!["gpufleet.io/role"]!;
      const shape = JSON.parse(envOf(pod, "GPUFLEET_MODEL_SHAPE") ?? "{}") as { name?: string; layers?: number };
      expect(shape).toMatchObject({ name: LLAMA_3_8B.name, layers: 32 });
      const report = await waitFor(() => latestLoad(namespace, pod.metadata!.name!), {
        description: `a load report from ${pod.metadata!.name}`,
        timeoutMs: 30_000,
      });
      const planned = role === "prefill" ? plan?.prefill : plan?.decode;
      expect(report).toMatchObject({
        role,
        model: LLAMA_3_8B.name,
        tp: planned?.tp,
        pp: planned?.pp,
        gpuModel: "H100-80GB",
        blockSizeTokens: 16,
      });
      expect(report.kvBlocksTotal).toBeGreaterThan(0);
    }
    // The prefill workers' synthetic requests are prefilled there and decoded on a decode worker of the deployment.
    const decodeNames = pods
      .filter((p) => p.metadata!.labels!["gpufleet.io/role"] === "decode")
      .map((p) => p.metadata!.name!);
    const busy = await waitFor(
      () =>
        loads.find(
          (l) =>
            l.podNamespace === namespace &&
            decodeNames.includes(l.podName) &&
            (l.kvBlocksUsed ?? 0) > 0 &&
            l.runningRequests > 0,
        ),
      {
        description: "a decode worker holding imported KV blocks",
        timeoutMs: 30_000,
      },
    );
    expect(busy.role).toBe("decode");

    // Commands: drain is applied (the load report says draining), a migrate-out without a destination is rejected with
    // the reason.
    const prefillPod = pods.find((p) => p.metadata!.labels!["gpufleet.io/role"] === "prefill")!;
    const workerId = `${prefillPod.metadata!.uid}/0`;
    const drained = await agentClient!.sendWorkerCommand(workerId, { commandId: "drain-1", drain: { deadlineMs: 0 } });
    expect(drained).toMatchObject({ commandId: "drain-1", outcome: "applied" });
    const migrated = await agentClient!.sendWorkerCommand(workerId, {
      commandId: "migrate-1",
      migrateOut: { requestId: "r", targetWorkerId: "w", targetPod: "ns/p" },
    });
    expect(migrated).toMatchObject({
      commandId: "migrate-1",
      outcome: "rejected",
      reason: expect.stringMatching(/target_url is empty/) as unknown as string,
    });
    const acted = await waitFor(
      () => {
        const lines = logsWith("simulated worker acted on command").filter((l) => l.workerId === workerId);
        return lines.length >= 2 ? lines : undefined;
      },
      { description: "the worker acting on both commands", timeoutMs: 20_000 },
    );
    expect(acted.map((l) => [l.commandId, l.outcome])).toEqual([
      ["drain-1", "applied"],
      ["migrate-1", "rejected"],
    ]);
    expect(acted[1]!.reason).toMatch(/target_url is empty/);
    await waitFor(() => (latestLoad(namespace, prefillPod.metadata!.name!)?.draining === true ? true : undefined), {
      description: "a draining load report",
      timeoutMs: 20_000,
    });
    expect(logsWith("command acknowledgement failed").filter((l) => l.workerId === workerId)).toEqual([]);

    await cluster.customObjects.deleteNamespacedCustomObject({ ...servingGroup, namespace, name: "chat" });
  });
});

describe("simulated training ranks checkpoint", () => {
  type CheckpointLine = {
    job?: string;
    step?: number;
    path?: string;
    workerId?: string;
    reported?: boolean;
    code?: number;
  };
  const checkpoints = (job: string): CheckpointLine[] =>
    (agent?.logs ?? []).filter(
      (l) => typeof l.msg === "string" && l.msg.startsWith("simulated checkpoint written") && l.job === job,
    ) as CheckpointLine[];

  it("a TrainingJob's rank 0 writes a checkpoint every checkpoint.intervalSteps steps", async () => {
    const namespace = await cluster.freshNamespace("simworkers-training");
    await cluster.objects.create(
      trainingJob("llm", namespace, { checkpoint: { path: "/ckpt/llm", intervalSteps: 2 } }),
    );
    const [pod] = await waitFor(
      async () => {
        const list = (
          await cluster.core.listNamespacedPod({ namespace, labelSelector: "gpufleet.io/training-job=llm" })
        ).items;
        return list.length > 0 && list.every((p) => p.spec?.nodeName) ? list : undefined;
      },
      { description: "the job's pod bound", timeoutMs: 60_000 },
    );
    expect(envOf(pod!, "GPUFLEET_CHECKPOINT_INTERVAL_STEPS")).toBe("2");
    expect(envOf(pod!, "GPUFLEET_RESUME_STEP")).toBe("0");
    const lines = await waitFor(
      () => (checkpoints(`${namespace}/llm`).length >= 3 ? checkpoints(`${namespace}/llm`) : undefined),
      { description: "three checkpoints", timeoutMs: 60_000 },
    );
    expect(lines.slice(0, 3).map((l) => l.step)).toEqual([2, 4, 6]);
    expect(lines[0]).toMatchObject({ path: "/ckpt/llm/step-00000002", workerId: `${pod!.metadata!.uid}/0` });
    // Each one reached the agent's ReportCheckpoint (which publishes it to the worker-events stream).
    expect(lines.slice(0, 3).map((l) => l.reported)).toEqual([true, true, true]);
    await cluster.customObjects.deleteNamespacedCustomObject({ ...trainingGroup, namespace, name: "llm" });
  });

  it("a rank pod resuming at GPUFLEET_RESUME_STEP checkpoints on from there", async () => {
    const namespace = await cluster.freshNamespace("simworkers-resume");
    const nodes = (await cluster.core.listNode()).items.filter(
      (n) =>
        n.metadata?.annotations?.["kwok.x-k8s.io/node"] === "fake" ||
        n.metadata?.labels?.["kwok.x-k8s.io/node"] === "fake",
    );
    const env = {
      WORLD_SIZE: "2",
      GPUFLEET_RANKS: "0,1",
      GPUFLEET_RESUME_STEP: "10",
      GPUFLEET_CHECKPOINT_INTERVAL_STEPS: "3",
      GPUFLEET_CHECKPOINT_PATH: "/ckpt/resumed",
    };
    await cluster.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: "resumed-0",
          labels: { "gpufleet.io/training-job": "resumed" },
          annotations: { "gpufleet.io/sim-compute-ms": "20" },
        },
        spec: {
          nodeName: nodes[0]!.metadata!.name!,
          containers: [
            {
              name: "trainer",
              image: "nvcr.io/nvidia/pytorch:25.01-py3",
              env: Object.entries(env).map(([name, value]) => ({ name, value })),
            },
          ],
        },
      },
    });
    const lines = await waitFor(
      () => (checkpoints(`${namespace}/resumed`).length >= 3 ? checkpoints(`${namespace}/resumed`) : undefined),
      { description: "three checkpoints after the resume step", timeoutMs: 60_000 },
    );
    expect(lines.slice(0, 3).map((l) => [l.step, l.path])).toEqual([
      [12, "/ckpt/resumed/step-00000012"],
      [15, "/ckpt/resumed/step-00000015"],
      [18, "/ckpt/resumed/step-00000018"],
    ]);
    await cluster.core.deleteNamespacedPod({ namespace, name: "resumed-0" });
  });
});
