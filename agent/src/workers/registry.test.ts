import { describe, expect, it } from "vitest";
import type { RegisterRequest__Output } from "../grpc/generated/gpufleet/worker/v1/RegisterRequest.js";
import type { WorkerCommand } from "../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import {
  AckTimeoutError,
  CommandStreamClosedError,
  InvalidCommandError,
  InvalidRegistrationError,
  NoCommandStreamError,
  UnknownCommandError,
  UnknownWorkerError,
  WorkerRegistry,
} from "./registry.js";

const registration = (patch: Partial<RegisterRequest__Output> = {}): RegisterRequest__Output => ({
  workerId: "uid-1/0",
  podNamespace: "ns",
  podName: "train-0",
  podUid: "uid-1",
  nodeName: "node-a",
  kind: "training",
  gpuUuids: ["GPU-1"],
  rank: 0,
  worldSize: 4,
  simulated: false,
  ...patch,
});

const newRegistry = (): WorkerRegistry =>
  new WorkerRegistry({ heartbeatIntervalMs: 1000, missedHeartbeatsLimit: 3, servesNode: (n) => n.startsWith("node-") });

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
    r.register(
      registration({
        workerId: "uid-2/0",
        podName: "serve-0",
        kind: "serving",
        rank: -1,
        worldSize: 0,
        nodeName: "node-b",
      }),
      0,
    );
    expect(r.byPod("ns", "train-0").map((w) => w.rank)).toEqual([0, 1]);
    expect(r.list("node-b").map((w) => w.workerId)).toEqual(["uid-2/0"]);
    expect(r.removePod("ns", "train-0").map((e) => e.event)).toEqual(["removed", "removed"]);
    expect(r.list()).toHaveLength(1);
  });

  it("routes commands to the attached stream and says why it cannot", async () => {
    const r = newRegistry();
    r.register(registration(), 0);
    const command: WorkerCommand = { commandId: "c1", drain: { deadlineMs: 5 } };
    expect(() => r.sendCommand("uid-1/0", command, 1000, 0)).toThrow(NoCommandStreamError);
    expect(() => r.sendCommand("nobody", command, 1000, 0)).toThrow(UnknownWorkerError);
    const got: WorkerCommand[] = [];
    const detach = r.attachCommands("uid-1/0", (c) => got.push(c));
    const answer = r.sendCommand("uid-1/0", command, 1000, 0);
    expect(got).toEqual([command]);
    expect(r.acknowledge({ workerId: "uid-1/0", commandId: "c1", outcome: "applied", reason: "" }, 7)).toBe(1);
    expect(await answer).toEqual({ commandId: "c1", outcome: "applied", reason: "", acknowledgedUnixMs: 7 });
    detach();
    expect(() => r.sendCommand("uid-1/0", { ...command, commandId: "c2" }, 1000, 0)).toThrow(NoCommandStreamError);
  });

  it("answers a retried command_id with the first outcome and never sends it twice", async () => {
    const r = newRegistry();
    r.register(registration(), 0);
    const got: WorkerCommand[] = [];
    r.attachCommands("uid-1/0", (c) => got.push(c));
    const command: WorkerCommand = { commandId: "c1", abort: { reason: "test" } };
    const first = r.sendCommand("uid-1/0", command, 1000, 0);
    const retryWhilePending = r.sendCommand("uid-1/0", command, 1000, 1);
    r.acknowledge({ workerId: "uid-1/0", commandId: "c1", outcome: "rejected", reason: "not running" }, 2);
    expect(r.acknowledge({ workerId: "uid-1/0", commandId: "c1", outcome: "applied", reason: "" }, 3)).toBe(0);
    const retryAfterAck = await r.sendCommand("uid-1/0", command, 1000, 4);
    for (const answer of [await first, await retryWhilePending, retryAfterAck])
      expect(answer).toMatchObject({ outcome: "rejected", reason: "not running", acknowledgedUnixMs: 2 });
    expect(got).toHaveLength(1);
    expect(() => r.sendCommand("other", command, 1000, 5)).toThrow(InvalidCommandError);
  });

  it("times out a command nobody acknowledges, and still records a late ack for a retry", async () => {
    const r = newRegistry();
    r.register(registration(), 0);
    r.attachCommands("uid-1/0", () => {});
    await expect(r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 20, 0)).rejects.toThrow(
      AckTimeoutError,
    );
    r.acknowledge({ workerId: "uid-1/0", commandId: "c1", outcome: "applied", reason: "" }, 100);
    expect(await r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 20, 101)).toMatchObject({
      outcome: "applied",
    });
  });

  it("fails pending commands at once when the worker's stream closes, and forgets them so a retry re-sends", async () => {
    const r = newRegistry();
    r.register(registration(), 0);
    const got: WorkerCommand[] = [];
    const detach = r.attachCommands("uid-1/0", (c) => got.push(c));
    const pending = r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 60_000, 0);
    detach();
    await expect(pending).rejects.toThrow(CommandStreamClosedError);
    expect(r.pendingCommands()).toBe(0);
    r.attachCommands("uid-1/0", (c) => got.push(c));
    void r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 60_000, 1).catch(() => {});
    expect(got.map((c) => c.commandId)).toEqual(["c1", "c1"]);
    r.remove("uid-1/0");
    expect(r.pendingCommands()).toBe(0);
  });

  it.each([
    { name: "an unknown outcome", ack: { commandId: "c1", outcome: "done", reason: "" }, error: InvalidCommandError },
    {
      name: "a rejection without a reason",
      ack: { commandId: "c1", outcome: "rejected", reason: "" },
      error: InvalidCommandError,
    },
    {
      name: "a command never sent",
      ack: { commandId: "zz", outcome: "applied", reason: "" },
      error: UnknownCommandError,
    },
  ])("refuses an ack with $name", ({ ack, error }) => {
    const r = newRegistry();
    r.register(registration(), 0);
    r.attachCommands("uid-1/0", () => {});
    void r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 60_000, 0).catch(() => {});
    expect(() => r.acknowledge({ workerId: "uid-1/0", ...ack }, 1)).toThrow(error);
    r.remove("uid-1/0");
  });

  it("forgets acknowledged commands after the retention", async () => {
    const r = new WorkerRegistry({
      heartbeatIntervalMs: 1000,
      missedHeartbeatsLimit: 3,
      servesNode: () => true,
      commandRetentionMs: 1000,
    });
    r.register(registration(), 0);
    const got: WorkerCommand[] = [];
    r.attachCommands("uid-1/0", (c) => got.push(c));
    const first = r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 1000, 0);
    r.acknowledge({ workerId: "uid-1/0", commandId: "c1", outcome: "applied", reason: "" }, 1);
    await first;
    void r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 1000, 500);
    void r.sendCommand("uid-1/0", { commandId: "c1", drain: { deadlineMs: 1 } }, 20, 1001).catch(() => {});
    expect(got).toHaveLength(2); // the second send at 500 ms was answered from memory; at 1001 ms it is new
  });
});
