/**
 * NodeFacts: what discovery found on a node, and the pure mapping from facts to the gpufleet.io topology labels
 * placement reads (crds/src/topology.ts).
 *
 * Scale-out NICs: RDMA ports that are ACTIVE, InfiniBand preferred over RoCE (a node has one fabric for
 * collectives); Ethernet only when there is no active RDMA port, and then only the fastest active ports (the
 * management port of a GPU node is slower than its data ports). Bandwidth label: the slowest of the chosen ports,
 * since a ring runs at its slowest link.
 */
import { NicType, TopologyLabel } from "../../../crds/src/topology.js";
import type { GpuInfo } from "./gpus.js";
import type { NicPort } from "./nics.js";

export interface NodeFacts {
  nodeName: string;
  simulated: boolean;
  gpus: GpuInfo[];
  nics: (NicPort & { nearestGpus: number[] })[];
  /** Fabric position is not discoverable on the node: it comes from configuration (or existing labels). */
  leaf: string | undefined;
  island: string | undefined;
}

export function scaleOutNics(nics: readonly NicPort[]): NicPort[] {
  const active = nics.filter((n) => n.active && n.bandwidthGbps > 0);
  for (const type of [NicType.infiniband, NicType.roce] as const) {
    const ofType = active.filter((n) => n.type === type);
    if (ofType.length > 0) return ofType;
  }
  const fastestGbps = Math.max(0, ...active.map((n) => n.bandwidthGbps));
  return active.filter((n) => n.bandwidthGbps === fastestGbps);
}

export class FactsError extends Error {
  override name = "FactsError";
}

// Label values: at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric.
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;

/** The gpufleet.io labels for these facts. Leaf and island are included only when known. */
export function factsToLabels(facts: NodeFacts): Record<string, string> {
  if (facts.gpus.length === 0) throw new FactsError(`node ${facts.nodeName}: no GPUs discovered`);
  const models = new Set(facts.gpus.map((g) => g.model));
  if (models.size !== 1) throw new FactsError(`node ${facts.nodeName}: mixed GPU models ${[...models].join(", ")}`);
  const model = facts.gpus[0]!.model;
  if (model === undefined)
    throw new FactsError(`node ${facts.nodeName}: GPU "${facts.gpus[0]!.productName}" is not in the hardware catalog`);
  const nics = scaleOutNics(facts.nics);
  if (nics.length === 0) throw new FactsError(`node ${facts.nodeName}: no active NIC`);
  const labels: Record<string, string> = {
    [TopologyLabel.gpuModel]: model,
    [TopologyLabel.gpuCount]: String(facts.gpus.length),
    [TopologyLabel.nicType]: nics[0]!.type,
    [TopologyLabel.nicCount]: String(nics.length),
    [TopologyLabel.nicBandwidthGbps]: String(Math.round(Math.min(...nics.map((n) => n.bandwidthGbps)))),
  };
  if (facts.leaf) labels[TopologyLabel.leaf] = facts.leaf;
  if (facts.island) labels[TopologyLabel.island] = facts.island;
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_VALUE.test(value))
      throw new FactsError(`node ${facts.nodeName}: label ${key} value "${value}" is not a valid label value`);
  }
  return labels;
}
