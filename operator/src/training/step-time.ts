/**
 * Step-time model for a 3D-parallel (TP × PP × DP) training step over the links a placement actually uses. It is
 * what Holmes placement optimises and how the benchmark compares placements; it is a model, not a measurement.
 *
 * Per micro-batch, stage s with k_s layers spends (the costs of Megatron-LM's 3D parallelism as analysed by
 * Narayanan et al., SC'21, "Efficient Large-Scale Language Model Training on GPU Clusters"):
 *   compute   k_s × F_layer × tokens ÷ (tp × peak × MFU),  F_layer = 6·P/L + 12·seq·h FLOPs per token
 *             (dense weights, fwd + bwd, plus attention scores);
 *   TP        k_s × 4 ring all-reduces of tokens·h·2 bytes over NVLink (2 in forward, 2 in backward);
 *   PP        one activation send to the next stage and one gradient send to the previous one, tokens·h·2 bytes
 *             per replica (scatter-gather split over its TP ranks), over the link between the paired nodes.
 * Per step, its DP sync is a ring all-reduce (or the distributed optimizer's reduce-scatter + all-gather, the same
 * volume) of its k_s·P/L·2 ÷ tp gradient bytes per shard: the intra-node part over NVLink and, when the stage
 * has several nodes, the inter-node part on the slowest node NIC of the group (Holmes, ICPP'24, section
 * "Automatic NIC Selection": the data-parallel all-reduce is the traffic that needs RDMA).
 *
 *   busy_s = M × micro_s + dpSync_s              (M micro-batches per replica)
 *   step   = max_s busy_s + (pp − 1) × max_s micro_s    (1F1B: the slowest stage plus the pipeline bubble)
 *
 * The layer partition balances busy_s (partition.ts), which is why the model is exposed per stage as
 * busy_s(k) = perLayerMs × k + fixedMs.
 *
 * Link model (LinkModel, every number overridable): a node's scale-out bandwidth is nicCount × nicBandwidthGbps
 * times the achievable fraction for its transport; inside one island NCCL uses the island's fabric (IB, RoCE, or
 * sockets on an Ethernet island); a group whose nodes sit in different islands falls back to TCP sockets, capped
 * by the inter-island path. The fractions are assumptions in the range NCCL's nccl-tests report for busbw on
 * these fabrics, not measurements of any one cluster.
 */
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import type { NicType, NodeTopology } from "../../../crds/src/topology.js";
import type { TrainingJobShape } from "./types.js";
import { Transport } from "./types.js";

export interface LinkModel {
  /** Achieved fraction of NIC line rate for NCCL over each fabric inside one island. */
  efficiency: Readonly<Record<NicType, number>>;
  /** Achieved fraction of line rate for NCCL's socket transport across islands. */
  crossIslandSocketEfficiency: number;
  /** Per-node bandwidth between two islands (the routed datacenter Ethernet path), Gbit/s. */
  crossIslandGbpsPerNode: number;
  /** Achieved fraction of NVLink bandwidth. */
  nvlinkEfficiency: number;
  /** Model FLOPs utilisation of the GPUs' peak. */
  mfu: number;
  /** Bytes per gradient / activation element (bf16). */
  bytesPerElement: number;
}

export const DEFAULT_LINK_MODEL: LinkModel = {
  efficiency: { infiniband: 0.85, roce: 0.7, ethernet: 0.4 },
  crossIslandSocketEfficiency: 0.4,
  crossIslandGbpsPerNode: 100,
  nvlinkEfficiency: 0.8,
  mfu: 0.45,
  bytesPerElement: 2,
};

export function linkModelWith(overrides: Partial<LinkModel> | undefined): LinkModel {
  return {
    ...DEFAULT_LINK_MODEL,
    ...overrides,
    efficiency: { ...DEFAULT_LINK_MODEL.efficiency, ...overrides?.efficiency },
  };
}

export interface GroupLink {
  transport: Transport;
  /** Per-node bandwidth of the slowest node in the group, GB/s. */
  nodeGBps: number;
}

const GBPS_PER_GBITPS = 1 / 8;

/** True when two nodes share one RDMA (or Ethernet) fabric: same island and same NIC type. */
export function sameFabric(a: NodeTopology, b: NodeTopology): boolean {
  return a.island === b.island && a.nicType === b.nicType;
}

/**
 * The link a group of distinct nodes communicates over: NVLink for one node, the island's fabric when all nodes
 * share it, TCP sockets capped by the inter-island path otherwise. Bandwidth is the slowest node's.
 */
export function groupLink(nodes: readonly NodeTopology[], model: LinkModel): GroupLink {
  const first = nodes[0];
  if (first === undefined) throw new Error("groupLink: empty group");
  if (nodes.every((n) => n.nodeName === first.nodeName)) {
    return { transport: Transport.nvlink, nodeGBps: Number.POSITIVE_INFINITY };
  }
  const oneFabric = nodes.every((n) => sameFabric(n, first));
  let nodeGBps = Number.POSITIVE_INFINITY;
  for (const n of nodes) {
    const lineGbps = n.nicCount * n.nicBandwidthGbps;
    const gbps = oneFabric
      ? lineGbps * model.efficiency[n.nicType]
      : Math.min(lineGbps, model.crossIslandGbpsPerNode) * model.crossIslandSocketEfficiency;
    nodeGBps = Math.min(nodeGBps, gbps * GBPS_PER_GBITPS);
  }
  const transport = !oneFabric || first.nicType === "ethernet" ? Transport.socket : first.nicType;
  return { transport, nodeGBps };
}

/** Derived sizes of one training step. */
export interface StepShape {
  tokensPerMicroBatch: number;
  microBatches: number;
  /** FLOPs per token of one transformer layer, forward plus backward. */
  flopsPerLayerPerToken: number;
  paramsPerLayer: number;
}

export function stepShape(job: TrainingJobShape): StepShape {
  const seq = job.model.seqLength ?? 2048;
  const globalSeqs = job.model.globalBatchSequences ?? 512;
  const microSeqs = job.model.microBatchSequences ?? 1;
  const paramsPerLayer = (job.model.paramsBillions * 1e9) / job.model.layers;
  return {
    tokensPerMicroBatch: microSeqs * seq,
    // Each DP replica runs ceil(global / (dp × micro)) micro-batches; a remainder still costs a whole one.
    microBatches: Math.max(1, Math.ceil(globalSeqs / (job.dp * microSeqs))),
    flopsPerLayerPerToken: 6 * paramsPerLayer + 12 * seq * job.model.hiddenSize,
    paramsPerLayer,
  };
}

/** Ring all-reduce time in ms of `bytes` among `members` at `GBps` each. */
function allReduceMs(bytes: number, members: number, GBps: number): number {
  if (members <= 1 || bytes === 0) return 0;
  return ((2 * (members - 1)) / members) * (bytes / (GBps * 1e9)) * 1e3;
}

/** A stage's busy time as a function of its layer count: busy(k) = perLayerMs × k + fixedMs. */
export interface StageCost {
  /** Per layer, per micro-batch: compute + TP. */
  microPerLayerMs: number;
  /** Per micro-batch, independent of layers: PP sends. */
  microFixedMs: number;
  /** Per layer, per step: DP sync. */
  dpSyncPerLayerMs: number;
  /** perLayer = M × microPerLayer + dpSyncPerLayer. */
  perLayerMs: number;
  /** fixed = M × microFixed. */
  fixedMs: number;
  dpLink: GroupLink;
  /** Link to the next stage; null for the last one. */
  nextLink: GroupLink | null;
}

/**
 * Cost coefficients of every stage of a layout: `stages[s]` lists stage s's nodes in rank order (node j of stage s
 * exchanges activations with node j of stage s ± 1, since ranks r and r ± tp·dp sit on them).
 */
export function stageCosts(
  job: TrainingJobShape,
  stages: readonly (readonly NodeTopology[])[],
  model: LinkModel,
): StageCost[] {
  const shape = stepShape(job);
  const h = job.model.hiddenSize;
  const replicasPerNode = job.gpusPerNode / job.tp;
  const links = stages.map((_, s) => (s + 1 < stages.length ? boundaryLink(stages[s]!, stages[s + 1]!, model) : null));
  return stages.map((nodes, s) => {
    const spec = slowestGpu(nodes);
    const nvlinkGBps = spec.nvlinkGBpsPerDirection * model.nvlinkEfficiency;
    const computeMs =
      ((shape.flopsPerLayerPerToken * shape.tokensPerMicroBatch) / (job.tp * spec.peakTflops * 1e12 * model.mfu)) * 1e3;
    const tpMs = 4 * allReduceMs(shape.tokensPerMicroBatch * h * model.bytesPerElement, job.tp, nvlinkGBps);
    // Every replica on a node sends its activation (split over its TP ranks) through the node's NICs at once.
    const sendBytesPerNode = replicasPerNode * shape.tokensPerMicroBatch * h * model.bytesPerElement;
    let microFixedMs = 0;
    for (const link of [links[s], s > 0 ? links[s - 1] : null]) {
      // Consecutive stages never share a node (one stage per node), so a boundary is always a network link.
      if (link) microFixedMs += (sendBytesPerNode / (link.nodeGBps * 1e9)) * 1e3;
    }
    const dpLink = groupLink(nodes, model);
    const gradBytesPerLayer = (shape.paramsPerLayer * model.bytesPerElement) / job.tp;
    // Hierarchical all-reduce: replicasPerNode ranks reduce over NVLink, then each node's NICs carry the inter-node
    // ring for all tp shards at once.
    const intraMs = allReduceMs(gradBytesPerLayer, Math.min(replicasPerNode, job.dp), nvlinkGBps);
    const interMs = nodes.length > 1 ? allReduceMs(job.tp * gradBytesPerLayer, nodes.length, dpLink.nodeGBps) : 0;
    const dpSyncPerLayerMs = intraMs + interMs;
    const microPerLayerMs = computeMs + tpMs;
    return {
      microPerLayerMs,
      microFixedMs,
      dpSyncPerLayerMs,
      perLayerMs: shape.microBatches * microPerLayerMs + dpSyncPerLayerMs,
      fixedMs: shape.microBatches * microFixedMs,
      dpLink,
      nextLink: links[s] ?? null,
    };
  });
}

/** The link the PP sends between two consecutive stages use: the slowest of the node pairs. */
function boundaryLink(from: readonly NodeTopology[], to: readonly NodeTopology[], model: LinkModel): GroupLink {
  let worst: GroupLink | null = null;
  for (let j = 0; j < from.length; j++) {
    const link = groupLink([from[j]!, to[j]!], model);
    if (
      worst === null ||
      link.nodeGBps < worst.nodeGBps ||
      (link.nodeGBps === worst.nodeGBps && link.transport === Transport.socket)
    )
      worst = link;
  }
  if (worst === null) throw new Error("boundaryLink: empty stage");
  return worst;
}

function slowestGpu(nodes: readonly NodeTopology[]): { peakTflops: number; nvlinkGBpsPerDirection: number } {
  let peakTflops = Number.POSITIVE_INFINITY;
  let nvlinkGBpsPerDirection = Number.POSITIVE_INFINITY;
  for (const n of nodes) {
    const spec = gpuSpec(n.gpuModel);
    peakTflops = Math.min(peakTflops, spec.peakTflops);
    nvlinkGBpsPerDirection = Math.min(nvlinkGBpsPerDirection, spec.nvlinkGBpsPerDirection);
  }
  return { peakTflops, nvlinkGBpsPerDirection };
}

export interface StepEstimate {
  stepMs: number;
  /** Per stage: busy time per step and time per micro-batch. */
  stages: readonly { busyMs: number; microMs: number }[];
  bottleneckStage: number;
  bubbleMs: number;
}

/** The step-time model (see file doc) for given stage costs and layers per stage. */
export function estimateStep(costs: readonly StageCost[], layersPerStage: readonly number[]): StepEstimate {
  if (costs.length !== layersPerStage.length)
    throw new Error(`estimateStep: ${costs.length} stages but ${layersPerStage.length} layer counts`);
  let bottleneckStage = 0;
  let maxBusy = -1;
  let maxMicro = 0;
  const stages = costs.map((c, s) => {
    const k = layersPerStage[s]!;
    const busyMs = c.perLayerMs * k + c.fixedMs;
    const microMs = c.microPerLayerMs * k + c.microFixedMs;
    if (busyMs > maxBusy) {
      maxBusy = busyMs;
      bottleneckStage = s;
    }
    maxMicro = Math.max(maxMicro, microMs);
    return { busyMs, microMs };
  });
  const bubbleMs = (costs.length - 1) * maxMicro;
  return { stepMs: maxBusy + bubbleMs, stages, bottleneckStage, bubbleMs };
}
