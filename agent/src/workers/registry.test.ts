import { describe, expect, it } from "vitest";
import type { RegisterRequest__Output } from "../grpc/generated/gpufleet/worker/v1/RegisterRequest.js";
import type { WorkerCommand } from "../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { InvalidRegistrationError, NoCommandStreamError, UnknownWorkerError, WorkerRegistry } from "./registry.js";

const registration = (patch: Partial<RegisterRequest__Output> = {}): RegisterRequest__Output => ({
  workerId: "uid-1/0", podNamespace: "ns", podName: "train-0", podUid: "uid-1", nodeName: "node-a", kind: "training",
  gpuUuids: ["GPU-1"], rank: 0, worldSize: 4, simulated: false, ...patch,
});

const newRegistry = (): WorkerRegistry => new WorkerRegistry({ heartbeatIntervalMs: 1000, missedHeartbeatsLimit: 3, servesNode: (n) => n.startsWith("node-") });

describe("WorkerRegistry", () => {
  it("declares a worker missing after the limit of missed heartbeats, once, and recovers it", () => {
    const r = newRegistry();
    expect(r.register(registration(), 0).event).toBe("registered");
    expect(r.checkHeartbeats(3000)).toEqual([]); // exactly at the limit: still healthy
    r.heartbeat("uid-1/0", 2500);
    expect(r.checkHeartbeats(5500)).toEqual([]);
    const events = r.checkHeartbeats(5501);
    expect(events.map((e) => [e.event, e.worker.workerId])).toEqual([["missing", "uid-1/0"]]);
    expect(r.checkHeartbeats(9000)).toEqual([]); // reported once
    expect(r.heartbeat("uid-1/0", 9001)?.event).toBe("recovered");
    expect(r.get("uid-1/0").state).toBe("healthy");
  });

  it.each([
    { name: "no worker id", patch: { workerId: "" }, error: /worker_id/ },
    { name: "no pod", patch: { podName: "" }, error: /pod_name/ },
    { name: "unknown kind", patch: { kind: "mining" }, error: /kind "mining"/ },
    { name: "a node this agent does not serve", patch: { nodeName: "other" }, error: /not served/ },
    { name: "rank outside world", patch: { rank: 4 }, error: /rank 4/ },
  ])("refuses a registration with $name", ({ patch, error }) => {
    expect(() => newRegistry().register(registration(patch), 0)).toThrow(InvalidRegistrationError);
    expect(() => newRegistry().register(registration(patch), 0)).toThrow(error);
  });

  it("tracks workers by pod and node and removes a pod's workers", () => {
    const r = newRegistry();
    r.register(registration(), 0);
    r.register(registration({ workerId: "uid-1/1", rank: 1 }), 0);
    r.register(registration({ workerId: "uid-2/0", podName: "serve-0", kind: "serving", rank: -1, worldSize: 0, nodeName: "node-b" }), 0);
    expect(r.byPod("ns", "train-0").map((w) => w.rank)).toEqual([0, 1]);
    expect(r.list("node-b").map((w) => w.workerId)).toEqual(["uid-2/0"]);
    expect(r.removePod("ns", "train-0").map((e) => e.event)).toEqual(["removed", "removed"]);
    expect(r.list()).toHaveLength(1);
  });

  it("routes commands to the attached stream and says why it cannot", () => {
    const r = newRegistry();
    r.register(registration(), 0);
    const command: WorkerCommand = { commandId: "c1", drain: { deadlineMs: 5 } };
    expect(() => r.sendCommand("uid-1/0", command)).toThrow(NoCommandStreamError);
    expect(() => r.sendCommand("nobody", command)).toThrow(UnknownWorkerError);
    const got: WorkerCommand[] = [];
    const detach = r.attachCommands("uid-1/0", (c) => got.push(c));
    r.sendCommand("uid-1/0", command);
    expect(got).toEqual([command]);
    detach();
    expect(() => r.sendCommand("uid-1/0", command)).toThrow(NoCommandStreamError);
  });
});
