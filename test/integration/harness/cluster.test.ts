import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoreV1Api, VersionApi } from "@kubernetes/client-node";
import type { V1Pod } from "@kubernetes/client-node";
import { connect, StringCodec } from "nats";
import { describe, expect, inject, it } from "vitest";
import { GpuResource, parseNodeTopology } from "../../../crds/src/topology.js";
import { ClusterStartError, natsGreeting, startLocalCluster } from "../../harness/cluster.js";
import { ensureStreams, streamName } from "../../../common/src/telemetry/streams.js";
import { freshNamespace, getTestCluster, waitFor } from "../../harness/context.js";
import { claimRunDir, killStale, processAlive, spawnManaged } from "../../harness/processes.js";
import { expandProfile, loadProfile } from "../../../common/src/cluster-profile/profile.js";

const exec = promisify(execFile);
const local = inject("localCluster");
// Node assertions need the default profile's kwok nodes: always there locally; on an existing cluster only with
// GPUFLEET_EXISTING_CLUSTER_PROFILE=default.
const defaultNodes = inject("clusterProfile") === "default";
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");

function gpuPod(name: string, gpus: number): V1Pod {
  return {
    metadata: { name },
    spec: {
      containers: [
        { name: "main", image: "registry.example/worker:1", resources: { limits: { [GpuResource]: String(gpus) } } },
      ],
      terminationGracePeriodSeconds: 0,
    },
  };
}

describe("the shared test cluster", () => {
  it.skipIf(!local)("is the default profile when started locally (so the node tests below run)", () => {
    expect(inject("clusterProfile")).toBe("default");
  });

  it.skipIf(!local)("serves Kubernetes v1.36.3 (built with version ldflags)", async () => {
    const version = await getTestCluster().kubeConfig.makeApiClient(VersionApi).getCode();
    expect(version).toMatchObject({ gitVersion: "v1.36.3", major: "1", minor: "36" });
  });

  it.skipIf(!defaultNodes)(
    "has every node of the default profile Ready, with 8 allocatable GPUs and its topology labels",
    async () => {
      const { core } = getTestCluster();
      const expected = expandProfile(await loadProfile("default"));
      const nodes = (await core.listNode({ labelSelector: "type=kwok" })).items;
      const byName = new Map(nodes.map((n) => [n.metadata?.name, n]));
      for (const want of expected) {
        const name = want.metadata?.name ?? "";
        const node = byName.get(name);
        expect(node, `node ${name}`).toBeDefined();
        expect(node?.status?.conditions?.find((c) => c.type === "Ready")?.status, `${name} Ready`).toBe("True");
        expect(node?.status?.allocatable?.[GpuResource], `${name} allocatable GPUs`).toBe("8");
        expect(parseNodeTopology(name, node?.metadata?.labels ?? {})).toEqual(
          parseNodeTopology(name, want.metadata?.labels ?? {}),
        );
      }
      expect(nodes.filter((n) => n.metadata?.labels?.["gpufleet.io/nic-type"] === "infiniband")).toHaveLength(4);
    },
  );

  it.skipIf(!defaultNodes)(
    "schedules a 2-GPU pod onto a kwok node with kube-scheduler, where kwok runs it",
    async () => {
      const { core } = getTestCluster();
      const namespace = await freshNamespace("harness-pod");
      await core.createNamespacedPod({ namespace, body: gpuPod("two-gpus", 2) });
      const pod = await waitFor(
        async () => {
          const p = await core.readNamespacedPod({ name: "two-gpus", namespace });
          return p.status?.phase === "Running" ? p : undefined;
        },
        { description: "pod two-gpus Running", timeoutMs: 60_000 },
      );
      const node = await core.readNode({ name: pod.spec?.nodeName ?? "" });
      expect(node.metadata?.labels?.["type"]).toBe("kwok");
      expect(pod.status?.podIP).toMatch(/^10\.244\./);
      expect(pod.status?.containerStatuses?.[0]?.ready).toBe(true);
    },
  );

  it.skipIf(!defaultNodes)(
    "leaves a pod wanting more GPUs than any node has Pending, for lack of nvidia.com/gpu",
    async () => {
      const { core } = getTestCluster();
      const namespace = await freshNamespace("harness-unsched");
      await core.createNamespacedPod({ namespace, body: gpuPod("nine-gpus", 9) });
      const condition = await waitFor(
        async () => {
          const p = await core.readNamespacedPod({ name: "nine-gpus", namespace });
          return p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
        },
        { description: "pod nine-gpus marked unschedulable", timeoutMs: 60_000 },
      );
      expect(condition.reason).toBe("Unschedulable");
      expect(condition.message).toContain(`Insufficient ${GpuResource}`);
    },
  );

  it("works with the Debian kubectl through the kubeconfig", async () => {
    const { kubeconfigPath, core } = getTestCluster();
    const { stdout } = await exec("kubectl", ["--kubeconfig", kubeconfigPath, "get", "nodes", "-o", "name"]);
    const viaApi = (await core.listNode()).items.map((n) => `node/${n.metadata?.name}`).sort();
    expect(viaApi.length).toBeGreaterThan(0);
    expect(stdout.trim().split("\n").sort()).toEqual(viaApi);
  });

  it.skipIf(!inject("natsUrl"))("has a nats-server that delivers a published message", async () => {
    const nc = await connect({ servers: getTestCluster().natsUrl, timeout: 5_000 });
    try {
      const sc = StringCodec();
      const sub = nc.subscribe("gpufleet.harness.ping", { max: 1 });
      const received = (async () => {
        for await (const m of sub) return sc.decode(m.data);
        return undefined;
      })();
      nc.publish("gpufleet.harness.ping", sc.encode("pong"));
      expect(await received).toBe("pong");
    } finally {
      await nc.close();
    }
  });
});

describe.skipIf(!local)("cluster lifecycle", () => {
  it("starts a second cluster from a profile file and stop() leaves no process and no data behind", async () => {
    const cluster = await startLocalCluster({ profile: path.join(fixtures, "two-nodes.yaml") });
    let stopped = false;
    try {
      expect(Object.keys(cluster.pids).sort()).toEqual([
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "nats-server",
      ]);
      for (const pid of Object.values(cluster.pids)) expect(processAlive(pid)).toBe(true);
      const nodes = (await cluster.kubeConfig.makeApiClient(CoreV1Api).listNode()).items;
      expect(nodes.map((n) => `${n.metadata?.name}=${n.status?.allocatable?.[GpuResource]}`).sort()).toEqual([
        "tiny-a100-eth-0=4",
        "tiny-h200-roce-0=8",
      ]);
      const [host, port] = (cluster.natsUrl ?? "").replace("nats://", "").split(":");
      expect(await natsGreeting(host ?? "", Number(port))).toMatch(/^INFO /);
      // NATS runs JetStream with its store in the run directory: stopped and started again on the same port, the
      // streams it held are still there (what the telemetry outage tests rely on).
      const nc = await connect({ servers: cluster.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      try {
        await ensureStreams(await nc.jetstreamManager());
        await cluster.nats!.stop();
        await expect(natsGreeting(host ?? "", Number(port), 500)).rejects.toThrow();
        await cluster.nats!.start();
        const info = await waitFor(async () => (await nc.jetstreamManager()).streams.info(streamName("collectives")), {
          description: "collectives stream after the NATS restart",
          timeoutMs: 30_000,
        });
        expect(info.config.subjects).toEqual(["gpufleet.v1.collectives.*"]);
      } finally {
        await nc.close();
      }
      // The shared cluster is untouched by a second one: its own ports, certificates and data.
      expect(cluster.kubeconfigPath).not.toBe(getTestCluster().kubeconfigPath);

      await cluster.stop();
      stopped = true;
      for (const [name, pid] of Object.entries(cluster.pids))
        expect(processAlive(pid), `${name} (pid ${pid})`).toBe(false);
      expect(existsSync(cluster.dataDir ?? "")).toBe(false);
    } finally {
      if (!stopped) await cluster.stop();
    }
  });

  it("fails with ClusterStartError naming the server that cannot start, and stops the others", async () => {
    const previous = process.env["GPUFLEET_NATS_SERVER"];
    process.env["GPUFLEET_NATS_SERVER"] = "/nonexistent/nats-server";
    try {
      const err = await startLocalCluster({ profile: path.join(fixtures, "two-nodes.yaml") }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ClusterStartError);
      const { dataDir, cause } = err as ClusterStartError;
      expect((cause as Error).message).toContain("cannot start nats-server");
      // Every server it had started was stopped: stop() removes a child's pidfile only once its group is gone.
      expect(await readdir(path.join(dataDir, "pids"))).toEqual([]);
      await rm(dataDir, { recursive: true, force: true });
    } finally {
      if (previous === undefined) delete process.env["GPUFLEET_NATS_SERVER"];
      else process.env["GPUFLEET_NATS_SERVER"] = previous;
    }
  });

  it("killStale kills the children of a dead runner, and leaves a live runner's alone", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "gpufleet-stale-test-"));
    try {
      const orphanDir = path.join(root, "run-orphan");
      const liveDir = path.join(root, "run-live");
      await claimRunDir(orphanDir);
      await claimRunDir(liveDir);
      const orphan = await spawnManaged({ name: "sleeper", command: "sleep", args: ["300"], runDir: orphanDir });
      const mine = await spawnManaged({ name: "sleeper", command: "sleep", args: ["300"], runDir: liveDir });
      // Make the first run look like one whose runner died: a start time no live process has.
      await writeFile(path.join(orphanDir, "owner.json"), JSON.stringify({ pid: process.pid, startTime: "0" }));

      const killed = await killStale(root);

      expect(killed).toEqual([`sleeper (pid ${orphan.pid}, run-orphan)`]);
      await waitFor(() => !processAlive(orphan.pid), { description: "orphaned sleeper gone", timeoutMs: 5_000 });
      expect(existsSync(orphanDir)).toBe(false);
      expect(processAlive(mine.pid)).toBe(true);
      await mine.stop();
      expect(processAlive(mine.pid)).toBe(false);
      await orphan.stop(); // already dead: resolves at once
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
