/**
 * The writes of fault isolation (operator/src/training/faults/apply.ts) against the real API server and kwok nodes:
 * the isolation taint with its reason annotation, idempotent and keeping other taints; the NIC condition, merged
 * beside the node's own conditions; the job's status.faults and conditions; and what an admin
 * does to undo them with kubectl (docs/faults.md).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { IsolatedTaintKey } from "../../../crds/src/topology.js";
import type { FaultRecord, TrainingJob } from "../../../crds/src/training-job.js";
import {
  KubeFaultWriter,
  IsolationReasonAnnotation,
  nicConditionType,
} from "../../../operator/src/training/faults/apply.js";
import { trainingJob } from "../../support/builders.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import { installCrds } from "../../support/operator.js";

let cluster: TestCluster;
let writer: KubeFaultWriter;
// A100 nodes: the fewest other tests use (and every change here is undone in afterAll).
const NODE = "a100-eth-0";
const OTHER_TAINT = { key: "example.com/maintenance", value: "soon", effect: "PreferNoSchedule" };

beforeAll(async () => {
  cluster = testCluster();
  await installCrds(cluster.kubeconfigPath);
  writer = new KubeFaultWriter(cluster.kubeConfig);
  expect(
    (
      await kubectl(cluster.kubeconfigPath, [
        "taint",
        "node",
        NODE,
        `${OTHER_TAINT.key}=${OTHER_TAINT.value}:${OTHER_TAINT.effect}`,
      ])
    ).code,
  ).toBe(0);
});

afterAll(async () => {
  await kubectl(cluster.kubeconfigPath, ["taint", "node", NODE, `${OTHER_TAINT.key}-`, `${IsolatedTaintKey}-`]);
  await kubectl(cluster.kubeconfigPath, [
    "patch",
    "node",
    NODE,
    "--subresource=status",
    "--type=strategic",
    "-p",
    JSON.stringify({ status: { conditions: [{ type: nicConditionType("mlx5_1"), $patch: "delete" }] } }),
  ]);
});

describe("fault isolation writes", () => {
  it("taints a node gpufleet.io/isolated:NoSchedule once, keeping its other taints, with the evidence in an annotation", async () => {
    const nowMs = Date.now();
    expect(await writer.taintNode(NODE, "c4d-hang", "ns/job attempt 0: C4D hang: node a100-eth-0 ranks 9", nowMs)).toBe(
      "tainted",
    );
    expect(await writer.taintNode(NODE, "c4d-straggler", "again", nowMs)).toBe("already-isolated");
    const node = await cluster.core.readNode({ name: NODE });
    expect(node.spec?.taints?.map((t) => ({ key: t.key, value: t.value, effect: t.effect }))).toEqual([
      OTHER_TAINT,
      { key: IsolatedTaintKey, value: "c4d-hang", effect: "NoSchedule" },
    ]);
    expect(node.metadata?.annotations?.[IsolationReasonAnnotation]).toBe(
      "ns/job attempt 0: C4D hang: node a100-eth-0 ranks 9",
    );
    expect(await writer.taintNode("no-such-node", "c4d-hang", "x", nowMs)).toBe("node-gone");

    // The admin's way back (docs/faults.md): remove the taint; the other taint stays.
    const untaint = await kubectl(cluster.kubeconfigPath, ["taint", "node", NODE, `${IsolatedTaintKey}-`]);
    expect(untaint.stdout).toContain(`node/${NODE} untainted`);
    expect((await cluster.core.readNode({ name: NODE })).spec?.taints?.map((t) => t.key)).toEqual([OTHER_TAINT.key]);
  });

  it("marks a NIC with a node condition beside the node's own conditions, and an admin can delete it", async () => {
    expect(
      await writer.markNic(
        NODE,
        "mlx5_1",
        "TrainingJob ns/job: C4D slow-sender: node a100-eth-0 NIC mlx5_1",
        Date.now(),
      ),
    ).toBe(true);
    const type = nicConditionType("mlx5_1");
    const read = async () => (await cluster.core.readNode({ name: NODE })).status?.conditions ?? [];
    expect((await read()).find((c) => c.type === type)).toMatchObject({
      status: "True",
      reason: "NicDegraded",
      message: expect.stringContaining("NIC mlx5_1"),
    });
    expect((await read()).map((c) => c.type)).toEqual(expect.arrayContaining(["Ready", type]));

    const remove = await kubectl(cluster.kubeconfigPath, [
      "patch",
      "node",
      NODE,
      "--subresource=status",
      "--type=strategic",
      "-p",
      JSON.stringify({ status: { conditions: [{ type, $patch: "delete" }] } }),
    ]);
    expect(remove.stderr).toBe("");
    expect((await read()).map((c) => c.type)).not.toContain(type);
    expect((await read()).map((c) => c.type)).toContain("Ready");
  });

  it("adds records to status.faults, bounded and de-duplicated, with conditions, on a TrainingJob the API server validates", async () => {
    const namespace = await cluster.freshNamespace("fault-writer");
    await cluster.objects.create(trainingJob("j", namespace));
    const record = (i: number): FaultRecord => ({
      id: `${i}-hang-n1`,
      attempt: i,
      faultClass: "hang",
      action: "isolate-node",
      node: "n1",
      ranks: [9],
      communicator: "c",
      collective: "AllReduce",
      sequence: 41,
      evidenceRanks: [0, 1],
      detail: "rank 9 never entered",
      timesMs: { waitedMs: 2100.5 },
      firstAffectedTime: "2026-12-02T08:00:00.123Z",
      detectedTime: "2026-12-02T08:00:02.100Z",
      actedTime: "2026-12-02T08:00:02.500Z",
    });
    const condition = {
      type: "FaultDetected",
      status: "True" as const,
      reason: "CommunicationHang",
      message: "C4D hang",
    };
    for (let i = 0; i < 18; i++) await writer.writeJobFaults(namespace, "j", [record(i)], [condition], Date.now());
    await writer.writeJobFaults(namespace, "j", [record(17)], [], Date.now());
    const job = (await cluster.customObjects.getNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: "trainingjobs",
      namespace,
      name: "j",
    })) as TrainingJob;
    expect(job.status?.faults?.map((f) => f.attempt)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(job.status?.faults?.at(-1)).toEqual(record(17));
    expect(job.status?.conditions).toEqual([expect.objectContaining(condition)]);
    expect(await writer.writeJobFaults(namespace, "gone", [record(0)], [], Date.now())).toBeUndefined();
  });
});
