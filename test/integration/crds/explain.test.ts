/**
 * `kubectl explain` is complete: the API server publishes the installed CRDs' schemas as OpenAPI v3 (what
 * `kubectl explain` reads), and every property there carries a description, the one from crds/src.
 */
import { describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { testCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";

type Schema = {
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  allOf?: Schema[];
};

/** Paths of properties without a description; ObjectMeta's own schema (a $ref) is the API server's. */
function undescribed(node: Schema, at: string, out: string[]): string[] {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const path = `${at}.${name}`;
    if (name === "metadata" && at.split(".").length === 1) continue;
    if (!child.description?.trim()) out.push(path);
    undescribed(child, path, out);
  }
  if (node.items) undescribed(node.items, `${at}[]`, out);
  if (node.additionalProperties && typeof node.additionalProperties === "object")
    undescribed(node.additionalProperties, `${at}{}`, out);
  return out;
}

describe("kubectl explain", () => {
  it("finds a description for every field of every gpufleet kind in the API server's OpenAPI", async () => {
    const cluster = testCluster();
    const raw = await kubectl(cluster.kubeconfigPath, ["get", "--raw", `/openapi/v3/apis/${API_GROUP}/${API_VERSION}`]);
    expect(raw.code, raw.stderr).toBe(0);
    const schemas = (JSON.parse(raw.stdout) as { components: { schemas: Record<string, Schema> } }).components.schemas;
    const kinds = Object.keys(schemas).filter((k) => /\.(ServingDeployment|TrainingJob|FabricTopology)$/.test(k));
    expect(kinds.map((k) => k.split(".").pop()).sort()).toEqual(["FabricTopology", "ServingDeployment", "TrainingJob"]);
    for (const kind of kinds) expect(undescribed(schemas[kind]!, kind.split(".").pop()!, []), kind).toEqual([]);
  });

  it("prints a field's description from crds/src", async () => {
    const cluster = testCluster();
    const result = await kubectl(cluster.kubeconfigPath, ["explain", "servingdeployments.status.plan.affinity"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("KV cache crosses the NICs between nodes");
  });
});
