/**
 * Benchmark: Holmes NIC-aware placement vs the NIC-oblivious placement, by the step-time model
 * (operator/src/training/step-time.ts), on heterogeneous-NIC clusters; and the planner's wall time at 1,024 and
 * 8,000 GPUs. `npm run bench -- training`, or directly:
 *   npx tsx -e 'import("./bench/training.ts").then(m=>m.run())'
 *
 * Profiles:
 *   holmes-mix      InfiniBand + RoCE islands, A100-80GB, GPT-7.5B-shaped (36 layers, hidden 4096): the mix of
 *                   the Holmes paper's (ICPP'24) cross-cluster experiments; NIC numbers are ours (IB 4×200 Gb/s HDR,
 *                   RoCE 4×100 Gb/s), not the paper's testbed.
 *   ib-ethernet     InfiniBand (8×400 Gb/s) + Ethernet (2×100 Gb/s) islands, H100.
 *   homogeneous-ib  one InfiniBand fabric: every placement is equivalent and the ratio must be ~1.
 * The 8,000-GPU rows use a GPT-175B shape (96 layers, hidden 12288) and four islands.
 * Every cluster has 25% more usable nodes than the job needs, so placement is a choice.
 *
 * Baseline: kube-scheduler gives identical empty nodes identical scores and breaks ties at random (selectHost
 * samples among the top-scored nodes), so the NIC-oblivious gang is `nodes` in a seeded random order, chunked
 * into stages in that order with Megatron's uniform layer split (median over 5 seeds). The planner's own
 * by-name oblivious baseline (what status.placement.obliviousStepMs shows) is reported beside it.
 *
 * The numbers are model predictions, not measured step times; placementMs is measured wall time of
 * planTrainingPlacement (median of 5 runs after one warm-up, on this machine).
 *
 * kwok measurement (the whole system, not a model): a local cluster of the 1,000-node kwok profile
 * (clusters/large.yaml, test/harness/cluster.ts) with the operator in-process (operator/src/operator.ts); the wall
 * time from creating a 1,024-GPU TrainingJob (128 nodes × 8, the 1k shape above) to every one of its pods Running,
 * observed through a pod watch. KWOK_RUNS runs, each on an idle cluster (the previous job deleted and its pods gone);
 * applyToAllRunningMs is their median. It covers the operator's planning on 1,000 candidate nodes, creating 128
 * bound pods with server-side apply and kwok marking them Running; kwok pods start at once, so container start-up
 * on real nodes is not in it. Skipped, with a note in the results, when the Kubernetes binaries are unavailable.
 *
 * Results: bench/results/training.json = { scenarios: [...], kwok: { kwokNodes, gpus, applyToAllRunningMs, ... } }
 * (kwok: null and kwokNote when skipped).
 */
import { CoreV1Api, KubernetesObjectApi, Watch, type V1Pod } from "@kubernetes/client-node";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OwnedLabel } from "../crds/src/reasons.js";
import type { TrainingJob } from "../crds/src/training-job.js";
import { loadOperatorConfig } from "../operator/src/config/config.js";
import { startOperator } from "../operator/src/operator.js";
import { silentLogger } from "../operator/src/runtime/logger.js";
import { cluster, GptShape } from "../operator/src/training/builders.js";
import { resolveK8sBinaries } from "../test/harness/binaries.js";
import { startLocalCluster } from "../test/harness/cluster.js";
import { waitFor } from "../test/harness/wait.js";
import { installCrds } from "../test/support/operator.js";
import {
  DEFAULT_LINK_MODEL,
  planObliviousPlacement,
  planTrainingPlacement,
  type CandidateNode,
  type TrainingJobShape,
  type TrainingPlacement,
  type TrainingPlacementResult,
} from "../operator/src/training/index.js";
import type { NicType } from "../crds/src/topology.js";

interface IslandSpec {
  name: string;
  nicType: NicType;
  /** Share of the cluster's nodes. */
  share: number;
  nicCount: number;
  nicBandwidthGbps: number;
}

interface Profile {
  profile: string;
  description: string;
  gpuModel: string;
  islands: (scale: "1k" | "8k") => IslandSpec[];
}

const PROFILES: Profile[] = [
  {
    profile: "holmes-mix",
    description: "InfiniBand + RoCE islands (Holmes paper mix), A100-80GB",
    gpuModel: "A100-80GB",
    islands: (scale) =>
      scale === "1k"
        ? [ib("ib-a", 0.5, 4, 200), roce("roce-a", 0.5, 4, 100)]
        : [
            ib("ib-a", 0.25, 4, 200),
            ib("ib-b", 0.25, 4, 200),
            roce("roce-a", 0.25, 4, 100),
            roce("roce-b", 0.25, 4, 100),
          ],
  },
  {
    profile: "ib-ethernet",
    description: "InfiniBand + Ethernet islands, H100-80GB",
    gpuModel: "H100-80GB",
    islands: (scale) =>
      scale === "1k"
        ? [ib("ib-a", 0.5, 8, 400), eth("eth-a", 0.5, 2, 100)]
        : [ib("ib-a", 0.25, 8, 400), ib("ib-b", 0.25, 8, 400), eth("eth-a", 0.25, 2, 100), eth("eth-b", 0.25, 2, 100)],
  },
  {
    profile: "homogeneous-ib",
    description: "one InfiniBand fabric, H100-80GB",
    gpuModel: "H100-80GB",
    islands: () => [ib("ib-a", 1, 8, 400)],
  },
];

function ib(name: string, share: number, nicCount: number, nicBandwidthGbps: number): IslandSpec {
  return { name, nicType: "infiniband", share, nicCount, nicBandwidthGbps };
}
function roce(name: string, share: number, nicCount: number, nicBandwidthGbps: number): IslandSpec {
  return { name, nicType: "roce", share, nicCount, nicBandwidthGbps };
}
function eth(name: string, share: number, nicCount: number, nicBandwidthGbps: number): IslandSpec {
  return { name, nicType: "ethernet", share, nicCount, nicBandwidthGbps };
}

const JOBS = {
  // 1,024 GPUs = 128 nodes: GPT-7.5B with tp 4, pp 4, dp 64 (32 nodes per stage), 1,024 sequences per step.
  "1k": {
    nodes: 128,
    gpusPerNode: 8,
    tp: 4,
    pp: 4,
    dp: 64,
    model: { ...GptShape["gpt-7.5b"], globalBatchSequences: 1024 },
  },
  // 8,000 GPUs = 1,000 nodes: GPT-175B with tp 8, pp 8, dp 125 (125 nodes per stage), 2,000 sequences per step.
  "8k": {
    nodes: 1000,
    gpusPerNode: 8,
    tp: 8,
    pp: 8,
    dp: 125,
    model: { ...GptShape["gpt-175b"], globalBatchSequences: 2000 },
  },
} as const;

const SPARE = 1.25;
const SEEDS = [1, 2, 3, 4, 5];
const TIMING_RUNS = 5;

export interface TrainingScenario {
  profile: string;
  description: string;
  gpus: number;
  nodes: number;
  clusterNodes: number;
  model: string;
  parallelism: { tp: number; pp: number; dp: number };
  holmesStepMs: number;
  /** kube-scheduler-like random tie-break order, median over seeds. */
  obliviousStepMs: number;
  /** The planner's by-name oblivious baseline. */
  obliviousByNameStepMs: number;
  /** holmesStepMs ÷ obliviousStepMs (lower is better for Holmes). */
  ratio: number;
  ratioByName: number;
  placementMs: number;
  islandsUsed: string[];
  layersPerStage: number[];
  /** Stages whose DP group crosses fabrics (runs on sockets) in each placement. */
  holmesCrossFabricStages: number;
  obliviousCrossFabricStages: number;
}

function buildCluster(p: Profile, scale: "1k" | "8k", jobNodes: number): CandidateNode[] {
  const total = Math.round(jobNodes * SPARE);
  const b = cluster();
  const specs = p.islands(scale);
  let left = total;
  specs.forEach((s, i) => {
    const count = i === specs.length - 1 ? left : Math.round(total * s.share);
    left -= count;
    b.island(s.name, s.nicType, count, {
      gpuModel: p.gpuModel,
      nicCount: s.nicCount,
      nicBandwidthGbps: s.nicBandwidthGbps,
    });
  });
  return b.build();
}

/** Seeded Fisher–Yates shuffle (mulberry32). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function must(result: TrainingPlacementResult, what: string): TrainingPlacement {
  if (!result.ok) throw new Error(`${what}: ${result.reason}: ${result.message}`);
  return result;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const crossFabric = (p: TrainingPlacement): number => p.stages.filter((s) => s.island.includes("+")).length;
const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

export function runScenario(p: Profile, scale: "1k" | "8k"): TrainingScenario {
  const job: TrainingJobShape = {
    name: `${p.profile}-${scale}`,
    nicAware: true,
    ...JOBS[scale],
    model: { ...JOBS[scale].model },
  };
  const nodes = buildCluster(p, scale, job.nodes);
  must(planTrainingPlacement({ job, nodes }), job.name); // warm-up
  const times: number[] = [];
  let holmes: TrainingPlacement | null = null;
  for (let i = 0; i < TIMING_RUNS; i++) {
    const t0 = performance.now();
    holmes = must(planTrainingPlacement({ job, nodes }), job.name);
    times.push(performance.now() - t0);
  }
  const placement = holmes!;
  const oblivious = SEEDS.map((seed) =>
    must(planObliviousPlacement({ job, nodes: shuffled(nodes, seed) }), `${job.name} oblivious`),
  );
  const obliviousStepMs = median(oblivious.map((o) => o.predictedStepMs));
  const medianOblivious = oblivious.find((o) => o.predictedStepMs === obliviousStepMs) ?? oblivious[0]!;
  return {
    profile: p.profile,
    description: p.description,
    gpus: job.nodes * job.gpusPerNode,
    nodes: job.nodes,
    clusterNodes: nodes.length,
    model: scale === "1k" ? "gpt-7.5b" : "gpt-175b",
    parallelism: { tp: job.tp, pp: job.pp, dp: job.dp },
    holmesStepMs: round(placement.predictedStepMs, 1),
    obliviousStepMs: round(obliviousStepMs, 1),
    obliviousByNameStepMs: round(placement.obliviousStepMs, 1),
    ratio: round(placement.predictedStepMs / obliviousStepMs, 3),
    ratioByName: round(placement.predictedStepMs / placement.obliviousStepMs, 3),
    placementMs: round(median(times), 2),
    islandsUsed: [...placement.islandsUsed],
    layersPerStage: placement.stages.map((s) => s.layerEndExclusive - s.layerStart),
    holmesCrossFabricStages: crossFabric(placement),
    obliviousCrossFabricStages: crossFabric(medianOblivious),
  };
}

function markdown(scenarios: readonly TrainingScenario[]): string {
  const rows = scenarios.map(
    (s) =>
      `| ${s.profile} | ${s.gpus} | ${s.model} tp${s.parallelism.tp}·pp${s.parallelism.pp}·dp${s.parallelism.dp} | ${s.holmesStepMs} | ${s.obliviousStepMs} | **${s.ratio}** | ${s.obliviousByNameStepMs} | ${s.ratioByName} | ${s.layersPerStage.join("/")} | ${s.holmesCrossFabricStages} / ${s.obliviousCrossFabricStages} | ${s.placementMs} |`,
  );
  return [
    "# Training placement: Holmes vs NIC-oblivious (predicted step time)",
    "",
    "Generated by `npm run bench -- training` (bench/training.ts). Step times are predictions of the step-time model",
    "(operator/src/training/step-time.ts), not measurements. ratio = Holmes ÷ oblivious (lower is better).",
    "Oblivious = kube-scheduler-like random tie-break order (median of 5 seeds), uniform layer split; by-name = the",
    "planner's own baseline (first fit over nodes sorted by name). Clusters have 25% spare nodes.",
    "placementMs = wall time of planTrainingPlacement (median of 5 runs).",
    "",
    "| profile | GPUs | model | Holmes ms | oblivious ms | ratio | by-name ms | ratio by-name | Holmes layers/stage | cross-fabric stages (Holmes / oblivious) | placementMs |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "kwok apply-to-Running: not measured yet (`kwok: null` in training.json).",
    "",
  ].join("\n");
}

const KWOK_RUNS = 3;
const KWOK_NAMESPACE = "bench-training";

export interface KwokMeasurement {
  kwokNodes: number;
  gpus: number;
  /** Median over runs: creating the TrainingJob → every pod of its gang Running. */
  applyToAllRunningMs: number;
  /** Every run, in order. */
  runsMs: number[];
  /** Median: creating the TrainingJob → the first pod of the gang exists (the operator's decision time). */
  applyToFirstPodMs: number;
  pods: number;
  profile: string;
  /** Local cluster start-up (etcd … 1,000 nodes Ready), for context. */
  clusterStartMs: number;
}

function kwokJob(name: string): TrainingJob {
  const shape = JOBS["1k"];
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "TrainingJob",
    metadata: { name, namespace: KWOK_NAMESPACE },
    spec: {
      image: "nvcr.io/nvidia/pytorch:25.01-py3",
      command: ["torchrun", "train.py"],
      nodes: shape.nodes,
      gpusPerNode: shape.gpusPerNode,
      parallelism: { tp: shape.tp, pp: shape.pp, dp: shape.dp },
      model: { ...shape.model },
      checkpoint: { path: `/ckpt/${name}` },
    } as TrainingJob["spec"],
  };
}

/**
 * Watches the namespace's pods of `job`: `ready` once the watch is established, `done` with the performance.now()
 * times when the first pod appeared and when `count` were Running at once.
 */
function watchGang(
  watch: Watch,
  job: string,
  count: number,
  timeoutMs: number,
): { ready: Promise<void>; done: Promise<{ firstAt: number; allRunningAt: number }>; abort: () => void } {
  const phases = new Map<string, string>();
  let firstAt: number | undefined;
  let controller: { abort: () => void } | undefined;
  let resolveDone!: (value: { firstAt: number; allRunningAt: number }) => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<{ firstAt: number; allRunningAt: number }>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const timer = setTimeout(
    () =>
      rejectDone(
        new Error(
          `${job}: ${count} pods not Running within ${timeoutMs} ms (${[...phases.values()].filter((p) => p === "Running").length} are)`,
        ),
      ),
    timeoutMs,
  );
  void done.catch(() => undefined).finally(() => clearTimeout(timer));
  const ready = watch
    .watch(
      `/api/v1/namespaces/${KWOK_NAMESPACE}/pods`,
      { labelSelector: `${OwnedLabel.trainingJob}=${job}` },
      (type: string, pod: V1Pod) => {
        const name = pod.metadata?.name ?? "";
        if (type === "DELETED") phases.delete(name);
        else phases.set(name, pod.metadata?.deletionTimestamp ? "Terminating" : (pod.status?.phase ?? "Pending"));
        firstAt ??= performance.now();
        if ([...phases.values()].filter((p) => p === "Running").length === count)
          resolveDone({ firstAt, allRunningAt: performance.now() });
      },
      (err: unknown) => {
        if (err) rejectDone(err instanceof Error ? err : new Error(String(err)));
      },
    )
    .then((c: { abort: () => void }) => {
      controller = c;
    });
  return { ready, done, abort: () => controller?.abort() };
}

/** The kwok measurement, or why it was skipped (binaries unavailable). Cluster and operator are always stopped. */
export async function measureKwok(
  log: (message: string) => void = (m) => console.error(`[kwok] ${m}`),
): Promise<KwokMeasurement | { skipped: string }> {
  try {
    await resolveK8sBinaries();
  } catch (error) {
    return {
      skipped: `kwok measurement skipped: the Kubernetes binaries are unavailable (${(error as Error).message}); see scripts/k8s-binaries.sh`,
    };
  }
  const local = await startLocalCluster({ profile: "large", withNats: false, log });
  const kwokNodes = local.profile?.groups.reduce((sum, g) => sum + g.count, 0) ?? 0;
  const clusterStartMs = Math.max(...Object.values(local.timings));
  let operator: Awaited<ReturnType<typeof startOperator>> | undefined;
  try {
    await installCrds(local.kubeconfigPath);
    const config = loadOperatorConfig({
      GPUFLEET_LEADER_ELECTION: "false",
      GPUFLEET_HTTP_PORT: "0",
      GPUFLEET_IDENTITY: "bench-training",
      GPUFLEET_NAMESPACE: "default",
    });
    operator = await startOperator({ config, kubeConfig: local.kubeConfig, logger: silentLogger });
    const core = local.kubeConfig.makeApiClient(CoreV1Api);
    const objects = KubernetesObjectApi.makeApiClient(local.kubeConfig);
    await core.createNamespace({ body: { metadata: { name: KWOK_NAMESPACE } } });
    await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: KWOK_NAMESPACE }), {
      description: "default ServiceAccount",
      timeoutMs: 60_000,
    });

    const runs: { firstMs: number; allRunningMs: number }[] = [];
    const gangSize = JOBS["1k"].nodes;
    for (let i = 0; i < KWOK_RUNS; i++) {
      const name = `bench-1k-${i}`;
      const gang = watchGang(new Watch(local.kubeConfig), name, gangSize, 300_000);
      await gang.ready;
      const t0 = performance.now();
      await objects.create(kwokJob(name));
      const seen = await gang.done.finally(() => gang.abort());
      const result = { firstMs: seen.firstAt - t0, allRunningMs: seen.allRunningAt - t0 };
      runs.push(result);
      log(
        `run ${i + 1}: first pod after ${result.firstMs.toFixed(0)} ms, all ${gangSize} Running after ${result.allRunningMs.toFixed(0)} ms`,
      );
      await objects.delete({
        apiVersion: "gpufleet.io/v1alpha1",
        kind: "TrainingJob",
        metadata: { name, namespace: KWOK_NAMESPACE },
      });
      await waitFor(
        async () =>
          (
            await core.listNamespacedPod({
              namespace: KWOK_NAMESPACE,
              labelSelector: `${OwnedLabel.trainingJob}=${name}`,
            })
          ).items.length === 0,
        {
          description: `pods of ${name} garbage-collected`,
          timeoutMs: 180_000,
          intervalMs: 500,
        },
      );
    }
    return {
      kwokNodes,
      gpus: gangSize * JOBS["1k"].gpusPerNode,
      applyToAllRunningMs: Math.round(median(runs.map((r) => r.allRunningMs))),
      runsMs: runs.map((r) => Math.round(r.allRunningMs)),
      applyToFirstPodMs: Math.round(median(runs.map((r) => r.firstMs))),
      pods: gangSize,
      profile: local.profile?.name ?? "large",
      clusterStartMs,
    };
  } finally {
    await operator?.stop();
    await local.stop();
  }
}

function kwokMarkdown(kwok: KwokMeasurement | { skipped: string }): string {
  if ("skipped" in kwok) return `kwok apply-to-Running: ${kwok.skipped}.`;
  return [
    `kwok apply-to-Running (clusters/${kwok.profile}.yaml, ${kwok.kwokNodes} kwok nodes, operator in-process): a ${kwok.gpus}-GPU TrainingJob`,
    `(${kwok.pods} pods) from create to every pod Running in **${kwok.applyToAllRunningMs} ms** (median of ${kwok.runsMs.length}: ${kwok.runsMs.join(", ")} ms);`,
    `first pod after ${kwok.applyToFirstPodMs} ms (median). Run 1 is the first job a freshly started operator and client see (cold`,
    `caches and code paths). Pods are bound by the operator (spec.nodeName), so kube-scheduler is not in the path; kwok`,
    `marks bound pods Running at once, so container start-up on real nodes is not included.`,
  ].join("\n");
}

export async function run(): Promise<void> {
  const scenarios: TrainingScenario[] = [];
  for (const scale of ["1k", "8k"] as const) for (const p of PROFILES) scenarios.push(runScenario(p, scale));
  const kwok = await measureKwok();
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  await mkdir(dir, { recursive: true });
  const result = {
    benchmark: "training",
    generatedAt: new Date().toISOString(),
    node: process.version,
    linkModel: DEFAULT_LINK_MODEL,
    scenarios,
    kwok: "skipped" in kwok ? null : kwok,
    ...("skipped" in kwok ? { kwokNote: kwok.skipped } : {}),
  };
  await writeFile(join(dir, "training.json"), JSON.stringify(result, null, 2) + "\n");
  const md = markdown(scenarios).replace(
    "kwok apply-to-Running: not measured yet (`kwok: null` in training.json).",
    kwokMarkdown(kwok),
  );
  await writeFile(join(dir, "training.md"), md);
  process.stdout.write(md);
}
