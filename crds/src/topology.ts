/**
 * Node topology facts, carried as node labels under gpufleet.io/.
 *
 * Why labels and not a FabricTopology resource: every fact placement needs is per node (what GPUs, what NIC, which
 * leaf switch and RDMA island), labels are what kube-scheduler's nodeSelector/affinity already understand, admins
 * can set them with `kubectl label`, and the agent publishes them with server-side apply under its own field
 * manager. Values are strings (Kubernetes label syntax); parseNodeTopology() turns them into numbers.
 */

export const TopologyLabel = {
  /** GPU model, a key of the hardware catalog: "H100-80GB", "H200-141GB", "A100-80GB", "A100-40GB". */
  gpuModel: "gpufleet.io/gpu-model",
  /** GPUs per node (also visible as the extended resource nvidia.com/gpu). */
  gpuCount: "gpufleet.io/gpu-count",
  /** "infiniband" | "roce" | "ethernet". */
  nicType: "gpufleet.io/nic-type",
  /** Scale-out NICs per node (usually one per GPU on RDMA fabrics). */
  nicCount: "gpufleet.io/nic-count",
  /** Bandwidth of one NIC in Gbit/s, e.g. "400". */
  nicBandwidthGbps: "gpufleet.io/nic-bandwidth-gbps",
  /** Leaf (top-of-rack) switch the node's NICs attach to. */
  leaf: "gpufleet.io/leaf",
  /** Set of nodes sharing one RDMA fabric: collectives inside an island run on RDMA. */
  island: "gpufleet.io/island",
} as const;
export type TopologyLabelKey = (typeof TopologyLabel)[keyof typeof TopologyLabel];

export const NicType = { infiniband: "infiniband", roce: "roce", ethernet: "ethernet" } as const;
export type NicType = (typeof NicType)[keyof typeof NicType];

/** Taint gpufleet owns: a node isolated by fault detection. Its value says why. */
export const IsolatedTaintKey = "gpufleet.io/isolated";

/** Extended resource for GPUs (NVIDIA device plugin). */
export const GpuResource = "nvidia.com/gpu";

export interface NodeTopology {
  nodeName: string;
  gpuModel: string;
  gpuCount: number;
  nicType: NicType;
  nicCount: number;
  nicBandwidthGbps: number;
  leaf: string;
  island: string;
}

export class TopologyLabelError extends Error {
  override name = "TopologyLabelError";
  constructor(
    readonly nodeName: string,
    readonly label: string,
    message: string,
  ) {
    super(`node ${nodeName}: label ${label} ${message}`);
  }
}

// Helpers at module level, not closures: every reconcile parses every node's labels (1,000 on the soak's cluster).
function labelText(nodeName: string, labels: Readonly<Record<string, string>>, label: string): string {
  const value = labels[label];
  if (value === undefined || value === "") throw new TopologyLabelError(nodeName, label, "is missing");
  return value;
}

function labelPositiveInt(nodeName: string, labels: Readonly<Record<string, string>>, label: string): number {
  const value = Number(labelText(nodeName, labels, label));
  if (!Number.isInteger(value) || value <= 0)
    throw new TopologyLabelError(nodeName, label, `must be a positive integer, got "${labels[label]}"`);
  return value;
}

const NIC_TYPES: ReadonlySet<string> = new Set(Object.values(NicType));

/** Parses a node's gpufleet.io labels; throws TopologyLabelError naming the node and label when one is bad. */
export function parseNodeTopology(nodeName: string, labels: Readonly<Record<string, string>>): NodeTopology {
  const nicType = labelText(nodeName, labels, TopologyLabel.nicType);
  if (!NIC_TYPES.has(nicType)) {
    throw new TopologyLabelError(
      nodeName,
      TopologyLabel.nicType,
      `must be one of ${Object.values(NicType).join(", ")}, got "${nicType}"`,
    );
  }
  return {
    nodeName,
    gpuModel: labelText(nodeName, labels, TopologyLabel.gpuModel),
    gpuCount: labelPositiveInt(nodeName, labels, TopologyLabel.gpuCount),
    nicType: nicType as NicType,
    nicCount: labelPositiveInt(nodeName, labels, TopologyLabel.nicCount),
    nicBandwidthGbps: labelPositiveInt(nodeName, labels, TopologyLabel.nicBandwidthGbps),
    leaf: labelText(nodeName, labels, TopologyLabel.leaf),
    island: labelText(nodeName, labels, TopologyLabel.island),
  };
}

/** Whether a node carries the gpufleet topology labels at all (a node without them is not a GPU node to us). */
export function hasTopologyLabels(labels: Readonly<Record<string, string>> | undefined): boolean {
  return labels?.[TopologyLabel.gpuModel] !== undefined;
}

/**
 * GPU models gpufleet has hardware profiles for (keys of operator/src/hardware/catalog.ts; a unit test keeps the
 * two lists equal). The API offers exactly these so a typo fails at `kubectl apply`.
 */
export const GpuModels = ["H100-80GB", "H200-141GB", "A100-80GB", "A100-40GB", "A10-24GB"] as const;
export type GpuModelName = (typeof GpuModels)[number];
