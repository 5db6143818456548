/**
 * TrainingJob fields frozen once a checkpoint exists (crds/src/training-job.ts TRAINING_JOB_FROZEN_FIELDS), through
 * the real API server with kubectl: before the first checkpoint every field may change; once status says a
 * checkpoint exists, a change of the model, the checkpoint path or the gang's shape is refused naming the field,
 * while other fields (placement, fault policy, checkpoint interval) and status writes still go through.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { TRAINING_JOB_FROZEN_FIELDS } from "../../../crds/src/training-job.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import { installCrds } from "../../support/operator.js";
import { validTrainingJob, withField } from "../operator/fixtures.js";

let cluster: TestCluster;
let namespace: string;

beforeAll(async () => {
  cluster = testCluster();
  await installCrds(cluster.kubeconfigPath);
  namespace = await cluster.freshNamespace("immutable");
});

const apply = (object: Record<string, unknown>) =>
  kubectl(cluster.kubeconfigPath, ["apply", "-f", "-"], stringify(object));
const setCheckpoint = (name: string, step: number) =>
  kubectl(cluster.kubeconfigPath, [
    "patch",
    "trainingjob",
    name,
    "-n",
    namespace,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status: { lastCheckpointStep: step } }),
  ]);

/** A change of each frozen field that is itself valid (the shape rule holds), so only immutability can refuse it. */
const CHANGES: Record<
  (typeof TRAINING_JOB_FROZEN_FIELDS)[number]["field"],
  (o: Record<string, unknown>) => Record<string, unknown>
> = {
  model: (o) => withField(o, "spec.model.paramsBillions", 13),
  "checkpoint.path": (o) => withField(o, "spec.checkpoint.path", "/ckpt/elsewhere"),
  nodes: (o) => withField(withField(o, "spec.nodes", 4), "spec.parallelism", { tp: 8, pp: 1, dp: 4 }),
  gpusPerNode: (o) => withField(withField(o, "spec.gpusPerNode", 4), "spec.parallelism", { tp: 4, pp: 1, dp: 2 }),
  parallelism: (o) => withField(o, "spec.parallelism", { tp: 4, pp: 2, dp: 2 }),
};

describe("TrainingJob immutability once a checkpoint exists", () => {
  it("every frozen field may change before the first checkpoint", async () => {
    for (const [field, change] of Object.entries(CHANGES)) {
      const name = `pre-${field.replace(".", "-").toLowerCase()}`;
      const base = validTrainingJob(name, namespace);
      expect((await apply(base)).code).toBe(0);
      const result = await apply(change(base));
      expect(result.stderr, field).toBe("");
      expect(result.code).toBe(0);
    }
  });

  it.each(TRAINING_JOB_FROZEN_FIELDS.map((f) => [f.field] as const))(
    "spec.%s is refused after a checkpoint, naming the field",
    async (field) => {
      const name = `post-${field.replace(".", "-").toLowerCase()}`;
      const base = validTrainingJob(name, namespace);
      expect((await apply(base)).code).toBe(0);
      const patched = await setCheckpoint(name, 100);
      expect(patched.stderr).toBe("");
      const result = await apply(CHANGES[field](base));
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`spec.${field}: Invalid value`);
      expect(result.stderr).toContain(
        `spec.${field} is immutable once a checkpoint exists (status.lastCheckpointStep > 0)`,
      );
    },
  );

  it("other fields and status still change after a checkpoint", async () => {
    const name = "post-mutable";
    const base = validTrainingJob(name, namespace);
    expect((await apply(base)).code).toBe(0);
    expect((await setCheckpoint(name, 100)).code).toBe(0);
    const changed = withField(
      withField(withField(base, "spec.placement", { gpuModel: "H100-80GB", nicAware: false }), "spec.faultPolicy", {
        maxRestarts: 7,
      }),
      "spec.checkpoint.intervalSteps",
      50,
    );
    const result = await apply(changed);
    expect(result.stderr).toBe("");
    expect((await setCheckpoint(name, 200)).code).toBe(0);
    const job = JSON.parse(
      (await kubectl(cluster.kubeconfigPath, ["get", "tj", name, "-n", namespace, "-o", "json"])).stdout,
    );
    expect(job.spec).toMatchObject({
      placement: { gpuModel: "H100-80GB", nicAware: false },
      faultPolicy: { maxRestarts: 7 },
      checkpoint: { intervalSteps: 50 },
    });
    expect(job.status.lastCheckpointStep).toBe(200);
  });
});
