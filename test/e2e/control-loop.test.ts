/**
 * The control loop end to end, with the parts a user runs: the operator (in-process, telemetry on, mTLS on, issuing
 * its own certificates), the agent as its own process in simulation mode (serving every kwok node, with the
 * certificates the operator issued), and the simulated workers the agent starts for the pods the operator creates.
 * Nothing here speaks the worker protocol by hand:
 * - a TrainingJob's simulated ranks checkpoint every intervalSteps; the step reaches TrainingJob status through
 *   agent → JetStream → operator;
 * - a disaggregated ServingDeployment's simulated prefill and decode workers report load; the reports reach the
 *   operator's read model, grouped under the deployment, with the plan's role, model and TP;
 * - the operator's agent client sends a command over mTLS to a simulated worker, and the answer is that worker's own
 *   acknowledgement.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServingDeployment } from "../../crds/src/serving-deployment.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import { API_GROUP, API_VERSION } from "../../crds/src/common.js";
import type { OperatorHandle } from "../../operator/src/operator.js";
import { waitFor } from "../harness/wait.js";
import { testCluster, type TestCluster } from "../support/cluster.js";
import { startInProcessOperator, startSimulatedAgent, type ComponentProcess } from "../support/operator.js";
import { LLAMA_3_8B, servingDeployment, trainingJob } from "../support/builders.js";
import { writeOperatorIssuedAgentCerts } from "../support/agent-certs.js";

let cluster: TestCluster;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
const tlsDir = mkdtempSync(join(tmpdir(), "gpufleet-e2e-tls-"));

const servingGroup = { group: API_GROUP, version: API_VERSION, plural: "servingdeployments" };
const trainingGroup = { group: API_GROUP, version: API_VERSION, plural: "trainingjobs" };

beforeAll(async () => {
  cluster = testCluster();
  // Its own durable consumer names, so the consumers of other test files' operators on the same NATS are not shared.
  operator = await startInProcessOperator(cluster, "e2e-control-loop", {
    natsUrl: cluster.natsUrl,
    durablePrefix: `e2e-${process.pid}`,
  });
  // The agent gets the server certificate the operator issued (the chart mounts the same Secret as files).
  await writeOperatorIssuedAgentCerts(cluster, tlsDir);
  const started = await startSimulatedAgent({
    kubeconfigPath: cluster.kubeconfigPath,
    natsUrl: cluster.natsUrl,
    name: "agent-e2e",
    env: {
      GPUFLEET_AGENT_TLS_DIR: tlsDir,
      GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
      GPUFLEET_AGENT_ENGINE_PORT: "0",
    },
  });
  agent = started.agent;
  expect(agent.logs.find((l) => l.msg === "agent serving")).toMatchObject({ tls: true, telemetry: "nats" });
});

afterAll(async () => {
  await agent?.stop();
  await operator?.stop();
  rmSync(tlsDir, { recursive: true, force: true });
});

describe("the control loop, end to end with simulated workers", () => {
  it("a simulated rank's checkpoint reaches TrainingJob status through agent → JetStream → operator", async () => {
    const namespace = await cluster.freshNamespace("e2e-training");
    await cluster.objects.create(
      trainingJob("llm", namespace, { checkpoint: { path: "/ckpt/llm", intervalSteps: 2 } }),
    );
    const status = await waitFor(
      async () => {
        const current = (await cluster.customObjects.getNamespacedCustomObject({
          ...trainingGroup,
          namespace,
          name: "llm",
        })) as TrainingJob;
        return (current.status?.lastCheckpointStep ?? 0) >= 4 ? current.status : undefined;
      },
      { description: "status.lastCheckpointStep from the simulated ranks", timeoutMs: 90_000 },
    );
    // Checkpoints are written every 2 steps, so the step in status is always one of them.
    expect(status!.lastCheckpointStep! % 2).toBe(0);
    expect(operator!.telemetry.lastCheckpoint(`${namespace}/llm`)).toMatchObject({ rank: 0 });
    await cluster.customObjects.deleteNamespacedCustomObject({ ...trainingGroup, namespace, name: "llm" });
  });

  it("a disaggregated deployment's simulated workers report load into the operator's read model, and a command over mTLS is answered by the worker", async () => {
    const namespace = await cluster.freshNamespace("e2e-serving");
    await cluster.objects.create(servingDeployment("chat", namespace));
    const plan = await waitFor(
      async () =>
        (
          (await cluster.customObjects.getNamespacedCustomObject({
            ...servingGroup,
            namespace,
            name: "chat",
          })) as ServingDeployment
        ).status?.plan,
      { description: "the plan in status", timeoutMs: 60_000 },
    );
    expect(plan.mode).toBe("disaggregated");
    const wanted = (plan.prefill?.replicas ?? 0) + (plan.decode?.replicas ?? 0);

    // Load reports of every instance's leader pod, in the operator's read model under this deployment.
    const loads = await waitFor(
      () => {
        const seen = operator!.telemetry.loadOf(`${namespace}/chat`);
        return new Set(seen.map((l) => l.podName)).size >= wanted &&
          seen.some((l) => l.role === "prefill") &&
          seen.some((l) => l.role === "decode")
          ? seen
          : undefined;
      },
      { description: `load of ${wanted} instances in the read model`, timeoutMs: 60_000 },
    );
    for (const load of loads) {
      const planned = load.role === "prefill" ? plan.prefill : plan.decode;
      expect(load).toMatchObject({ model: LLAMA_3_8B.name, tp: planned?.tp, pp: planned?.pp, gpuModel: "H100-80GB" });
      expect(load.kvBlocksTotal).toBeGreaterThan(0);
    }

    // A command from the operator's own client (mTLS, certificates it issued) to one of those workers.
    const prefill = loads.find((l) => l.role === "prefill")!;
    const response = await waitFor(
      () =>
        operator!.agents
          .sendWorkerCommand(
            prefill.node,
            prefill.workerId,
            { commandId: `drain-${namespace}`, drain: { deadlineMs: 0 } },
            5000,
          )
          .catch(() => undefined),
      { description: "a drain acknowledged by the simulated worker", timeoutMs: 30_000 },
    );
    expect(response).toMatchObject({ commandId: `drain-${namespace}`, outcome: "applied" });
    expect(response.acknowledgedUnixMs).toBeGreaterThan(0);
    // The worker really drained: its next reports say so, in the read model.
    await waitFor(
      () =>
        operator!.telemetry
          .loadOf(`${namespace}/chat`)
          .find((l) => l.podName === prefill.podName && l.draining === true),
      { description: "a draining load report in the read model", timeoutMs: 20_000 },
    );
    // Acting on a request the worker cannot honour is a rejection with its reason, not a success.
    const migrate = await operator!.agents.sendWorkerCommand(
      prefill.node,
      prefill.workerId,
      { commandId: `migrate-${namespace}`, migrateOut: { requestId: "r", targetWorkerId: "w", targetPod: "ns/p" } },
      5000,
    );
    expect(migrate).toMatchObject({
      outcome: "rejected",
      reason: expect.stringMatching(/target_url is empty/) as unknown as string,
    });
    await cluster.customObjects.deleteNamespacedCustomObject({ ...servingGroup, namespace, name: "chat" });
  });
});
