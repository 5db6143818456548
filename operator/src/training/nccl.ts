/**
 * NCCL settings per node, by NIC type and by which of the node's groups really cross fabrics (Holmes, ICPP'24,
 * section "Automatic NIC Selection": each communication group uses the best transport its members share).
 *
 * NCCL reads its environment once per process, so what can be set per pod is set per pod:
 *   InfiniBand  NCCL_IB_HCA (exact-match list "=mlx5_0,…", one HCA per NIC the node advertises);
 *   RoCE        the same plus NCCL_IB_GID_INDEX (the RoCE v2 GID; 3 on common Mellanox/NVIDIA drivers);
 *   Ethernet    NCCL_IB_DISABLE=1 and NCCL_SOCKET_IFNAME: the island has no RDMA at all;
 *   a node whose data-parallel group spans fabrics (only when no island-pure placement existed) gets the same
 *   socket settings as Ethernet, since its heavy traffic cannot use RDMA anyway.
 * A pipeline boundary that crosses fabrics is per group, not per process: its nodes keep RDMA for their DP group
 * and get NCCL_SOCKET_IFNAME plus GPUFLEET_PP_{PREV,NEXT}_TRANSPORT=socket (env.ts) so the worker builds that one
 * point-to-point communicator over sockets.
 *
 * The C4P traffic plan's per-connection setting (operator/src/traffic/) is per job: NCCL_IB_QPS_PER_CONNECTION,
 * the QPs the plan pinned per connection (trafficPlanNcclEnv). The plan keeps NCCL_IB_HCA as rendered here (one HCA
 * per GPU, the nearest: the plan routes each connection from the NIC NCCL picks), so it sets no HCA order of its
 * own. Pods are created at placement and the plan is made after it (it needs the placement), so the pods carry the
 * job's last plan: a job's first pods run NCCL's default (1 QP) while the agents pin the planned QPs' ports, and
 * every later (re)start of the gang starts with the QP count of the plan in status.traffic.
 */
import type { NodeTopology } from "../../../crds/src/topology.js";
import { Transport } from "./types.js";

export interface NcclOptions {
  /** HCA device name prefix; devices are `${hcaPrefix}${i}` for i < nicCount. */
  hcaPrefix: string;
  /** GID index of the RoCE v2 address. */
  roceGidIndex: number;
  /** The interface NCCL's socket transport uses (the node's data-plane Ethernet). */
  socketIfname: string;
}

export const DEFAULT_NCCL_OPTIONS: NcclOptions = { hcaPrefix: "mlx5_", roceGidIndex: 3, socketIfname: "eth0" };

/** The device name of a node's NIC `index` as NCCL is told to use it (NCCL_IB_HCA; plain Ethernet: eth<index>). */
export function nicDeviceName(nicType: NodeTopology["nicType"], index: number, hcaPrefix: string): string {
  return nicType === "ethernet" ? `eth${index}` : `${hcaPrefix}${index}`;
}

export interface NodeTransports {
  dp: Transport;
  /** Link to the previous stage, null on the first. */
  prev: Transport | null;
  /** Link to the next stage, null on the last. */
  next: Transport | null;
}

export function nodeNcclEnv(
  node: NodeTopology,
  transports: NodeTransports,
  options: NcclOptions,
): Record<string, string> {
  const env: Record<string, string> = {};
  const rdma = node.nicType !== "ethernet" && transports.dp !== Transport.socket;
  if (rdma) {
    env.NCCL_IB_HCA =
      "=" +
      Array.from({ length: node.nicCount }, (_, i) => nicDeviceName(node.nicType, i, options.hcaPrefix)).join(",");
    if (node.nicType === "roce") env.NCCL_IB_GID_INDEX = String(options.roceGidIndex);
  } else {
    env.NCCL_IB_DISABLE = "1";
  }
  if (!rdma || transports.prev === Transport.socket || transports.next === Transport.socket) {
    env.NCCL_SOCKET_IFNAME = "=" + options.socketIfname;
  }
  return env;
}

/** NCCL refuses more than NCCL_IB_MAX_QPS = 128 QPs per connection (operator/src/traffic/plan.ts says why). */
const NCCL_MAX_QPS_PER_CONNECTION = 128;

/**
 * The NCCL env of a job's traffic plan: NCCL_IB_QPS_PER_CONNECTION = the QPs the plan pinned per connection.
 * Nothing without a plan (undefined) or for pods without RDMA (NCCL_IB_DISABLE=1: no QPs at all).
 */
export function trafficPlanNcclEnv(
  qpsPerConnection: number | undefined,
  nodeEnv: Readonly<Record<string, string>>,
): Record<string, string> {
  if (qpsPerConnection === undefined || nodeEnv.NCCL_IB_DISABLE === "1") return {};
  if (!Number.isInteger(qpsPerConnection) || qpsPerConnection < 1 || qpsPerConnection > NCCL_MAX_QPS_PER_CONNECTION)
    throw new RangeError(
      `traffic plan: ${qpsPerConnection} QPs per connection is not in 1..${NCCL_MAX_QPS_PER_CONNECTION} (NCCL_IB_QPS_PER_CONNECTION)`,
    );
  return { NCCL_IB_QPS_PER_CONNECTION: String(qpsPerConnection) };
}
