/**
 * The simulated leaf-spine fabric: what the agent's ApplyTrafficPlan programs in simulation mode, and what the
 * simulated training ranks' inter-node transfers run over.
 *
 * Programming: a node's plan is its QPs' UDP source ports (and the NIC each connection leaves by). Nothing else
 * of the plan steers traffic: every QP's path is what the fabric's ECMP hashes (common/src/fabric/ecmp-hash.ts)
 * make of its source port on the cables up now, so what a node reports applied is read back from the fabric, not
 * echoed from the request; after a cable fails the same ports hash elsewhere until a new plan comes.
 *
 * Load: every programmed QP carries its connection's demand ÷ QPs on the links of its path; a link's load is what
 * it carries ÷ its capacity. A connection gets 1 ÷ (the highest load on any link of its QPs) of its NIC's
 * bandwidth when that is above 1 (an oversubscribed link shares fairly; a striped connection runs at its slowest
 * QP's pace). The simulated ranks' inter-node transfers between two nodes of a job take the share of that job's
 * programmed connections between those nodes; an unprogrammed inter-leaf transfer hashes a default port and takes
 * the share of the link loads on that path. Host links (node to leaf) are not modelled: they carry the same
 * traffic whatever the plan.
 */
import {
  hashedPath,
  SOURCE_PORT_MAX,
  SOURCE_PORT_MIN,
  type FabricCables,
  type HashedPath,
} from "../../../common/src/fabric/ecmp-hash.js";

export interface SimFabricSpec extends FabricCables {
  island: string;
  leaves: readonly {
    name: string;
    uplinks: readonly { spine: string; ports: number; portGbps: number; failedPorts?: readonly number[] }[];
  }[];
}

export interface PlannedQp extends Partial<HashedPath> {
  udpSourcePort: number;
}

export interface FlowRequest {
  connectionId: string;
  job: string;
  communicator: string;
  srcRank: number;
  dstRank: number;
  dstNode: string;
  nic: string;
  demandGbps: number;
  qps: readonly PlannedQp[];
}

export interface AppliedFlow extends Omit<FlowRequest, "qps"> {
  /** Each QP's source port and the path the fabric hashes it onto now (absent: no live path). */
  qps: { udpSourcePort: number; path: HashedPath | undefined; planned: boolean }[];
}

export interface AppliedPlan {
  planId: string;
  fabric: string;
  flows: AppliedFlow[];
  appliedUnixMs: number;
  qpsApplied: number;
  qpsOnPlannedPath: number;
}

/** A plan the fabric cannot take as it is (answered INVALID_ARGUMENT, the message says what is wrong). */
export class TrafficPlanError extends Error {
  override name = "TrafficPlanError";
}

/** The fabric named by the plan is not known here (yet): answered FAILED_PRECONDITION. */
export class UnknownFabricError extends Error {
  override name = "UnknownFabricError";
}

/** Most QPs per connection a plan may set (NCCL_IB_QPS_PER_CONNECTION; NCCL caps it at 128, planners use few). */
export const MAX_QPS_PER_CONNECTION = 16;

/** Share of its bandwidth a transfer keeps when no spine connects its leaves (it crawls on retransmits). */
export const UNROUTABLE_SHARE = 0.001;

interface NodePlan {
  planId: string;
  fabric: string;
  flows: FlowRequest[];
  appliedUnixMs: number;
}

export interface FabricNodes {
  /** The node's leaf and island (its gpufleet.io labels), undefined for a node this agent does not know. */
  placeOf(node: string): { leaf: string | undefined; island: string | undefined } | undefined;
  /** The node's NIC devices. */
  nicsOf(node: string): readonly string[] | undefined;
}

export class SimulatedFabric {
  private readonly topologies = new Map<string, SimFabricSpec>();
  private readonly plans = new Map<string, NodePlan>();
  private loads: Map<string, number> | undefined;
  /** shareOf memo, valid while `loads` is (node labels are not watched here: a relabelled node waits for a change). */
  private readonly shares = new Map<string, number>();

  constructor(
    private readonly nodes: FabricNodes,
    private readonly nowMs: () => number = Date.now,
  ) {}

  setTopology(name: string, spec: SimFabricSpec): void {
    this.topologies.set(name, spec);
    this.loads = undefined;
  }

  deleteTopology(name: string): void {
    this.topologies.delete(name);
    this.loads = undefined;
  }

  /** Validates and programs a node's plan (replacing the previous one); returns what the fabric now carries. */
  apply(node: string, planId: string, fabricName: string, flows: readonly FlowRequest[]): AppliedPlan {
    if (!planId) throw new TrafficPlanError("plan_id is required");
    if (flows.length === 0) {
      this.plans.delete(node);
      this.loads = undefined;
      return { planId, fabric: fabricName, flows: [], appliedUnixMs: this.nowMs(), qpsApplied: 0, qpsOnPlannedPath: 0 };
    }
    if (!fabricName) throw new TrafficPlanError("fabric is required when the plan has flows");
    const spec = this.topologies.get(fabricName);
    if (!spec)
      throw new UnknownFabricError(
        `FabricTopology ${fabricName} is not known to this agent (not created, or not yet seen)`,
      );
    this.validate(node, spec, flows);
    this.plans.set(node, {
      planId,
      fabric: fabricName,
      flows: flows.map((f) => ({ ...f, qps: f.qps.map((q) => ({ ...q })) })),
      appliedUnixMs: this.nowMs(),
    });
    this.loads = undefined;
    return this.applied(node)!;
  }

  /** What the node's plan does on the fabric as it is now; undefined when the node has none. */
  applied(node: string): AppliedPlan | undefined {
    const plan = this.plans.get(node);
    if (!plan) return undefined;
    const spec = this.topologies.get(plan.fabric);
    const srcLeaf = this.nodes.placeOf(node)?.leaf;
    let qpsApplied = 0;
    let onPlan = 0;
    const flows = plan.flows.map((f): AppliedFlow => {
      const dstLeaf = this.nodes.placeOf(f.dstNode)?.leaf;
      const qps = f.qps.map((q) => {
        const path =
          spec && srcLeaf && dstLeaf
            ? hashedPath(spec, srcLeaf, dstLeaf, { srcNode: node, dstNode: f.dstNode }, q.udpSourcePort)
            : undefined;
        const planned =
          path !== undefined &&
          q.spine === path.spine &&
          q.uplinkPort === path.uplinkPort &&
          q.downlinkPort === path.downlinkPort;
        qpsApplied++;
        if (planned) onPlan++;
        return { udpSourcePort: q.udpSourcePort, path, planned };
      });
      return { ...f, qps };
    });
    return {
      planId: plan.planId,
      fabric: plan.fabric,
      flows,
      appliedUnixMs: plan.appliedUnixMs,
      qpsApplied,
      qpsOnPlannedPath: onPlan,
    };
  }

  /**
   * Share (0, 1] of its NIC bandwidth an inter-node transfer of `job` from srcNode to dstNode gets: that of the
   * job's programmed connections between the two nodes (the slowest), else of the default-port ECMP path.
   */
  shareOf(job: string, srcNode: string, dstNode: string): number {
    this.linkLoads(); // resets the memo when plans or cables changed
    const key = `${job}|${srcNode}|${dstNode}`;
    let share = this.shares.get(key);
    if (share === undefined) this.shares.set(key, (share = this.computeShare(job, srcNode, dstNode)));
    return share;
  }

  private computeShare(job: string, srcNode: string, dstNode: string): number {
    const src = this.nodes.placeOf(srcNode);
    const dst = this.nodes.placeOf(dstNode);
    if (!src?.leaf || !dst?.leaf || src.leaf === dst.leaf) return 1;
    const loads = this.linkLoads();
    const plan = this.plans.get(srcNode);
    const flows = plan?.flows.filter((f) => f.job === job && f.dstNode === dstNode) ?? [];
    if (plan && flows.length > 0) {
      const spec = this.topologies.get(plan.fabric);
      let worst = 1;
      for (const f of flows) {
        for (const q of f.qps) {
          const path = spec ? hashedPath(spec, src.leaf, dst.leaf, { srcNode, dstNode }, q.udpSourcePort) : undefined;
          if (!path) return UNROUTABLE_SHARE;
          worst = Math.max(worst, loads.get(upKey(src.leaf, path)) ?? 0, loads.get(downKey(dst.leaf, path)) ?? 0);
        }
      }
      return 1 / worst;
    }
    const spec = this.fabricOf(src.island, src.leaf, dst.leaf);
    if (!spec) return 1; // no fabric known for these nodes: nothing between them is modelled
    const port = SOURCE_PORT_MIN + (hash(`${job}|${srcNode}|${dstNode}`) % (SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1));
    const path = hashedPath(spec, src.leaf, dst.leaf, { srcNode, dstNode }, port);
    if (!path) return UNROUTABLE_SHARE;
    return 1 / Math.max(1, loads.get(upKey(src.leaf, path)) ?? 0, loads.get(downKey(dst.leaf, path)) ?? 0);
  }

  /** Load of every link carrying programmed QPs ("leaf>spine#port" up, "spine>leaf#port" down). */
  linkLoads(): Map<string, number> {
    if (this.loads) return this.loads;
    this.shares.clear();
    const loads = new Map<string, number>();
    for (const [node, plan] of this.plans) {
      const spec = this.topologies.get(plan.fabric);
      const srcLeaf = this.nodes.placeOf(node)?.leaf;
      if (!spec || !srcLeaf) continue;
      for (const f of plan.flows) {
        const dstLeaf = this.nodes.placeOf(f.dstNode)?.leaf;
        if (!dstLeaf) continue;
        for (const q of f.qps) {
          const path = hashedPath(spec, srcLeaf, dstLeaf, { srcNode: node, dstNode: f.dstNode }, q.udpSourcePort);
          if (!path) continue;
          const share = f.demandGbps / f.qps.length;
          add(loads, upKey(srcLeaf, path), share / portGbps(spec, srcLeaf, path.spine));
          add(loads, downKey(dstLeaf, path), share / portGbps(spec, dstLeaf, path.spine));
        }
      }
    }
    return (this.loads = loads);
  }

  private fabricOf(island: string | undefined, srcLeaf: string, dstLeaf: string): SimFabricSpec | undefined {
    for (const spec of this.topologies.values()) {
      if (island !== undefined && spec.island !== island) continue;
      const leaves = new Set(spec.leaves.map((l) => l.name));
      if (leaves.has(srcLeaf) && leaves.has(dstLeaf)) return spec;
    }
    return undefined;
  }

  private validate(node: string, spec: SimFabricSpec, flows: readonly FlowRequest[]): void {
    const leaves = new Set(spec.leaves.map((l) => l.name));
    const srcLeaf = this.nodes.placeOf(node)?.leaf;
    if (!srcLeaf || !leaves.has(srcLeaf))
      throw new TrafficPlanError(
        `node ${node} is on leaf ${srcLeaf ?? "(none)"}, which is not a leaf of the fabric ${spec.island}`,
      );
    const nics = new Set(this.nodes.nicsOf(node) ?? []);
    const ids = new Set<string>();
    const ports = new Set<string>();
    flows.forEach((f, i) => {
      const at = `flows[${i}] (${f.connectionId || "no id"})`;
      if (!f.connectionId) throw new TrafficPlanError(`${at}: connection_id is required`);
      if (ids.has(f.connectionId)) throw new TrafficPlanError(`${at}: connection_id appears twice`);
      ids.add(f.connectionId);
      if (!f.job) throw new TrafficPlanError(`${at}: job is required`);
      if (!(f.srcRank >= 0 && f.dstRank >= 0))
        throw new TrafficPlanError(`${at}: ranks must be non-negative, got ${f.srcRank} -> ${f.dstRank}`);
      if (!nics.has(f.nic))
        throw new TrafficPlanError(`${at}: nic "${f.nic}" is not a NIC of node ${node} (${[...nics].join(", ")})`);
      if (!(Number.isFinite(f.demandGbps) && f.demandGbps >= 0))
        throw new TrafficPlanError(`${at}: demand_gbps must be a non-negative number, got ${f.demandGbps}`);
      if (f.dstNode === node)
        throw new TrafficPlanError(`${at}: dst_node is this node; a plan holds only connections that leave it`);
      const dstLeaf = this.nodes.placeOf(f.dstNode)?.leaf;
      if (!dstLeaf)
        throw new TrafficPlanError(
          `${at}: dst_node ${f.dstNode} is not a node this fabric knows (no gpufleet.io/leaf)`,
        );
      if (!leaves.has(dstLeaf))
        throw new TrafficPlanError(`${at}: dst_node ${f.dstNode} is on leaf ${dstLeaf}, not a leaf of this fabric`);
      if (dstLeaf === srcLeaf)
        throw new TrafficPlanError(`${at}: ${node} and ${f.dstNode} share leaf ${srcLeaf}; no spine path to plan`);
      if (f.qps.length < 1 || f.qps.length > MAX_QPS_PER_CONNECTION)
        throw new TrafficPlanError(`${at}: ${f.qps.length} QPs; a connection has 1..${MAX_QPS_PER_CONNECTION}`);
      f.qps.forEach((q, j) => {
        if (
          !Number.isInteger(q.udpSourcePort) ||
          q.udpSourcePort < SOURCE_PORT_MIN ||
          q.udpSourcePort > SOURCE_PORT_MAX
        )
          throw new TrafficPlanError(
            `${at}.qps[${j}]: udp_source_port ${q.udpSourcePort} is outside ${SOURCE_PORT_MIN}..${SOURCE_PORT_MAX}`,
          );
        const key = `${f.dstNode}|${q.udpSourcePort}`;
        if (ports.has(key))
          throw new TrafficPlanError(
            `${at}.qps[${j}]: udp_source_port ${q.udpSourcePort} is already used by another QP to ${f.dstNode}`,
          );
        ports.add(key);
        if (q.spine !== undefined && q.spine !== "" && !spec.spines.includes(q.spine))
          throw new TrafficPlanError(`${at}.qps[${j}]: spine ${q.spine} is not a spine of this fabric`);
      });
    });
  }
}

const upKey = (leaf: string, p: HashedPath): string => `${leaf}>${p.spine}#${p.uplinkPort}`;
const downKey = (leaf: string, p: HashedPath): string => `${p.spine}>${leaf}#${p.downlinkPort}`;

function portGbps(spec: SimFabricSpec, leaf: string, spine: string): number {
  return spec.leaves.find((l) => l.name === leaf)?.uplinks.find((u) => u.spine === spine)?.portGbps ?? Infinity;
}

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
