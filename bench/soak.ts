/**
 * Soak benchmark (issue 15): the 1,000-node kwok profile, 100 TrainingJobs and 20 ServingDeployments churning
 * (create, scale, fault, delete) for 10 minutes against the operator running as its own process (operator/src/main.ts,
 * as in its pod, leader election on), then everything deleted and the namespace checked for leaked objects.
 * `npm run bench -- soak` runs the full soak; `npm run bench -- soak --duration=90` (or SOAK_DURATION_S=90) a short
 * one, which the results label as short.
 *
 * Churn: SOAK_OPS_PER_S operations a second (default 2), each on a random slot of the population (seeded PRNG,
 * common/src/random.ts): an empty slot is created; an occupied one is scaled (a TrainingJob's nodes and dp change,
 * which re-places its gang; a ServingDeployment's arrival rate changes, which re-plans it), faulted (one of its pods
 * deleted: a gang restart, a replaced serving instance) or deleted (created again when the slot comes up next).
 * TrainingJobs are 1, 2, 4 or 8 nodes × 8 GPUs (tp 8, dp = nodes); ServingDeployments are Llama-3-8B on H100.
 *
 * Sampled every SOAK_SAMPLE_S (5) from the operator's /metrics: resident memory and V8 heap used (prom-client's
 * process metrics), gpufleet_operator_workqueue_depth per controller, the reconcile-duration histogram per controller
 * (P99 over the soak after warm-up, interpolated as histogram_quantile does) and gpufleet_operator_api_requests_total
 * (every request the operator's API clients send, watches aside). Baseline (same run): the operator's own figures at
 * the end of warm-up (the first 20% of the churn); memory is also sampled idle before the churn, for context.
 *
 * Leaks: after the churn every TrainingJob and ServingDeployment of the namespace is deleted and, within
 * SOAK_DRAIN_TIMEOUT_S (300), the namespace must hold no Pods, Services, Endpoints, ConfigMaps (kube-root-ca.crt
 * aside), Leases, TrainingJobs or ServingDeployments, and the operator's caches (gpufleet_operator_resources) no
 * resources. Events are not counted: they expire by TTL. The operator's leader Lease lives in another namespace.
 *
 * Results: bench/results/soak.json and soak.md (duration in both; `short: true` below 600 s).
 */
import {
  CoreV1Api,
  CoordinationV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
} from "@kubernetes/client-node";
import os from "node:os";
import { mkdir, readdir, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../common/src/random.js";
import { API_GROUP, API_VERSION } from "../crds/src/common.js";
import { OwnedLabel } from "../crds/src/reasons.js";
import type { TrainingJob } from "../crds/src/training-job.js";
import { resolveK8sBinaries } from "../test/harness/binaries.js";
import { startLocalCluster } from "../test/harness/cluster.js";
import { waitFor } from "../test/harness/wait.js";
import { servingDeployment, trainingJob } from "../test/support/builders.js";
import { installCrds, startOperatorProcess } from "../test/support/operator.js";
import {
  apiRate,
  histogramQuantile,
  memoryFigures,
  quantileOverflows,
  operatorSample,
  parsePrometheus,
  queueFigures,
  round,
  type OperatorSample,
} from "./soak/metrics.js";
import { chartLeaseSettings, type LeaseSettings } from "./reliability/row.js";

const FULL_DURATION_S = 600;
const NAMESPACE = "bench-soak";

export interface SoakConfig {
  durationS: number;
  profile: string;
  trainingJobs: number;
  servingDeployments: number;
  opsPerS: number;
  sampleS: number;
  warmupFraction: number;
  drainTimeoutS: number;
  seed: number;
  /**
   * The operator's leader-election settings: the chart's by default (SOAK_LEASE_MS=lease,renew,retry overrides). Before
   * the elector kept its own keep-alive connection and renewed with one call, the local API server saturated by the
   * churn's first burst took 8.4 s for a Lease GET + PUT (a new TLS handshake each, each step an event-loop turn on a
   * loop stalling ~1 s), past the chart's 7 s renew deadline; the operator stepped down and exited 30-42 s into every
   * full soak (docs/reliability.md, "Soak"). The soak reports its slowest Lease call.
   */
  lease: LeaseSettings;
}

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function num(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what}: expected a positive number, got "${value}"`);
  return n;
}

export function soakConfig(env: NodeJS.ProcessEnv = process.env): SoakConfig {
  return {
    durationS: num(flag("duration") ?? env["SOAK_DURATION_S"], FULL_DURATION_S, "--duration / SOAK_DURATION_S"),
    profile: env["SOAK_PROFILE"] ?? "large",
    trainingJobs: num(env["SOAK_TRAINING_JOBS"], 100, "SOAK_TRAINING_JOBS"),
    servingDeployments: num(env["SOAK_SERVING_DEPLOYMENTS"], 20, "SOAK_SERVING_DEPLOYMENTS"),
    opsPerS: num(env["SOAK_OPS_PER_S"], 2, "SOAK_OPS_PER_S"),
    sampleS: num(env["SOAK_SAMPLE_S"], 5, "SOAK_SAMPLE_S"),
    warmupFraction: 0.2,
    drainTimeoutS: num(env["SOAK_DRAIN_TIMEOUT_S"], 300, "SOAK_DRAIN_TIMEOUT_S"),
    seed: num(env["SOAK_SEED"], 15, "SOAK_SEED"),
    lease: env["SOAK_LEASE_MS"] ? leaseSettings(env["SOAK_LEASE_MS"]) : chartLeaseSettings(),
  };
}

/**
 * SOAK_OPERATOR_HEAP_SNAPSHOTS=DIR: V8 heap snapshots of the operator (idle, end of warm-up, end of churn, drained) as
 * DIR/<label>.heapsnapshot, for a diff of what the heap holds (bench/soak/heap-diff.py). Writing one pauses the
 * operator for seconds, so run it with a long lease (SOAK_LEASE_MS=120000,90000,2000); not for the committed numbers.
 */
const snapshotDir = process.env["SOAK_OPERATOR_HEAP_SNAPSHOTS"];

/**
 * SOAK_OPERATOR_LOG=FILE: the operator runs at debug level and all its log lines are written to FILE (JSON lines)
 * when the soak ends, with `soakChurnStartMs` (epoch ms of tS 0) on the first line, to place events on the samples'
 * time axis. Debug logging costs the operator time: not for the committed numbers.
 */
const operatorLogFile = process.env["SOAK_OPERATOR_LOG"];

/** Signals the process (started with --heapsnapshot-signal=SIGUSR2) and waits until its snapshot file is complete. */
async function takeHeapSnapshot(child: { pid?: number }, dir: string, label: string): Promise<void> {
  const before = new Set(await readdir(dir));
  process.kill(child.pid!, "SIGUSR2");
  const file = await waitFor(
    async () => (await readdir(dir)).find((f) => f.endsWith(".heapsnapshot") && !before.has(f)),
    { description: `heap snapshot ${label}`, timeoutMs: 300_000, intervalMs: 500 },
  );
  // V8 writes the file as it walks the heap: done when its size stops changing.
  let last = -1;
  await waitFor(
    async () => {
      const size = (await stat(join(dir, file))).size;
      const settled = size === last && size > 0;
      last = size;
      return settled || undefined;
    },
    { description: `heap snapshot ${label} written`, timeoutMs: 300_000, intervalMs: 2_000 },
  );
  await rename(join(dir, file), join(dir, `${label}.heapsnapshot`));
}

function leaseSettings(text: string): LeaseSettings {
  const [leaseDurationMs, renewDeadlineMs, retryPeriodMs] = text.split(",").map(Number);
  if (![leaseDurationMs, renewDeadlineMs, retryPeriodMs].every((n) => Number.isInteger(n) && n! > 0))
    throw new Error(`SOAK_LEASE_MS: expected "leaseMs,renewDeadlineMs,retryPeriodMs", got "${text}"`);
  return { leaseDurationMs: leaseDurationMs!, renewDeadlineMs: renewDeadlineMs!, retryPeriodMs: retryPeriodMs! };
}

const JOB_NODES = [1, 2, 4, 8] as const;
const ARRIVAL_RATES = [5, 10, 20, 40] as const;
type Kind = "TrainingJob" | "ServingDeployment";
type Op = "create" | "scale" | "fault" | "delete";

interface Slot {
  kind: Kind;
  name: string;
  /** Generation suffix: a deleted slot comes back under a new name, so an old object's garbage is not confused. */
  generation: number;
  exists: boolean;
}

const plural = (kind: Kind): string => (kind === "TrainingJob" ? "trainingjobs" : "servingdeployments");
const ownerLabel = (kind: Kind): string =>
  kind === "TrainingJob" ? OwnedLabel.trainingJob : OwnedLabel.servingDeployment;
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

function trainingSpec(nodes: number): Partial<TrainingJob["spec"]> {
  return {
    nodes,
    gpusPerNode: 8,
    parallelism: { tp: 8, pp: 1, dp: nodes },
    model: { paramsBillions: 7.5, layers: 36, hiddenSize: 4096, globalBatchSequences: 64 },
  } as Partial<TrainingJob["spec"]>;
}

interface OpCounts {
  [key: string]: { ok: number; failed: number };
}

/** The churn: one operation on a random slot, `opsPerS` a second, until `until` (performance.now()). */
async function churn(opts: {
  slots: Slot[];
  config: SoakConfig;
  until: number;
  objects: KubernetesObjectApi;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  counts: OpCounts;
  errors: string[];
}): Promise<void> {
  const { slots, config, objects, custom, core, counts, errors } = opts;
  const random = seededRandom(config.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const periodMs = 1000 / config.opsPerS;
  let next = performance.now();
  while (performance.now() < opts.until) {
    const slot = pick(slots);
    const roll = random();
    const op: Op = !slot.exists ? "create" : roll < 0.35 ? "scale" : roll < 0.7 ? "fault" : "delete";
    const key = `${slot.kind} ${op}`;
    counts[key] ??= { ok: 0, failed: 0 };
    try {
      await operate(slot, op, pick, { objects, custom, core });
      counts[key].ok++;
    } catch (error) {
      counts[key].failed++;
      if (errors.length < 20) errors.push(`${key} ${slot.name}: ${(error as Error).message.slice(0, 300)}`);
    }
    next += periodMs;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
}

async function operate(
  slot: Slot,
  op: Op,
  pick: <T>(xs: readonly T[]) => T,
  api: { objects: KubernetesObjectApi; custom: CustomObjectsApi; core: CoreV1Api },
): Promise<void> {
  const group = { group: API_GROUP, version: API_VERSION, namespace: NAMESPACE, plural: plural(slot.kind) };
  switch (op) {
    case "create": {
      slot.generation++;
      slot.name = `${slot.name.replace(/-g\d+$/, "")}-g${slot.generation}`;
      const object: KubernetesObject =
        slot.kind === "TrainingJob"
          ? trainingJob(slot.name, NAMESPACE, trainingSpec(pick(JOB_NODES)))
          : servingDeployment(slot.name, NAMESPACE, { workload: { arrivalRatePerSec: pick(ARRIVAL_RATES) } });
      await api.objects.create(object);
      slot.exists = true;
      return;
    }
    case "scale": {
      const body =
        slot.kind === "TrainingJob"
          ? { spec: trainingSpec(pick(JOB_NODES)) }
          : { spec: { workload: { arrivalRatePerSec: pick(ARRIVAL_RATES) } } };
      await api.custom.patchNamespacedCustomObject({ ...group, name: slot.name, body }, mergePatch);
      return;
    }
    case "fault": {
      const pods = await api.core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `${ownerLabel(slot.kind)}=${slot.name}`,
      });
      const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
      if (live.length === 0) return; // not placed yet (or unschedulable): nothing to fault
      await api.core.deleteNamespacedPod({ namespace: NAMESPACE, name: pick(live).metadata!.name! });
      return;
    }
    case "delete":
      await api.custom.deleteNamespacedCustomObject({ ...group, name: slot.name });
      slot.exists = false;
      return;
  }
}

/** What is left in the namespace, by kind (the kinds the leak check counts). */
async function remaining(
  core: CoreV1Api,
  coordination: CoordinationV1Api,
  custom: CustomObjectsApi,
): Promise<Record<string, number>> {
  const ns = { namespace: NAMESPACE };
  const [pods, services, endpoints, configMaps, leases, jobs, deployments] = await Promise.all([
    core.listNamespacedPod(ns),
    core.listNamespacedService(ns),
    core.listNamespacedEndpoints(ns),
    core.listNamespacedConfigMap(ns),
    coordination.listNamespacedLease(ns),
    custom.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, ...ns, plural: "trainingjobs" }),
    custom.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, ...ns, plural: "servingdeployments" }),
  ]);
  return {
    pods: pods.items.length,
    services: services.items.length,
    endpoints: endpoints.items.length,
    configMaps: configMaps.items.filter((c) => c.metadata?.name !== "kube-root-ca.crt").length,
    leases: leases.items.length,
    trainingJobs: (jobs as { items: unknown[] }).items.length,
    servingDeployments: (deployments as { items: unknown[] }).items.length,
  };
}

/** Resources the operator's caches still hold (gpufleet_operator_resources, every kind and phase). */
function cachedResources(metricsText: string): number {
  return parsePrometheus(metricsText)
    .filter((s) => s.name === "gpufleet_operator_resources")
    .reduce((a, s) => a + s.value, 0);
}

export async function run(): Promise<void> {
  const config = soakConfig();
  const log = (m: string): void => console.error(`[soak] ${m}`);
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  await mkdir(dir, { recursive: true });
  try {
    await resolveK8sBinaries();
  } catch (error) {
    const note = `soak skipped: the Kubernetes binaries are unavailable (${(error as Error).message})`;
    await writeFile(join(dir, "soak.json"), JSON.stringify({ benchmark: "soak", skipped: note }, null, 2) + "\n");
    await writeFile(join(dir, "soak.md"), `# Soak\n\n${note}\n`);
    return;
  }
  const local = await startLocalCluster({ profile: config.profile, withNats: false, log });
  const kwokNodes = local.profile?.groups.reduce((sum, g) => sum + g.count, 0) ?? 0;
  let operator: Awaited<ReturnType<typeof startOperatorProcess>> | undefined;
  let churnStartMs = 0;
  try {
    await installCrds(local.kubeconfigPath);
    const core = local.kubeConfig.makeApiClient(CoreV1Api);
    const custom = local.kubeConfig.makeApiClient(CustomObjectsApi);
    const coordination = local.kubeConfig.makeApiClient(CoordinationV1Api);
    const objects = KubernetesObjectApi.makeApiClient(local.kubeConfig);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: NAMESPACE }), {
      description: "default ServiceAccount",
      timeoutMs: 60_000,
    });
    operator = await startOperatorProcess({
      kubeconfigPath: local.kubeconfigPath,
      namespace: "default",
      identity: "bench-soak",
      env: {
        GPUFLEET_LOG_LEVEL: operatorLogFile ? "debug" : "info", // "operator started" is an info line
        GPUFLEET_LEASE_DURATION_MS: String(config.lease.leaseDurationMs),
        GPUFLEET_RENEW_DEADLINE_MS: String(config.lease.renewDeadlineMs),
        GPUFLEET_RETRY_PERIOD_MS: String(config.lease.retryPeriodMs),
      },
      // SOAK_OPERATOR_CPU_PROF=DIR writes the operator's V8 CPU profile there when it exits (10 ms samples).
      nodeArgs: [
        ...(process.env["SOAK_OPERATOR_CPU_PROF"]
          ? ["--cpu-prof", "--cpu-prof-interval", "10000", "--cpu-prof-dir", process.env["SOAK_OPERATOR_CPU_PROF"]]
          : []),
        ...(snapshotDir ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapshotDir}`] : []),
      ],
    });
    const op = operator;
    const snapshot = async (label: string): Promise<void> => {
      if (!snapshotDir) return;
      log(`heap snapshot "${label}" (the operator pauses while V8 writes it)`);
      await takeHeapSnapshot(op.child, snapshotDir, label);
    };
    const samples: OperatorSample[] = [];
    let t0 = performance.now();
    // The machine's load beside the operator's own stall tells a starved process from a busy one.
    const operatorExited = (): Error =>
      new Error(
        `the operator exited (${op.child.exitCode}) ${round((performance.now() - t0) / 1000, 1)} s after the churn began (longest event-loop stall sampled: ${round(Math.max(0, ...samples.map((x) => x.eventLoopLagMaxS)) * 1000, 1)} ms; load average ${os
          .loadavg()
          .map((l) => round(l, 1))
          .join(
            " / ",
          )} on ${os.availableParallelism()} CPUs); ${lastWords(op.logs)}; stderr: ${op.stderrTail().slice(-2000) || "(none)"}`,
      );
    const sample = async (): Promise<string> => {
      // An operator that exited is reported with why, at whatever phase (churn, drain) it happened.
      if (op.child.exitCode !== null) throw operatorExited();
      const text = await op.metrics();
      samples.push(operatorSample(text, round((performance.now() - t0) / 1000, 1)));
      return text;
    };
    // Idle baseline: the operator with its caches synced and nothing to do (tS < 0).
    await waitFor(async () => op.child.exitCode === null && (await op.metrics()).includes("leader 1"), {
      description: "operator leading",
      timeoutMs: 120_000,
    });
    for (let i = 0; i < 3; i++) {
      await sample();
      await new Promise((r) => setTimeout(r, config.sampleS * 1000));
    }
    await snapshot("idle");
    t0 = performance.now();
    churnStartMs = Date.now();
    for (const s of samples) s.tS = round(s.tS - (config.sampleS * 3 + 0.5), 1);

    const slots: Slot[] = [
      ...Array.from({ length: config.trainingJobs }, (_, i) => ({
        kind: "TrainingJob" as const,
        name: `tj-${i}`,
        generation: 0,
        exists: false,
      })),
      ...Array.from({ length: config.servingDeployments }, (_, i) => ({
        kind: "ServingDeployment" as const,
        name: `sd-${i}`,
        generation: 0,
        exists: false,
      })),
    ];
    const counts: OpCounts = {};
    const errors: string[] = [];
    // The population is created at once, then churned.
    const created = await Promise.allSettled(
      slots.map((s) => operate(s, "create", (xs) => xs[0]!, { objects, custom, core })),
    );
    const createFailures = created.filter((c) => c.status === "rejected").length;
    counts["initial create"] = { ok: created.length - createFailures, failed: createFailures };
    log(`created ${created.length - createFailures} of ${slots.length} objects; churning for ${config.durationS} s`);
    const until = t0 + config.durationS * 1000;
    let warmupSnapshot = false;
    const sampler = (async () => {
      while (performance.now() < until) {
        if (op.child.exitCode !== null) throw operatorExited();
        await sample().catch((error: unknown) => errors.push(`scrape: ${(error as Error).message}`));
        if (!warmupSnapshot && performance.now() >= t0 + config.durationS * config.warmupFraction * 1000) {
          warmupSnapshot = true;
          await snapshot("warmup");
        }
        await new Promise((r) => setTimeout(r, config.sampleS * 1000));
      }
    })();
    await churn({ slots, config, until, objects, custom, core, counts, errors });
    await sampler;
    log(`churn done: ${JSON.stringify(counts)}`);
    await snapshot("end");

    // Teardown and the leak check.
    const drainStarted = performance.now();
    for (const kind of ["TrainingJob", "ServingDeployment"] as const) {
      const list = (await custom.listNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace: NAMESPACE,
        plural: plural(kind),
      })) as { items: KubernetesObject[] };
      await Promise.all(
        list.items.map((o) =>
          custom
            .deleteNamespacedCustomObject({
              group: API_GROUP,
              version: API_VERSION,
              namespace: NAMESPACE,
              plural: plural(kind),
              name: o.metadata!.name!,
            })
            .catch(() => undefined),
        ),
      );
    }
    let left: Record<string, number> = {};
    let cached = Number.NaN;
    let drained = true;
    try {
      await waitFor(
        async () => {
          left = await remaining(core, coordination, custom);
          cached = cachedResources(await op.metrics());
          return Object.values(left).every((n) => n === 0) && cached === 0;
        },
        { description: "namespace empty", timeoutMs: config.drainTimeoutS * 1000, intervalMs: 2_000 },
      );
    } catch {
      drained = false;
    }
    const drainMs = Math.round(performance.now() - drainStarted);
    await snapshot("drained");
    const afterDrainText = await sample();
    const afterDrain = samples.at(-1)!;
    const eventsLeft = (await core.listNamespacedEvent({ namespace: NAMESPACE })).items.length;

    const churnSamples = samples.filter((s) => s.tS >= 0 && s.tS <= config.durationS + config.sampleS);
    const warmupS = config.durationS * config.warmupFraction;
    const atWarmup = churnSamples.find((s) => s.tS >= warmupS);
    const atEnd = churnSamples.at(-1);
    const controllers = Object.keys(atEnd?.queueDepth ?? {}).sort();
    const rss = memoryFigures(churnSamples, warmupS, (s) => s.rssBytes);
    const heap = memoryFigures(churnSamples, warmupS, (s) => s.heapUsedBytes);
    // The queue de-duplicates keys, and a deleted object's key stays queued until reconciled once more: the bound is
    // every name the soak created, not the live population.
    const keys: Record<string, number> = {
      trainingjob: slots.filter((s) => s.kind === "TrainingJob").reduce((a, s) => a + s.generation, 0),
      servingdeployment: slots.filter((s) => s.kind === "ServingDeployment").reduce((a, s) => a + s.generation, 0),
    };
    const queue = Object.fromEntries(
      controllers.map((c) => {
        const f = queueFigures(churnSamples, warmupS, c);
        // Bounded: never more keys than names (the queue de-duplicates, so more would be a queue bug), no growth
        // from the first to the second half after warm-up, and empty again once the churn and the drain are over.
        const bound = keys[c] ?? Number.POSITIVE_INFINITY;
        const drainedDepth = afterDrain.queueDepth[c] ?? 0;
        const bounded =
          f.maxDepthAfterWarmup <= bound && f.maxSecondHalf <= Math.max(2 * f.maxFirstHalf, 5) && drainedDepth === 0;
        return [c, { ...f, keyBound: Number.isFinite(bound) ? bound : null, afterDrain: drainedDepth, bounded }];
      }),
    );
    const reconcile = Object.fromEntries(
      controllers.map((c) => {
        const to = atEnd?.reconcileBuckets[c] ?? [];
        const from = atWarmup?.reconcileBuckets[c];
        const count = (to.at(-1)?.[1] ?? 0) - (from?.at(-1)?.[1] ?? 0);
        const p = (q: number) => {
          const v = histogramQuantile(q, to, from);
          return v === undefined ? null : round(v * 1000, 1);
        };
        // Above the largest bucket the value is only a lower bound: say so.
        return [
          c,
          { reconciles: count, p50Ms: p(0.5), p99Ms: p(0.99), p99AboveTopBucket: quantileOverflows(0.99, to, from) },
        ];
      }),
    );
    const api = apiRate(churnSamples, warmupS);
    const lags = churnSamples.filter((s) => s.tS >= warmupS).map((s) => s.eventLoopLagMaxS);
    const eventLoopLagMaxMs = lags.length ? round(Math.max(...lags) * 1000, 1) : null;
    const idle = samples.filter((s) => s.tS < 0);
    const memoryFlat = Math.abs(rss.ratio - 1) <= 0.1;
    const queueBounded = Object.values(queue).every((q) => q.bounded);
    const nothingLeaked = drained && Object.values(left).every((n) => n === 0) && cached === 0;
    const result = {
      benchmark: "soak",
      generatedAt: new Date().toISOString(),
      node: process.version,
      short: config.durationS < FULL_DURATION_S,
      durationS: config.durationS,
      config,
      cluster: { profile: local.profile?.name ?? config.profile, kwokNodes },
      baseline: "the operator's own figures at the end of warm-up (first 20% of the churn) in the same run",
      warmupS,
      ops: counts,
      opErrors: errors,
      memory: {
        idleRssBytes: Math.round(idle.reduce((a, s) => a + s.rssBytes, 0) / Math.max(idle.length, 1)),
        rss,
        heapUsed: heap,
        afterDrainRssBytes: afterDrain.rssBytes,
        afterDrainHeapUsedBytes: afterDrain.heapUsedBytes,
      },
      queue,
      reconcile,
      apiRequestsPerS: api,
      eventLoopLagMaxMs,
      chartLease: chartLeaseSettings(),
      slowLeaseCalls: slowLeaseCalls(op.logs),
      leaks: {
        counted:
          "in the namespace: Pods, Services, Endpoints, ConfigMaps (kube-root-ca.crt aside), Leases, TrainingJobs, " +
          "ServingDeployments; and the operator's cached gpufleet resources (gpufleet_operator_resources). Events aside.",
        remaining: left,
        operatorCachedResources: cached,
        drainMs,
        drainTimeoutS: config.drainTimeoutS,
        eventsLeftNotCounted: eventsLeft,
      },
      verdicts: {
        memoryFlat: { target: "RSS within 10% after warm-up", ratio: rss.ratio, passed: memoryFlat },
        queueBounded: { target: "queue depth bounded", passed: queueBounded },
        nothingLeaked: { target: "zero leaked objects", passed: nothingLeaked },
      },
      operatorExited: op.child.exitCode,
      samples: samples.map((s) => ({
        tS: s.tS,
        rssBytes: s.rssBytes,
        heapUsedBytes: s.heapUsedBytes,
        queueDepth: s.queueDepth,
        apiRequests: s.apiRequests,
        eventLoopLagMaxS: s.eventLoopLagMaxS,
      })),
      afterDrainCachedResources: cachedResources(afterDrainText),
    };
    await writeFile(join(dir, "soak.json"), JSON.stringify(result, null, 2) + "\n");
    const md = markdown(result);
    await writeFile(join(dir, "soak.md"), md);
    process.stdout.write(md);
  } finally {
    await operator?.stop();
    if (operatorLogFile && operator)
      await writeFile(
        operatorLogFile,
        [{ soakChurnStartMs: churnStartMs }, ...operator.logs].map((l) => JSON.stringify(l)).join("\n") + "\n",
      );
    await local.stop();
  }
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const verdict = (passed: boolean): string => (passed ? "met" : "**missed**");

interface SoakResult {
  short: boolean;
  durationS: number;
  warmupS: number;
  config: SoakConfig;
  cluster: { profile: string; kwokNodes: number };
  ops: OpCounts;
  opErrors: string[];
  memory: {
    idleRssBytes: number;
    rss: ReturnType<typeof memoryFigures>;
    heapUsed: ReturnType<typeof memoryFigures>;
    afterDrainRssBytes: number;
  };
  queue: Record<
    string,
    ReturnType<typeof queueFigures> & { keyBound: number | null; afterDrain: number; bounded: boolean }
  >;
  reconcile: Record<
    string,
    { reconciles: number; p50Ms: number | null; p99Ms: number | null; p99AboveTopBucket: boolean }
  >;
  apiRequestsPerS: { mean: number; max: number };
  eventLoopLagMaxMs: number | null;
  chartLease: LeaseSettings;
  slowLeaseCalls: { count: number; maxMs: number | null };
  leaks: { remaining: Record<string, number>; operatorCachedResources: number; drainMs: number; counted: string };
  verdicts: Record<string, { target: string; passed: boolean }>;
}

function markdown(r: SoakResult): string {
  const label = r.short
    ? `**Short run: ${r.durationS} s of churn** (the full soak is ${FULL_DURATION_S} s: \`npm run bench -- soak\`).`
    : `Full run: ${r.durationS} s of churn.`;
  const leftText = Object.entries(r.leaks.remaining)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const opRows = Object.entries(r.ops).map(([k, v]) => `| ${k} | ${v.ok} | ${v.failed} |`);
  const ctrlRows = Object.keys(r.queue).map((c) => {
    const q = r.queue[c]!;
    const rec = r.reconcile[c];
    return `| ${c} | ${q.maxDepthAfterWarmup} | ${q.maxFirstHalf} / ${q.maxSecondHalf} | ${q.meanAfterWarmup} | ${q.afterDrain} | ${q.keyBound ?? "–"} | ${verdict(q.bounded)} | ${rec?.reconciles ?? 0} | ${rec?.p50Ms ?? "–"} | ${rec?.p99AboveTopBucket ? "≥ " : ""}${rec?.p99Ms ?? "–"} |`;
  });
  return [
    "# Soak: training and serving churn on kwok",
    "",
    "Generated by `npm run bench -- soak` (bench/soak.ts). " + label,
    `Cluster: clusters/${r.cluster.profile}.yaml (${r.cluster.kwokNodes} kwok nodes); ${r.config.trainingJobs} TrainingJobs and`,
    `${r.config.servingDeployments} ServingDeployments created at once, then ${r.config.opsPerS} operations/s (create, scale, fault, delete)`,
    `on random objects; the operator runs as its own process (leader election on). Warm-up: the first ${r.warmupS} s.`,
    "Baseline: the operator's own figures at the end of warm-up, same run.",
    "",
    "| target | result | verdict |",
    "|---|---|---|",
    `| memory flat within 10% after warm-up | RSS ${mib(r.memory.rss.afterWarmupBytes)} → ${mib(r.memory.rss.endBytes)}, ratio **${r.memory.rss.ratio}** (peak ${r.memory.rss.peakRatio}, slope ${r.memory.rss.slopeMiBPerMin} MiB/min) | ${verdict(r.verdicts["memoryFlat"]!.passed)} |`,
    `| queue depth bounded | see the controller table | ${verdict(r.verdicts["queueBounded"]!.passed)} |`,
    `| nothing leaked | ${leftText}; cached resources ${r.leaks.operatorCachedResources}; drained in ${r.leaks.drainMs} ms | ${verdict(r.verdicts["nothingLeaked"]!.passed)} |`,
    "",
    `Memory: idle RSS ${mib(r.memory.idleRssBytes)} before the churn; heap used ${mib(r.memory.heapUsed.afterWarmupBytes)} → ${mib(r.memory.heapUsed.endBytes)} after warm-up (ratio ${r.memory.heapUsed.ratio}, slope ${r.memory.heapUsed.slopeMiBPerMin} MiB/min); RSS after the drain ${mib(r.memory.afterDrainRssBytes)}.`,
    `API requests the operator sent (gpufleet_operator_api_requests_total, watches aside): **${r.apiRequestsPerS.mean}/s** mean after warm-up, ${r.apiRequestsPerS.max}/s the largest ${r.config.sampleS} s step.`,
    `Event loop: the longest stall after warm-up was ${r.eventLoopLagMaxMs} ms (gpufleet_operator_nodejs_eventloop_lag_max_seconds, per ${r.config.sampleS} s sample); the leader's renew deadline is ${r.config.lease.renewDeadlineMs} ms.`,
    `Leader election: lease ${r.config.lease.leaseDurationMs} / renew deadline ${r.config.lease.renewDeadlineMs} / retry ${r.config.lease.retryPeriodMs} ms (chart: ${r.chartLease.leaseDurationMs} / ${r.chartLease.renewDeadlineMs} / ${r.chartLease.retryPeriodMs}; SOAK_LEASE_MS overrides); Lease calls over 1 s: ${r.slowLeaseCalls.count}, the slowest ${r.slowLeaseCalls.maxMs ?? "–"} ms.`,
    "",
    "| controller | max queue depth after warm-up | max 1st / 2nd half | mean | after drain | key bound | bounded | reconciles after warm-up | P50 ms | P99 ms |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...ctrlRows,
    "",
    "Reconcile percentiles: from gpufleet_operator_reconcile_duration_seconds between the end of warm-up and the end of",
    "the churn, interpolated inside buckets as histogram_quantile does (≥: above the top bucket, a lower bound). Bounded:",
    "never more queued keys than names the soak created (key bound), no",
    "growth from the first to the second half after warm-up (second-half max ≤ max(2 × first-half max, 5)), empty after",
    "the drain.",
    "",
    `Leak check counts ${r.leaks.counted}`,
    "",
    "| operation | ok | failed |",
    "|---|---|---|",
    ...opRows,
    "",
    ...(r.opErrors.length > 0 ? ["First operation errors:", "", ...r.opErrors.map((e) => `- ${e}`), ""] : []),
  ].join("\n");
}

/** The operator's last error and warning lines (pino levels >= 40), why it stopped: most often a lost Lease. */
/** The operator's "lease call slow" warnings (leader.ts logs calls over 1 s): how many, and the slowest. */
function slowLeaseCalls(logs: readonly Record<string, unknown>[]): { count: number; maxMs: number | null } {
  const durations = logs.filter((l) => l.msg === "leader election: lease call slow").map((l) => Number(l.durationMs));
  return { count: durations.length, maxMs: durations.length ? Math.max(...durations) : null };
}

function lastWords(logs: readonly Record<string, unknown>[], count = 5): string {
  // The operator logs level labels ("warn", "error": operator/src/runtime/logger.ts), pino's default numbers (40, 50).
  const severe = (level: unknown) =>
    typeof level === "number" ? level >= 40 : ["warn", "error", "fatal"].includes(String(level));
  // Leader-election lines first: an operator that lost its lease exits, and its last lines are then only the refused
  // writes that followed.
  const aboutLease = (l: Record<string, unknown>) => /lease|leader/i.test(String(l.msg));
  const lines = [
    ...logs.filter((l) => severe(l.level) && aboutLease(l)).slice(0, count),
    ...logs.filter((l) => severe(l.level) && !aboutLease(l)).slice(-count),
  ];
  if (lines.length === 0) return "it logged no warning or error";
  return `its last warnings/errors: ${lines
    .map((l) => JSON.stringify({ msg: l.msg, err: l.err, ...l }))
    .join(" | ")
    .slice(0, 2000)}`;
}
