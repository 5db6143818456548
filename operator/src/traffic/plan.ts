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
  let best = solve(problem, qps, config, warmStart(input.previous, problem.fabric));
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
      const trial = solve(problem, tryQps, config, best.paths);
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
  /** Inter-leaf routable connections. */
  conns: { c: Connection; src: number; dst: number; spines: number[] }[];
  jobs: string[];
  intraLeaf: number;
  unroutable: { id: string; reason: string }[];
  leafBound: number;
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
    const spines = liveSpines(fabric, src, dst);
    if (spines.length === 0) {
      unroutable.push({
        id: c.id,
        reason: `no spine has a live cable to both ${fabric.leaves[src]} and ${fabric.leaves[dst]}`,
      });
      continue;
    }
    conns.push({ c, src, dst, spines });
  }
  return { fabric, conns, jobs: [...jobs].sort(cmp), intraLeaf, unroutable, leafBound: leafBound(fabric, conns) };
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

/** A QP's placement: spine index and the two link ids. */
interface Placed {
  spine: number;
  up: number;
  down: number;
}

interface Solution {
  /** Per connection id, per QP. */
  paths: Map<string, Placed[]>;
  loads: Float64Array;
  maxLoad: number;
}

/**
 * The planner's own paths (link ids) behind every plan it returned, so a re-plan in the same process starts from
 * them without converting the plan's names back QP by QP. Plans read back from elsewhere fall back to the names.
 */
const solvedPaths = new WeakMap<TrafficPlan, { linkNames: readonly string[]; paths: Map<string, Placed[]> }>();

function warmStart(
  previous: TrafficPlan | undefined,
  fabric: Fabric,
): Map<string, Placed[]> | Map<string, QpPath[]> | undefined {
  if (previous === undefined) return undefined;
  const solved = solvedPaths.get(previous);
  // Link ids only carry over between fabrics of the same cables (a failure changes capacities, not ids).
  if (solved !== undefined && sameLinks(solved.linkNames, fabric.linkNames)) return solved.paths;
  return new Map(previous.connections.map((p) => [p.id, p.paths]));
}

function sameLinks(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Steps 1-2 for fixed QP counts. `seed` paths (from a previous plan or round) are kept QP by QP where still live;
 * a seed with fewer QPs than `q` (the job's QPs just doubled) hands each path to q ÷ seed QPs, which leaves every
 * load as it was, so the local search only has to move the halves that relieve the hottest links. Only QPs without
 * a live seed path go through the greedy step: after a cable fails, just the QPs that crossed it.
 */
function solve(
  problem: Problem,
  qps: ReadonlyMap<string, number>,
  config: TrafficPlannerConfig,
  seed?: Map<string, Placed[]> | Map<string, QpPath[]>,
): Solution {
  const { fabric } = problem;
  const loads = new Float64Array(fabric.capacityGbps.length);
  const paths = new Map<string, (Placed | null)[]>();
  const pending: { index: number; share: number }[] = [];
  for (const [index, { c }] of problem.conns.entries()) {
    const q = qps.get(c.job)!;
    const share = c.demandGbps / q;
    const kept = seedPaths(problem, index, seed?.get(c.id), q);
    paths.set(c.id, kept);
    for (const p of kept) if (p !== null) addLoad(fabric, loads, p, share);
    for (let k = 0; k < q; k++) if (kept[k] === null) pending.push({ index, share });
  }
  // LPT order: biggest QPs first; ties by connection order (ids, sorted). A connection's missing QPs fill its
  // first free slots in order.
  pending.sort((a, b) => b.share - a.share || a.index - b.index);
  for (const { index, share } of pending) {
    const placed = bestPath(problem, index, share, loads)!;
    addLoad(fabric, loads, placed.path, share);
    const own = paths.get(problem.conns[index]!.c.id)!;
    own[own.indexOf(null)] = placed.path;
  }
  // Every slot is filled now: a routable connection always has a live path.
  const full = paths as Map<string, Placed[]>;
  localSearch(problem, qps, config, full, loads);
  return { paths: full, loads, maxLoad: maxOf(loads) };
}

/** The seed's path for each of the connection's q QPs, or null where it has none or its cable is down. */
function seedPaths(
  problem: Problem,
  index: number,
  seed: readonly Placed[] | readonly QpPath[] | undefined,
  q: number,
): (Placed | null)[] {
  const out = new Array<Placed | null>(q).fill(null);
  if (seed === undefined || seed.length === 0 || seed.length > q || q % seed.length !== 0) return out;
  const { fabric } = problem;
  const { src, dst } = problem.conns[index]!;
  const copies = q / seed.length;
  let lastName: QpPath | undefined;
  let lastPlaced: Placed | null = null;
  for (const [i, p] of seed.entries()) {
    let placed: Placed | null = null;
    if ("up" in p) placed = p;
    else if (lastName !== undefined && sameQpPath(lastName, p)) placed = lastPlaced;
    else {
      const s = fabric.spines.indexOf(p.spine);
      const up = s < 0 ? undefined : fabric.up[src]![s]![p.uplinkPort];
      const down = s < 0 ? undefined : fabric.down[s]![dst]![p.downlinkPort];
      if (up !== undefined && down !== undefined) placed = { spine: s, up, down };
      lastName = p;
      lastPlaced = placed;
    }
    if (placed !== null && (fabric.capacityGbps[placed.up]! <= 0 || fabric.capacityGbps[placed.down]! <= 0))
      placed = null;
    for (let k = 0; k < copies; k++) out[i * copies + k] = placed;
  }
  return out;
}

function sameQpPath(a: QpPath, b: QpPath): boolean {
  return a.spine === b.spine && a.uplinkPort === b.uplinkPort && a.downlinkPort === b.downlinkPort;
}

function addLoad(fabric: Fabric, loads: Float64Array, p: Placed, gbps: number): void {
  loads[p.up]! += gbps / fabric.capacityGbps[p.up]!;
  loads[p.down]! += gbps / fabric.capacityGbps[p.down]!;
}

function removeLoad(fabric: Fabric, loads: Float64Array, p: Placed, gbps: number): void {
  loads[p.up]! -= gbps / fabric.capacityGbps[p.up]!;
  loads[p.down]! -= gbps / fabric.capacityGbps[p.down]!;
}

/**
 * The path whose worse link is least loaded once `gbps` is added (then the smaller sum, then the lower spine and
 * port). On one spine the best up and down ports are independent: the least loaded live port of each.
 */
function bestPath(
  problem: Problem,
  index: number,
  gbps: number,
  loads: Float64Array,
): { path: Placed; cost: number } | null {
  const { fabric } = problem;
  const { src, dst, spines } = problem.conns[index]!;
  let best: { path: Placed; cost: number; sum: number } | null = null;
  for (const s of spines) {
    const up = leastLoaded(fabric, fabric.up[src]![s]!, gbps, loads);
    const down = leastLoaded(fabric, fabric.down[s]![dst]!, gbps, loads);
    if (up === null || down === null) continue;
    const cost = Math.max(up.after, down.after);
    const sum = up.after + down.after;
    if (best === null || cost < best.cost - 1e-12 || (Math.abs(cost - best.cost) <= 1e-12 && sum < best.sum - 1e-12)) {
      best = { path: { spine: s, up: up.id, down: down.id }, cost, sum };
    }
  }
  return best;
}

function leastLoaded(
  fabric: Fabric,
  ids: readonly number[],
  gbps: number,
  loads: Float64Array,
): { id: number; after: number } | null {
  let best: { id: number; after: number } | null = null;
  for (const id of ids) {
    const cap = fabric.capacityGbps[id]!;
    if (cap <= 0) continue;
    const after = loads[id]! + gbps / cap;
    if (best === null || after < best.after - 1e-12) best = { id, after };
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
  qps: ReadonlyMap<string, number>,
  config: TrafficPlannerConfig,
  paths: Map<string, Placed[]>,
  loads: Float64Array,
): void {
  const search = new Search(problem, qps, config, paths, loads);
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
 * QPs by link, for the local search: QP keys are dense (a connection's QPs are consecutive), every link holds a list
 * of the QPs crossing it and every QP its position in its up and down link's list, so a move is O(1) (swap-remove).
 */
class QpIndex {
  /** Connection index and QP slot of every key. */
  readonly conn: Int32Array;
  readonly slot: Int32Array;
  readonly share: Float64Array;
  /** Per connection index, the QP paths (the same arrays as the solution's). */
  readonly connPaths: Placed[][];
  private readonly lists: number[][];
  /** pos[2·key] in its up link's list, pos[2·key + 1] in its down link's. */
  private readonly pos: Int32Array;
  /** Per link, bumped whenever its list changes: what was derived from a list stays valid while this holds. */
  readonly version: Int32Array;

  constructor(problem: Problem, qps: ReadonlyMap<string, number>, paths: Map<string, Placed[]>, links: number) {
    this.connPaths = problem.conns.map(({ c }) => paths.get(c.id)!);
    const total = this.connPaths.reduce((n, p) => n + p.length, 0);
    this.conn = new Int32Array(total);
    this.slot = new Int32Array(total);
    this.share = new Float64Array(total);
    this.pos = new Int32Array(2 * total);
    this.lists = Array.from({ length: links }, (): number[] => []);
    this.version = new Int32Array(links);
    let key = 0;
    for (const [index, own] of this.connPaths.entries()) {
      const { c } = problem.conns[index]!;
      const share = c.demandGbps / qps.get(c.job)!;
      for (let k = 0; k < own.length; k++, key++) {
        this.conn[key] = index;
        this.slot[key] = k;
        this.share[key] = share;
        this.add(key, own[k]!);
      }
    }
  }

  on(link: number): readonly number[] {
    return this.lists[link]!;
  }

  current(key: number): Placed {
    return this.connPaths[this.conn[key]!]![this.slot[key]!]!;
  }

  move(key: number, to: Placed): void {
    const from = this.current(key);
    this.remove(key, from.up, 0);
    this.remove(key, from.down, 1);
    this.connPaths[this.conn[key]!]![this.slot[key]!] = to;
    this.add(key, to);
  }

  private add(key: number, p: Placed): void {
    this.version[p.up]!++;
    this.version[p.down]!++;
    this.pos[2 * key] = this.lists[p.up]!.push(key) - 1;
    this.pos[2 * key + 1] = this.lists[p.down]!.push(key) - 1;
  }

  private remove(key: number, link: number, end: 0 | 1): void {
    const list = this.lists[link]!;
    this.version[link]!++;
    const at = this.pos[2 * key + end]!;
    const last = list.pop()!;
    if (last === key) return;
    list[at] = last;
    // `last` crosses `link` as its up link or its down link; links are one or the other, never both.
    const lastPath = this.current(last);
    this.pos[2 * last + (lastPath.up === link ? 0 : 1)] = at;
  }
}

class Search {
  moves = 0;
  private readonly index: QpIndex;
  /**
   * distinct() per link while its list is unchanged: a chain scans a blocking link's QPs for every QP it tries to
   * place, and the same few blockers come back (15 million QP visits in one 4,096-GPU re-plan before this cache).
   */
  private readonly distinctCache = new Map<number, { version: number; keys: readonly number[] }>();

  constructor(
    private readonly problem: Problem,
    qps: ReadonlyMap<string, number>,
    private readonly config: TrafficPlannerConfig,
    paths: Map<string, Placed[]>,
    private readonly loads: Float64Array,
  ) {
    this.index = new QpIndex(problem, qps, paths, loads.length);
  }

  /**
   * Moves QPs off `link`, one at a time, while it stays at `max` and some QP (or chain) can leave without anything
   * else reaching `max`; true when at least one moved. Each step tries the groups' lowest keys in key order, as a
   * fresh scan of the link would, but the link's groups are built once: while the link is drained, QPs only leave
   * it (every move's target stays below `max`, and `link` is at it), so a group's lowest key still on the link is
   * found by skipping forward instead of rescanning the link's list (about 500 QPs at 4,096 GPUs) after every move.
   */
  drain(link: number, max: number): boolean {
    const groups = this.groupsOn(link);
    const next = new Int32Array(groups.length);
    let moved = false;
    while (this.loads[link]! >= max - this.config.epsilon && this.moves < this.config.maxMovesPerRound) {
      const keys: number[] = [];
      for (const [g, members] of groups.entries()) {
        let i = next[g]!;
        while (i < members.length && !this.crosses(members[i]!, link)) i++;
        next[g] = i;
        if (i < members.length) keys.push(members[i]!);
      }
      keys.sort((a, b) => a - b);
      if (!this.moveOne(keys, link, max)) break;
      moved = true;
    }
    return moved;
  }

  /** Moves one of `keys` (QPs on `link`) off it, directly or by a chain; false when none can go. */
  private moveOne(keys: readonly number[], link: number, max: number): boolean {
    for (const key of keys) if (this.tryMove(key, max)) return true;
    for (const key of keys) if (this.tryChain(key, link, max)) return true;
    return false;
  }

  private crosses(key: number, link: number): boolean {
    const p = this.current(key);
    return p.up === link || p.down === link;
  }

  /** The QPs on `link` by (connection, path), each group's keys ascending. */
  private groupsOn(link: number): number[][] {
    const links = this.loads.length;
    const groups = new Map<number, number[]>();
    for (const key of this.index.on(link)) {
      const p = this.current(key);
      const group = this.index.conn[key]! * links + (p.up === link ? p.down : p.up);
      const members = groups.get(group);
      if (members === undefined) groups.set(group, [key]);
      else members.push(key);
    }
    return [...groups.values()].map((members) => members.sort((a, b) => a - b));
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
    const keys = this.index.on(link);
    const links = this.loads.length;
    const seen = new Map<number, number>();
    for (const key of keys) {
      // Every QP here crosses `link`, so (connection, its other link) names its path: a key below connections ×
      // links, where (connection, up, down) needed connections × links², past the small integers a Map hashes
      // without boxing.
      const p = this.current(key);
      const group = this.index.conn[key]! * links + (p.up === link ? p.down : p.up);
      const had = seen.get(group);
      if (had === undefined || key < had) seen.set(group, key);
    }
    return [...seen.values()].sort((a, b) => a - b);
  }

  private share(key: number): number {
    return this.index.share[key]!;
  }

  private connOf(key: number): number {
    return this.index.conn[key]!;
  }

  private current(key: number): Placed {
    return this.index.current(key);
  }

  private place(key: number, to: Placed): void {
    this.shiftLoad(key, this.current(key), to);
    this.index.move(key, to);
  }

  private shiftLoad(key: number, from: Placed, to: Placed): void {
    const share = this.share(key);
    removeLoad(this.problem.fabric, this.loads, from, share);
    addLoad(this.problem.fabric, this.loads, to, share);
  }

  /** The best path for `key` with its own load taken off, and that path's cost; the load is put back. */
  private bestFor(key: number): { path: Placed; cost: number } | null {
    const from = this.current(key);
    const share = this.share(key);
    removeLoad(this.problem.fabric, this.loads, from, share);
    // With its own load removed, the current path would come back at the maximum: only a real move passes.
    const best = bestPath(this.problem, this.connOf(key), share, this.loads);
    addLoad(this.problem.fabric, this.loads, from, share);
    return best;
  }

  private tryMove(key: number, max: number): boolean {
    const best = this.bestFor(key);
    if (best === null || best.cost >= max - this.config.epsilon) return false;
    this.place(key, best.path);
    this.moves++;
    return true;
  }

  /**
   * For each spine, the QP's best path there is blocked by at most one link at the maximum: move one other QP off
   * that link (to a path below the maximum), then this QP onto the freed path; undone when it does not work.
   */
  private tryChain(key: number, hotLink: number, max: number): boolean {
    const { fabric } = this.problem;
    const { src, dst, spines } = this.problem.conns[this.connOf(key)]!;
    const share = this.share(key);
    const eps = this.config.epsilon;
    for (const s of spines) {
      const up = leastLoaded(fabric, fabric.up[src]![s]!, share, this.loads);
      const down = leastLoaded(fabric, fabric.down[s]![dst]!, share, this.loads);
      if (up === null || down === null || up.id === hotLink || down.id === hotLink) continue;
      const blocked = [up, down].filter((x) => x.after >= max - eps);
      if (blocked.length !== 1) continue;
      const blocker = blocked[0]!.id;
      for (const other of this.distinct(blocker)) {
        if (other === key) continue;
        const was = this.current(other);
        const away = this.bestFor(other);
        if (away === null || away.cost >= max - eps || away.path.up === hotLink || away.path.down === hotLink) continue;
        // Loads only, not the index: a chain that fails leaves the links' QP lists (and their cached groups) as
        // they were. The load updates are the same as a move and its undo, so the numbers are the same too.
        this.shiftLoad(other, was, away.path);
        const target: Placed = { spine: s, up: up.id, down: down.id };
        const cost = Math.max(
          this.loads[up.id]! + share / fabric.capacityGbps[up.id]!,
          this.loads[down.id]! + share / fabric.capacityGbps[down.id]!,
        );
        if (cost < max - eps) {
          this.index.move(other, away.path);
          this.place(key, target);
          this.moves += 2;
          return true;
        }
        this.shiftLoad(other, away.path, was);
      }
    }
    return false;
  }
}

/** Jobs with QPs on the links at the maximum, most such QPs first (then by name). */
function jobsOnHotLinks(problem: Problem, solution: Solution, config: TrafficPlannerConfig): string[] {
  const counts = new Map<string, number>();
  for (const { c } of problem.conns) {
    for (const p of solution.paths.get(c.id)!) {
      const hot =
        solution.loads[p.up]! >= solution.maxLoad - config.epsilon ||
        solution.loads[p.down]! >= solution.maxLoad - config.epsilon;
      if (hot) counts.set(c.job, (counts.get(c.job) ?? 0) + 1);
    }
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0])).map(([job]) => job);
}

function toPlan(problem: Problem, solution: Solution, qps: ReadonlyMap<string, number>): TrafficPlan {
  const { fabric } = problem;
  const portOf = (ids: readonly number[], id: number): number => ids.indexOf(id);
  // QPs that share a path (a doubled job's halves) share its object: a plan of 128-QP connections stays small.
  const named = new Map<Placed, QpPath>();
  const connections = problem.conns.map(({ c, src, dst }): PlannedConnection => ({
    id: c.id,
    job: c.job,
    srcLeaf: fabric.leaves[src]!,
    dstLeaf: fabric.leaves[dst]!,
    paths: solution.paths.get(c.id)!.map((p) => {
      let path = named.get(p);
      if (path === undefined) {
        path = Object.freeze({
          spine: fabric.spines[p.spine]!,
          uplinkPort: portOf(fabric.up[src]![p.spine]!, p.up),
          downlinkPort: portOf(fabric.down[p.spine]![dst]!, p.down),
        });
        named.set(p, path);
      }
      return path;
    }),
  }));
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
  solvedPaths.set(plan, { linkNames: fabric.linkNames, paths: solution.paths });
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
