/**
 * Packs serving instances onto nodes' free GPUs (DistServe §4.2 placement, as a bin-packing step).
 *
 * Rules: TP never crosses a node (its all-reduces need NVLink); an instance of TP×PP GPUs that fits in one node
 * goes on one node; a bigger one is split by pipeline stage, each stage on one node. In a low node-affinity
 * plan, stage s of every prefill and decode instance of a unit sits on one node, so KV moves over NVLink
 * (DistServe Algorithm 2). Items are placed largest first, each on the node with the least free GPUs that still
 * fits it (best-fit decreasing), ties broken by node name so the result is deterministic.
 */

export const InstanceRole = { prefill: "prefill", decode: "decode", colocated: "colocated" } as const;
export type InstanceRole = (typeof InstanceRole)[keyof typeof InstanceRole];

export interface StagePlacement {
  stage: number;
  nodeName: string;
  gpus: number;
}

export interface InstancePlacement {
  role: InstanceRole;
  index: number;
  tp: number;
  pp: number;
  /** Low node-affinity unit the instance belongs to (its paired segments share nodes). */
  unit?: number;
  stages: StagePlacement[];
}

export interface FreeNode {
  nodeName: string;
  gpusFree: number;
}

/** A pool of identical instances to place. */
export interface PoolRequest {
  role: InstanceRole;
  tp: number;
  pp: number;
  replicas: number;
}

/** A low node-affinity unit: per stage, `prefill` instances of tpPrefill and `decode` of tpDecode GPUs on one node. */
export interface LowAffinityRequest {
  units: number;
  pp: number;
  prefill: { tp: number; perUnit: number };
  decode: { tp: number; perUnit: number };
}

export type PackResult =
  | { ok: true; instances: InstancePlacement[]; gpusByNode: { nodeName: string; gpus: number }[] }
  | { ok: false; neededGpus: number; blockGpus: number };

interface Item {
  size: number;
  /** Segments that share this item's node: (instance placement, stage, gpus). */
  parts: { instance: InstancePlacement; stage: number; gpus: number }[];
}

function pack(nodes: readonly FreeNode[], items: Item[], instances: InstancePlacement[]): PackResult {
  const free = new Map(nodes.map((n) => [n.nodeName, n.gpusFree]));
  const names = [...free.keys()].sort();
  const neededGpus = items.reduce((sum, item) => sum + item.size, 0);
  const blockGpus = items.reduce((max, item) => Math.max(max, item.size), 0);
  const order = items.map((item, i) => ({ item, i })).sort((x, y) => y.item.size - x.item.size || x.i - y.i);
  for (const { item } of order) {
    let best: string | undefined;
    for (const name of names) {
      const f = free.get(name) ?? 0;
      if (f >= item.size && (best === undefined || f < (free.get(best) ?? 0))) best = name;
    }
    if (best === undefined) return { ok: false, neededGpus, blockGpus };
    free.set(best, (free.get(best) ?? 0) - item.size);
    for (const part of item.parts) part.instance.stages.push({ stage: part.stage, nodeName: best, gpus: part.gpus });
  }
  for (const inst of instances) inst.stages.sort((a, b) => a.stage - b.stage);
  const used = new Map<string, number>();
  for (const inst of instances) for (const s of inst.stages) used.set(s.nodeName, (used.get(s.nodeName) ?? 0) + s.gpus);
  const gpusByNode = [...used.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([nodeName, gpus]) => ({ nodeName, gpus }));
  return { ok: true, instances, gpusByNode };
}

/** Places independent pools (high node-affinity or colocated plans). */
export function packPools(nodes: readonly FreeNode[], pools: readonly PoolRequest[]): PackResult {
  const maxNode = nodes.reduce((max, n) => Math.max(max, n.gpusFree), 0);
  const items: Item[] = [];
  const instances: InstancePlacement[] = [];
  for (const pool of pools) {
    for (let index = 0; index < pool.replicas; index++) {
      const instance: InstancePlacement = { role: pool.role, index, tp: pool.tp, pp: pool.pp, stages: [] };
      instances.push(instance);
      const whole = pool.tp * pool.pp;
      if (whole <= maxNode) {
        // One node: record each stage on it so the shape of the result does not depend on the split.
        items.push({
          size: whole,
          parts: Array.from({ length: pool.pp }, (_, stage) => ({ instance, stage, gpus: pool.tp })),
        });
      } else {
        for (let stage = 0; stage < pool.pp; stage++)
          items.push({ size: pool.tp, parts: [{ instance, stage, gpus: pool.tp }] });
      }
    }
  }
  return pack(nodes, items, instances);
}

/** Places low node-affinity units: each stage's prefill and decode segments of a unit on one node. */
export function packLowAffinity(nodes: readonly FreeNode[], request: LowAffinityRequest): PackResult {
  const items: Item[] = [];
  const instances: InstancePlacement[] = [];
  const size = request.prefill.tp * request.prefill.perUnit + request.decode.tp * request.decode.perUnit;
  for (let unit = 0; unit < request.units; unit++) {
    const members: InstancePlacement[] = [];
    for (let i = 0; i < request.prefill.perUnit; i++) {
      members.push({
        role: "prefill",
        index: unit * request.prefill.perUnit + i,
        tp: request.prefill.tp,
        pp: request.pp,
        unit,
        stages: [],
      });
    }
    for (let i = 0; i < request.decode.perUnit; i++) {
      members.push({
        role: "decode",
        index: unit * request.decode.perUnit + i,
        tp: request.decode.tp,
        pp: request.pp,
        unit,
        stages: [],
      });
    }
    instances.push(...members);
    for (let stage = 0; stage < request.pp; stage++) {
      items.push({ size, parts: members.map((instance) => ({ instance, stage, gpus: instance.tp })) });
    }
  }
  return pack(nodes, items, instances);
}
