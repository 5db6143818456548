/**
 * Two (or more) operator replicas as real processes (operator/src/main.ts, as in the chart's Deployment) with leader
 * election on one Lease, each talking to the API server through its own recording proxy (test/support/api-proxy.ts),
 * so every request a replica sends is seen with its arrival time and answer: the audit that proves what a deposed
 * leader did or did not write.
 */
import { CoordinationV1Api } from "@kubernetes/client-node";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { startApiProxy, type ApiProxy, type ProxiedRequest } from "../../test/support/api-proxy.js";
import { metricValue, startOperatorProcess, type OperatorProcess } from "../../test/support/operator.js";
import { waitFor } from "../../test/harness/wait.js";
import type { ChaosContext, LeaseSettings } from "./row.js";

export interface Replica {
  identity: string;
  /** The running process (replaced when the supervisor restarts the replica). */
  process: OperatorProcess;
  proxy: ApiProxy;
  /** performance.now() when the process a scenario faulted exited, with its code; undefined while it runs. */
  exit: { atMs: number; code: number | null } | undefined;
  /** Set before a scenario signals the process: its exit is the scenario's, and it is not restarted. */
  faulted: boolean;
  /** Exits the scenario did not cause (a leader that lost its lease under load exits, as main.ts does). */
  unplannedExits: number;
}

export interface ReplicaSet {
  namespace: string;
  leaseName: string;
  replicas: Replica[];
  /** The identity in the Lease now ("" when none). */
  holder(): Promise<string>;
  /** Waits until some replica holds the Lease and reports leader=1 on /metrics; returns it. */
  leader(timeoutMs?: number): Promise<Replica>;
  stop(): Promise<void>;
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const isLeaseCall = (r: ProxiedRequest): boolean => r.url.includes("/apis/coordination.k8s.io/");

/** Writes (not Lease calls) that reached the proxy of `replica` at or after `fromMs` (performance.now()). */
export function writesSince(replica: Replica, fromMs: number): ProxiedRequest[] {
  return replica.proxy.requests.filter((r) => r.atMs >= fromMs && MUTATING.has(r.method) && !isLeaseCall(r));
}

async function proxyKubeconfig(dir: string, proxy: ApiProxy, name: string): Promise<string> {
  const file = path.join(dir, `${name}.kubeconfig`);
  const server = proxy.kubeConfig.getCurrentCluster()!.server;
  await writeFile(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      // Plain HTTP to the loopback proxy, which client-node allows only with skip-TLS-verify set.
      clusters: [{ name: "proxy", cluster: { server, "insecure-skip-tls-verify": true } }],
      users: [{ name: "proxy", user: {} }],
      contexts: [{ name: "proxy", context: { cluster: "proxy", user: "proxy" } }],
      "current-context": "proxy",
    }),
    { mode: 0o600 },
  );
  return file;
}

export async function startReplicas(
  ctx: ChaosContext,
  opts: { namespace: string; lease: LeaseSettings; identities?: string[]; env?: Record<string, string> },
): Promise<ReplicaSet> {
  const identities = opts.identities ?? ["op-a", "op-b"];
  const leaseName = `op-${opts.namespace}`;
  const dir = await mkdtemp(path.join(tmpdir(), "gpufleet-replicas-"));
  const replicas: Replica[] = [];
  let stopping = false;
  const leases = ctx.kubeConfig.makeApiClient(CoordinationV1Api);
  try {
    // In parallel: each replica costs a tsx start-up, seconds on a loaded machine.
    await Promise.all(
      identities.map(async (identity) => {
        const proxy = await startApiProxy(ctx.kubeConfig);
        try {
          const kubeconfigPath = await proxyKubeconfig(dir, proxy, identity);
          const start = () =>
            startOperatorProcess({
              kubeconfigPath,
              namespace: opts.namespace,
              identity,
              env: {
                GPUFLEET_LEASE_NAME: leaseName,
                GPUFLEET_LEASE_DURATION_MS: String(opts.lease.leaseDurationMs),
                GPUFLEET_RENEW_DEADLINE_MS: String(opts.lease.renewDeadlineMs),
                GPUFLEET_RETRY_PERIOD_MS: String(opts.lease.retryPeriodMs),
                GPUFLEET_LOG_LEVEL: "info",
                ...opts.env,
              },
            });
          const replica: Replica = {
            identity,
            process: await start(),
            proxy,
            exit: undefined,
            faulted: false,
            unplannedExits: 0,
          };
          supervise(replica, start);
          replicas.push(replica);
        } catch (error) {
          await proxy.close();
          throw error;
        }
      }),
    );
  } catch (error) {
    await stopAll();
    throw error;
  }
  /**
   * As the chart's Deployment would: a replica that exits on its own (main.ts exits when it loses the lease, e.g. when
   * CPU starvation delayed its renews) is started again, so a scenario always has a follower to fail over to.
   */
  function supervise(replica: Replica, start: () => Promise<OperatorProcess>): void {
    replica.process.child.once("exit", (code) => {
      if (replica.faulted || stopping) {
        replica.exit ??= { atMs: performance.now(), code };
        return;
      }
      replica.unplannedExits += 1;
      ctx.log(`${replica.identity} exited by itself (code ${code}); starting it again`);
      void start().then(
        (process) => {
          replica.process = process;
          supervise(replica, start);
        },
        (error: unknown) => ctx.log(`${replica.identity} did not start again: ${String(error)}`),
      );
    });
  }
  async function stopAll(): Promise<void> {
    stopping = true;
    await Promise.all(
      replicas.map(async (r) => {
        r.process.child.kill("SIGCONT"); // a frozen replica cannot handle SIGKILL's aftermath otherwise
        await r.process.stop("SIGKILL");
        await r.proxy.close();
      }),
    );
    await rm(dir, { recursive: true, force: true });
  }
  const holder = async (): Promise<string> => {
    const lease = await leases
      .readNamespacedLease({ name: leaseName, namespace: opts.namespace })
      .catch(() => undefined);
    return lease?.spec?.holderIdentity ?? "";
  };
  return {
    namespace: opts.namespace,
    leaseName,
    replicas,
    holder,
    async leader(timeoutMs = 60_000) {
      return waitFor(
        async () => {
          const id = await holder();
          const replica = replicas.find((r) => r.identity === id && !r.exit);
          if (!replica) return undefined;
          return metricValue(await replica.process.metrics(), "gpufleet_operator_leader") === 1 ? replica : undefined;
        },
        { description: `a leader among ${identities.join(", ")} (Lease ${leaseName})`, timeoutMs, intervalMs: 100 },
      );
    },
    stop: stopAll,
  };
}
