/**
 * Builders of the resources integration and e2e tests apply: one place for the sample model and the defaults a test
 * does not care about, so each test states only what it is about.
 */
import type { ServingDeployment, ServingDeploymentSpec } from "../../crds/src/serving-deployment.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import type { V1Node } from "@kubernetes/client-node";
import { modelShape } from "../../operator/src/serving/planner-bridge.js";
import { KwokNodeAnnotation } from "../../common/src/cluster-profile/profile.js";

/** Llama-3-8B's published shape (GQA with 8 KV heads, SwiGLU, 128k vocabulary). */
export const LLAMA_3_8B = {
  name: "meta-llama/Meta-Llama-3-8B-Instruct",
  layers: 32,
  hiddenSize: 4096,
  heads: 32,
  kvHeads: 8,
  vocabSize: 128256,
  intermediateSize: 14336,
  paramsBillions: 8.03,
};

/**
 * Llama-3-8B's shape under `name`, as the operator writes it into a serving pod (GPUFLEET_MODEL_SHAPE): what a
 * simulated instance started by hand needs to serve like a planned one.
 */
export function llama3ShapeJson(name: string, contextTokens = 8192): string {
  return JSON.stringify(modelShape({ ...LLAMA_3_8B, name, dtype: "bf16" } as never, contextTokens));
}

/** Keeps every other pod off a node a test made for itself; its own pods tolerate it. */
export const TEST_ONLY_TAINT = { key: "gpufleet.io/test-only", effect: "NoSchedule" } as const;

/** A kwok node the simulation agent gives 8 GPUs, tainted with TEST_ONLY_TAINT; `annotations` add to it. */
export function simulatedNodeBody(name: string, annotations: Record<string, string> = {}): V1Node {
  return {
    metadata: {
      name,
      annotations: {
        [KwokNodeAnnotation.key]: KwokNodeAnnotation.value,
        "gpufleet.io/sim-gpu-count": "8",
        ...annotations,
      },
    },
    spec: { taints: [TEST_ONLY_TAINT] },
  };
}

export type ServingSpecInput = Omit<Partial<ServingDeploymentSpec>, "slo" | "workload"> & {
  slo?: Partial<ServingDeploymentSpec["slo"]>;
  workload?: Partial<ServingDeploymentSpec["workload"]>;
};

/**
 * A Llama-3-8B chatbot on H100s, disaggregated, under 250 ms TTFT / 100 ms TPOT at 90%, unless `spec` says otherwise.
 */
export function servingDeployment(name: string, namespace: string, spec: ServingSpecInput = {}): ServingDeployment {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name, namespace },
    spec: {
      model: LLAMA_3_8B,
      gpu: { model: "H100-80GB" },
      mode: "disaggregated",
      engine: { image: "vllm/vllm-openai:v0.11.0", args: ["--max-model-len", "8192"] },
      ...spec,
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90, ...spec.slo },
      workload: { arrivalRatePerSec: 10, preset: "chatbot", ...spec.workload },
    } as ServingDeploymentSpec,
  };
}

/** A one-node, 8-GPU, TP8 job of a 7.5B model checkpointing to /ckpt/<name>, unless `spec` says otherwise. */
export function trainingJob(name: string, namespace: string, spec: Partial<TrainingJob["spec"]> = {}): TrainingJob {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "TrainingJob",
    metadata: { name, namespace },
    spec: {
      image: "nvcr.io/nvidia/pytorch:25.01-py3",
      command: ["torchrun", "train.py"],
      nodes: 1,
      gpusPerNode: 8,
      parallelism: { tp: 8, pp: 1, dp: 1 },
      model: { paramsBillions: 7.5, layers: 36, hiddenSize: 4096 },
      checkpoint: { path: `/ckpt/${name}`, intervalSteps: 1000 },
      ...spec,
    } as TrainingJob["spec"],
  };
}
