/**
 * The agent on the local cluster, in simulation mode: a kwok node that only carries simulation annotations gets
 * its gpufleet.io topology labels from the agent (server-side apply, field manager gpufleet-agent), and a serving
 * pod bound to it gets a simulated worker whose load reports arrive on NATS.
 */
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseNodeTopology, TopologyLabel } from "../../../crds/src/topology.js";
import { AGENT_FIELD_MANAGER } from "../../../agent/src/discovery/publish.js";
import { SimAnnotation } from "../../../agent/src/simulation/model.js";
import { decodeLoad, subscriptionFor, type LoadMessage } from "../../../common/src/telemetry/subjects.js";
import { freshNamespace, getTestCluster, waitFor } from "../../harness/context.js";
import { startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

const NODE = "sim-agent-label-test";
let agent: ComponentProcess | undefined;
let nats: NatsConnection | undefined;

beforeAll(async () => {
  const { core, kubeconfigPath, natsUrl } = getTestCluster();
  await core.createNode({
    body: {
      metadata: {
        name: NODE,
        labels: { type: "kwok", "kubernetes.io/hostname": NODE },
        annotations: {
          "kwok.x-k8s.io/node": "fake",
          [SimAnnotation.gpuModel]: "A100-80GB",
          [SimAnnotation.gpuCount]: "4",
          [SimAnnotation.nicType]: "roce",
          [SimAnnotation.nicBandwidthGbps]: "200",
          [SimAnnotation.leaf]: "leaf-sim",
          [SimAnnotation.island]: "roce-sim",
        },
      },
      status: {
        capacity: { cpu: "32", memory: "256Gi", pods: "110", "nvidia.com/gpu": "4" },
        allocatable: { cpu: "32", memory: "256Gi", pods: "110", "nvidia.com/gpu": "4" },
      },
    },
  });
  ({ agent } = await startSimulatedAgent({
    kubeconfigPath,
    natsUrl,
    env: { GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200" },
  }));
  nats = await connect({ servers: natsUrl });
});

afterAll(async () => {
  await agent?.stop();
  await nats?.close();
  await getTestCluster()
    .core.deleteNode({ name: NODE })
    .catch(() => undefined);
});

describe("agent on kwok nodes", () => {
  it("publishes a kwok node's topology facts as gpufleet.io labels under its own field manager", async () => {
    const { core } = getTestCluster();
    const node = await waitFor(
      async () => {
        const n = await core.readNode({ name: NODE });
        return n.metadata?.labels?.[TopologyLabel.island] ? n : undefined;
      },
      { description: `topology labels on ${NODE}`, timeoutMs: 30_000 },
    );
    expect(parseNodeTopology(NODE, node.metadata!.labels!)).toEqual({
      nodeName: NODE,
      gpuModel: "A100-80GB",
      gpuCount: 4,
      nicType: "roce",
      nicCount: 4,
      nicBandwidthGbps: 200,
      leaf: "leaf-sim",
      island: "roce-sim",
    });
    const managers = (node.metadata?.managedFields ?? [])
      .filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes(TopologyLabel.island))
      .map((f) => f.manager);
    expect(managers).toEqual([AGENT_FIELD_MANAGER]);
  });

  it("runs a simulated serving worker for a pod bound to the node and publishes its load on NATS", async () => {
    const { core } = getTestCluster();
    const namespace = await freshNamespace("agent-sim");
    const received: LoadMessage[] = [];
    const subscription = nats!.subscribe(subscriptionFor("load"), {
      callback: (_err, message) => {
        const decoded = decodeLoad(message.subject, message.data);
        if (decoded.node === NODE) received.push(decoded);
      },
    });
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: "decode-0",
          labels: { "gpufleet.io/serving-deployment": "demo", "gpufleet.io/role": "decode" },
        },
        spec: {
          nodeName: NODE,
          containers: [
            {
              name: "engine",
              image: "vllm/vllm-openai:v0.11.0",
              resources: { requests: { "nvidia.com/gpu": "1" }, limits: { "nvidia.com/gpu": "1" } },
            },
          ],
        },
      },
    });
    const report = await waitFor(
      () => received.flatMap((m) => m.reports).find((r) => r.podName === "decode-0" && r.podNamespace === namespace),
      {
        description: "a load report from the simulated decode worker",
        timeoutMs: 30_000,
      },
    );
    subscription.unsubscribe();
    expect(report.kvCacheUsedFraction).toBeGreaterThanOrEqual(0);
    expect(report.kvCacheUsedFraction).toBeLessThanOrEqual(1);
    expect(report.queueLength).toBeGreaterThanOrEqual(0);
    expect(report.workerId).toMatch(/\/0$/);
  });
});
