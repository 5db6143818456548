import { describe, expect, it } from "vitest";
import type { ServingDeployment } from "../../crds/src/serving-deployment.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import { OperatorMetrics } from "./metrics.js";

const sd = {
  metadata: { namespace: "ns", name: "chat" },
  status: {
    phase: "Available",
    readyInstances: 3,
    desiredInstances: 4,
    plan: {
      mode: "disaggregated",
      gpuModel: "H100-80GB",
      totalGpus: 6,
      goodputPerGpu: 1.5,
      colocatedGoodputPerGpu: 0.5,
    },
  },
} as unknown as ServingDeployment;
const job = {
  metadata: { namespace: "ns", name: "gpt" },
  status: {
    phase: "Running",
    restarts: 2,
    lastCheckpointStep: 1500,
    placement: { predictedStepMs: 500, obliviousStepMs: 1500 },
  },
} as unknown as TrainingJob;

describe("OperatorMetrics.observeResources", () => {
  it("exports status as gauges at scrape time and forgets deleted resources", async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    let sds: ServingDeployment[] = [sd];
    metrics.observeResources({ servingDeployments: () => sds, trainingJobs: () => [job] });
    const text = await metrics.registry.metrics();
    expect(text).toContain('gpufleet_operator_serving_goodput_per_gpu{namespace="ns",name="chat",plan="chosen"} 1.5');
    expect(text).toContain(
      'gpufleet_operator_serving_goodput_per_gpu{namespace="ns",name="chat",plan="colocated"} 0.5',
    );
    expect(text).toContain('gpufleet_operator_serving_instances{namespace="ns",name="chat",state="ready"} 3');
    expect(text).toContain('gpufleet_operator_training_restarts{namespace="ns",name="gpt"} 2');
    expect(text).toContain(
      'gpufleet_operator_training_predicted_step_seconds{namespace="ns",name="gpt",placement="oblivious"} 1.5',
    );
    expect(text).toContain('gpufleet_operator_resources{kind="TrainingJob",phase="Running"} 1');
    sds = [];
    expect(await metrics.registry.metrics()).not.toContain('name="chat"');
  });

  it("exports the autoscaler's desired instances per role and its drains from status.scaling", async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    const drain = {
      pod: "chat-h-d0",
      role: "decode",
      index: 0,
      startedTime: "2026-01-01T00:00:00Z",
      deadlineTime: "2026-01-01T00:10:00Z",
    };
    const scaled = {
      ...sd,
      status: {
        ...sd.status,
        scaling: {
          planHash: "h",
          generation: 1,
          desired: { prefill: 1, decode: 3 },
          draining: [{ ...drain, state: "Draining" }],
        },
      },
    } as ServingDeployment;
    metrics.observeResources({ servingDeployments: () => [scaled], trainingJobs: () => [] });
    const text = await metrics.registry.metrics();
    expect(text).toContain('gpufleet_operator_serving_desired_instances{namespace="ns",name="chat",role="decode"} 3');
    expect(text).toContain('gpufleet_operator_serving_desired_instances{namespace="ns",name="chat",role="prefill"} 1');
    expect(text).toContain(
      'gpufleet_operator_serving_draining_instances{namespace="ns",name="chat",state="Draining"} 1',
    );
    expect(text).toContain(
      'gpufleet_operator_serving_draining_instances{namespace="ns",name="chat",state="Drained"} 0',
    );
  });
});
