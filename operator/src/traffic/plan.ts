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
  /** Leaf and spine index of every link, and 1 for an up link (leaf to spine). */
  linkLeaf: Int32Array;
  linkSpine: Int32Array;
  linkUp: Uint8Array;
  /** Indexes of the connections leaving (arriving at) each leaf, ascending. */
  fromLeaf: number[][];
  toLeaf: number[][];
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
  const linkUp = new Uint8Array(fabric.capacityGbps.length);
  for (let l = 0; l < fabric.leaves.length; l++) {
    for (let s = 0; s < fabric.spines.length; s++) {
      for (const id of fabric.up[l]![s]!) linkUp[id] = 1;
      for (const id of [...fabric.up[l]![s]!, ...fabric.down[s]![l]!]) {
        linkLeaf[id] = l;
        linkSpine[id] = s;
      }
    }
  }
  const fromLeaf = fabric.leaves.map((): number[] => []);
  const toLeaf = fabric.leaves.map((): number[] => []);
  for (const [i, { src, dst }] of conns.entries()) {
    fromLeaf[src]!.push(i);
    toLeaf[dst]!.push(i);
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
    linkUp,
    fromLeaf,
    toLeaf,
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
  for (let i = 0; i < conns.length; i++) {
    const asSeed = seedPaths(problem, i, seed, { first, up, down });
    let missing = 0;
    for (let k = first[i]!; k < first[i + 1]!; k++) {
      if (up[k]! < 0) {
        missing++;
        pending.push(i);
      } else addLoad(cap, loads, up[k]!, down[k]!, share[i]!);
    }
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
  }
  const solution: Solution = { first, up, down, loads, maxLoad: 0, unchanged };
  if (seed !== undefined && "solved" in seed && seed.plan !== undefined) solution.seed = seed;
  localSearch(problem, config, solution, share);
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
      // The common case (the same QP count as the seed): copied whole, then the dead paths cleared.
      into.up.set(up.subarray(from, from + q), lo);
      into.down.set(down.subarray(from, from + q), lo);
      for (let at = lo; at < lo + q; at++) {
        const u = into.up[at]!;
        const d = into.down[at]!;
        const fits = linkLeaf[u] === src && linkLeaf[d] === dst && linkSpine[u] === linkSpine[d];
        if (!fits || cap[u]! <= 0 || cap[d]! <= 0) into.up[at] = into.down[at] = -1;
      }
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
function bestPath(problem: Problem, index: number, gbps: number, loads: Float64Array, out: Choice): boolean {
  const { fabric } = problem;
  const cap = fabric.capacityGbps;
  const { src, dst, spines } = problem.conns[index]!;
  let found = false;
  let bestCost = 0;
  let bestSum = 0;
  for (const s of spines) {
    const up = leastLoaded(cap, fabric.up[src]![s]!, gbps, loads);
    const down = leastLoaded(cap, fabric.down[s]![dst]!, gbps, loads);
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

/** The live link of `ids` least loaded once `gbps` is added (the first on ties), or −1. */
function leastLoaded(cap: Float64Array, ids: readonly number[], gbps: number, loads: Float64Array): number {
  let best = -1;
  let bestAfter = 0;
  for (const id of ids) {
    const c = cap[id]!;
    if (c <= 0) continue;
    const after = loads[id]! + gbps / c;
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
function localSearch(problem: Problem, config: TrafficPlannerConfig, solution: Solution, share: Float64Array): void {
  const { loads } = solution;
  const search = new Search(problem, config, solution, share);
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
 * QPs by link, for the local search: every link holds a list of the QPs crossing it and every QP its position in
 * its up and down link's list, so a move is O(1) (swap-remove). Lists are built a leaf side at a time (the up
 * links of one leaf, from the connections leaving it; or the down links, from those arriving), when the search
 * first reads or changes one of its links: a re-plan touches a few leaves, and at 4,096 GPUs indexing all 2
 * million QPs up front cost more than the whole re-plan's search.
 */
/** Free entries each listed link starts with, for QPs that move onto it. */
const LIST_SLACK = 16;

class QpIndex {
  /** Connection index of every key (set when a list holding it is built; the search only meets listed keys). */
  readonly conn: Int32Array;
  /**
   * Per listed link, its QPs in list[0 … length − 1] and room to grow: typed arrays, one buffer per leaf side, so
   * listing a side allocates no garbage-collected objects (a busy re-plan lists 4 million QPs, and JS arrays of
   * them kept the young-generation collector copying them).
   */
  private readonly lists: (Int32Array | undefined)[];
  private readonly lengths: Int32Array;
  /** pos[2·key] in its up link's list, pos[2·key + 1] in its down link's (for listed links). */
  private readonly pos: Int32Array;
  /** Per link, bumped whenever its list changes: what was derived from a list stays valid while this holds. */
  readonly version: Int32Array;
  /** Scratch for listSide(), all 0 between calls. */
  private readonly sizes: Int32Array;

  constructor(
    private readonly problem: Problem,
    private readonly paths: Solution,
  ) {
    const links = problem.fabric.capacityGbps.length;
    this.conn = new Int32Array(paths.up.length);
    this.lists = new Array<Int32Array | undefined>(links).fill(undefined);
    this.lengths = new Int32Array(links);
    this.pos = new Int32Array(2 * paths.up.length);
    this.version = new Int32Array(links);
    this.sizes = new Int32Array(links);
  }

  /** The QPs on `link` (a view: valid until the next move). */
  on(link: number): Int32Array {
    return this.list(link).subarray(0, this.lengths[link]);
  }

  /**
   * Moves `key` in the lists already built; the paths are the truth, so a side listed later finds it where it is
   * now (a move lists nothing: it reads no list).
   */
  move(key: number, up: number, down: number): void {
    this.remove(key, this.paths.up[key]!, 0);
    this.remove(key, this.paths.down[key]!, 1);
    this.paths.up[key] = up;
    this.paths.down[key] = down;
    this.paths.unchanged[this.conn[key]!] = 0;
    this.version[up]!++;
    this.version[down]!++;
    if (this.lists[up] !== undefined) this.pos[2 * key] = this.append(up, key);
    if (this.lists[down] !== undefined) this.pos[2 * key + 1] = this.append(down, key);
  }

  /** Appends `key` to the listed `link` (growing it when full); its position. */
  private append(link: number, key: number): number {
    let list = this.lists[link]!;
    const n = this.lengths[link]!;
    if (n === list.length) {
      const grown = new Int32Array(Math.max(LIST_SLACK, 2 * n));
      grown.set(list);
      this.lists[link] = list = grown;
    }
    list[n] = key;
    this.lengths[link] = n + 1;
    return n;
  }

  private list(link: number): Int32Array {
    const listed = this.lists[link];
    if (listed !== undefined) return listed;
    const { linkUp, linkLeaf } = this.problem;
    this.listSide(linkLeaf[link]!, linkUp[link] === 1);
    return this.lists[link]!;
  }

  /** Lists every up link of `leaf` (or every down link), from the QPs of the connections leaving it (arriving). */
  private listSide(leaf: number, up: boolean): void {
    const { fabric, fromLeaf, toLeaf } = this.problem;
    const { first } = this.paths;
    const onLink = up ? this.paths.up : this.paths.down;
    const end = up ? 0 : 1;
    const conns = up ? fromLeaf[leaf]! : toLeaf[leaf]!;
    // Sized first (a count per link, then filled in place): growing 32 lists by push, 16,000 QPs a side and every
    // side of the fabric in a busy re-plan, cost more than the two passes.
    const { sizes, lists, pos, conn } = this;
    for (const i of conns) for (let key = first[i]!; key < first[i + 1]!; key++) sizes[onLink[key]!]!++;
    let total = 0;
    for (let s = 0; s < fabric.spines.length; s++)
      for (const link of up ? fabric.up[leaf]![s]! : fabric.down[s]![leaf]!) total += sizes[link]! + LIST_SLACK;
    const buffer = new Int32Array(total);
    let at = 0;
    for (let s = 0; s < fabric.spines.length; s++) {
      for (const link of up ? fabric.up[leaf]![s]! : fabric.down[s]![leaf]!) {
        this.lists[link] = buffer.subarray(at, (at += sizes[link]! + LIST_SLACK));
        this.lengths[link] = sizes[link]!;
        sizes[link] = 0;
      }
    }
    // Run by run: a connection's QPs on one path are mostly consecutive keys (a doubled QP's halves are).
    for (const i of conns) {
      const last = first[i + 1]!;
      conn.fill(i, first[i]!, last);
      for (let key = first[i]!; key < last;) {
        const link = onLink[key]!;
        const list = lists[link]!;
        let n = sizes[link]!;
        do {
          pos[2 * key + end] = n;
          list[n++] = key++;
        } while (key < last && onLink[key] === link);
        sizes[link] = n;
      }
    }
    for (let s = 0; s < fabric.spines.length; s++)
      for (const link of up ? fabric.up[leaf]![s]! : fabric.down[s]![leaf]!) sizes[link] = 0;
  }

  private remove(key: number, link: number, end: 0 | 1): void {
    this.version[link]!++;
    const list = this.lists[link];
    if (list === undefined) return;
    const at = this.pos[2 * key + end]!;
    const n = --this.lengths[link]!;
    const last = list[n]!;
    if (last === key) return;
    list[at] = last;
    // `last` crosses `link` as its up link or its down link; links are one or the other, never both.
    this.pos[2 * last + (this.paths.up[last] === link ? 0 : 1)] = at;
  }
}

class Search {
  moves = 0;
  private readonly index: QpIndex;
  private readonly up: Int32Array;
  private readonly down: Int32Array;
  private readonly loads: Float64Array;
  private readonly cap: Float64Array;
  /** Scratch for bestPath: one for a QP's own move, one for the QP a chain moves away first. */
  private readonly choice = newChoice();
  private readonly away = newChoice();
  /**
   * distinct() per link while its list is unchanged: a chain scans a blocking link's QPs for every QP it tries to
   * place, and the same few blockers come back (15 million QP visits in one 4,096-GPU re-plan before this cache).
   */
  private readonly distinctCache = new Map<number, { version: number; keys: number[] }>();
  private readonly first: Int32Array;
  /**
   * Per leaf, bumped whenever a QP moves onto or off one of its up links (upVersion) or down links: a QP's best
   * path reads only its source leaf's up links and its destination leaf's down links.
   */
  private readonly upVersion: Int32Array;
  private readonly downVersion: Int32Array;
  /**
   * bestFor() per QP while its path and both leaves' versions hold: a chain tries the same QPs on a blocking link
   * for every QP it places, and between two moves their best paths cannot change (81% of the calls in a
   * 4,096-GPU scattered re-plan). A chain's trial moves are undone before the next call, so they do not count.
   */
  private readonly bestCache = new Map<number, CachedBest>();
  /** movableOff() per blocking link, valid while `commits` holds. */
  private readonly movable = new Map<number, Movable>();
  /** Per link, the connection run of distinctUncached() that last met it. */
  private readonly stamp: Int32Array;
  private stampNow = 0;
  /** Per link, groupsOn()'s group of the current connection whose other link it is (valid where stamped). */
  private readonly groupAt: Int32Array;
  /** QPs moved so far (chain trial moves, undone, do not count). */
  private commits = 0;

  constructor(
    private readonly problem: Problem,
    private readonly config: TrafficPlannerConfig,
    solution: Solution,
    private readonly shares: Float64Array,
  ) {
    this.up = solution.up;
    this.down = solution.down;
    this.first = solution.first;
    this.loads = solution.loads;
    this.cap = problem.fabric.capacityGbps;
    this.index = new QpIndex(problem, solution);
    this.upVersion = new Int32Array(problem.fabric.leaves.length);
    this.downVersion = new Int32Array(problem.fabric.leaves.length);
    this.stamp = new Int32Array(this.loads.length);
    this.groupAt = new Int32Array(this.loads.length);
  }

  /**
   * Moves QPs off `link`, one at a time, while it stays at `max` and some QP (or chain) can leave without anything
   * else reaching `max`; true when at least one moved. Each step tries the lowest key of every (connection, path)
   * group on the link, in key order. The first step's keys are distinct(link), kept while the link's list is
   * unchanged: every round drains every hot link again, and most of them are stuck, so most drains are that one
   * step. After a move the link's groups are built once: while the link is drained, QPs only leave it (every move's
   * target stays below `max`, and `link` is at it), so a group's lowest key still on the link is found by skipping
   * forward instead of rescanning the link's list (about 500 QPs at 4,096 GPUs) after every move.
   */
  drain(link: number, max: number): boolean {
    const eps = this.config.epsilon;
    if (this.loads[link]! < max - eps || this.moves >= this.config.maxMovesPerRound) return false;
    if (!this.moveOne(this.distinct(link), link, max)) return false;
    const groups = this.groupsOn(link);
    const next = new Int32Array(groups.length);
    while (this.loads[link]! >= max - eps && this.moves < this.config.maxMovesPerRound) {
      const keys: number[] = [];
      for (const [g, members] of groups.entries()) {
        let i = next[g]!;
        while (i < members.length && !this.crosses(members[i]!, link)) i++;
        next[g] = i;
        if (i < members.length) keys.push(members[i]!);
      }
      keys.sort((a, b) => a - b);
      if (!this.moveOne(keys, link, max)) break;
    }
    return true;
  }

  /** Moves one of `keys` (QPs on `link`) off it, directly or by a chain; false when none can go. */
  private moveOne(keys: readonly number[], link: number, max: number): boolean {
    for (const key of keys) if (this.tryMove(key, max)) return true;
    for (const key of keys) if (this.tryChain(key, link, max)) return true;
    return false;
  }

  private crosses(key: number, link: number): boolean {
    return this.up[key] === link || this.down[key] === link;
  }

  /** The QP's link other than `link` (one of its two): with the connection, it names the QP's path. */
  private other(key: number, link: number): number {
    return this.up[key] === link ? this.down[key]! : this.up[key]!;
  }

  /** The QPs on `link` by (connection, path), each group's keys ascending. */
  private groupsOn(link: number): number[][] {
    const groups: number[][] = [];
    // In key order, so every group's members come out ascending; a connection's keys are consecutive, so its groups
    // are told apart by their other link alone (stamped as in distinctUncached), without a Map.
    let conn = -1;
    for (const key of this.index.on(link).slice().sort()) {
      if (this.index.conn[key] !== conn) {
        conn = this.index.conn[key]!;
        this.stampNow++;
      }
      const other = this.other(key, link);
      if (this.stamp[other] !== this.stampNow) {
        this.stamp[other] = this.stampNow;
        this.groupAt[other] = groups.push([key]) - 1;
      } else groups[this.groupAt[other]!]!.push(key);
    }
    return groups;
  }

  /**
   * One QP per (connection, path), lowest key first: QPs of one connection on one path are interchangeable, so when
   * one cannot move none can. With up to 128 QPs per connection this keeps a stuck link's scan short.
   */
  private distinct(link: number): readonly number[] {
    const cached = this.distinctCache.get(link);
    if (cached !== undefined && cached.version === this.index.version[link]) return cached.keys;
    const keys = this.distinctUncached(link);
    this.distinctCache.set(link, { version: this.index.version[link]!, keys });
    return keys;
  }

  private distinctUncached(link: number): number[] {
    // Every QP here crosses `link`, so (connection, its other link) names its path. In key order a connection's
    // QPs are consecutive (its keys are), so a stamp per other link, renewed at each connection, finds each
    // group's lowest key, and the result comes out ascending: no Map, no second sort (this runs after every move
    // on a link, thousands of times a re-plan).
    const keys = this.index.on(link).slice().sort();
    const out: number[] = [];
    let conn = -1;
    for (const key of keys) {
      if (this.index.conn[key] !== conn) {
        conn = this.index.conn[key]!;
        this.stampNow++;
      }
      const other = this.other(key, link);
      if (this.stamp[other] === this.stampNow) continue;
      this.stamp[other] = this.stampNow;
      out.push(key);
    }
    return out;
  }

  private share(key: number): number {
    return this.shares[this.index.conn[key]!]!;
  }

  private place(key: number, up: number, down: number): void {
    this.shiftLoad(key, this.up[key]!, this.down[key]!, up, down);
    this.commit(key, up, down);
  }

  /** Moves `key` to (up, down) in the index, its load already shifted. */
  private commit(key: number, up: number, down: number): void {
    const { linkLeaf } = this.problem;
    const fromUp = this.up[key]!;
    const fromDown = this.down[key]!;
    this.upVersion[linkLeaf[fromUp]!]!++;
    this.downVersion[linkLeaf[fromDown]!]!++;
    this.upVersion[linkLeaf[up]!]!++;
    this.downVersion[linkLeaf[down]!]!++;
    this.commits++;
    // distinct() of the four links, where still current, is updated in place rather than rebuilt: a move changes
    // at most one group on each, and rebuilding (sorting the link's 500 QPs) after every move was a sixth of a
    // 4,096-GPU scattered re-plan.
    const links = [fromUp, fromDown, up, down];
    const current = links.map((link) => {
      const cached = this.distinctCache.get(link);
      return cached !== undefined && cached.version === this.index.version[link] ? cached : undefined;
    });
    this.index.move(key, up, down);
    const conn = this.index.conn[key]!;
    if (current[0] !== undefined) this.distinctLeft(current[0].keys, fromUp, key, conn, fromDown);
    if (current[1] !== undefined) this.distinctLeft(current[1].keys, fromDown, key, conn, fromUp);
    if (current[2] !== undefined) this.distinctJoined(current[2].keys, key, conn, up, down);
    if (current[3] !== undefined) this.distinctJoined(current[3].keys, key, conn, down, up);
    for (const [n, cached] of current.entries())
      if (cached !== undefined) cached.version = this.index.version[links[n]!]!;
  }

  /** `key` (of connection `conn`, on path `link` + `other`) left `link`: its group's next lowest key replaces it. */
  private distinctLeft(keys: number[], link: number, key: number, conn: number, other: number): void {
    const at = lowerBound(keys, key);
    if (keys[at] !== key) return;
    keys.splice(at, 1);
    let next = -1;
    for (const k of this.index.on(link))
      if (this.index.conn[k] === conn && this.other(k, link) === other && (next < 0 || k < next)) next = k;
    if (next >= 0) keys.splice(lowerBound(keys, next), 0, next);
  }

  /** `key` (of connection `conn`) joined `link` with `other` as its other link: it may be its group's lowest. */
  private distinctJoined(keys: number[], key: number, conn: number, link: number, other: number): void {
    // The connection's keys are first[conn] … first[conn + 1] − 1, so its groups sit together in `keys`.
    for (let i = lowerBound(keys, this.first[conn]!); i < keys.length && keys[i]! < this.first[conn + 1]!; i++) {
      if (this.other(keys[i]!, link) !== other) continue;
      if (keys[i]! < key) return;
      keys.splice(i, 1);
      break;
    }
    keys.splice(lowerBound(keys, key), 0, key);
  }

  private shiftLoad(key: number, fromUp: number, fromDown: number, toUp: number, toDown: number): void {
    const share = this.share(key);
    removeLoad(this.cap, this.loads, fromUp, fromDown, share);
    addLoad(this.cap, this.loads, toUp, toDown, share);
  }

  /** The best path for `key` with its own load taken off, into `out`; the load is put back. */
  private bestFor(key: number, out: Choice): boolean {
    const up = this.up[key]!;
    const down = this.down[key]!;
    const conn = this.index.conn[key]!;
    const { src, dst } = this.problem.conns[conn]!;
    const upVersion = this.upVersion[src]!;
    const downVersion = this.downVersion[dst]!;
    let cached = this.bestCache.get(key);
    if (
      cached !== undefined &&
      cached.up === up &&
      cached.down === down &&
      cached.upVersion === upVersion &&
      cached.downVersion === downVersion
    ) {
      out.up = cached.best.up;
      out.down = cached.best.down;
      out.cost = cached.best.cost;
      return cached.found;
    }
    const share = this.share(key);
    removeLoad(this.cap, this.loads, up, down, share);
    // With its own load removed, the current path would come back at the maximum: only a real move passes.
    const found = bestPath(this.problem, conn, share, this.loads, out);
    addLoad(this.cap, this.loads, up, down, share);
    if (cached === undefined)
      this.bestCache.set(key, (cached = { up, down, upVersion, downVersion, found, best: newChoice() }));
    Object.assign(cached, { up, down, upVersion, downVersion, found });
    cached.best.up = out.up;
    cached.best.down = out.down;
    cached.best.cost = out.cost;
    return found;
  }

  private tryMove(key: number, max: number): boolean {
    const best = this.choice;
    if (!this.bestFor(key, best) || best.cost >= max - this.config.epsilon) return false;
    this.place(key, best.up, best.down);
    this.moves++;
    return true;
  }

  /**
   * For each spine, the QP's best path there is blocked by at most one link at the maximum: move one other QP off
   * that link (to a path below the maximum), then this QP onto the freed path; undone when it does not work.
   */
  private tryChain(key: number, hotLink: number, max: number): boolean {
    const { fabric } = this.problem;
    const { cap, loads } = this;
    const { src, dst, spines } = this.problem.conns[this.index.conn[key]!]!;
    const share = this.share(key);
    const eps = this.config.epsilon;
    for (const s of spines) {
      const up = leastLoaded(cap, fabric.up[src]![s]!, share, loads);
      const down = leastLoaded(cap, fabric.down[s]![dst]!, share, loads);
      if (up < 0 || down < 0 || up === hotLink || down === hotLink) continue;
      const upBlocked = loads[up]! + share / cap[up]! >= max - eps;
      const downBlocked = loads[down]! + share / cap[down]! >= max - eps;
      if (upBlocked === downBlocked) continue;
      const blocker = upBlocked ? up : down;
      const movable = this.movableOff(blocker, hotLink, max);
      for (let n = 0; n < movable.keys.length; n++) {
        const other = movable.keys[n]!;
        if (other === key) continue;
        const wasUp = this.up[other]!;
        const wasDown = this.down[other]!;
        const awayUp = movable.ups[n]!;
        const awayDown = movable.downs[n]!;
        // Loads only, not the index: a chain that fails leaves the links' QP lists (and their cached groups) as
        // they were. The load updates are the same as a move and its undo, so the numbers are the same too.
        this.shiftLoad(other, wasUp, wasDown, awayUp, awayDown);
        const cost = Math.max(loads[up]! + share / cap[up]!, loads[down]! + share / cap[down]!);
        if (cost < max - eps) {
          this.commit(other, awayUp, awayDown);
          this.place(key, up, down);
          this.moves += 2;
          return true;
        }
        this.shiftLoad(other, awayUp, awayDown, wasUp, wasDown);
      }
    }
    return false;
  }

  /**
   * The QPs of distinct(blocker) that a chain could move first, in that order, with the path each would take: a
   * best path below `max` that avoids `hotLink` and the blocker itself (a QP that only changes its other link
   * leaves the blocker's load as it was). Kept until the next move (or another hot link or maximum): every QP a
   * stuck drain tries to place meets the same blockers, and between moves their QPs' best paths stay the same.
   */
  private movableOff(blocker: number, hotLink: number, max: number): Movable {
    const cached = this.movable.get(blocker);
    if (cached !== undefined && cached.commits === this.commits && cached.hotLink === hotLink && cached.max === max)
      return cached;
    const eps = this.config.epsilon;
    const away = this.away;
    const movable: Movable = { commits: this.commits, hotLink, max, keys: [], ups: [], downs: [] };
    for (const other of this.distinct(blocker)) {
      if (!this.bestFor(other, away) || away.cost >= max - eps) continue;
      if (away.up === hotLink || away.down === hotLink || away.up === blocker || away.down === blocker) continue;
      movable.keys.push(other);
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
  keys: number[];
  ups: number[];
  downs: number[];
}

interface CachedBest {
  /** The QP's path and its leaves' versions when it was computed. */
  up: number;
  down: number;
  upVersion: number;
  downVersion: number;
  found: boolean;
  best: Choice;
}

/** The first index of the ascending `values` whose value is at least `x`. */
function lowerBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
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
