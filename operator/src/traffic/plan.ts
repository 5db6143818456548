/**
 * C4P traffic planner (pure): a path for every inter-leaf connection of every running job, so that the busiest
 * fabric link carries as little as it can (Dong et al., "Boosting Large-scale Parallel Training Efficiency with
 * C4: A Communication-Driven Approach", 2024, section C4P: path allocation over a leaf-spine fabric, balancing
 * the few long, large collective flows that ECMP hashing collides; and Gangidi et al., "RDMA over Ethernet for
 * Distributed AI Training at Meta Scale", SIGCOMM'24: more queue pairs per connection spread a flow over paths).
 *
 * Model: every connection carries its demand (Gbit/s) at once; a connection with q queue pairs sends demand ÷ q
 * on each (NCCL stripes a connection's messages evenly over its QPs). A QP's path is (spine, uplink port, downlink
 * port); its load adds demand ÷ q ÷ capacity to the up link and the down link. The objective is the maximum link
 * load over the fabric, then how many links sit at that maximum.
 *
 * Algorithm (deterministic: every choice breaks ties by index, no randomness):
 *  1. Greedy: QPs in decreasing demand order (then connection id) take the path whose worse link would be least
 *     loaded after adding it (LPT list scheduling on the links).
 *  2. Local search: while some QP on a link at the maximum can move to a path whose links both stay below the
 *     maximum, move it; every move lowers (max load, links at max) lexicographically, so it ends.
 *  3. More QPs where they help: while the maximum is above the fluid lower bound, the job with most QPs on the
 *     busiest links doubles its QPs per connection (NCCL_IB_QPS_PER_CONNECTION is per process, so per job), up to
 *     maxQpsPerConnection (NCCL's 128), each QP handing its path to its two halves (loads unchanged), and step 2
 *     moves the halves off the hottest links (water-filling in steps of demand ÷ q); kept only when (max load,
 *     links at max) drops. Equal-share QPs are the real constraint: a plan can only split a connection in
 *     multiples of 1/q, so the fluid optimum stays out of reach by up to one QP's share on the busiest link (e.g.
 *     8 flows over 31 live ports: ceil(8q / 31) / q, 1.029× the fluid bound at q = 128).
 * Re-planning (a link failed, a job came or went) starts from the previous plan, QP by QP: QPs whose path is still
 * up keep it, only the others are placed greedily, then step 2, and step 3 only when a job is new or the maximum
 * rose above the previous plan's. Moving few QPs keeps running collectives
 * undisturbed, and it is fast.
 */
import type { Connection } from "./flows.js";
import type { Fabric } from "./fabric.js";

export interface TrafficPlannerConfig {
  /** Upper bound on QPs per connection (a power of two; NCCL_IB_QPS_PER_CONNECTION). */
  maxQpsPerConnection: number;
  /** Cap on local-search moves per round (a safety net; rounds normally end far below it). */
  maxMovesPerRound: number;
  /** Loads closer than this count as equal. */
  epsilon: number;
}

/**
 * NCCL's IB transport holds at most NCCL_IB_MAX_QPS = 128 data QPs per connection (net_ib: QPs per connection ×
 * devices merged into it); NCCL_IB_QPS_PER_CONNECTION above that is refused. The planner only doubles a job's QPs
 * while that lowers the maximum load, so most jobs stay far below it.
 */
export const NCCL_MAX_QPS_PER_CONNECTION = 128;

export const DEFAULT_TRAFFIC_PLANNER_CONFIG: TrafficPlannerConfig = {
  maxQpsPerConnection: NCCL_MAX_QPS_PER_CONNECTION,
  maxMovesPerRound: 200_000,
  epsilon: 1e-9,
};

export interface QpPath {
  spine: string;
  /** Port index among the leaf's ports to that spine. */
  uplinkPort: number;
  /** Port index among the spine's ports to the destination leaf. */
  downlinkPort: number;
}

export interface PlannedConnection {
  id: string;
  job: string;
  srcLeaf: string;
  dstLeaf: string;
  /** One path per QP; the connection's demand is split evenly over them. */
  paths: QpPath[];
}

export interface LinkLoad {
  link: string;
  load: number;
}

export interface TrafficPlan {
  /** Inter-leaf connections, by id. */
  connections: PlannedConnection[];
  /** QPs per connection, per job (jobs without inter-leaf traffic have 1). */
  qpsPerJob: Record<string, number>;
  maxLinkLoad: number;
  /** The fluid lower bound every leaf's total traffic implies (max over leaves of out ÷ up capacity, in ÷ down). */
  leafBound: number;
  /** The busiest links, most loaded first (at most 16). */
  hottestLinks: LinkLoad[];
  /** Connections that stay inside one leaf (no fabric link to plan). */
  intraLeafConnections: number;
  /** Connections with no live path (every spine is cut off from one of their leaves); not placed. */
  unroutable: { id: string; reason: string }[];
}

export interface PlanInput {
  fabric: Fabric;
  /** Leaf of every node that carries traffic. */
  nodeLeaf: ReadonlyMap<string, string>;
  connections: readonly Connection[];
  /** The plan in force, for a re-plan that keeps what still works. */
  previous?: TrafficPlan;
  config?: Partial<TrafficPlannerConfig>;
}

/** Plans every connection; throws only on inconsistent input (a node without a leaf, a leaf not in the fabric). */
export function planTraffic(input: PlanInput): TrafficPlan {
  const config = { ...DEFAULT_TRAFFIC_PLANNER_CONFIG, ...input.config };
  if (!Number.isInteger(Math.log2(config.maxQpsPerConnection)))
    throw new RangeError(`maxQpsPerConnection must be a power of two, got ${config.maxQpsPerConnection}`);
  if (config.maxQpsPerConnection > NCCL_MAX_QPS_PER_CONNECTION)
    throw new RangeError(
      `maxQpsPerConnection ${config.maxQpsPerConnection} exceeds NCCL's ${NCCL_MAX_QPS_PER_CONNECTION} QPs per connection`,
    );
  const problem = buildProblem(input);
  const previousQps = input.previous?.qpsPerJob ?? {};
  let qps = new Map(problem.jobs.map((j) => [j, Math.min(config.maxQpsPerConnection, previousQps[j] ?? 1)]));
  let best = solve(problem, qps, config, warmStart(input.previous, problem));
  const bound = problem.leafBound;
  // A re-plan of the same jobs whose maximum did not rise keeps their QP counts: the previous plan's doubling
  // search already stopped at them, and trying again would cost a full solve per job (re-plan latency matters).
  const settled =
    input.previous !== undefined &&
    problem.jobs.every((j) => previousQps[j] !== undefined) &&
    best.maxLoad <= input.previous.maxLinkLoad + config.epsilon;
  while (!settled && best.maxLoad > bound + config.epsilon) {
    let improved = false;
    for (const job of jobsOnHotLinks(problem, best, config)) {
      if (qps.get(job)! >= config.maxQpsPerConnection) continue;
      const tryQps = new Map(qps).set(job, qps.get(job)! * 2);
      const trial = solve(problem, tryQps, config, { solved: best, indexOf: null });
      // Lexicographic, like the local search: with several jobs at the maximum, each one's doubling only takes
      // links off it; the maximum itself drops once the last job there has doubled.
      if (better(trial, best, config.epsilon)) {
        best = trial;
        qps = tryQps;
        improved = true;
        break;
      }
    }
    if (!improved) break;
  }
  return toPlan(problem, best, qps);
}

// ---------------------------------------------------------------------------------------------------------------
// Problem and state

interface Problem {
  fabric: Fabric;
  /** Inter-leaf routable connections, by id. */
  conns: { c: Connection; src: number; dst: number; spines: readonly number[] }[];
  jobs: string[];
  intraLeaf: number;
  unroutable: { id: string; reason: string }[];
  leafBound: number;
  /** Leaf and spine index of every link. */
  linkLeaf: Int32Array;
  linkSpine: Int32Array;
  /** Source and destination leaf of every connection (as in conns, in flat arrays for the search's hot loops). */
  connSrc: Int32Array;
  connDst: Int32Array;
  /**
   * The fabric's up links flat: leaf l's up links to spine s are upIds[upAt[l·S + s] … upAt[l·S + s + 1] − 1] (S
   * spines, port order); the down links from spine s to leaf l likewise at downAt[s·L + l] (L leaves).
   */
  upAt: Int32Array;
  upIds: Int32Array;
  downAt: Int32Array;
  downIds: Int32Array;
  /**
   * Port group of every link: l·S + s for leaf l's up links to spine s, L·S + s·L + l for spine s's down links
   * to l.
   */
  linkPorts: Int32Array;
  /** Every link's port index in its group, and the most ports any group has. */
  linkPort: Int32Array;
  maxPorts: number;
}

function buildProblem(input: PlanInput): Problem {
  const { fabric } = input;
  const leafOf = (node: string, id: string): number => {
    const leaf = input.nodeLeaf.get(node);
    if (leaf === undefined) throw new RangeError(`connection ${id}: node ${node} has no leaf`);
    const index = fabric.leafIndex.get(leaf);
    if (index === undefined) throw new RangeError(`connection ${id}: node ${node}'s leaf ${leaf} is not in the fabric`);
    return index;
  };
  const conns: Problem["conns"] = [];
  const unroutable: Problem["unroutable"] = [];
  const jobs = new Set<string>();
  // Live spines per leaf pair: thousands of connections share a few hundred pairs.
  const spinesOf = new Map<number, number[]>();
  let intraLeaf = 0;
  const sorted = [...input.connections].sort((a, b) => cmp(a.id, b.id));
  for (const c of sorted) {
    jobs.add(c.job);
    const src = leafOf(c.srcNode, c.id);
    const dst = leafOf(c.dstNode, c.id);
    if (src === dst) {
      intraLeaf++;
      continue;
    }
    const pair = src * fabric.leaves.length + dst;
    let spines = spinesOf.get(pair);
    if (spines === undefined) spinesOf.set(pair, (spines = liveSpines(fabric, src, dst)));
    if (spines.length === 0) {
      unroutable.push({
        id: c.id,
        reason: `no spine has a live cable to both ${fabric.leaves[src]} and ${fabric.leaves[dst]}`,
      });
      continue;
    }
    conns.push({ c, src, dst, spines });
  }
  const linkLeaf = new Int32Array(fabric.capacityGbps.length);
  const linkSpine = new Int32Array(fabric.capacityGbps.length);
  for (let l = 0; l < fabric.leaves.length; l++) {
    for (let s = 0; s < fabric.spines.length; s++) {
      for (const id of [...fabric.up[l]![s]!, ...fabric.down[s]![l]!]) {
        linkLeaf[id] = l;
        linkSpine[id] = s;
      }
    }
  }
  const leaves = fabric.leaves.length;
  const spineCount = fabric.spines.length;
  const upAt = new Int32Array(leaves * spineCount + 1);
  const downAt = new Int32Array(leaves * spineCount + 1);
  for (let l = 0; l < leaves; l++)
    for (let s = 0; s < spineCount; s++)
      upAt[l * spineCount + s + 1] = upAt[l * spineCount + s]! + fabric.up[l]![s]!.length;
  for (let s = 0; s < spineCount; s++)
    for (let l = 0; l < leaves; l++) downAt[s * leaves + l + 1] = downAt[s * leaves + l]! + fabric.down[s]![l]!.length;
  const upIds = new Int32Array(upAt[leaves * spineCount]!);
  const downIds = new Int32Array(downAt[leaves * spineCount]!);
  for (let l = 0; l < leaves; l++)
    for (let s = 0; s < spineCount; s++) upIds.set(fabric.up[l]![s]!, upAt[l * spineCount + s]!);
  for (let s = 0; s < spineCount; s++)
    for (let l = 0; l < leaves; l++) downIds.set(fabric.down[s]![l]!, downAt[s * leaves + l]!);
  const linkPorts = new Int32Array(fabric.capacityGbps.length);
  const linkPort = new Int32Array(fabric.capacityGbps.length);
  let maxPorts = 1;
  for (let l = 0; l < leaves; l++) {
    for (let s = 0; s < spineCount; s++) {
      for (const [port, id] of fabric.up[l]![s]!.entries()) {
        linkPorts[id] = l * spineCount + s;
        linkPort[id] = port;
      }
      for (const [port, id] of fabric.down[s]![l]!.entries()) {
        linkPorts[id] = leaves * spineCount + s * leaves + l;
        linkPort[id] = port;
      }
      maxPorts = Math.max(maxPorts, fabric.up[l]![s]!.length, fabric.down[s]![l]!.length);
    }
  }
  const connSrc = new Int32Array(conns.length);
  const connDst = new Int32Array(conns.length);
  for (let i = 0; i < conns.length; i++) {
    connSrc[i] = conns[i]!.src;
    connDst[i] = conns[i]!.dst;
  }
  return {
    fabric,
    conns,
    jobs: [...jobs].sort(cmp),
    intraLeaf,
    unroutable,
    leafBound: leafBound(fabric, conns),
    linkLeaf,
    linkSpine,
    connSrc,
    connDst,
    upAt,
    upIds,
    downAt,
    downIds,
    linkPorts,
    linkPort,
    maxPorts,
  };
}

function liveSpines(fabric: Fabric, src: number, dst: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < fabric.spines.length; s++) {
    const ups = fabric.up[src]![s]!.some((l) => fabric.capacityGbps[l]! > 0);
    const downs = fabric.down[s]![dst]!.some((l) => fabric.capacityGbps[l]! > 0);
    if (ups && downs) out.push(s);
  }
  return out;
}

function leafBound(fabric: Fabric, conns: Problem["conns"]): number {
  const out = new Float64Array(fabric.leaves.length);
  const inn = new Float64Array(fabric.leaves.length);
  for (const { c, src, dst } of conns) {
    out[src]! += c.demandGbps;
    inn[dst]! += c.demandGbps;
  }
  let bound = 0;
  for (let l = 0; l < fabric.leaves.length; l++) {
    let upCap = 0;
    let downCap = 0;
    for (let s = 0; s < fabric.spines.length; s++) {
      for (const id of fabric.up[l]![s]!) upCap += fabric.capacityGbps[id]!;
      for (const id of fabric.down[s]![l]!) downCap += fabric.capacityGbps[id]!;
    }
    if (out[l]! > 0) bound = Math.max(bound, upCap > 0 ? out[l]! / upCap : Number.POSITIVE_INFINITY);
    if (inn[l]! > 0) bound = Math.max(bound, downCap > 0 ? inn[l]! / downCap : Number.POSITIVE_INFINITY);
  }
  return bound;
}

/**
 * Every QP's path as two link ids in flat arrays: QP keys are dense, connection i's QPs are keys first[i] …
 * first[i + 1] − 1. At 4,096 GPUs a plan has about 2 million QPs (16-32k connections × 128); one object per QP
 * made every solve and re-plan spend most of its time allocating and collecting them.
 */
interface QpPaths {
  first: Int32Array;
  up: Int32Array;
  down: Int32Array;
}

interface Solution extends QpPaths {
  loads: Float64Array;
  maxLoad: number;
  /** 1 where the connection's QPs are exactly its seed's (none replaced, moved or split). */
  unchanged: Uint8Array;
  /** The seed when it was a plan's solved paths: toPlan hands the plan's unchanged connections on as they are. */
  seed?: SolvedSeed;
}

/** Where a solve's QPs start from: solved paths over the same links, or the names a plan read back carries. */
type Seed = SolvedSeed | { named: ReadonlyMap<string, readonly QpPath[]> };

interface SolvedSeed {
  solved: QpPaths;
  /** The seed's connection index of each of this problem's connections (−1: none); null when they are the same. */
  indexOf: Int32Array | null;
  /** The plan these paths are, when they are one. */
  plan?: TrafficPlan;
}

/**
 * The planner's own paths (link ids) behind every plan it returned, so a re-plan in the same process starts from
 * them without converting the plan's names back QP by QP. Plans read back from elsewhere fall back to the names.
 */
const solvedPaths = new WeakMap<
  TrafficPlan,
  { linkNames: readonly string[]; ids: readonly string[]; paths: QpPaths }
>();

function warmStart(previous: TrafficPlan | undefined, problem: Problem): Seed | undefined {
  if (previous === undefined) return undefined;
  const solved = solvedPaths.get(previous);
  // Link ids only carry over between fabrics of the same cables (a failure changes capacities, not ids).
  if (solved !== undefined && sameLinks(solved.linkNames, problem.fabric.linkNames))
    return { solved: solved.paths, indexOf: indexOf(solved.ids, problem), plan: previous };
  return { named: new Map(previous.connections.map((p) => [p.id, p.paths])) };
}

function indexOf(ids: readonly string[], problem: Problem): Int32Array | null {
  const { conns } = problem;
  if (ids.length === conns.length && conns.every(({ c }, i) => c.id === ids[i])) return null;
  const at = new Map(ids.map((id, j) => [id, j]));
  return Int32Array.from(conns, ({ c }) => at.get(c.id) ?? -1);
}

function sameLinks(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Steps 1-2 for fixed QP counts. The seed's paths (from a previous plan or round) are kept QP by QP where still
 * live; a seed with fewer QPs than the connection now has (its job's QPs just doubled) hands each path to q ÷ seed
 * QPs, which leaves every load as it was, so the local search only has to move the halves that relieve the hottest
 * links. Only QPs without a live seed path go through the greedy step: after a cable fails, just the QPs that
 * crossed it.
 */
function solve(
  problem: Problem,
  qps: ReadonlyMap<string, number>,
  config: TrafficPlannerConfig,
  seed?: Seed,
): Solution {
  const { fabric, conns } = problem;
  const cap = fabric.capacityGbps;
  const first = new Int32Array(conns.length + 1);
  const share = new Float64Array(conns.length);
  for (const [i, { c }] of conns.entries()) {
    const q = qps.get(c.job)!;
    first[i + 1] = first[i]! + q;
    share[i] = c.demandGbps / q;
  }
  const total = first[conns.length]!;
  const up = new Int32Array(total);
  const down = new Int32Array(total);
  const unchanged = new Uint8Array(conns.length);
  const loads = new Float64Array(cap.length);
  const pending: number[] = [];
  const groups = new PathGroups(problem, { first, up, down }, unchanged);
  const copied = copySameLayout(seed, { first, up, down });
  for (let i = 0; i < conns.length; i++) {
    const asSeed = copied || seedPaths(problem, i, seed, { first, up, down });
    const missing = loadLivePaths(problem, i, { first, up, down }, share[i]!, loads, pending, groups);
    unchanged[i] = asSeed && missing === 0 ? 1 : 0;
  }
  // LPT order: biggest QPs first; ties by connection order (ids, sorted). A connection's missing QPs fill its
  // first free slots in order.
  pending.sort((a, b) => share[b]! - share[a]! || a - b);
  const choice = newChoice();
  for (const i of pending) {
    // A routable connection always has a live path.
    bestPath(problem, i, share[i]!, loads, choice);
    addLoad(cap, loads, choice.up, choice.down, share[i]!);
    let k = first[i]!;
    while (up[k]! >= 0) k++;
    up[k] = choice.up;
    down[k] = choice.down;
    groups.add(i, choice.up, choice.down, 1, k);
  }
  const solution: Solution = { first, up, down, loads, maxLoad: 0, unchanged };
  if (seed !== undefined && "solved" in seed && seed.plan !== undefined) solution.seed = seed;
  localSearch(problem, config, solution, share, groups);
  solution.maxLoad = maxOf(loads);
  return solution;
}

/**
 * Writes the seed's path for each QP of connection i into `into` (link ids), −1 where it has none or its cable is
 * down; true when they are exactly the seed's QPs (the same count, none split).
 */
function seedPaths(problem: Problem, i: number, seed: Seed | undefined, into: QpPaths): boolean {
  const lo = into.first[i]!;
  const q = into.first[i + 1]! - lo;
  if (seed === undefined) return none(into, lo, q);
  const { fabric, linkLeaf, linkSpine } = problem;
  const cap = fabric.capacityGbps;
  const { src, dst, c } = problem.conns[i]!;
  if ("solved" in seed) {
    const j = seed.indexOf === null ? i : seed.indexOf[i]!;
    if (j < 0) return none(into, lo, q);
    const { first, up, down } = seed.solved;
    const from = first[j]!;
    const had = first[j + 1]! - from;
    if (had === 0 || had > q || q % had !== 0) return none(into, lo, q);
    const copies = q / had;
    if (copies === 1) {
      // The same QP count as the seed: copied whole (loadLivePaths clears the dead ones).
      into.up.set(up.subarray(from, from + q), lo);
      into.down.set(down.subarray(from, from + q), lo);
      return true;
    }
    for (let k = 0; k < had; k++) {
      let u = up[from + k]!;
      let d = down[from + k]!;
      // Dead, or no longer between this connection's leaves (a node moved to another leaf): placed afresh.
      const fits = linkLeaf[u] === src && linkLeaf[d] === dst && linkSpine[u] === linkSpine[d];
      if (!fits || cap[u]! <= 0 || cap[d]! <= 0) u = d = -1;
      // Plain stores: TypedArray.fill's call overhead, 4 million times a re-plan, cost more than the copying.
      for (let at = lo + k * copies; at < lo + (k + 1) * copies; at++) {
        into.up[at] = u;
        into.down[at] = d;
      }
    }
    return copies === 1;
  }
  const named = seed.named.get(c.id);
  if (named === undefined || named.length === 0 || named.length > q || q % named.length !== 0) return none(into, lo, q);
  const copies = q / named.length;
  let lastName: QpPath | undefined;
  let u = -1;
  let d = -1;
  for (const [k, p] of named.entries()) {
    if (lastName === undefined || !sameQpPath(lastName, p)) {
      const s = fabric.spines.indexOf(p.spine);
      u = (s < 0 ? undefined : fabric.up[src]![s]![p.uplinkPort]) ?? -1;
      d = (s < 0 ? undefined : fabric.down[s]![dst]![p.downlinkPort]) ?? -1;
      if (u < 0 || d < 0) u = d = -1;
      lastName = p;
    }
    const live = u >= 0 && cap[u]! > 0 && cap[d]! > 0;
    for (let at = lo + k * copies; at < lo + (k + 1) * copies; at++) {
      into.up[at] = live ? u : -1;
      into.down[at] = live ? d : -1;
    }
  }
  return false;
}

/**
 * A solved seed of exactly this problem's connections and QP counts (a re-plan after a cable failed: the same
 * jobs): its paths copied into `into` in one go instead of connection by connection; false when it is not one.
 */
function copySameLayout(seed: Seed | undefined, into: QpPaths): boolean {
  if (seed === undefined || !("solved" in seed) || seed.indexOf !== null) return false;
  const { first, up, down } = seed.solved;
  if (first.length !== into.first.length) return false;
  for (let i = 0; i < first.length; i++) if (first[i] !== into.first[i]) return false;
  into.up.set(up);
  into.down.set(down);
  return true;
}

/**
 * Adds the load of connection i's seeded QPs whose path is live and between its leaves, and clears the others
 * (−1) for the greedy step, adding i to `pending` once per cleared QP; how many it cleared. Run by run: a
 * connection's QPs on one path are mostly consecutive keys, so a path is checked once per run, and its two loads
 * are summed QP by QP in the same order as one addLoad per QP (the same floating-point result).
 */
function loadLivePaths(
  problem: Problem,
  i: number,
  paths: QpPaths,
  gbps: number,
  loads: Float64Array,
  pending: number[],
  groups: PathGroups,
): number {
  const { linkLeaf, linkSpine } = problem;
  const cap = problem.fabric.capacityGbps;
  const { src, dst } = problem.conns[i]!;
  const { up, down } = paths;
  const last = paths.first[i + 1]!;
  let missing = 0;
  for (let key = paths.first[i]!; key < last;) {
    const u = up[key]!;
    const d = down[key]!;
    const from = key;
    do key++;
    while (key < last && up[key] === u && down[key] === d);
    const live =
      u >= 0 &&
      d >= 0 &&
      linkLeaf[u] === src &&
      linkLeaf[d] === dst &&
      linkSpine[u] === linkSpine[d] &&
      cap[u]! > 0 &&
      cap[d]! > 0;
    if (!live) {
      for (let k = from; k < key; k++) {
        up[k] = down[k] = -1;
        pending.push(i);
      }
      missing += key - from;
      continue;
    }
    const onUp = gbps / cap[u]!;
    const onDown = gbps / cap[d]!;
    let upLoad = loads[u]!;
    let downLoad = loads[d]!;
    for (let k = from; k < key; k++) {
      upLoad += onUp;
      downLoad += onDown;
    }
    loads[u] = upLoad;
    loads[d] = downLoad;
    groups.addSeeded(i, u, d, key - from, from);
  }
  return missing;
}

/** No seed path for the q QPs from key lo: all placed afresh. */
function none(into: QpPaths, lo: number, q: number): false {
  for (let at = lo; at < lo + q; at++) into.up[at] = into.down[at] = -1;
  return false;
}

function sameQpPath(a: QpPath, b: QpPath): boolean {
  return a.spine === b.spine && a.uplinkPort === b.uplinkPort && a.downlinkPort === b.downlinkPort;
}

function addLoad(cap: Float64Array, loads: Float64Array, up: number, down: number, gbps: number): void {
  loads[up]! += gbps / cap[up]!;
  loads[down]! += gbps / cap[down]!;
}

function removeLoad(cap: Float64Array, loads: Float64Array, up: number, down: number, gbps: number): void {
  loads[up]! -= gbps / cap[up]!;
  loads[down]! -= gbps / cap[down]!;
}

/** A path bestPath found (written in place: it runs millions of times a plan), and its cost. */
interface Choice {
  up: number;
  down: number;
  cost: number;
}

function newChoice(): Choice {
  return { up: -1, down: -1, cost: 0 };
}

/**
 * The path whose worse link is least loaded once `gbps` is added (then the smaller sum, then the lower spine and
 * port), written to `out`; false when the connection has none. On one spine the best up and down ports are
 * independent: the least loaded live port of each.
 */
function bestPath(
  problem: Problem,
  index: number,
  gbps: number,
  loads: Float64Array,
  out: Choice,
  ports?: PortChoices,
): boolean {
  const cap = problem.fabric.capacityGbps;
  const { spines } = problem.conns[index]!;
  const src = problem.connSrc[index]!;
  const dst = problem.connDst[index]!;
  let found = false;
  let bestCost = 0;
  let bestSum = 0;
  for (let n = 0; n < spines.length; n++) {
    const s = spines[n]!;
    const up = ports === undefined ? leastLoadedUp(problem, src, s, gbps, loads) : ports.up(src, s, gbps, loads);
    const down = ports === undefined ? leastLoadedDown(problem, s, dst, gbps, loads) : ports.down(s, dst, gbps, loads);
    if (up < 0 || down < 0) continue;
    const upAfter = loads[up]! + gbps / cap[up]!;
    const downAfter = loads[down]! + gbps / cap[down]!;
    const cost = Math.max(upAfter, downAfter);
    const sum = upAfter + downAfter;
    if (!found || cost < bestCost - 1e-12 || (Math.abs(cost - bestCost) <= 1e-12 && sum < bestSum - 1e-12)) {
      found = true;
      bestCost = cost;
      bestSum = sum;
      out.up = up;
      out.down = down;
    }
  }
  out.cost = bestCost;
  return found;
}

/** The live up link from leaf `src` to spine `s` least loaded once `gbps` is added (the first on ties), or −1. */
function leastLoadedUp(problem: Problem, src: number, s: number, gbps: number, loads: Float64Array): number {
  const at = src * problem.fabric.spines.length + s;
  return leastLoaded(problem, problem.upIds, problem.upAt[at]!, problem.upAt[at + 1]!, gbps, loads);
}

/** The same for the down links from spine `s` to leaf `dst`. */
function leastLoadedDown(problem: Problem, s: number, dst: number, gbps: number, loads: Float64Array): number {
  const at = s * problem.fabric.leaves.length + dst;
  return leastLoaded(problem, problem.downIds, problem.downAt[at]!, problem.downAt[at + 1]!, gbps, loads);
}

/**
 * leastLoadedUp/Down() per port group (a leaf's up links to one spine, or a spine's down links to one leaf), kept
 * while none of the group's loads changed and asked for the same gbps: a best path reads 8 spines' groups, a move
 * changes 4 groups, and between two moves the search computes dozens of best paths over the same leaves. The search
 * reports every load it writes (changed()), its trial moves and their undoing included, so a kept choice is always
 * the one leastLoaded() would return now.
 */
class PortChoices {
  private readonly version: Int32Array;
  private readonly seenVersion: Int32Array;
  private readonly seenGbps: Float64Array;
  private readonly link: Int32Array;
  private readonly spines: number;
  private readonly leaves: number;

  constructor(private readonly problem: Problem) {
    this.spines = problem.fabric.spines.length;
    this.leaves = problem.fabric.leaves.length;
    const groups = 2 * this.spines * this.leaves;
    this.version = new Int32Array(groups);
    this.seenVersion = new Int32Array(groups).fill(-1);
    this.seenGbps = new Float64Array(groups);
    this.link = new Int32Array(groups);
  }

  /** The load of `link` changed. */
  changed(link: number): void {
    this.version[this.problem.linkPorts[link]!]!++;
  }

  up(src: number, s: number, gbps: number, loads: Float64Array): number {
    const at = src * this.spines + s;
    if (this.seenVersion[at] === this.version[at] && this.seenGbps[at] === gbps) return this.link[at]!;
    return this.keep(at, gbps, leastLoadedUp(this.problem, src, s, gbps, loads));
  }

  down(s: number, dst: number, gbps: number, loads: Float64Array): number {
    const at = this.spines * this.leaves + s * this.leaves + dst;
    if (this.seenVersion[at] === this.version[at] && this.seenGbps[at] === gbps) return this.link[at]!;
    return this.keep(at, gbps, leastLoadedDown(this.problem, s, dst, gbps, loads));
  }

  private keep(at: number, gbps: number, link: number): number {
    this.seenVersion[at] = this.version[at]!;
    this.seenGbps[at] = gbps;
    this.link[at] = link;
    return link;
  }
}

/** The live link of ids[from … to − 1] least loaded once `gbps` is added (the first on ties), or −1. */
function leastLoaded(
  problem: Problem,
  ids: Int32Array,
  from: number,
  to: number,
  gbps: number,
  loads: Float64Array,
): number {
  const cap = problem.fabric.capacityGbps;
  let best = -1;
  let bestAfter = 0;
  // A leaf's ports mostly share one capacity: the same division, done once (the same quotient as every time).
  let lastCap = 0;
  let added = 0;
  for (let n = from; n < to; n++) {
    const id = ids[n]!;
    const c = cap[id]!;
    if (c <= 0) continue;
    if (c !== lastCap) {
      lastCap = c;
      added = gbps / c;
    }
    const after = loads[id]! + added;
    if (best < 0 || after < bestAfter - 1e-12) {
      best = id;
      bestAfter = after;
    }
  }
  return best;
}

/**
 * Step 2: QPs on links at the maximum move to a path whose two links stay below it, directly or, when every
 * path is blocked by one link at the maximum, after one QP on that blocking link moves away first (an ejection
 * chain of two). Each move lowers the number of links at the maximum, or the maximum itself; the search stops when
 * no QP on any hot link can move.
 */
function localSearch(
  problem: Problem,
  config: TrafficPlannerConfig,
  solution: Solution,
  share: Float64Array,
  groups: PathGroups,
): void {
  const { loads } = solution;
  const search = new Search(problem, config, solution, share, groups);
  for (let round = 0; search.moves < config.maxMovesPerRound; round++) {
    const max = maxOf(loads);
    if (max <= config.epsilon) return;
    const hot: number[] = [];
    for (let link = 0; link < loads.length; link++) if (loads[link]! >= max - config.epsilon) hot.push(link);
    let moved = false;
    for (const link of hot) if (search.drain(link, max)) moved = true;
    if (!moved) return;
  }
}

/**
 * QPs by path, for the local search: a connection's QPs on one path are interchangeable (same links, same share), so
 * the search works on (connection, path) groups, each with its QP count and its lowest key (the QP a move takes
 * first, so the plan's QP order is what moving QP by QP gave), and every link lists the groups crossing it. At
 * 4,096 GPUs a plan has about 2 million QPs but only about 20,000 groups (a 128-QP connection sits on a few paths):
 * the index is built while the QPs are seeded, run by run, and a link holds a handful of groups instead of 500
 * QPs. The per-QP paths stay the truth the plan is written from; a move updates both.
 */
class PathGroups {
  /**
   * Per group: its connection, path (up, down link), QPs on it, lowest key, and its connection's next group. Plain
   * fields, replaced when the groups outgrow them: read them afresh after anything that may add a group.
   */
  conn: Int32Array;
  up: Int32Array;
  down: Int32Array;
  count: Int32Array;
  min: Int32Array;
  private next: Int32Array;
  private groups = 0;
  /** Per connection, its first group (−1: none); groups emptied by moves stay listed there, to be refilled. */
  private readonly connHead: Int32Array;
  /**
   * Per link, the groups with QPs on it (in no order), created when a group first lands there: a plan that doubles
   * its QPs solves a dozen times, and 8,000 empty lists per solve showed in its re-plan time.
   */
  private readonly onLink: (number[] | undefined)[];

  /**
   * For addSeeded(): per (up link, down port), the group of the connection being seeded there, where seedConn
   * holds that connection + 1. A connection spread over 128 paths has 128 groups, and finding each run's group by
   * walking the connection's list made seeding quadratic in them (4,096-GPU ring plans).
   */
  private readonly seedConn: Int32Array;
  private readonly seedGroup: Int32Array;

  constructor(
    private readonly problem: Problem,
    private readonly paths: QpPaths,
    private readonly unchanged: Uint8Array,
  ) {
    const links = problem.fabric.capacityGbps.length;
    const conns = paths.first.length - 1;
    this.seedConn = new Int32Array(links * problem.maxPorts);
    this.seedGroup = new Int32Array(links * problem.maxPorts);
    this.connHead = new Int32Array(conns).fill(-1);
    this.onLink = new Array<number[] | undefined>(links);
    const size = Math.max(16, conns * 2);
    this.conn = new Int32Array(size);
    this.up = new Int32Array(size);
    this.down = new Int32Array(size);
    this.count = new Int32Array(size);
    this.min = new Int32Array(size);
    this.next = new Int32Array(size);
  }

  /** Groups so far (ids 0 … size − 1). */
  get size(): number {
    return this.groups;
  }

  /** Counts `count` QPs of connection `conn`, the lowest `min`, as on path (up, down) (their paths already say so). */
  add(conn: number, up: number, down: number, count: number, min: number): void {
    const g = this.find(conn, up, down);
    if (g < 0) this.create(conn, up, down, count, min);
    else if (this.count[g] === 0) {
      this.count[g] = count;
      this.min[g] = min;
      this.list(up, g);
      this.list(down, g);
    } else {
      this.count[g]! += count;
      if (min < this.min[g]!) this.min[g] = min;
    }
  }

  /**
   * add() for the seeding pass, which adds each connection's QPs in one go, before any other add() for it: its
   * groups so far are found by path in a table instead of its list.
   */
  addSeeded(conn: number, up: number, down: number, count: number, min: number): void {
    const at = up * this.problem.maxPorts + this.problem.linkPort[down]!;
    if (this.seedConn[at] === conn + 1) {
      const g = this.seedGroup[at]!;
      this.count[g]! += count;
      if (min < this.min[g]!) this.min[g] = min;
      return;
    }
    this.seedConn[at] = conn + 1;
    this.seedGroup[at] = this.create(conn, up, down, count, min);
  }

  /**
   * The groups on `link`, by lowest key: one QP per (connection, path) to try, since when one of a group's QPs
   * cannot move none can.
   */
  byKey(link: number): number[] {
    const groups = this.onLink[link] ?? [];
    const out = new Array<number>(groups.length);
    // Insertion sort: a link has a handful of groups.
    for (let n = 0; n < groups.length; n++) {
      const g = groups[n]!;
      const key = this.min[g]!;
      let at = n;
      for (; at > 0 && this.min[out[at - 1]!]! > key; at--) out[at] = out[at - 1]!;
      out[at] = g;
    }
    return out;
  }

  /** Moves group g's lowest key to the path (up, down), into its connection's group there. */
  moveLowest(g: number, up: number, down: number): void {
    const { paths } = this;
    const key = this.min[g]!;
    const conn = this.conn[g]!;
    const fromUp = this.up[g]!;
    const fromDown = this.down[g]!;
    paths.up[key] = up;
    paths.down[key] = down;
    this.unchanged[conn] = 0;
    if (--this.count[g]! === 0) {
      unlist(this.onLink[fromUp]!, g);
      unlist(this.onLink[fromDown]!, g);
    } else {
      // The group's other QPs all have higher keys (`key` was its lowest) within the connection's.
      let next = key + 1;
      while (paths.up[next] !== fromUp || paths.down[next] !== fromDown) next++;
      this.min[g] = next;
    }
    this.add(conn, up, down, 1, key);
  }

  private list(link: number, g: number): void {
    const groups = this.onLink[link];
    if (groups === undefined) this.onLink[link] = [g];
    else groups.push(g);
  }

  /** The connection's group on path (up, down), or −1. */
  private find(conn: number, up: number, down: number): number {
    for (let g = this.connHead[conn]!; g >= 0; g = this.next[g]!)
      if (this.up[g] === up && this.down[g] === down) return g;
    return -1;
  }

  private create(conn: number, up: number, down: number, count: number, min: number): number {
    if (this.groups === this.up.length) {
      this.conn = grown(this.conn);
      this.up = grown(this.up);
      this.down = grown(this.down);
      this.count = grown(this.count);
      this.min = grown(this.min);
      this.next = grown(this.next);
    }
    const g = this.groups++;
    this.conn[g] = conn;
    this.up[g] = up;
    this.down[g] = down;
    this.count[g] = count;
    this.min[g] = min;
    this.next[g] = this.connHead[conn]!;
    this.connHead[conn] = g;
    this.list(up, g);
    this.list(down, g);
    return g;
  }
}

/** `values` in an array twice as long (the rest filled with `fill`). */
function grown(values: Int32Array, fill = 0): Int32Array {
  const out = new Int32Array(2 * values.length).fill(fill);
  out.set(values);
  return out;
}

/** Removes `value` from the unordered `list` (swap with the last). */
function unlist(list: number[], value: number): void {
  const at = list.indexOf(value);
  list[at] = list[list.length - 1]!;
  list.pop();
}

class Search {
  moves = 0;
  private readonly loads: Float64Array;
  private readonly cap: Float64Array;
  /** Scratch for bestPath: one for a group's own move, one for the group a chain moves away first. */
  private readonly choice = newChoice();
  private readonly away = newChoice();
  /**
   * Per leaf, bumped whenever a QP moves onto or off one of its up links (upVersion) or down links: a QP's best
   * path reads only its source leaf's up links and its destination leaf's down links.
   */
  private readonly upVersion: Int32Array;
  private readonly downVersion: Int32Array;
  /**
   * bestFor() per group while both its leaves' versions hold (a group's path never changes; −1: none yet): a chain
   * tries the same groups on a blocking link for every group it places, and between two moves their best paths
   * cannot change (81% of the calls in a 4,096-GPU scattered re-plan). A chain's trial moves are undone before the
   * next call, so they do not count.
   */
  private bestUpVersion: Int32Array;
  private bestDownVersion: Int32Array;
  private bestUp: Int32Array;
  private bestDown: Int32Array;
  private bestCost: Float64Array;
  /** movableOff() per blocking link, valid while `commits` holds. */
  private readonly movable = new Map<number, Movable>();
  private readonly ports: PortChoices;
  /** QPs moved so far (chain trial moves, undone, do not count). */
  private commits = 0;

  constructor(
    private readonly problem: Problem,
    private readonly config: TrafficPlannerConfig,
    solution: Solution,
    private readonly shares: Float64Array,
    private readonly groups: PathGroups,
  ) {
    this.loads = solution.loads;
    this.cap = problem.fabric.capacityGbps;
    this.upVersion = new Int32Array(problem.fabric.leaves.length);
    this.downVersion = new Int32Array(problem.fabric.leaves.length);
    this.ports = new PortChoices(problem);
    const size = Math.max(16, groups.size);
    this.bestUpVersion = new Int32Array(size).fill(-1);
    this.bestDownVersion = new Int32Array(size).fill(-1);
    this.bestUp = new Int32Array(size);
    this.bestDown = new Int32Array(size);
    this.bestCost = new Float64Array(size);
  }

  /**
   * Moves QPs off `link`, one at a time, while it stays at `max` and some QP (or chain) can leave without anything
   * else reaching `max`; true when at least one moved. Each step tries the lowest key of every (connection, path)
   * group on the link, in key order. While the link is drained QPs only leave it (every move's target stays below
   * `max`, and `link` is at it), so no group joins it.
   */
  drain(link: number, max: number): boolean {
    const eps = this.config.epsilon;
    let moved = false;
    while (this.loads[link]! >= max - eps && this.moves < this.config.maxMovesPerRound) {
      if (!this.moveOne(this.groups.byKey(link), link, max)) break;
      moved = true;
    }
    return moved;
  }

  /** Moves one QP of one of `groups` (on `link`) off it, directly or by a chain; false when none can go. */
  private moveOne(groups: readonly number[], link: number, max: number): boolean {
    for (const g of groups) if (this.tryMove(g, max)) return true;
    for (const g of groups) if (this.tryChain(g, link, max)) return true;
    return false;
  }

  private place(g: number, up: number, down: number): void {
    this.shiftLoad(g, this.groups.up[g]!, this.groups.down[g]!, up, down);
    this.commit(g, up, down);
  }

  /** Moves group g's lowest key to (up, down) in the index, its load already shifted. */
  private commit(g: number, up: number, down: number): void {
    const { linkLeaf } = this.problem;
    this.upVersion[linkLeaf[this.groups.up[g]!]!]!++;
    this.downVersion[linkLeaf[this.groups.down[g]!]!]!++;
    this.upVersion[linkLeaf[up]!]!++;
    this.downVersion[linkLeaf[down]!]!++;
    this.commits++;
    this.groups.moveLowest(g, up, down);
  }

  /** Moves one QP's load of group g from (fromUp, fromDown) to (toUp, toDown). */
  private shiftLoad(g: number, fromUp: number, fromDown: number, toUp: number, toDown: number): void {
    const share = this.shares[this.groups.conn[g]!]!;
    removeLoad(this.cap, this.loads, fromUp, fromDown, share);
    addLoad(this.cap, this.loads, toUp, toDown, share);
    this.loadsChanged(fromUp, fromDown);
    this.loadsChanged(toUp, toDown);
  }

  private loadsChanged(up: number, down: number): void {
    this.ports.changed(up);
    this.ports.changed(down);
  }

  /** The best path for one QP of group g with its own load taken off, into `out`; the load is put back. */
  private bestFor(g: number, out: Choice): boolean {
    const { groups, problem } = this;
    const conn = groups.conn[g]!;
    const upVersion = this.upVersion[problem.connSrc[conn]!]!;
    const downVersion = this.downVersion[problem.connDst[conn]!]!;
    if (g >= this.bestUp.length) this.growBest();
    if (this.bestUpVersion[g] === upVersion && this.bestDownVersion[g] === downVersion) {
      out.up = this.bestUp[g]!;
      out.down = this.bestDown[g]!;
      out.cost = this.bestCost[g]!;
      return out.up >= 0;
    }
    const up = groups.up[g]!;
    const down = groups.down[g]!;
    const share = this.shares[conn]!;
    removeLoad(this.cap, this.loads, up, down, share);
    this.loadsChanged(up, down);
    // With its own load removed, the current path would come back at the maximum: only a real move passes.
    const found = bestPath(problem, conn, share, this.loads, out, this.ports);
    addLoad(this.cap, this.loads, up, down, share);
    this.loadsChanged(up, down);
    this.bestUpVersion[g] = upVersion;
    this.bestDownVersion[g] = downVersion;
    this.bestUp[g] = found ? out.up : -1;
    this.bestDown[g] = out.down;
    this.bestCost[g] = out.cost;
    return found;
  }

  private growBest(): void {
    this.bestUpVersion = grown(this.bestUpVersion, -1);
    this.bestDownVersion = grown(this.bestDownVersion, -1);
    this.bestUp = grown(this.bestUp);
    this.bestDown = grown(this.bestDown);
    const cost = new Float64Array(2 * this.bestCost.length);
    cost.set(this.bestCost);
    this.bestCost = cost;
  }

  private tryMove(g: number, max: number): boolean {
    const best = this.choice;
    if (!this.bestFor(g, best) || best.cost >= max - this.config.epsilon) return false;
    this.place(g, best.up, best.down);
    this.moves++;
    return true;
  }

  /**
   * For each spine, the QP's best path there is blocked by at most one link at the maximum: move one other QP off
   * that link (to a path below the maximum), then this QP onto the freed path; undone when it does not work.
   */
  private tryChain(g: number, hotLink: number, max: number): boolean {
    const { problem, cap, loads } = this;
    const conn = this.groups.conn[g]!;
    const { spines } = problem.conns[conn]!;
    const src = problem.connSrc[conn]!;
    const dst = problem.connDst[conn]!;
    const share = this.shares[conn]!;
    const eps = this.config.epsilon;
    for (let n = 0; n < spines.length; n++) {
      const s = spines[n]!;
      const up = this.ports.up(src, s, share, loads);
      const down = this.ports.down(s, dst, share, loads);
      if (up < 0 || down < 0 || up === hotLink || down === hotLink) continue;
      const upBlocked = loads[up]! + share / cap[up]! >= max - eps;
      const downBlocked = loads[down]! + share / cap[down]! >= max - eps;
      if (upBlocked === downBlocked) continue;
      const blocker = upBlocked ? up : down;
      const movable = this.movableOff(blocker, hotLink, max);
      for (let m = 0; m < movable.groups.length; m++) {
        const other = movable.groups[m]!;
        if (other === g) continue;
        const wasUp = this.groups.up[other]!;
        const wasDown = this.groups.down[other]!;
        const awayUp = movable.ups[m]!;
        const awayDown = movable.downs[m]!;
        // Loads only, not the index: a chain that fails leaves the links' groups as they were. The load updates
        // are the same as a move and its undo, so the numbers are the same too.
        this.shiftLoad(other, wasUp, wasDown, awayUp, awayDown);
        const cost = Math.max(loads[up]! + share / cap[up]!, loads[down]! + share / cap[down]!);
        if (cost < max - eps) {
          this.commit(other, awayUp, awayDown);
          this.place(g, up, down);
          this.moves += 2;
          return true;
        }
        this.shiftLoad(other, awayUp, awayDown, wasUp, wasDown);
      }
    }
    return false;
  }

  /**
   * The groups on `blocker` that a chain could move a QP of first, in key order, with the path each would take: a
   * best path below `max` that avoids `hotLink` and the blocker itself (a QP that only changes its other link
   * leaves the blocker's load as it was). Kept until the next move (or another hot link or maximum): every QP a
   * stuck drain tries to place meets the same blockers, and between moves their best paths stay the same.
   */
  private movableOff(blocker: number, hotLink: number, max: number): Movable {
    const cached = this.movable.get(blocker);
    if (cached !== undefined && cached.commits === this.commits && cached.hotLink === hotLink && cached.max === max)
      return cached;
    const eps = this.config.epsilon;
    const away = this.away;
    const movable: Movable = { commits: this.commits, hotLink, max, groups: [], ups: [], downs: [] };
    for (const other of this.groups.byKey(blocker)) {
      if (!this.bestFor(other, away) || away.cost >= max - eps) continue;
      if (away.up === hotLink || away.down === hotLink || away.up === blocker || away.down === blocker) continue;
      movable.groups.push(other);
      movable.ups.push(away.up);
      movable.downs.push(away.down);
    }
    this.movable.set(blocker, movable);
    return movable;
  }
}

interface Movable {
  commits: number;
  hotLink: number;
  max: number;
  groups: number[];
  ups: number[];
  downs: number[];
}

/** Jobs with QPs on the links at the maximum, most such QPs first (then by name). */
function jobsOnHotLinks(problem: Problem, solution: Solution, config: TrafficPlannerConfig): string[] {
  const { first, up, down, loads } = solution;
  const hot = solution.maxLoad - config.epsilon;
  const counts = new Map<string, number>();
  for (const [i, { c }] of problem.conns.entries()) {
    let n = 0;
    for (let k = first[i]!; k < first[i + 1]!; k++) if (loads[up[k]!]! >= hot || loads[down[k]!]! >= hot) n++;
    if (n > 0) counts.set(c.job, (counts.get(c.job) ?? 0) + n);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0])).map(([job]) => job);
}

function toPlan(problem: Problem, solution: Solution, qps: ReadonlyMap<string, number>): TrafficPlan {
  const { fabric, linkSpine } = problem;
  const { first, up, down } = solution;
  const links = fabric.capacityGbps.length;
  // One frozen object per path (up and down link), shared by every QP on it: a plan of 128-QP connections stays
  // small, and equal paths are the same object.
  const named = new Map<number, QpPath>();
  const pathOf = (src: number, dst: number, u: number, d: number): QpPath => {
    let path = named.get(u * links + d);
    if (path === undefined) {
      const s = linkSpine[u]!;
      path = Object.freeze({
        spine: fabric.spines[s]!,
        uplinkPort: fabric.up[src]![s]!.indexOf(u),
        downlinkPort: fabric.down[s]![dst]!.indexOf(d),
      });
      named.set(u * links + d, path);
    }
    return path;
  };
  const seed = solution.seed;
  const connections = problem.conns.map(({ c, src, dst }, i): PlannedConnection => {
    const srcLeaf = fabric.leaves[src]!;
    const dstLeaf = fabric.leaves[dst]!;
    // A connection whose QPs all kept their seed paths is the previous plan's object again (plans are frozen):
    // a re-plan after one failed cable rebuilds only the few connections that crossed it.
    if (seed?.plan !== undefined && solution.unchanged[i] === 1) {
      const was = seed.plan.connections[seed.indexOf === null ? i : seed.indexOf[i]!];
      if (
        was !== undefined &&
        was.id === c.id &&
        was.job === c.job &&
        was.srcLeaf === srcLeaf &&
        was.dstLeaf === dstLeaf
      )
        return was;
    }
    const paths = new Array<QpPath>(first[i + 1]! - first[i]!);
    for (let k = first[i]!; k < first[i + 1]!; k++) {
      const same = k > first[i]! && up[k] === up[k - 1] && down[k] === down[k - 1];
      paths[k - first[i]!] = same ? paths[k - first[i]! - 1]! : pathOf(src, dst, up[k]!, down[k]!);
    }
    return Object.freeze({ id: c.id, job: c.job, srcLeaf, dstLeaf, paths: Object.freeze(paths) as QpPath[] });
  });
  const hottestLinks = [...solution.loads.keys()]
    .filter((l) => solution.loads[l]! > 0)
    .sort((a, b) => solution.loads[b]! - solution.loads[a]! || a - b)
    .slice(0, 16)
    .map((l) => ({ link: fabric.linkNames[l]!, load: solution.loads[l]! }));
  const plan: TrafficPlan = {
    connections,
    qpsPerJob: Object.fromEntries(problem.jobs.map((j) => [j, qps.get(j) ?? 1])),
    maxLinkLoad: solution.maxLoad,
    leafBound: problem.leafBound,
    hottestLinks,
    intraLeafConnections: problem.intraLeaf,
    unroutable: problem.unroutable,
  };
  // The arrays only: a plan must not keep its seed (the plan before it, and that one's seed…) alive.
  solvedPaths.set(plan, {
    linkNames: fabric.linkNames,
    ids: problem.conns.map(({ c }) => c.id),
    paths: { first, up, down },
  });
  return plan;
}

function better(a: Solution, b: Solution, epsilon: number): boolean {
  if (a.maxLoad < b.maxLoad - epsilon) return true;
  if (a.maxLoad > b.maxLoad + epsilon) return false;
  return countAtLeast(a.loads, a.maxLoad - epsilon) < countAtLeast(b.loads, b.maxLoad - epsilon);
}

function countAtLeast(values: Float64Array, threshold: number): number {
  let n = 0;
  for (const v of values) if (v >= threshold) n++;
  return n;
}

function maxOf(values: Float64Array): number {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  return max;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
