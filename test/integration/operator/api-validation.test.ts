/**
 * The API rejects bad specs at `kubectl apply` with a message that says what is wrong, before any controller sees
 * them: OpenAPI bounds and enums, and the CEL rules generated from crds/src.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { installCrds } from "../../support/operator.js";
import { kubectl } from "../../support/kubectl.js";
import { validServingDeployment, validTrainingJob, withField } from "./fixtures.js";

let cluster: TestCluster;
let namespace: string;

beforeAll(async () => {
  cluster = testCluster();
  await installCrds(cluster.kubeconfigPath);
  namespace = await cluster.freshNamespace("api");
});

const sd = (mutate: (o: Record<string, unknown>) => Record<string, unknown>) => () =>
  mutate(validServingDeployment("sd-case", namespace));
const tj = (mutate: (o: Record<string, unknown>) => Record<string, unknown>) => () =>
  mutate(validTrainingJob("tj-case", namespace));

const invalidCases: [string, () => Record<string, unknown>, RegExp][] = [
  ["TTFT SLO of zero", sd((o) => withField(o, "spec.slo.ttftMs", 0)), /spec\.slo\.ttftMs.*should be greater than 0/],
  ["negative TPOT SLO", sd((o) => withField(o, "spec.slo.tpotMs", -5)), /spec\.slo\.tpotMs.*should be greater than 0/],
  [
    "attainment above 100%",
    sd((o) => withField(o, "spec.slo.attainmentPercent", 150)),
    /spec\.slo\.attainmentPercent.*less than or equal to 100/,
  ],
  [
    "heads not dividing hidden size",
    sd((o) => withField(o, "spec.model.heads", 30)),
    /model\.hiddenSize must be divisible by model\.heads/,
  ],
  [
    "KV heads not dividing heads",
    sd((o) => withField(o, "spec.model.kvHeads", 5)),
    /model\.kvHeads must divide model\.heads/,
  ],
  [
    "model without size",
    sd((o) => withField(o, "spec.model.paramsBillions", undefined)),
    /model needs paramsBillions or weightBytes/,
  ],
  [
    "two workload sources",
    sd((o) =>
      withField(withField(o, "spec.workload.promptTokens", { mean: 100 }), "spec.workload.outputTokens", { mean: 10 }),
    ),
    /workload needs exactly one of preset, promptTokens\/outputTokens or traceRef/,
  ],
  [
    "prompt lengths without output lengths",
    sd((o) => withField(withField(o, "spec.workload.preset", undefined), "spec.workload.promptTokens", { mean: 100 })),
    /promptTokens and workload\.outputTokens go together/,
  ],
  [
    "token max below mean",
    sd((o) =>
      withField(
        withField(withField(o, "spec.workload.preset", undefined), "spec.workload.promptTokens", {
          mean: 100,
          max: 50,
        }),
        "spec.workload.outputTokens",
        { mean: 10 },
      ),
    ),
    /max must be at least mean/,
  ],
  [
    "unknown GPU model",
    sd((o) => withField(o, "spec.gpu", { model: "H900" })),
    /spec\.gpu\.model: Unsupported value: "H900"/,
  ],
  ["unknown mode", sd((o) => withField(o, "spec.mode", "turbo")), /spec\.mode: Unsupported value: "turbo"/],
  [
    "scaling bounds inverted",
    sd((o) => withField(o, "spec.scaling", { minInstances: 4, maxInstances: 2 })),
    /scaling\.minInstances must not exceed scaling\.maxInstances/,
  ],
  [
    "port out of range",
    sd((o) => withField(o, "spec.engine.port", 70000)),
    /spec\.engine\.port.*less than or equal to 65535/,
  ],
  [
    "missing engine image",
    sd((o) => withField(o, "spec.engine.image", undefined)),
    /spec\.engine\.image: Required value/,
  ],
  [
    "name too long",
    sd((o) => withField(o, "metadata.name", "x".repeat(41))),
    /metadata\.name must be at most 40 characters/,
  ],
  [
    "tp × pp × dp not matching the GPUs",
    tj((o) => withField(o, "spec.parallelism", { tp: 8, pp: 1, dp: 3 })),
    /parallelism\.tp × pp × dp must equal nodes × gpusPerNode/,
  ],
  [
    "tp not a power of two",
    tj((o) => withField(withField(o, "spec.gpusPerNode", 6), "spec.parallelism", { tp: 3, pp: 1, dp: 4 })),
    /parallelism\.tp must be a power of two/,
  ],
  [
    "tp larger than a node",
    tj((o) => withField(o, "spec.parallelism", { tp: 16, pp: 1, dp: 1 })),
    /parallelism\.tp must divide gpusPerNode/,
  ],
  [
    "more stages than layers",
    tj((o) => withField(withField(o, "spec.model.layers", 1), "spec.parallelism", { tp: 8, pp: 2, dp: 1 })),
    /parallelism\.pp cannot exceed model\.layers/,
  ],
  ["empty command", tj((o) => withField(o, "spec.command", [])), /spec\.command.*should have at least 1 items/],
  [
    "negative restart budget",
    tj((o) => withField(o, "spec.faultPolicy", { maxRestarts: -1 })),
    /spec\.faultPolicy\.maxRestarts.*greater than or equal to 0/,
  ],
  [
    "empty checkpoint path",
    tj((o) => withField(o, "spec.checkpoint.path", "")),
    /spec\.checkpoint\.path.*at least 1 chars long/,
  ],
];

describe("kubectl apply rejects invalid specs with a clear message", () => {
  it.each(invalidCases)("%s", async (_name, build, message) => {
    const result = await kubectl(cluster.kubeconfigPath, ["apply", "-f", "-"], stringify(build()));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it("accepts the valid bases and fills in defaults", async () => {
    for (const object of [validServingDeployment("sd-ok", namespace), validTrainingJob("tj-ok", namespace)]) {
      const result = await kubectl(cluster.kubeconfigPath, ["apply", "-f", "-"], stringify(object));
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
    }
    const sdOut = JSON.parse(
      (await kubectl(cluster.kubeconfigPath, ["get", "sd", "sd-ok", "-n", namespace, "-o", "json"])).stdout,
    );
    expect(sdOut.spec).toMatchObject({
      mode: "auto",
      slo: { attainmentPercent: 90 },
      model: { dtype: "bf16" },
      engine: { port: 8000 },
      scaling: { minInstances: 1 },
    });
    const tjOut = JSON.parse(
      (await kubectl(cluster.kubeconfigPath, ["get", "tj", "tj-ok", "-n", namespace, "-o", "json"])).stdout,
    );
    expect(tjOut.spec).toMatchObject({
      faultPolicy: { maxRestarts: 3 },
      placement: { nicAware: true },
      checkpoint: { intervalSteps: 1000 },
    });
  });

  it("lists both kinds under the gpufleet category and short names with printer columns", async () => {
    const result = await kubectl(cluster.kubeconfigPath, ["get", "gpufleet", "-n", namespace]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/NAME\s+PHASE\s+READY\s+PLAN\s+GOODPUT\/GPU\s+AGE/);
    expect(result.stdout).toMatch(/NAME\s+PHASE\s+READY\s+PLAN\s+RESTARTS\s+AGE/);
    expect((await kubectl(cluster.kubeconfigPath, ["get", "sd,tj", "-n", namespace])).stdout).toMatch(
      /servingdeployment\.gpufleet\.io\/sd-ok[\s\S]*trainingjob\.gpufleet\.io\/tj-ok/,
    );
  });
});
