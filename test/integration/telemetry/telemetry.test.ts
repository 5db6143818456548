/**
 * Telemetry into the operator, end to end with real parts: a worker speaking the worker protocol to an agent
 * (AgentCore in this process, its Unix socket), the agent publishing to JetStream (a real nats-server with -js),
 * the operator's durable consumers feeding its read model and writing TrainingJob status on the local cluster.
 *
 * - a checkpoint report reaches TrainingJob status.lastCheckpointStep;
 * - the operator stopped while records flow and started again: together the two read models hold exactly the
 *   records published, none lost and none twice;
 * - NATS stopped for 30 s and restarted: every record published before, at and during the outage arrives.
 * The last two use a nats-server of their own (stopped mid-test; counts free of other test files' records).
 */
import type { V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import type { TrainingJob } from "../../../crds/src/training-job.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { DEFAULT_READ_MODEL_LIMITS, type TelemetryViews } from "../../../operator/src/telemetry/read-model.js";
import { waitFor } from "../../harness/wait.js";
import { startTestAgent, type TestAgent } from "../../support/agent.js";
import { testCluster } from "../../support/cluster.js";
import { startInProcessOperator } from "../../support/operator.js";
import { startNatsServer, type NatsServer } from "../agent/nats-server.js";

const cluster = testCluster();
const group = { group: "gpufleet.io", version: "v1alpha1", plural: "trainingjobs" };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

const unique = () => Math.random().toString(36).slice(2, 8);
/** Record i of a run: (communicator, rank, sequence) is distinct for every i. */
function record(run: string, i: number): CollectiveRecord {
  const t = 1_700_000_000_000_000 + i;
  return {
    communicator: `${run}-${i % 4}`,
    rank: Math.floor(i / 4) % 8,
    nRanks: 8,
    collective: "AllReduce",
    sequence: Math.floor(i / 32),
    bytes: 1 << 20,
    startUnixUs: t,
    endUnixUs: t + 50,
    peers: [],
  };
}
const keyOf = (r: Pick<CollectiveRecord, "communicator" | "rank" | "sequence">) =>
  `${r.communicator}/${r.rank}/${r.sequence}`;

/** The (communicator/rank/sequence) keys of a run that a read model holds. */
function heldKeys(views: TelemetryViews, run: string): Set<string> {
  const keys = new Set<string>();
  for (const c of views.communicators()) {
    if (!c.communicator.startsWith(`${run}-`)) continue;
    for (const [sequence, ranks] of c.sequences)
      for (const rank of ranks.keys()) keys.add(keyOf({ communicator: c.communicator, rank, sequence }));
  }
  return keys;
}

/** Reports records [from, to) through the worker protocol, 100 per call, as one rank's profiler plugin would. */
async function report(agent: TestAgent, workerId: string, run: string, from: number, to: number): Promise<number> {
  let accepted = 0;
  for (let i = from; i < to; i += 100) {
    const records = Array.from({ length: Math.min(100, to - i) }, (_, k) => record(run, i + k));
    accepted += (await agent.worker.reportCollectives({ workerId, records })).accepted;
  }
  return accepted;
}

const fakePod = (name: string): V1Pod => ({
  metadata: { namespace: "telemetry-it", name, uid: `uid-${name}` },
  spec: { nodeName: "telemetry-node", containers: [] },
});
const wideWindow = { readModelLimits: { ...DEFAULT_READ_MODEL_LIMITS, maxSequencesPerCommunicator: 1_000_000 } };

async function ownNats(): Promise<NatsServer> {
  const nats = await startNatsServer();
  cleanup.push(() => nats.close());
  return nats;
}

async function agentOn(natsUrl: string, nodeNames: string[]): Promise<TestAgent> {
  const agent = await startTestAgent({ natsUrl, nodeNames });
  cleanup.push(() => agent.stop());
  return agent;
}

async function operatorOn(natsUrl: string, identity: string, durablePrefix: string): Promise<OperatorHandle> {
  const operator = await startInProcessOperator(cluster, identity, { natsUrl, durablePrefix, options: wideWindow });
  cleanup.push(() => operator.stop());
  return operator;
}

describe("telemetry into the operator", () => {
  it("a worker's checkpoint report reaches TrainingJob status through agent -> JetStream -> operator", async () => {
    expect(cluster.natsUrl, "the harness runs NATS").not.toBe("");
    const namespace = await cluster.freshNamespace("tele-ckpt");
    const operator = await operatorOn(cluster.natsUrl, "telemetry-ckpt", `ckpt-${unique()}`);
    await cluster.objects.create({
      apiVersion: "gpufleet.io/v1alpha1",
      kind: "TrainingJob",
      metadata: { name: "llm", namespace },
      spec: {
        image: "nvcr.io/nvidia/pytorch:25.01-py3",
        command: ["torchrun", "train.py"],
        nodes: 1,
        gpusPerNode: 8,
        parallelism: { tp: 8, pp: 1, dp: 1 },
        model: { paramsBillions: 7, layers: 32, hiddenSize: 4096 },
        checkpoint: { path: "/ckpt/llm" },
      },
    });
    const pod = await waitFor(
      async () => {
        const pods = (
          await cluster.core.listNamespacedPod({ namespace, labelSelector: "gpufleet.io/training-job=llm" })
        ).items;
        return pods.find((p) => p.spec?.nodeName && p.status?.phase === "Running");
      },
      { description: "the job's pod Running on a node", timeoutMs: 60_000 },
    );
    const agent = await agentOn(cluster.natsUrl, [pod.spec!.nodeName!]);
    const workerId = await agent.registerPod(pod);

    expect(
      await agent.worker.reportCheckpoint({ workerId, step: 1200, unixMs: Date.now(), path: "/ckpt/llm/step-1200" }),
    ).toMatchObject({ accepted: 1 });
    const job = await waitFor(
      async () => {
        const j = (await cluster.customObjects.getNamespacedCustomObject({
          ...group,
          namespace,
          name: "llm",
        })) as TrainingJob;
        return j.status?.lastCheckpointStep === 1200 ? j : undefined;
      },
      { description: "status.lastCheckpointStep 1200", timeoutMs: 30_000 },
    );
    expect(job.status?.lastCheckpointStep).toBe(1200);
    // The read model takes the report once the status write's response is handled, which can come after this
    // test's own read of the status has returned.
    const held = await waitFor(async () => operator.telemetry.lastCheckpoint(`${namespace}/llm`), {
      description: "the read model's checkpoint",
      timeoutMs: 5_000,
    });
    expect(held).toMatchObject({
      step: 1200,
      path: "/ckpt/llm/step-1200",
      podName: pod.metadata?.name,
      rank: 0,
    });

    // An older report (a slower rank) never lowers it; the next one raises it.
    await agent.worker.reportCheckpoint({ workerId, step: 1000, unixMs: Date.now(), path: "/ckpt/llm/step-1000" });
    await agent.worker.reportCheckpoint({ workerId, step: 1500, unixMs: Date.now(), path: "/ckpt/llm/step-1500" });
    await waitFor(
      async () => {
        const j = (await cluster.customObjects.getNamespacedCustomObject({
          ...group,
          namespace,
          name: "llm",
        })) as TrainingJob;
        return j.status?.lastCheckpointStep === 1500;
      },
      { description: "status.lastCheckpointStep 1500", timeoutMs: 30_000 },
    );

    // Bad input gets a clear error and changes nothing.
    await expect(agent.worker.reportCheckpoint({ workerId, step: 2000, unixMs: Date.now(), path: "" })).rejects.toThrow(
      /INVALID_ARGUMENT|path must name/,
    );
    await expect(
      agent.worker.reportCheckpoint({ workerId: "nobody", step: 2000, unixMs: Date.now(), path: "/x" }),
    ).rejects.toThrow(/not registered/);
    await cluster.customObjects.deleteNamespacedCustomObject({ ...group, namespace, name: "llm" });
  });

  it("an operator stopped while records flow and started again loses and duplicates nothing", async () => {
    const nats = await ownNats();
    const agent = await agentOn(nats.url, ["telemetry-node"]);
    const workerId = await agent.registerPod(fakePod("restart-0"));
    const run = `r${unique()}`;
    const durable = `restart-${unique()}`;
    const total = 30_000;

    const first = await operatorOn(nats.url, "telemetry-restart-1", durable);
    expect(await report(agent, workerId, run, 0, 10_000)).toBe(10_000);
    await waitFor(() => first.telemetry.counters().recordsAccepted > 0, {
      description: "the first operator reading records",
      timeoutMs: 30_000,
    });
    // Stop it while the next 10,000 are being reported, then report 10,000 more with no operator at all.
    const [, midStream] = await Promise.all([first.stop(), report(agent, workerId, run, 10_000, 20_000)]);
    expect(midStream).toBe(10_000);
    expect(await report(agent, workerId, run, 20_000, total)).toBe(10_000);
    await agent.agent.publisher.drain();

    const second = await operatorOn(nats.url, "telemetry-restart-2", durable);
    const firstAccepted = first.telemetry.counters().recordsAccepted;
    await waitFor(() => firstAccepted + second.telemetry.counters().recordsAccepted >= total, {
      description: `${total} records across both operators`,
      timeoutMs: 60_000,
    });
    await waitFor(
      async () => {
        const lag = (await second.telemetryService.lag())["collectives"];
        return lag?.pending === 0 && lag.ackPending === 0;
      },
      { description: "collectives consumer caught up", timeoutMs: 30_000 },
    );

    const before = heldKeys(first.telemetry, run);
    const after = heldKeys(second.telemetry, run);
    const overlap = [...before].filter((k) => after.has(k));
    const union = new Set([...before, ...after]);
    const expected = new Set(Array.from({ length: total }, (_, i) => keyOf(record(run, i))));
    expect(firstAccepted, "the first operator read some").toBeGreaterThan(0);
    expect(firstAccepted, "and stopped before the end").toBeLessThan(total);
    expect(before.size + after.size).toBe(total);
    expect(overlap, "no record read by both operators").toEqual([]);
    expect(union.size).toBe(total);
    expect(
      [...expected].filter((k) => !union.has(k)),
      "no record lost",
    ).toEqual([]);
    expect(first.telemetry.counters().recordsDuplicate + second.telemetry.counters().recordsDuplicate).toBe(0);
    expect(await agent.counter("gpufleet_agent_telemetry_dropped_total", "collectives")).toBe(0);
  }, 180_000);

  it("NATS stopped for 30 s and restarted: no record from before, at or during the outage is lost", async () => {
    const nats = await ownNats();
    const agent = await agentOn(nats.url, ["telemetry-node"]);
    const workerId = await agent.registerPod(fakePod("outage-0"));
    const operator = await operatorOn(nats.url, "telemetry-outage", `outage-${unique()}`);
    const run = `o${unique()}`;

    expect(await report(agent, workerId, run, 0, 5000)).toBe(5000);
    await agent.agent.publisher.drain(); // stored in the stream: published before the outage
    expect(await report(agent, workerId, run, 5000, 7000)).toBe(2000); // in flight as NATS goes down
    await nats.stop();
    const duringOutage = await report(agent, workerId, run, 7000, 10_000);
    expect(duringOutage, "the agent buffers what workers report while NATS is away").toBe(3000);
    await new Promise((r) => setTimeout(r, 30_000)); // the outage itself
    expect(agent.agent.publisher.buffered() + agent.agent.publisher.unacknowledged()).toBeGreaterThan(0);
    await nats.start();

    await waitFor(() => operator.telemetry.counters().recordsAccepted >= 10_000, {
      description: "10,000 records in the read model after the outage",
      timeoutMs: 90_000,
    });
    const held = heldKeys(operator.telemetry, run);
    const expected = Array.from({ length: 10_000 }, (_, i) => keyOf(record(run, i)));
    expect(
      expected.filter((k) => !held.has(k)),
      "no record lost",
    ).toEqual([]);
    expect(held.size).toBe(10_000);
    expect(operator.telemetry.counters().recordsAccepted).toBe(10_000);
    expect(await agent.counter("gpufleet_agent_telemetry_dropped_total", "collectives")).toBe(0);
    expect(
      await agent.counter("gpufleet_agent_telemetry_publish_retries_total", "collectives"),
      "publishes failed during the outage and were retried",
    ).toBeGreaterThan(0);
  }, 240_000);
});
