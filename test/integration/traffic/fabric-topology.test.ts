/**
 * FabricTopology on the local cluster: the API server enforces the schema and CEL rules, the default profile's
 * fabrics (applied by the harness from clusters/default.yaml) are in step with its kwok nodes, and the operator's
 * reconciler keeps status in step when a fabric misses a leaf, gains it, or has a cable marked down.
 */
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { FabricTopology } from "../../../crds/src/fabric-topology.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import { startInProcessOperator } from "../../support/operator.js";

let cluster: TestCluster;
let custom: CustomObjectsApi;
let operator: OperatorHandle | undefined;
const created: string[] = [];
const group = { group: API_GROUP, version: API_VERSION, plural: "fabrictopologies" };

beforeAll(async () => {
  cluster = testCluster();
  custom = cluster.customObjects;
  operator = await startInProcessOperator(cluster, "fabric-it");
});

afterAll(async () => {
  await operator?.stop();
  for (const name of created) await custom.deleteClusterCustomObject({ ...group, name }).catch(() => undefined);
});

const get = async (name: string): Promise<FabricTopology> =>
  (await custom.getClusterCustomObject({ ...group, name })) as FabricTopology;
const inSync = (f: FabricTopology) => f.status?.conditions?.find((c) => c.type === "InSync");

function fabric(
  name: string,
  leaves: string[],
  extra: Partial<{ failedPorts: number[]; spine: string }> = {},
): FabricTopology {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "FabricTopology",
    metadata: { name },
    spec: {
      island: "ib-a",
      spines: ["s0", "s1"],
      leaves: leaves.map((leaf) => ({
        name: leaf,
        uplinks: [
          {
            spine: extra.spine ?? "s0",
            ports: 8,
            portGbps: 400,
            ...(extra.failedPorts ? { failedPorts: extra.failedPorts } : {}),
          },
          { spine: "s1", ports: 8, portGbps: 400 },
        ],
      })),
    },
  };
}

async function apply(object: FabricTopology): Promise<{ code: number | null; stderr: string }> {
  created.push(object.metadata.name!);
  return kubectl(
    cluster.kubeconfigPath,
    ["apply", "--server-side", "--field-manager=fabric-it", "-f", "-"],
    JSON.stringify(object),
  );
}

describe("FabricTopology", () => {
  it.each([
    {
      name: "an uplink to a spine not in spines",
      object: fabric("it-bad-spine", ["ib-a-leaf-0"], { spine: "s9" }),
      error: /every uplink's spine must be listed in spec.spines/,
    },
    {
      name: "a failed port beyond the port count",
      object: fabric("it-bad-port", ["ib-a-leaf-0"], { failedPorts: [8] }),
      error: /failedPorts must be port indexes below ports/,
    },
  ])("the API server rejects $name", async ({ object, error }) => {
    const result = await apply(object);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(error);
  });

  it("the default profile's ib-a fabric is in step with its 4 nodes on 2 leaves", async () => {
    await waitFor(async () => inSync(await get("ib-a"))?.status === "True", {
      description: "fabric ib-a InSync",
      timeoutMs: 30_000,
    });
    expect((await get("ib-a")).status).toMatchObject({
      nodes: 4,
      leavesInUse: 2,
      failedPorts: 0,
      nodesOnUnknownLeaves: [],
    });
  });

  it("names nodes on a leaf the fabric lacks, clears once the leaf is added, and counts a cable marked down", async () => {
    expect((await apply(fabric("it-partial", ["ib-a-leaf-0"]))).code).toBe(0);
    await waitFor(async () => inSync(await get("it-partial"))?.reason === "UnknownLeaf", {
      description: "it-partial UnknownLeaf",
      timeoutMs: 30_000,
    });
    const partial = await get("it-partial");
    expect(partial.status?.nodesOnUnknownLeaves).toEqual(["h100-ib-2", "h100-ib-3"]);
    expect(inSync(partial)).toMatchObject({
      status: "False",
      message: expect.stringContaining("h100-ib-2 (leaf ib-a-leaf-1)"),
    });

    expect((await apply(fabric("it-partial", ["ib-a-leaf-0", "ib-a-leaf-1"], { failedPorts: [3] }))).code).toBe(0);
    await waitFor(async () => inSync(await get("it-partial"))?.status === "True", {
      description: "it-partial InSync",
      timeoutMs: 30_000,
    });
    expect((await get("it-partial")).status).toMatchObject({
      nodes: 4,
      leavesInUse: 2,
      failedPorts: 2,
      nodesOnUnknownLeaves: [],
    });
  });
});
