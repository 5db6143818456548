/**
 * Holmes placement of a TrainingJob's gang (Yang et al., "Holmes: Towards Distributed Training Across Clusters with
 * Heterogeneous NIC Environment", ICPP'24), as a pure function of the job and the candidate nodes.
 *
 * What goes where (Holmes, sections "Cross-Cluster Pipeline Parallelism" and "Automatic NIC Selection"):
 *  - TP groups stay inside a node (NVLink): tp divides gpusPerNode.
 *  - Every node serves one pipeline stage, and a stage's nodes hold all of its DP groups, so "every DP group inside
 *    one island of one NIC type" is "every stage's nodes inside one island": the gradient all-reduce runs on RDMA.
 *  - Stages may sit on different islands and NIC types; only point-to-point activations cross between them.
 *
 * How islands are chosen:
 *  1. Candidates: each island that can hold every stage alone; the islands filled fastest-first (sorted by the
 *     modelled time of one stage on them, which orders by GPU speed and NIC bandwidth together, so the prefix that
 *     holds the job minimises the slowest DP ring); and the islands filled largest-first (fewest islands, fewest
 *     cross-fabric pipeline boundaries). Stages of one island are consecutive in the pipeline.
 *  2. Only when whole islands cannot hold pp stages do leftovers form stages that span islands: first across
 *     islands of one NIC type, and only then across NIC types. Stages of one NIC type from leftovers exist exactly
 *     when floor(usable nodes of that type ÷ nodesPerStage) exceeds the island-pure ones, so a DP group straddles
 *     NIC types only when no valid placement avoids it.
 *  3. Each candidate gets the exact min-max layer split (partition.ts) and the step-time model (step-time.ts); the
 *     fastest wins, and a candidate on fewer islands wins within 1% ("prefer a single island when the job fits").
 *
 * Inside an island nodes are ordered by leaf switch, so a stage's nodes (and the NCCL ring, which follows rank
 * order) stay on as few leaves as possible.
 *
 * Gang semantics: the result is either a placement for every rank on distinct usable nodes (schedulable, not
 * isolated, enough free GPUs, known GPU model) or a refusal naming what is missing; never part of a gang.
 *
 * The NIC-oblivious placement (the comparison baseline) is what kube-scheduler's first fit gives: usable nodes in
 * the order given (by name unless the caller says otherwise), chunked into stages, Megatron's uniform layer split.
 */
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import type { NicType } from "../../../crds/src/topology.js";
import { DEFAULT_NCCL_OPTIONS, nodeNcclEnv, type NcclOptions } from "./nccl.js";
import { layerRanges, partitionLayers, uniformLayers } from "./partition.js";
import { estimateStep, linkModelWith, stageCosts, type LinkModel, type StageCost } from "./step-time.js";
import {
  PlacementFailure,
  Transport,
  type CandidateNode,
  type MissingCapacity,
  type PlacedNode,
  type PlacedRank,
  type PlacedStage,
  type PlacementRefusal,
  type TrainingJobShape,
  type TrainingPlacement,
  type TrainingPlacementResult,
} from "./types.js";

export interface PlacementInput {
  job: TrainingJobShape;
  nodes: readonly CandidateNode[];
  linkModel?: Partial<LinkModel>;
  nccl?: Partial<NcclOptions>;
}

/** Within this fraction of the fastest, a candidate on fewer islands is preferred. */
const FEWER_ISLANDS_TOLERANCE = 0.01;

/** Plans the whole gang: Holmes when job.nicAware, the NIC-oblivious order otherwise. */
export function planTrainingPlacement(input: PlacementInput): TrainingPlacementResult {
  const ctx = context(input);
  if (!ctx.ok) return ctx;
  const oblivious = obliviousLayout(ctx, byName(ctx.usable));
  const obliviousStepMs = oblivious.estimate.stepMs;
  if (!input.job.nicAware) return buildPlacement(ctx, "oblivious", oblivious, obliviousStepMs);
  return buildPlacement(ctx, "holmes", holmesLayout(ctx), obliviousStepMs);
}

/**
 * The NIC-oblivious placement alone, taking usable nodes in the order given: what kube-scheduler's first fit
 * would produce for that order. Its obliviousStepMs is its own predicted step time.
 */
export function planObliviousPlacement(input: PlacementInput): TrainingPlacementResult {
  const ctx = context(input);
  if (!ctx.ok) return ctx;
  const usable = new Set(ctx.usable);
  const layout = obliviousLayout(
    ctx,
    input.nodes.filter((n) => usable.has(n)),
  );
  return buildPlacement(ctx, "oblivious", layout, layout.estimate.stepMs);
}

/** Problems with the job's shape, or null when it is valid. */
export function validateTrainingJob(job: TrainingJobShape): string | null {
  const positiveInts: [string, number][] = [
    ["nodes", job.nodes],
    ["gpusPerNode", job.gpusPerNode],
    ["tp", job.tp],
    ["pp", job.pp],
    ["dp", job.dp],
    ["model.layers", job.model.layers],
    ["model.hiddenSize", job.model.hiddenSize],
  ];
  for (const [field, value] of [
    ...positiveInts,
    ["model.seqLength", job.model.seqLength ?? 1] as [string, number],
    ["model.globalBatchSequences", job.model.globalBatchSequences ?? 1] as [string, number],
    ["model.microBatchSequences", job.model.microBatchSequences ?? 1] as [string, number],
  ]) {
    if (!Number.isInteger(value) || value < 1) return `${field} must be a positive integer, got ${value}`;
  }
  if (!(job.model.paramsBillions > 0) || !Number.isFinite(job.model.paramsBillions))
    return `model.paramsBillions must be positive, got ${job.model.paramsBillions}`;
  if (job.tp * job.pp * job.dp !== job.nodes * job.gpusPerNode) {
    return `tp × pp × dp = ${job.tp * job.pp * job.dp} must equal nodes × gpusPerNode = ${job.nodes * job.gpusPerNode}`;
  }
  if (job.gpusPerNode % job.tp !== 0)
    return `tp (${job.tp}) must divide gpusPerNode (${job.gpusPerNode}): a TP group stays inside one node`;
  if ((job.tp * job.dp) % job.gpusPerNode !== 0) {
    return `tp × dp (${job.tp * job.dp}) must be a multiple of gpusPerNode (${job.gpusPerNode}): each node serves one pipeline stage`;
  }
  if (job.pp > job.model.layers) return `pp (${job.pp}) cannot exceed model.layers (${job.model.layers})`;
  if (job.gpuModel !== undefined) {
    try {
      gpuSpec(job.gpuModel);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return null;
}

interface Context {
  ok: true;
  job: TrainingJobShape;
  nodesPerStage: number;
  usable: CandidateNode[];
  link: LinkModel;
  nccl: NcclOptions;
}

function context(input: PlacementInput): Context | PlacementRefusal {
  const { job } = input;
  const invalid = validateTrainingJob(job);
  if (invalid !== null)
    return { ok: false, reason: PlacementFailure.InvalidInput, message: `TrainingJob ${job.name}: ${invalid}` };
  const names = new Set<string>();
  for (const n of input.nodes) {
    if (names.has(n.nodeName))
      return { ok: false, reason: PlacementFailure.InvalidInput, message: `candidate node ${n.nodeName} listed twice` };
    names.add(n.nodeName);
  }
  const { usable, missing } = classify(job, input.nodes);
  if (usable.length < job.nodes) {
    return { ok: false, reason: PlacementFailure.Unschedulable, message: missingMessage(missing), missing };
  }
  return {
    ok: true,
    job,
    nodesPerStage: (job.tp * job.dp) / job.gpusPerNode,
    usable,
    link: linkModelWith(input.linkModel),
    nccl: { ...DEFAULT_NCCL_OPTIONS, ...input.nccl },
  };
}

/** Splits candidates into usable nodes and counts of why the others are not; each node counts once. */
export function classify(
  job: TrainingJobShape,
  nodes: readonly CandidateNode[],
): { usable: CandidateNode[]; missing: MissingCapacity } {
  const missing: MissingCapacity = {
    nodesNeeded: job.nodes,
    gpusPerNode: job.gpusPerNode,
    nodesUsable: 0,
    isolated: 0,
    unschedulable: 0,
    insufficientFreeGpus: 0,
    otherGpuModel: 0,
    unknownGpuModel: 0,
  };
  const usable: CandidateNode[] = [];
  for (const n of nodes) {
    if (job.gpuModel !== undefined && n.gpuModel !== job.gpuModel) missing.otherGpuModel++;
    else if (!knownGpu(n.gpuModel)) missing.unknownGpuModel++;
    else if (n.isolated) missing.isolated++;
    else if (!n.schedulable) missing.unschedulable++;
    else if (n.gpusFree < job.gpusPerNode) missing.insufficientFreeGpus++;
    else usable.push(n);
  }
  missing.nodesUsable = usable.length;
  return { usable, missing };
}

function knownGpu(model: string): boolean {
  try {
    gpuSpec(model);
    return true;
  } catch {
    return false;
  }
}

/** "needs 8 nodes with 8 free GPUs; 5 usable, 2 isolated, 1 unschedulable" */
export function missingMessage(m: MissingCapacity): string {
  const parts = [`${m.nodesUsable} usable`];
  const add = (count: number, text: string): void => {
    if (count > 0) parts.push(`${count} ${text}`);
  };
  add(m.isolated, "isolated");
  add(m.unschedulable, "unschedulable");
  add(m.insufficientFreeGpus, `with fewer than ${m.gpusPerNode} free GPUs`);
  add(m.otherGpuModel, "with another GPU model");
  add(m.unknownGpuModel, "with a GPU model not in the catalog");
  return `needs ${m.nodesNeeded} nodes with ${m.gpusPerNode} free GPUs; ${parts.join(", ")} (short by ${m.nodesNeeded - m.nodesUsable})`;
}

interface Layout {
  stages: CandidateNode[][];
  layers: number[];
  costs: StageCost[];
  estimate: ReturnType<typeof estimateStep>;
  islands: number;
}

function evaluate(ctx: Context, stages: CandidateNode[][], split: "balanced" | "uniform"): Layout {
  const costs = stageCosts(ctx.job, stages, ctx.link);
  const layers =
    split === "balanced"
      ? partitionLayers(ctx.job.model.layers, costs)
      : uniformLayers(ctx.job.model.layers, ctx.job.pp);
  const islands = new Set(stages.flatMap((s) => s.map(islandKey))).size;
  return { stages, layers, costs, estimate: estimateStep(costs, layers), islands };
}

function obliviousLayout(ctx: Context, ordered: readonly CandidateNode[]): Layout {
  const chosen = ordered.slice(0, ctx.job.nodes);
  return evaluate(ctx, chunk(chosen, ctx.nodesPerStage), "uniform");
}

interface Island {
  key: string;
  nicType: NicType;
  /** Best nodes first, then by leaf and name. */
  nodes: CandidateNode[];
  slots: number;
  /** Modelled busy time per layer of one stage on this island: the sort key "fastest". */
  perLayerMs: number;
}

function holmesLayout(ctx: Context): Layout {
  const { job, nodesPerStage: n } = ctx;
  const islands = groupIslands(ctx);
  const candidates: CandidateNode[][][] = [];
  for (const island of islands) if (island.slots >= job.pp) candidates.push(chunk(island.nodes.slice(0, job.nodes), n));
  const fastest = [...islands].sort((a, b) => a.perLayerMs - b.perLayerMs || b.slots - a.slots || cmp(a.key, b.key));
  const largest = [...islands].sort((a, b) => b.slots - a.slots || a.perLayerMs - b.perLayerMs || cmp(a.key, b.key));
  candidates.push(fill(fastest, job.pp, n), fill(largest, job.pp, n));

  let best: Layout | null = null;
  for (const stages of candidates) {
    const layout = evaluate(ctx, stages, "balanced");
    if (best === null || better(layout, best)) best = layout;
  }
  if (best === null) throw new Error("holmesLayout: no candidate (unreachable: the fill always yields one)");
  return best;
}

function better(a: Layout, b: Layout): boolean {
  const [fewer, more] = a.islands <= b.islands ? [a, b] : [b, a];
  if (fewer.islands < more.islands && fewer.estimate.stepMs <= more.estimate.stepMs * (1 + FEWER_ISLANDS_TOLERANCE))
    return fewer === a;
  return a.estimate.stepMs < b.estimate.stepMs;
}

function groupIslands(ctx: Context): Island[] {
  const byKey = new Map<string, CandidateNode[]>();
  for (const node of ctx.usable) {
    const key = islandKey(node);
    const list = byKey.get(key);
    if (list) list.push(node);
    else byKey.set(key, [node]);
  }
  const islands: Island[] = [];
  for (const [key, nodes] of byKey) {
    const lineGbps = (x: CandidateNode): number => x.nicCount * x.nicBandwidthGbps;
    nodes.sort(
      (a, b) =>
        gpuSpec(b.gpuModel).peakTflops - gpuSpec(a.gpuModel).peakTflops ||
        lineGbps(b) - lineGbps(a) ||
        cmp(a.leaf, b.leaf) ||
        cmp(a.nodeName, b.nodeName),
    );
    const first = nodes[0]!;
    const sample = nodes.slice(0, ctx.nodesPerStage);
    const perLayerMs =
      sample.length === ctx.nodesPerStage
        ? stageCosts(ctx.job, [sample], ctx.link)[0]!.perLayerMs
        : Number.POSITIVE_INFINITY;
    islands.push({
      key,
      nicType: first.nicType,
      nodes,
      slots: Math.floor(nodes.length / ctx.nodesPerStage),
      perLayerMs,
    });
  }
  return islands;
}

/**
 * pp stages from islands in the given order: whole-island stages first, then leftovers of one NIC type across
 * islands, then leftovers across NIC types (see the file doc, step 2).
 */
function fill(ordered: readonly Island[], pp: number, n: number): CandidateNode[][] {
  const stages: CandidateNode[][] = [];
  const leftovers: { island: Island; nodes: CandidateNode[] }[] = [];
  for (const island of ordered) {
    const take = Math.min(island.slots, pp - stages.length);
    stages.push(...chunk(island.nodes.slice(0, take * n), n));
    leftovers.push({ island, nodes: island.nodes.slice(take * n) });
  }
  if (stages.length === pp) return stages;
  const byType = new Map<NicType, CandidateNode[]>();
  for (const { island, nodes } of leftovers)
    byType.set(island.nicType, [...(byType.get(island.nicType) ?? []), ...nodes]);
  const rest: CandidateNode[] = [];
  for (const nodes of byType.values()) {
    const take = Math.min(Math.floor(nodes.length / n), pp - stages.length);
    stages.push(...chunk(nodes.slice(0, take * n), n));
    rest.push(...nodes.slice(take * n));
  }
  if (stages.length < pp) stages.push(...chunk(rest.slice(0, (pp - stages.length) * n), n));
  if (stages.length !== pp) throw new Error(`fill: built ${stages.length} of ${pp} stages (caller checked capacity)`);
  return stages;
}

function buildPlacement(
  ctx: Context,
  strategy: "holmes" | "oblivious",
  layout: Layout,
  obliviousStepMs: number,
): TrainingPlacement {
  const { job, nodesPerStage } = ctx;
  const ranges = layerRanges(layout.layers);
  const stages: PlacedStage[] = layout.stages.map((nodes, s) => {
    const cost = layout.costs[s]!;
    const islandNames = [...new Set(nodes.map((x) => x.island))];
    const nicTypes = [...new Set(nodes.map((x) => x.nicType))];
    return {
      stage: s,
      ...ranges[s]!,
      island: islandNames.join("+"),
      nicType: nicTypes.length === 1 ? nicTypes[0]! : "mixed",
      nodeNames: nodes.map((x) => x.nodeName),
      dpTransport: cost.dpLink.transport,
      nextTransport: cost.nextLink?.transport ?? null,
      busyMs: layout.estimate.stages[s]!.busyMs,
    };
  });
  const placedNodes: PlacedNode[] = [];
  const ranks: PlacedRank[] = [];
  for (const [s, nodes] of layout.stages.entries()) {
    for (const [j, node] of nodes.entries()) {
      const nodeRank = s * nodesPerStage + j;
      const transports = {
        dp: stages[s]!.dpTransport,
        prev: s > 0 ? stages[s - 1]!.nextTransport : null,
        next: stages[s]!.nextTransport,
      };
      placedNodes.push({
        nodeName: node.nodeName,
        nodeRank,
        stage: s,
        island: node.island,
        nicType: node.nicType,
        gpuModel: node.gpuModel,
        leaf: node.leaf,
        nccl: nodeNcclEnv(node, transports, ctx.nccl),
      });
      for (let localRank = 0; localRank < job.gpusPerNode; localRank++) {
        const inStage = j * job.gpusPerNode + localRank;
        ranks.push({
          rank: nodeRank * job.gpusPerNode + localRank,
          nodeName: node.nodeName,
          nodeRank,
          localRank,
          tpRank: inStage % job.tp,
          ppRank: s,
          dpRank: Math.floor(inStage / job.tp),
        });
      }
    }
  }
  const islandsUsed: string[] = [];
  for (const st of stages)
    for (const name of st.island.split("+")) if (!islandsUsed.includes(name)) islandsUsed.push(name);
  const predictedStepMs = layout.estimate.stepMs;
  return {
    ok: true,
    job,
    strategy,
    worldSize: job.nodes * job.gpusPerNode,
    nodesPerStage,
    ranks,
    nodes: placedNodes,
    stages,
    islandsUsed,
    predictedStepMs,
    obliviousStepMs,
    summary: summarize(job, strategy, stages, islandsUsed, predictedStepMs, obliviousStepMs),
  };
}

function summarize(
  job: TrainingJobShape,
  strategy: string,
  stages: readonly PlacedStage[],
  islands: readonly string[],
  stepMs: number,
  obliviousMs: number,
): string {
  const socketGroups = stages.filter((s) => s.dpTransport === Transport.socket && s.nicType !== "ethernet").length;
  const layers = stages.map((s) => s.layerEndExclusive - s.layerStart).join("/");
  const text =
    `${strategy}: ${job.nodes * job.gpusPerNode} GPUs on ${job.nodes} nodes in ${islands.length} island${islands.length === 1 ? "" : "s"} ` +
    `(${islands.join(", ")}); tp=${job.tp} pp=${job.pp} dp=${job.dp}; layers per stage ${layers}; ` +
    `predicted step ${stepMs.toFixed(0)} ms vs ${obliviousMs.toFixed(0)} ms NIC-oblivious`;
  return socketGroups > 0 ? `${text}; ${socketGroups} stage(s) fall back to sockets for DP` : text;
}

function islandKey(n: { island: string; nicType: string }): string {
  return `${n.island}/${n.nicType}`;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i + size <= items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function byName(nodes: readonly CandidateNode[]): CandidateNode[] {
  return [...nodes].sort((a, b) => cmp(a.nodeName, b.nodeName));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
