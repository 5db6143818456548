/**
 * GpuProfile on the local cluster, the operator running in-process: the API server rejects a profile with a bad
 * coefficient at apply; a profile applied for a GPU model and an engine image is what the planner plans with, and
 * the ServingDeployment's status names it; a deployment of another engine image is planned with the shipped
 * defaults and names none.
 *
 * The cluster is shared with other test files, so the profile only applies to the engine image this file's
 * deployments use (spec.engine.imagePrefix), and the test deletes what it created.
 */
import type { CustomObjectsApi, KubernetesObjectApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { GpuProfile } from "../../../crds/src/gpu-profile.js";
import type { ServingDeployment } from "../../../crds/src/serving-deployment.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { servingDeployment } from "../../support/builders.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { startInProcessOperator } from "../../support/operator.js";

let cluster: TestCluster;
let custom: CustomObjectsApi;
let objects: KubernetesObjectApi;
let operator: OperatorHandle | undefined;

const PROFILE = "it-h100-profiled-engine";
const IMAGE = "registry.example/gpufleet-it/profiled-engine:1";
const profiles = { group: API_GROUP, version: API_VERSION, plural: "gpuprofiles" };
const sds = { group: API_GROUP, version: API_VERSION, plural: "servingdeployments" };

function profile(name: string, coefficients: GpuProfile["spec"]["coefficients"]): GpuProfile {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "GpuProfile",
    metadata: { name },
    spec: {
      gpuModel: "H100-80GB",
      engine: { name: "profiled-engine", imagePrefix: IMAGE, perLayerOverheadUs: 20 },
      coefficients,
    },
  };
}

beforeAll(async () => {
  cluster = testCluster();
  ({ customObjects: custom, objects } = cluster);
  operator = await startInProcessOperator(cluster, "gpu-profile-it");
});

afterAll(async () => {
  await custom.deleteClusterCustomObject({ ...profiles, name: PROFILE }).catch(() => undefined);
  await operator?.stop();
});

async function planOf(namespace: string, name: string): Promise<NonNullable<ServingDeployment["status"]>["plan"]> {
  return waitFor(
    async () =>
      ((await custom.getNamespacedCustomObject({ ...sds, namespace, name })) as ServingDeployment).status?.plan,
    { description: `${namespace}/${name} planned`, timeoutMs: 90_000 },
  );
}

describe("GpuProfile", () => {
  it("is rejected at apply when a coefficient is out of range", async () => {
    await expect(
      objects.create(profile("it-bad-profile", { achievedTflops: -5, memoryUtilization: 1.5 })),
    ).rejects.toThrow(/achievedTflops|memoryUtilization/);
  });

  it("is what the planner uses for its GPU model and engine image, and the deployment's status names it", async () => {
    await objects.create(
      profile(PROFILE, { achievedTflops: 650, achievedHbmGBps: 2400, kvReadGBps: 3000, rooflineSharpness: 3 }),
    );
    const namespace = await cluster.freshNamespace("sd-profile");
    const spec = {
      engine: { image: IMAGE, args: [], port: 8000, env: [] },
      mode: "colocated" as const,
      workload: { arrivalRatePerSec: 1, preset: "chatbot" as const },
    };
    await objects.create(servingDeployment("profiled", namespace, spec));
    await objects.create(
      servingDeployment("shipped", namespace, {
        ...spec,
        engine: { ...spec.engine, image: "vllm/vllm-openai:v0.11.0" },
      }),
    );

    const profiled = await planOf(namespace, "profiled");
    expect(profiled?.gpuModel).toBe("H100-80GB");
    expect(profiled?.gpuProfile).toBe(PROFILE);
    const shipped = await planOf(namespace, "shipped");
    expect(shipped?.gpuModel).toBe("H100-80GB");
    expect(shipped?.gpuProfile).toBeUndefined();

    for (const name of ["profiled", "shipped"]) await custom.deleteNamespacedCustomObject({ ...sds, namespace, name });
  }, 180_000);
});
