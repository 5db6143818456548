/** Valid sample specs the operator tests start from; each case mutates one field. */
export function validServingDeployment(name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name, namespace },
    spec: {
      model: {
        name: "llama-3-8b",
        layers: 32,
        hiddenSize: 4096,
        heads: 32,
        kvHeads: 8,
        vocabSize: 128256,
        paramsBillions: 8,
      },
      slo: { ttftMs: 250, tpotMs: 100 },
      workload: { arrivalRatePerSec: 10, preset: "chatbot" },
      engine: { image: "vllm/vllm-openai:v0.11.0" },
    },
  };
}

export function validTrainingJob(name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "TrainingJob",
    metadata: { name, namespace },
    spec: {
      image: "nvcr.io/nvidia/pytorch:25.01-py3",
      command: ["torchrun", "train.py"],
      nodes: 2,
      gpusPerNode: 8,
      parallelism: { tp: 8, pp: 1, dp: 2 },
      model: { paramsBillions: 7, layers: 32, hiddenSize: 4096 },
      checkpoint: { path: "/ckpt/job" },
    },
  };
}

/** Deep-sets `path` (dot-separated) to `value`; `undefined` deletes the field. */
export function withField<T extends Record<string, unknown>>(object: T, path: string, value: unknown): T {
  const copy = structuredClone(object);
  const parts = path.split(".");
  let node = copy as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}
