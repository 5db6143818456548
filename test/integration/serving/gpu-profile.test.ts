/**
 * GpuProfile on the local cluster, the operator running in-process: the API server rejects a profile with a bad
 * coefficient at apply; a profile applied for a GPU model and an engine image is what the planner plans with, and
 * the ServingDeployment's status names it; a deployment of another engine image is planned with the shipped
 * defaults and names none.
 *
 * The simulated workers (a real agent process in simulation mode) step with the model their plan used: a
 * completion on each deployment's instance, and the instance's reported TPOT (its last decode step, in modelled
 * time) is the decode step the common latency model predicts with the profile's coefficients for the profiled
 * deployment and with the shipped defaults for the other. The profile is slower than the defaults (HBM 1.5 TB/s
 * against ≈2.4), so a worker that ignored the profile would report a TPOT ~1.5x off and fail.
 *
 * The cluster is shared with other test files, so the profile only applies to the engine image this file's
 * deployments use (spec.engine.imagePrefix), and the test deletes what it created.
 */
import type { CustomObjectsApi, KubernetesObjectApi, V1Pod } from "@kubernetes/client-node";
import { connect, type NatsConnection, type Subscription } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { profileCoefficients } from "../../../common/src/hardware/gpu-profile-reader.js";
import { EnginePath, type EngineChunk } from "../../../common/src/engine-api.js";
import { decodeStepLatencyMs, type LatencyCoefficientOverrides } from "../../../common/src/models/latency.js";
import { deriveModel, type ModelShape } from "../../../common/src/models/model-shapes.js";
import { decodeLoad, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { GpuProfile } from "../../../crds/src/gpu-profile.js";
import type { ServingDeployment } from "../../../crds/src/serving-deployment.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { servingDeployment } from "../../support/builders.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { startInProcessOperator, startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

let cluster: TestCluster;
let custom: CustomObjectsApi;
let objects: KubernetesObjectApi;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
let nats: NatsConnection | undefined;
let loadSub: Subscription | undefined;
const loads: LoadEntry[] = [];

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
  agent = (
    await startSimulatedAgent({
      kubeconfigPath: cluster.kubeconfigPath,
      natsUrl: cluster.natsUrl,
      name: "agent-gpu-profile",
      // No synthetic load: the test's one request is the only one the instance runs.
      env: {
        GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
        GPUFLEET_AGENT_ENGINE_PORT: "0",
        GPUFLEET_AGENT_SIM_REQUEST_RATE: "0",
      },
    })
  ).agent;
  nats = await connect({ servers: cluster.natsUrl });
  loadSub = nats.subscribe(subscriptionFor("load"), {
    callback: (_err, m) => loads.push(...decodeLoad(m.subject, m.data).reports),
  });
});

afterAll(async () => {
  loadSub?.unsubscribe();
  await nats?.close();
  await custom.deleteClusterCustomObject({ ...profiles, name: PROFILE }).catch(() => undefined);
  await agent?.stop();
  await operator?.stop();
});

async function planOf(namespace: string, name: string): Promise<NonNullable<ServingDeployment["status"]>["plan"]> {
  return waitFor(
    async () =>
      ((await custom.getNamespacedCustomObject({ ...sds, namespace, name })) as ServingDeployment).status?.plan,
    { description: `${namespace}/${name} planned`, timeoutMs: 90_000 },
  );
}

/** The leader pod of one of the deployment's instances, bound, and its latest load report with an engineUrl. */
async function servingInstance(namespace: string, name: string): Promise<{ pod: V1Pod; report: LoadEntry }> {
  const pod = await waitFor(
    async () =>
      (
        await cluster.core.listNamespacedPod({
          namespace,
          labelSelector: `gpufleet.io/serving-deployment=${name},gpufleet.io/worker=0`,
        })
      ).items.find((p) => p.spec?.nodeName && !p.metadata?.deletionTimestamp),
    { description: `a bound leader pod of ${namespace}/${name}`, timeoutMs: 90_000 },
  );
  const report = await waitFor(() => latestLoad(pod, (l) => !!l.engineUrl), {
    description: `a load report with an engineUrl from ${pod.metadata!.name}`,
    timeoutMs: 60_000,
  });
  return { pod, report };
}

const latestLoad = (pod: V1Pod, ok: (l: LoadEntry) => boolean) =>
  loads.filter((l) => l.podNamespace === pod.metadata!.namespace && l.podName === pod.metadata!.name && ok(l)).at(-1);

const envOf = (pod: V1Pod, name: string) => pod.spec?.containers[0]?.env?.find((e) => e.name === name)?.value;

/**
 * One completion of `maxTokens` on the instance; then the TPOT it reports (its last decode step) and the range the
 * common latency model predicts for a decode step of that request (context from the prompt to prompt + output)
 * with `overrides`, and with the shipped defaults.
 */
async function observedTpot(
  instance: { pod: V1Pod; report: LoadEntry },
  overrides: LatencyCoefficientOverrides | undefined,
): Promise<{ tpotMs: number; predicted: [number, number]; shipped: [number, number] }> {
  const maxTokens = 16;
  const before = Date.now();
  const res = await fetch(`${instance.report.engineUrl}${EnginePath.completions}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: instance.report.model,
      prompt: "Tell me about GPUs. ".repeat(40),
      max_tokens: maxTokens,
    }),
  });
  expect(res.status).toBe(200);
  const promptTokens = ((await res.json()) as EngineChunk).usage!.prompt_tokens;
  const report = await waitFor(() => latestLoad(instance.pod, (l) => l.unixMs > before && l.tpotMs > 0), {
    description: `a load report with a TPOT from ${instance.pod.metadata!.name}`,
    timeoutMs: 30_000,
  });
  const model = deriveModel(JSON.parse(envOf(instance.pod, "GPUFLEET_MODEL_SHAPE")!) as ModelShape);
  const parallelism = {
    tp: Number(envOf(instance.pod, "GPUFLEET_TP")),
    pp: Number(envOf(instance.pod, "GPUFLEET_PP")),
  };
  expect(report.gpuModel).toBe("H100-80GB"); // the plan's GPU model, which the profile is for
  const step = (context: number, o?: LatencyCoefficientOverrides) =>
    decodeStepLatencyMs(model, "H100-80GB", parallelism, [context], o).totalMs;
  const range = (o?: LatencyCoefficientOverrides): [number, number] => [
    step(promptTokens, o),
    step(promptTokens + maxTokens, o),
  ];
  return { tpotMs: report.tpotMs, predicted: range(overrides), shipped: range(undefined) };
}

/** Within 0.1% of the predicted range (float noise only: the simulated engine's step is the model's number). */
function expectWithin(value: number, [lo, hi]: [number, number]): void {
  expect(value).toBeGreaterThanOrEqual(lo * 0.999);
  expect(value).toBeLessThanOrEqual(hi * 1.001);
}

describe("GpuProfile", () => {
  it("is rejected at apply when a coefficient is out of range", async () => {
    await expect(
      objects.create(profile("it-bad-profile", { achievedTflops: -5, memoryUtilization: 1.5 })),
    ).rejects.toThrow(/achievedTflops|memoryUtilization/);
  });

  it("is what the planner and the simulated workers use for its GPU model and engine image, and the deployment's status names it", async () => {
    const applied = profile(PROFILE, {
      achievedTflops: 650,
      achievedHbmGBps: 1500,
      kvReadGBps: 2000,
      rooflineSharpness: 3,
    });
    await objects.create(applied);
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

    // The simulated instances step with their plan's model: the profile's for one, the shipped defaults for the other.
    const overrides = { "H100-80GB": profileCoefficients(applied) };
    const onProfile = await observedTpot(await servingInstance(namespace, "profiled"), overrides);
    expect(onProfile.predicted[0]).toBeGreaterThan(onProfile.shipped[1] * 1.2); // the two models are far apart
    expectWithin(onProfile.tpotMs, onProfile.predicted);
    const onDefaults = await observedTpot(await servingInstance(namespace, "shipped"), undefined);
    expectWithin(onDefaults.tpotMs, onDefaults.shipped);

    for (const name of ["profiled", "shipped"]) await custom.deleteNamespacedCustomObject({ ...sds, namespace, name });
  }, 300_000);
});
