/**
 * A real, local Kubernetes control plane for integration tests, e2e runs and `npm start`:
 * etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok as processes on loopback (free ports per
 * run), plus nats-server; simulated GPU nodes from a cluster profile (clusters/*.yaml) that kwok keeps Ready and
 * whose bound pods it runs. Or, with GPUFLEET_USE_EXISTING_CLUSTER=true, an existing cluster named by KUBECONFIG.
 *
 * Start order follows the dependencies: certificates and ports, etcd, kube-apiserver (/readyz), then the
 * controller-manager, scheduler, kwok and nats-server together; the cluster is ready when the `default`
 * ServiceAccount exists (the controller-manager works) and every profile node is Ready without the not-ready taint
 * (kwok heartbeats and the node lifecycle controller agree), so the scheduler will place pods at once.
 * Teardown: see processes.ts.
 */
import { createConnection } from "node:net";
import { createServer } from "node:net";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import type { V1Node } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { GpuResource, TopologyLabel } from "../../crds/src/topology.js";
import { resolveK8sBinaries } from "./binaries.js";
import type { K8sBinaries } from "./binaries.js";
import { generateCerts } from "./certs.js";
import type { ClusterCerts, KeyPair } from "./certs.js";
import { claimRunDir, killStale, spawnManaged } from "./processes.js";
import type { ManagedProcess } from "./processes.js";
import { expandProfile, KwokNodeAnnotation, loadProfile } from "../../common/src/cluster-profile/profile.js";
import type { ClusterProfile } from "../../common/src/cluster-profile/profile.js";
import { waitFor } from "./wait.js";

/** Env var that opts in to running against the cluster named by KUBECONFIG instead of starting one. */
export const USE_EXISTING_CLUSTER_ENV = "GPUFLEET_USE_EXISTING_CLUSTER";
/** Env var naming a profile whose nodes to create in an existing cluster (which must run kwok). */
export const EXISTING_CLUSTER_PROFILE_ENV = "GPUFLEET_EXISTING_CLUSTER_PROFILE";
/** Env var with the NATS URL to use with an existing cluster. */
export const NATS_URL_ENV = "GPUFLEET_NATS_URL";
/** Parent of every run directory; killStale() sweeps it for leftovers of crashed runs. */
export const DEFAULT_RUNS_ROOT = path.join(os.tmpdir(), "gpufleet-clusters");

const SERVICE_CIDR = "10.96.0.0/16";
const POD_CIDR = "10.244.0.0/16";
/** Ports to leave alone even if the kernel offers them: a system etcd, API server, kcm, scheduler or NATS. */
const RESERVED_PORTS = new Set([2379, 2380, 4222, 6443, 8222, 10257, 10259]);

export interface LocalClusterOptions {
  /** Profile name under clusters/ or path to a profile YAML; "default" when absent. */
  profile?: string;
  /** Run directory (certs, data, logs, pidfiles); a fresh one under DEFAULT_RUNS_ROOT when absent. */
  dataDir?: string;
  /** Start nats-server too (default true). */
  withNats?: boolean;
  /** Progress lines ("etcd ready in 0.4 s"); silent when absent. */
  log?: (message: string) => void;
  /** Keep the run directory after stop() (logs for debugging); default false. */
  keepDataDir?: boolean;
  /** Time allowed for the profile's nodes to become Ready; default 120 s plus 60 ms per node. */
  nodesReadyTimeoutMs?: number;
  /**
   * kwok's pod-stage lanes (test/harness/kwok-config.yaml): "kubelets" marks bound pods Running 32 at a time, as a
   * cluster's kubelets each do their own; absent, kwok's default 4. Only the training benchmark asks for it.
   */
  kwokPods?: "kubelets";
}

export interface LocalCluster {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  natsUrl?: string;
  /**
   * The local NATS server (JetStream, store under the run directory): stop() and start() again on the same port
   * and store, as an outage and its end would. Absent for an existing cluster or withNats: false.
   */
  nats?: { stop(): Promise<void>; start(): Promise<void> };
  /**
   * Chaos control of the control plane (local clusters only): kill a server or several (SIGKILL to each process
   * group), keep them down `downMs`, start them again (etcd first) with the same flags, ports and data directory, and
   * wait until each is healthy (etcd /health, kube-apiserver /readyz). Resolves with when they went down, were
   * started again and answered again.
   */
  restart?: (name: RestartableServer | RestartableServer[], opts?: { downMs?: number }) => Promise<RestartTimes>;
  /** Whether this harness started the cluster (false for an existing one: stop() then does nothing). */
  local: boolean;
  /** Run directory (local clusters only). */
  dataDir?: string;
  profile?: ClusterProfile;
  /** Process ids of the servers started (local clusters only), by name. */
  pids: Record<string, number>;
  /** Milliseconds from the call to ready, by phase, for reports. */
  timings: Record<string, number>;
  stop(): Promise<void>;
}

/** Servers of the local control plane that restart() can bounce. */
export type RestartableServer = "etcd" | "kube-apiserver";

/** performance.now() marks of one restart: killed, started again, healthy again. */
export interface RestartTimes {
  killedAtMs: number;
  startedAtMs: number;
  healthyAtMs: number;
}

/** Whether the environment asks for an existing cluster (explicit opt-in; KUBECONFIG is checked when used). */
export function existingClusterRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[USE_EXISTING_CLUSTER_ENV] === "true";
}

export interface ExistingClusterOptions {
  /**
   * Also create this profile's kwok nodes (those missing) and wait until they are Ready; stop() deletes the ones it
   * created. The cluster must run kwok (e.g. kind plus kwok's in-cluster controller), or they never become Ready.
   */
  profile?: string;
  log?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * Uses the cluster KUBECONFIG names, starting nothing. NATS comes from GPUFLEET_NATS_URL, if set. Throws when the
 * opt-in variable or KUBECONFIG is missing, so a stray KUBECONFIG never points tests at a real cluster by accident.
 */
export async function useExistingCluster(opts: ExistingClusterOptions = {}): Promise<LocalCluster> {
  const env = opts.env ?? process.env;
  if (!existingClusterRequested(env))
    throw new Error(`${USE_EXISTING_CLUSTER_ENV}=true is required to use an existing cluster`);
  const kubeconfigPath = env["KUBECONFIG"];
  if (!kubeconfigPath)
    throw new Error(`${USE_EXISTING_CLUSTER_ENV}=true needs KUBECONFIG naming the cluster's kubeconfig`);
  if (kubeconfigPath.includes(path.delimiter))
    throw new Error(`KUBECONFIG must name one file for an existing test cluster, got ${kubeconfigPath}`);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const natsUrl = env[NATS_URL_ENV];
  let profile: ClusterProfile | undefined;
  let createdNodes: string[] = [];
  if (opts.profile) {
    profile = await loadProfile(opts.profile);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const before = new Set((await core.listNode()).items.map((n) => n.metadata?.name));
    const nodes = await createProfileNodes(kubeConfig, profile);
    const names = nodes.map((n) => n.metadata?.name ?? "");
    createdNodes = names.filter((n) => !before.has(n));
    opts.log?.(
      `created ${createdNodes.length} of ${names.length} ${profile.name} profile nodes; waiting until kwok makes them Ready`,
    );
    await waitNodesReady(kubeConfig, names, 120_000 + 60 * names.length);
  }
  return {
    kubeconfigPath,
    kubeConfig,
    ...(natsUrl ? { natsUrl } : {}),
    local: false,
    ...(profile ? { profile } : {}),
    pids: {},
    timings: {},
    stop: async () => {
      const core = kubeConfig.makeApiClient(CoreV1Api);
      await Promise.all(createdNodes.map((name) => core.deleteNode({ name }).catch(() => undefined)));
    },
  };
}

/** Free loopback TCP ports, all distinct (held open together while picking). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: ReturnType<typeof createServer>[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      const server = createServer();
      servers.push(server);
      const port = await new Promise<number>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
      });
      if (!RESERVED_PORTS.has(port)) ports.push(port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
  return ports;
}

interface HttpProbe {
  url: string;
  tls?: { ca?: string; cert?: string; key?: string; insecure?: boolean };
}

/** GET url; resolves with status and body (never rejects on HTTP errors, only on connection errors). */
function httpGet({ url, tls }: HttpProbe, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      timeout: timeoutMs,
      ...(tls
        ? {
            ca: tls.ca ? readFileSync(tls.ca) : undefined,
            cert: tls.cert ? readFileSync(tls.cert) : undefined,
            key: tls.key ? readFileSync(tls.key) : undefined,
            rejectUnauthorized: !tls.insecure,
          }
        : {}),
    };
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

async function waitHealthy(proc: ManagedProcess, probe: HttpProbe, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await httpGet(probe)).status === 200, {
    description: `${proc.name} ${probe.url} to answer 200`,
    timeoutMs,
    abortIf: () => proc.assertRunning(),
  });
}

/** A kubeconfig file for one client identity, certificates by path. */
function kubeconfigYaml(server: string, ca: string, user: string, client: KeyPair): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "gpufleet-local", cluster: { server, "certificate-authority": ca } }],
    users: [{ name: user, user: { "client-certificate": client.cert, "client-key": client.key } }],
    contexts: [{ name: "gpufleet-local", context: { cluster: "gpufleet-local", user, namespace: "default" } }],
    "current-context": "gpufleet-local",
  });
}

/** Resolves once a NATS server at host:port sends its INFO greeting. */
export function natsGreeting(host: string, port: number, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no INFO from nats://${host}:${port} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      data += chunk;
      if (data.includes("\r\n")) {
        clearTimeout(timer);
        socket.destroy();
        if (data.startsWith("INFO ")) resolve(data.slice(0, data.indexOf("\r\n")));
        else reject(new Error(`nats://${host}:${port} greeted with ${JSON.stringify(data.slice(0, 80))}`));
      }
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function isNodeReady(node: V1Node): boolean {
  const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  const notReadyTaint =
    node.spec?.taints?.some(
      (t) => t.key === "node.kubernetes.io/not-ready" || t.key === "node.kubernetes.io/unreachable",
    ) ?? false;
  return ready && !notReadyTaint;
}

/** Creates the profile's nodes (those that do not exist yet), a bounded number of requests in flight. */
export async function createProfileNodes(
  kubeConfig: KubeConfig,
  profile: ClusterProfile,
  concurrency = 16,
): Promise<V1Node[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const nodes = expandProfile(profile);
  const existing = new Map((await core.listNode()).items.map((n) => [n.metadata?.name, n]));
  // A node of the same name that is not the profile's (another profile, a real node) would silently change the
  // fleet the tests reason about: refuse.
  const conflicts = nodes.flatMap((want) => {
    const have = existing.get(want.metadata?.name);
    if (!have) return [];
    const wanted: Record<string, string | undefined> = {
      ...want.metadata?.labels,
      [GpuResource]: want.status?.allocatable?.[GpuResource],
    };
    const actual: Record<string, string | undefined> = {
      ...have.metadata?.labels,
      [GpuResource]: have.status?.allocatable?.[GpuResource],
    };
    const diff = [...Object.values(TopologyLabel), GpuResource].filter((key) => wanted[key] !== actual[key]);
    return diff.length === 0
      ? []
      : [`${want.metadata?.name} (${diff.map((k) => `${k}=${actual[k] ?? "<none>"}, want ${wanted[k]}`).join("; ")})`];
  });
  if (conflicts.length > 0)
    throw new Error(`nodes of profile ${profile.name} exist with other hardware: ${conflicts.join(", ")}`);
  const todo = nodes.filter((n) => !existing.has(n.metadata?.name));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      const node = todo[next++] as V1Node;
      try {
        await core.createNode({ body: node });
      } catch (err) {
        throw new Error(`creating node ${node.metadata?.name} failed`, { cause: err });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return nodes;
}

/** Waits until every named node is Ready and free of the not-ready/unreachable taints. */
export async function waitNodesReady(
  kubeConfig: KubeConfig,
  names: string[],
  timeoutMs: number,
  abortIf?: () => void,
): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const wanted = new Set(names);
  let notReady: string[] = [];
  await waitFor(
    async () => {
      const list = await core.listNode({ labelSelector: "type=kwok" });
      const ready = new Set(list.items.filter(isNodeReady).map((n) => n.metadata?.name));
      notReady = [...wanted].filter((n) => !ready.has(n));
      return notReady.length === 0;
    },
    {
      get description() {
        return `${wanted.size} kwok nodes Ready (not yet: ${notReady.slice(0, 5).join(", ")}${notReady.length > 5 ? ", ..." : ""})`;
      },
      timeoutMs,
      intervalMs: 500,
      ...(abortIf ? { abortIf } : {}),
    },
  );
}

/** Starts a local cluster; see the file comment. On failure everything started is stopped and the logs are kept. */
export async function startLocalCluster(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const timings: Record<string, number> = {};
  const mark = (phase: string): void => {
    timings[phase] = Date.now() - t0;
    log(`${phase} after ${(timings[phase] / 1000).toFixed(1)} s`);
  };

  const stale = await killStale(DEFAULT_RUNS_ROOT);
  if (stale.length > 0) log(`killed leftovers of crashed runs: ${stale.join(", ")}`);
  await mkdir(DEFAULT_RUNS_ROOT, { recursive: true });
  const runDir = opts.dataDir ? path.resolve(opts.dataDir) : await mkdtemp(path.join(DEFAULT_RUNS_ROOT, "run-"));
  await claimRunDir(runDir);

  const procs: ManagedProcess[] = [];
  const stopAll = async (): Promise<void> => {
    // Dependents first, then the API server, then etcd (reverse start order).
    const byName = (n: string): ManagedProcess[] => procs.filter((p) => p.name === n);
    await Promise.all(
      ["kwok", "kube-scheduler", "kube-controller-manager", "nats-server"].flatMap(byName).map((p) => p.stop()),
    );
    await Promise.all(byName("kube-apiserver").map((p) => p.stop()));
    await Promise.all(byName("etcd").map((p) => p.stop()));
  };

  try {
    const withNats = opts.withNats ?? true;
    const [bins, certs, profile, ports] = await Promise.all([
      resolveK8sBinaries(),
      generateCerts(path.join(runDir, "pki")),
      loadProfile(opts.profile ?? "default"),
      freePorts(7),
    ]);
    const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedPort, natsPort, natsMonitorPort] = ports as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    mark("certificates, ports and binaries");

    const spawn = async (name: string, command: string, args: string[]): Promise<ManagedProcess> => {
      const proc = await spawnManaged({ name, command, args, runDir });
      procs.push(proc);
      return proc;
    };

    const etcd = await startEtcd(spawn, bins, runDir, etcdPort, etcdPeerPort);
    mark("etcd healthy");

    const apiServer = `https://127.0.0.1:${apiPort}`;
    const apiserver = await startApiServer(spawn, bins, certs, runDir, apiPort, etcdPort);
    await waitHealthy(
      apiserver,
      { url: `${apiServer}/readyz`, tls: { ca: certs.ca.cert, cert: certs.admin.cert, key: certs.admin.key } },
      90_000,
    );
    etcd.assertRunning();
    mark("kube-apiserver ready");

    const kubeconfigPath = path.join(runDir, "kubeconfig");
    const kcmKubeconfig = path.join(runDir, "controller-manager.kubeconfig");
    const schedKubeconfig = path.join(runDir, "scheduler.kubeconfig");
    await Promise.all([
      writeFile(kubeconfigPath, kubeconfigYaml(apiServer, certs.ca.cert, "gpufleet-admin", certs.admin), {
        mode: 0o600,
      }),
      writeFile(
        kcmKubeconfig,
        kubeconfigYaml(apiServer, certs.ca.cert, "system:kube-controller-manager", certs.controllerManager),
        { mode: 0o600 },
      ),
      writeFile(schedKubeconfig, kubeconfigYaml(apiServer, certs.ca.cert, "system:kube-scheduler", certs.scheduler), {
        mode: 0o600,
      }),
    ]);

    // allSettled: when one fails to spawn, the others must still be recorded in procs before teardown runs.
    const [kcm, scheduler, kwok, nats] = settledOrThrow(
      await Promise.allSettled([
        spawn("kube-controller-manager", bins["kube-controller-manager"], [
          `--kubeconfig=${kcmKubeconfig}`,
          `--authentication-kubeconfig=${kcmKubeconfig}`,
          `--authorization-kubeconfig=${kcmKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${kcmPort}`,
          `--cert-dir=${path.join(runDir, "controller-manager")}`,
          "--leader-elect=false",
          // Every default controller except those that need a cloud provider.
          "--controllers=*,-cloud-node-lifecycle-controller,-node-route-controller,-service-lb-controller",
          "--use-service-account-credentials=true",
          `--service-account-private-key-file=${certs.serviceAccount.key}`,
          `--root-ca-file=${certs.ca.cert}`,
          `--cluster-signing-cert-file=${certs.ca.cert}`,
          `--cluster-signing-key-file=${certs.ca.key}`,
          // kwok assigns pod IPs itself (--cidr); node CIDRs would be unused.
          "--allocate-node-cidrs=false",
          `--service-cluster-ip-range=${SERVICE_CIDR}`,
          "--cluster-name=gpufleet-local",
          // The default 20 QPS makes the node lifecycle controller lift the not-ready taint from ~5 nodes a second:
          // minutes for the 1,000-node profile. Large real clusters raise it likewise.
          "--kube-api-qps=200",
          "--kube-api-burst=400",
        ]),
        spawn("kube-scheduler", bins["kube-scheduler"], [
          `--kubeconfig=${schedKubeconfig}`,
          `--authentication-kubeconfig=${schedKubeconfig}`,
          `--authorization-kubeconfig=${schedKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${schedPort}`,
          `--cert-dir=${path.join(runDir, "scheduler")}`,
          "--leader-elect=false",
        ]),
        startKwok(spawn, bins, kubeconfigPath, opts.kwokPods === "kubelets"),
        withNats ? startNats(spawn, runDir, natsPort, natsMonitorPort) : Promise.resolve(undefined),
      ] as const),
    );

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const anyDead = (): void => procs.forEach((p) => p.assertRunning());

    await Promise.all([
      waitHealthy(kcm, { url: `https://127.0.0.1:${kcmPort}/healthz`, tls: { insecure: true } }, 60_000),
      waitHealthy(scheduler, { url: `https://127.0.0.1:${schedPort}/healthz`, tls: { insecure: true } }, 60_000),
      nats
        ? waitFor(() => natsGreeting("127.0.0.1", natsPort), {
            description: "nats-server INFO greeting",
            timeoutMs: 30_000,
            abortIf: () => nats.assertRunning(),
          })
        : undefined,
    ]);
    mark("controller-manager, scheduler and nats-server healthy");

    // The default ServiceAccount is created by the controller-manager: pods can be admitted from here on.
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: "default" }), {
      description: "ServiceAccount default/default",
      timeoutMs: 60_000,
      abortIf: anyDead,
    });
    mark("default ServiceAccount");

    const nodes = await createProfileNodes(kubeConfig, profile);
    mark(`${nodes.length} nodes created`);
    await waitNodesReady(
      kubeConfig,
      nodes.map((n) => n.metadata?.name ?? ""),
      opts.nodesReadyTimeoutMs ?? 120_000 + 60 * nodes.length,
      anyDead,
    );
    kwok.assertRunning();
    mark(`${nodes.length} nodes Ready`);

    const pids = Object.fromEntries(procs.map((p) => [p.name, p.pid]));
    let stopped: Promise<void> | undefined;
    let natsProcess = nats;
    const natsControl = {
      stop: async () => natsProcess?.stop(),
      start: async () => {
        if (natsProcess && !natsProcess.exited) throw new Error(`nats-server on port ${natsPort} is still running`);
        natsProcess = await startNats(spawn, runDir, natsPort, natsMonitorPort);
        const started = natsProcess;
        await waitFor(() => natsGreeting("127.0.0.1", natsPort), {
          description: "nats-server INFO greeting after restart",
          timeoutMs: 30_000,
          abortIf: () => started.assertRunning(),
        });
      },
    };
    const adminTls = { ca: certs.ca.cert, cert: certs.admin.cert, key: certs.admin.key };
    const servers: Record<RestartableServer, { start: () => Promise<ManagedProcess>; probe: HttpProbe }> = {
      etcd: {
        start: () => spawnEtcd(spawn, bins, runDir, etcdPort, etcdPeerPort),
        probe: { url: `http://127.0.0.1:${etcdPort}/health` },
      },
      "kube-apiserver": {
        start: () => startApiServer(spawn, bins, certs, runDir, apiPort, etcdPort),
        probe: { url: `${apiServer}/readyz`, tls: adminTls },
      },
    };
    const restart = async (
      which: RestartableServer | RestartableServer[],
      restartOpts: { downMs?: number } = {},
    ): Promise<RestartTimes> => {
      // Dependency order for the start: etcd before the API server; all are killed before any starts again.
      const names = (["etcd", "kube-apiserver"] as const).filter((n) =>
        (Array.isArray(which) ? which : [which]).includes(n),
      );
      for (const name of names) {
        const old = procs.find((p) => p.name === name && !p.exited);
        if (!old) throw new Error(`no running ${name} to restart`);
        await old.stop(0); // SIGTERM and, without grace, SIGKILL: a crash, not a clean shutdown
        procs.splice(procs.indexOf(old), 1);
      }
      const killedAtMs = performance.now();
      if (restartOpts.downMs) await new Promise((resolve) => setTimeout(resolve, restartOpts.downMs));
      const startedAtMs = performance.now();
      for (const name of names) {
        const { start, probe } = servers[name];
        const fresh = await start();
        // Either may take a while on a loaded machine (the API server waits for etcd before /readyz says ok).
        await waitHealthy(fresh, probe, 90_000);
        pids[name] = fresh.pid;
      }
      log(
        `${names.join(" + ")} restarted (down ${((startedAtMs - killedAtMs) / 1000).toFixed(1)} s, healthy after ${((performance.now() - startedAtMs) / 1000).toFixed(1)} s more)`,
      );
      return { killedAtMs, startedAtMs, healthyAtMs: performance.now() };
    };
    return {
      kubeconfigPath,
      kubeConfig,
      restart,
      ...(nats ? { natsUrl: `nats://127.0.0.1:${natsPort}`, nats: natsControl } : {}),
      local: true,
      dataDir: runDir,
      profile,
      pids,
      timings,
      stop() {
        stopped ??= (async () => {
          await stopAll();
          if (!opts.keepDataDir) await rm(runDir, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  } catch (err) {
    await stopAll().catch((stopErr: unknown) => log(`teardown after failed start: ${String(stopErr)}`));
    throw new ClusterStartError(runDir, { cause: err });
  }
}

export class ClusterStartError extends Error {
  override name = "ClusterStartError";
  constructor(
    /** Run directory, kept for its logs (the next run's killStale removes it). */
    readonly dataDir: string,
    options: ErrorOptions,
  ) {
    const reason = options.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(`local cluster failed to start (logs kept in ${path.join(dataDir, "logs")})${reason}`, options);
  }
}

function settledOrThrow<T extends readonly unknown[]>(results: { [K in keyof T]: PromiseSettledResult<T[K]> }): T {
  const failed = (results as readonly PromiseSettledResult<unknown>[]).find(
    (r): r is PromiseRejectedResult => r.status === "rejected",
  );
  if (failed) throw failed.reason;
  return (results as readonly PromiseSettledResult<unknown>[]).map(
    (r) => (r as PromiseFulfilledResult<unknown>).value,
  ) as unknown as T;
}

type Spawn = (name: string, command: string, args: string[]) => Promise<ManagedProcess>;

async function startEtcd(
  spawn: Spawn,
  bins: K8sBinaries,
  runDir: string,
  port: number,
  peerPort: number,
): Promise<ManagedProcess> {
  const etcd = await spawnEtcd(spawn, bins, runDir, port, peerPort);
  await waitHealthy(etcd, { url: `http://127.0.0.1:${port}/health` }, 30_000);
  return etcd;
}

function spawnEtcd(
  spawn: Spawn,
  bins: K8sBinaries,
  runDir: string,
  port: number,
  peerPort: number,
): Promise<ManagedProcess> {
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return spawn("etcd", bins.etcd, [
    "--name=default",
    `--data-dir=${path.join(runDir, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    // Test data: durability is not worth an fsync per write on a shared disk.
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ]);
}

async function startApiServer(
  spawn: Spawn,
  bins: K8sBinaries,
  certs: ClusterCerts,
  runDir: string,
  port: number,
  etcdPort: number,
): Promise<ManagedProcess> {
  return spawn("kube-apiserver", bins["kube-apiserver"], [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${path.join(runDir, "apiserver")}`,
    `--tls-cert-file=${certs.apiserver.cert}`,
    `--tls-private-key-file=${certs.apiserver.key}`,
    `--client-ca-file=${certs.ca.cert}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${certs.serviceAccount.pub}`,
    `--service-account-signing-key-file=${certs.serviceAccount.key}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--authorization-mode=Node,RBAC",
    "--allow-privileged=true",
    // The `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints validation rejects; nothing in a
    // kwok cluster dials it.
    "--endpoint-reconciler-type=none",
    "--profiling=false",
  ]);
}

/** kwok's default stages (see the file's header: the bare kwok binary has none built in). */
const KWOK_STAGES = path.join(path.dirname(fileURLToPath(import.meta.url)), "kwok-stages.yaml");
const KWOK_CONFIG = path.join(path.dirname(fileURLToPath(import.meta.url)), "kwok-config.yaml");

async function startKwok(
  spawn: Spawn,
  bins: K8sBinaries,
  kubeconfigPath: string,
  kubeletLanes: boolean,
): Promise<ManagedProcess> {
  return spawn("kwok", bins.kwok, [
    `--kubeconfig=${kubeconfigPath}`,
    // Explicit, so a developer's ~/.kwok/kwok.yaml cannot change the stages (or, without kwok-config.yaml, the
    // options: kwok's defaults).
    `--config=${KWOK_STAGES}`,
    ...(kubeletLanes ? [`--config=${KWOK_CONFIG}`] : []),
    "--manage-all-nodes=false",
    `--manage-nodes-with-annotation-selector=${KwokNodeAnnotation.key}=${KwokNodeAnnotation.value}`,
    // Node liveness through Leases, renewed by kwok, as kubelets do (the heartbeat stage needs it).
    "--node-lease-duration-seconds=40",
    `--cidr=${POD_CIDR}`,
    "--node-ip=127.0.0.1",
  ]);
}

async function startNats(spawn: Spawn, runDir: string, port: number, monitorPort: number): Promise<ManagedProcess> {
  const storeDir = path.join(runDir, "nats");
  await mkdir(storeDir, { recursive: true });
  return spawn("nats-server", process.env["GPUFLEET_NATS_SERVER"] ?? "nats-server", [
    "--addr=127.0.0.1",
    `--port=${port}`,
    `--http_port=${monitorPort}`,
    "--jetstream",
    `--store_dir=${storeDir}`,
  ]);
}
