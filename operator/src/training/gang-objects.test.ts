import { describe, expect, it } from "vitest";
import type { TrainingJob } from "../../../crds/src/training-job.js";
import { gangPodObject } from "./gang-objects.js";

const job = {
  apiVersion: "gpufleet.io/v1alpha1",
  kind: "TrainingJob",
  metadata: { name: "gpt", namespace: "ml", uid: "u1" },
  spec: { image: "trainer:1", command: ["train"], env: [{ name: "GPUFLEET_AGENT_SOCKET", value: "/elsewhere" }] },
} as unknown as TrainingJob;
const pod = { podName: "gpt-0", hostname: "gpt-0", nodeName: "n0", nodeRank: 0, gpus: 8, env: { RANK: "0" } };

describe("gangPodObject: the agent's worker socket", () => {
  it("mounts the configured host directory and sets GPUFLEET_AGENT_SOCKET, which spec.env cannot redirect", () => {
    const p = gangPodObject(job, pod, "gpt", {
      masterPort: 29500,
      attempt: 0,
      specHash: "s",
      planHash: "p",
      workerSocketDir: "/opt/run",
    });
    expect(p.spec?.volumes).toEqual([
      { name: "gpufleet-agent-socket", hostPath: { path: "/opt/run", type: "DirectoryOrCreate" } },
    ]);
    expect(p.spec?.containers[0]?.volumeMounts).toEqual([
      { name: "gpufleet-agent-socket", mountPath: "/run/gpufleet" },
    ]);
    expect(p.spec?.containers[0]?.env?.filter((e) => e.name === "GPUFLEET_AGENT_SOCKET")).toEqual([
      { name: "GPUFLEET_AGENT_SOCKET", value: "/run/gpufleet/agent.sock" },
    ]);
  });
});
