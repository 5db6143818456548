/**
 * Fail-slow tests over a communicator's recent completed collectives (C4 §3.2 "communication slow" and
 * "non-communication slow"), each judged per collective against that same collective's other ranks or connections
 * (the job's own baseline: no global number), then over time with a sign CUSUM (stats.ts):
 * - per-connection transfer time per byte against the median (and MAD) of connections of the same kind (intra-node
 *   or inter-node) -> the connection matrix (matrix.ts) blames a row (sender), column (receiver) or cell (path);
 * - per-rank compute gap (its start of collective k minus its end of collective k-1) against the median gap ->
 *   a rank consistently last to arrive is a compute straggler.
 * A component is blamed once its slowness has persisted: a change-point whose slow run has lasted
 * max(slowPersistMinMs, slowPersistPeriodMultiple periods) with a CUSUM excess of slowMinExcess; or, for an endpoint,
 * one that is slow on most of its connections at once in flapMinEvents collectives over that long, more often than
 * the job's own rate of such coincidences explains (a flapping NIC: independent noise on separate connections rarely
 * coincides, but at thousands of collectives an hour "rarely" happens; flapsBeyondChance).
 */
import type { CommunicatorView } from "../../telemetry/read-model.js";
import type { C4dConfig } from "./config.js";
import { endpointBlame, fmtMs, linkBlame, rankList, verdictsOrAmbiguity, type Candidate } from "./blame.js";
import { cellEnds, ConnectionMatrix } from "./matrix.js";
import type { SequenceSummary } from "./sequences.js";
import { binomialAtLeast, robustSpread, signCusum, median } from "./stats.js";
import type { Topology } from "./topology.js";
import { C4dFaultClass, type C4dAmbiguity, type C4dVerdict } from "./types.js";

export interface SlowContext {
  view: CommunicatorView;
  sequences: readonly SequenceSummary[];
  topology: Topology;
  config: C4dConfig;
  periodMs: number | undefined;
  nowMs: number;
}

type Out = { verdicts: C4dVerdict[]; ambiguous: C4dAmbiguity[] };

export interface FlaggedTransfer {
  cell: number;
  sender: number;
  receiver: number;
  durationUs: number;
  baselineUs: number;
  thresholdUs: number;
}

export interface FlaggedGap {
  gapUs: number;
  medianUs: number;
  thresholdUs: number;
}

/** What one completed collective says, by itself: reusable while its record count is unchanged (memo.ts). */
export interface SequenceAnalysis {
  recordCount: number;
  rows: number[];
  cols: number[];
  links: number[];
  unattributable: number[];
  flagged: FlaggedTransfer[];
  /** Against the previous collective (compute gaps); absent when it is not in the window. */
  gaps?: { prevSequence: number; prevRecordCount: number; flagged: Map<number, FlaggedGap> };
}

/** Where per-collective analyses are kept between calls (or not: a fresh Map each call). */
export type AnalysisCache = Map<number, SequenceAnalysis>;

/** Hits per entity: the window indices where it was slow. */
class Hits {
  readonly byKey = new Map<number, number[]>();
  add(key: number, index: number): void {
    const list = this.byKey.get(key);
    if (list) list.push(index);
    else this.byKey.set(key, [index]);
  }
}

class Buffers {
  values = new Float64Array(1024);
  scratch = new Float64Array(1024);
  ensure(n: number): void {
    if (this.values.length >= n) return;
    this.values = new Float64Array(n * 2);
    this.scratch = new Float64Array(n * 2);
  }
}

const INTRA = 0;
const INTER = 1;

export function detectSlow(ctx: SlowContext, out: Out, cache: AnalysisCache = new Map()): void {
  const { config } = ctx;
  const window = ctx.sequences.filter((s) => !s.waiting).slice(-config.slowWindowSequences);
  const length = window.length;
  if (length < config.slowMinExcess) return;
  const rows = new Hits();
  const cols = new Hits();
  const links = new Hits();
  const unattributable = new Hits();
  const stragglers = new Hits();
  const flaggedTransfers: FlaggedTransfer[][] = [];
  const flaggedGaps = new Map<number, Map<number, FlaggedGap>>(); // index -> rank -> gap
  const buffers = new Buffers();
  const keep = new Set<number>();
  for (let i = 0; i < length; i++) {
    const seq = window[i]!;
    keep.add(seq.sequence);
    let a = cache.get(seq.sequence);
    if (!a || a.recordCount !== seq.records.size) {
      a = analyseTransfers(seq, ctx, buffers);
      cache.set(seq.sequence, a);
    }
    const prev = i > 0 && window[i - 1]!.sequence === seq.sequence - 1 ? window[i - 1]! : undefined;
    if (prev && (!a.gaps || a.gaps.prevSequence !== prev.sequence || a.gaps.prevRecordCount !== prev.records.size)) {
      a.gaps = {
        prevSequence: prev.sequence,
        prevRecordCount: prev.records.size,
        flagged: analyseGaps(prev, seq, ctx, buffers),
      };
    }
    flaggedTransfers.push(a.flagged);
    for (const e of a.rows) rows.add(e, i);
    for (const e of a.cols) cols.add(e, i);
    for (const key of a.links) links.add(key, i);
    for (const key of a.unattributable) unattributable.add(key, i);
    if (prev && a.gaps && a.gaps.flagged.size > 0) {
      for (const rank of a.gaps.flagged.keys()) stragglers.add(rank, i);
      flaggedGaps.set(i, a.gaps.flagged);
    }
  }
  for (const key of cache.keys()) if (!keep.has(key)) cache.delete(key);
  const persistMs = Math.max(config.slowPersistMinMs, config.slowPersistPeriodMultiple * (ctx.periodMs ?? 0));
  const judge = new Judge(window, persistMs, config);
  matrixVerdicts(ctx, judge, { rows, cols, links, unattributable }, flaggedTransfers, out);
  stragglerVerdicts(ctx, judge, stragglers, flaggedGaps, out);
}

/** Per-connection transfer times per byte against the median of the same kind in this collective; then the matrix. */
function analyseTransfers(seq: SequenceSummary, ctx: SlowContext, buffers: Buffers): SequenceAnalysis {
  const { topology, config } = ctx;
  let count = 0;
  for (const rec of seq.records.values()) count += rec.peers.length;
  buffers.ensure(count);
  const senders = new Int32Array(count);
  const receivers = new Int32Array(count);
  const kinds = new Uint8Array(count);
  const perByte = new Float64Array(count);
  const durations = new Float64Array(count);
  const bytes = new Float64Array(count);
  let n = 0;
  const perKindCount = [0, 0];
  for (const rec of seq.records.values()) {
    if (!topology.has(rec.rank)) continue;
    for (const p of rec.peers) {
      if (!topology.has(p.peerRank) || p.bytes <= 0 || p.endUnixUs <= p.startUnixUs) continue;
      senders[n] = rec.rank;
      receivers[n] = p.peerRank;
      const kind = topology.sameNode(rec.rank, p.peerRank) ? INTRA : INTER;
      kinds[n] = kind;
      durations[n] = p.endUnixUs - p.startUnixUs;
      bytes[n] = p.bytes;
      perByte[n] = durations[n]! / p.bytes;
      perKindCount[kind]!++;
      n++;
    }
  }
  const threshold = [Infinity, Infinity];
  const baseline = [0, 0];
  for (const kind of [INTRA, INTER]) {
    if (perKindCount[kind]! < 3) continue; // no peers to compare with
    let k = 0;
    for (let c = 0; c < n; c++) if (kinds[c] === kind) buffers.values[k++] = perByte[c]!;
    const spread = robustSpread(buffers.values, k, buffers.scratch);
    baseline[kind] = spread.median;
    threshold[kind] = Math.max(config.slowFactor * spread.median, spread.median + config.slowMinRobustZ * spread.sigma);
  }
  const flagged: FlaggedTransfer[] = [];
  for (let c = 0; c < n; c++) {
    const kind = kinds[c]!;
    if (perByte[c]! <= threshold[kind]!) continue;
    const s = topology.senderEndpoint(senders[c]!, receivers[c]!);
    const d = topology.receiverEndpoint(senders[c]!, receivers[c]!);
    flagged.push({
      cell: s * topology.endpointCount + d,
      sender: senders[c]!,
      receiver: receivers[c]!,
      durationUs: durations[c]!,
      baselineUs: baseline[kind]! * bytes[c]!,
      thresholdUs: threshold[kind]! * bytes[c]!,
    });
  }
  const analysis: SequenceAnalysis = {
    recordCount: seq.records.size,
    rows: [],
    cols: [],
    links: [],
    unattributable: [],
    flagged,
  };
  if (flagged.length === 0) return analysis; // nothing to attribute: skip building the matrix
  const matrix = new ConnectionMatrix(topology);
  const isFlagged = new Set(flagged.map((f) => f.sender * topology.ranks + f.receiver));
  for (let c = 0; c < n; c++)
    matrix.add(senders[c]!, receivers[c]!, isFlagged.has(senders[c]! * topology.ranks + receivers[c]!));
  const a = matrix.attribute(config);
  return { ...analysis, rows: a.rows, cols: a.cols, links: a.links, unattributable: a.unattributable };
}

/** Per-rank compute gap (start of this collective minus its end of the previous one) against the median gap. */
function analyseGaps(
  prev: SequenceSummary,
  seq: SequenceSummary,
  ctx: SlowContext,
  buffers: Buffers,
): Map<number, FlaggedGap> {
  const { topology, config } = ctx;
  const flagged = new Map<number, FlaggedGap>();
  buffers.ensure(seq.records.size);
  const ranks = new Int32Array(seq.records.size);
  const gaps = new Float64Array(seq.records.size);
  let n = 0;
  for (const rec of seq.records.values()) {
    const before = prev.records.get(rec.rank);
    if (!before || !topology.has(rec.rank) || before.endUnixUs === 0) continue;
    ranks[n] = rec.rank;
    gaps[n] = rec.startUnixUs - before.endUnixUs;
    n++;
  }
  if (n < 3) return flagged;
  buffers.values.set(gaps.subarray(0, n));
  const spread = robustSpread(buffers.values, n, buffers.scratch);
  if (spread.median < config.minComputeGapMs * 1000) return flagged;
  const thresholdUs = Math.max(config.slowFactor * spread.median, spread.median + config.slowMinRobustZ * spread.sigma);
  for (let k = 0; k < n; k++)
    if (gaps[k]! > thresholdUs) flagged.set(ranks[k]!, { gapUs: gaps[k]!, medianUs: spread.median, thresholdUs });
  return flagged;
}

interface Judgement {
  onset: number;
  last: number;
  slowSequences: number;
  slowForMs: number;
  how: "persistent" | "intermittent";
}

class Judge {
  constructor(
    private readonly window: readonly SequenceSummary[],
    readonly persistMs: number,
    private readonly config: C4dConfig,
  ) {}

  private startMs(i: number): number {
    return this.window[i]!.firstStartUs / 1000;
  }

  /** Whether slowness at `hits` (ascending window indices) has persisted enough to act on. */
  judge(hits: readonly number[], intermittentAllowed: boolean): Judgement | undefined {
    const length = this.window.length;
    const newestMs = this.startMs(length - 1);
    const cp = signCusum(hits, length);
    if (cp && cp.excess >= this.config.slowMinExcess && newestMs - this.startMs(cp.onset) >= this.persistMs) {
      return {
        onset: cp.onset,
        last: hits[hits.length - 1]!,
        slowSequences: hits.filter((h) => h >= cp.onset).length,
        slowForMs: newestMs - this.startMs(cp.onset),
        how: "persistent",
      };
    }
    if (
      intermittentAllowed &&
      hits.length >= this.config.flapMinEvents &&
      newestMs - this.startMs(hits[0]!) >= this.persistMs
    ) {
      return {
        onset: hits[0]!,
        last: hits[hits.length - 1]!,
        slowSequences: hits.length,
        slowForMs: newestMs - this.startMs(hits[0]!),
        how: "intermittent",
      };
    }
    return undefined;
  }

  sequence(i: number): SequenceSummary {
    return this.window[i]!;
  }

  /** Mean start-to-start time of the window's collectives, for when the communicator's period is not known. */
  meanPeriodMs(): number {
    const n = this.window.length;
    return n < 2 ? Infinity : (this.startMs(n - 1) - this.startMs(0)) / (n - 1);
  }

  get length(): number {
    return this.window.length;
  }
}

function judgementTimes(j: Judgement, judge: Judge, transfers: readonly FlaggedTransfer[]): Record<string, number> {
  const t: Record<string, number> = {
    slowForMs: Math.round(j.slowForMs),
    persistRequiredMs: Math.round(judge.persistMs),
    slowSequences: j.slowSequences,
    windowSequences: judge.length,
  };
  if (transfers.length > 0) {
    t.observedTransferMs = Number((median(transfers.map((f) => f.durationUs)) / 1000).toFixed(3));
    t.baselineTransferMs = Number((median(transfers.map((f) => f.baselineUs)) / 1000).toFixed(3));
    t.thresholdTransferMs = Number((median(transfers.map((f) => f.thresholdUs)) / 1000).toFixed(3));
  }
  return t;
}

function slowText(j: Judgement, judge: Judge): string {
  const seq = judge.sequence(j.onset);
  return j.how === "persistent"
    ? `since ${seq.collective} #${seq.sequence} (${j.slowSequences} of the ${judge.length - j.onset} collectives since, for ${fmtMs(j.slowForMs)} ms)`
    : `intermittently: in ${j.slowSequences} collectives since ${seq.collective} #${seq.sequence} (${fmtMs(j.slowForMs)} ms), each time on most of its connections at once`;
}

/**
 * The chance of a coincidental flap one window may carry: the flap test runs again with every new collective, so
 * the job's false-alarm budget per hour is spread over its collectives per hour (its own period).
 */
function flapChanceBudget(config: C4dConfig, periodMs: number): number {
  const collectivesPerHour = 3_600_000 / Math.max(periodMs, 1e-3);
  return config.flapFalseAlarmsPerHour / collectivesPerHour;
}

/**
 * Whether an endpoint's slow-at-once collectives are too many to be coincidence. Noisy connections of a healthy
 * job now and then line up on one endpoint; how often is the job's own rate, estimated from every other endpoint's
 * count in the window (with half an event added, so a quiet window is not taken as proof of no noise). An endpoint
 * flaps only if chance at that rate gives its count to one of the job's endpoints with probability <= `chance`
 * (a fixed count of 4 alone blamed a healthy GPU in 1 of the fault bench's 8 fault-free half-hour runs at 64 ranks).
 */
function flapsBeyondChance(
  hits: Hits,
  endpoints: number,
  windowSequences: number,
  config: C4dConfig,
  chance: number,
): (endpoint: number) => boolean {
  let total = 0;
  for (const list of hits.byKey.values()) total += list.length;
  return (endpoint) => {
    const own = hits.byKey.get(endpoint)?.length ?? 0;
    if (own < config.flapMinEvents || endpoints < 2) return false;
    const rate = Math.min(1, (total - own + 0.5) / ((endpoints - 1) * windowSequences));
    return endpoints * binomialAtLeast(windowSequences, rate, own) <= chance;
  };
}

function matrixVerdicts(
  ctx: SlowContext,
  judge: Judge,
  hits: { rows: Hits; cols: Hits; links: Hits; unattributable: Hits },
  transfers: readonly FlaggedTransfer[][],
  out: Out,
): void {
  const { topology, view } = ctx;
  const candidates: Candidate[] = [];
  const blamedEndpoints = new Set<number>();
  const endpointJudgements = new Map<number, { row?: Judgement; col?: Judgement }>();
  const chance = flapChanceBudget(ctx.config, ctx.periodMs ?? judge.meanPeriodMs());
  const flapRows = flapsBeyondChance(hits.rows, topology.endpoints.length, judge.length, ctx.config, chance);
  const flapCols = flapsBeyondChance(hits.cols, topology.endpoints.length, judge.length, ctx.config, chance);
  for (const [e, list] of hits.rows.byKey) {
    const j = judge.judge(list, flapRows(e));
    if (j) endpointJudgements.set(e, { row: j });
  }
  for (const [e, list] of hits.cols.byKey) {
    const j = judge.judge(list, flapCols(e));
    if (j) endpointJudgements.set(e, { ...endpointJudgements.get(e), col: j });
  }
  for (const [e, { row, col }] of endpointJudgements) {
    blamedEndpoints.add(e);
    const j = row ?? col!;
    const seq = judge.sequence(j.onset);
    const involved = transfers[j.last]!.filter(
      (f) => (row && cellEnds(f.cell, topology).sender === e) || (col && cellEnds(f.cell, topology).receiver === e),
    );
    const ranks = [
      ...new Set(involved.map((f) => (row && cellEnds(f.cell, topology).sender === e ? f.sender : f.receiver))),
    ].sort((a, b) => a - b);
    const { blame, action } = endpointBlame(topology, e, ranks.length > 0 ? ranks : undefined);
    const times = judgementTimes(j, judge, involved);
    const ratio =
      times.observedTransferMs !== undefined && times.baselineTransferMs
        ? times.observedTransferMs / times.baselineTransferMs
        : undefined;
    const what = row && col ? "sends and receives" : row ? "sends" : "receives";
    candidates.push({
      faultClass: row ? C4dFaultClass.slowSender : C4dFaultClass.slowReceiver,
      blame,
      action,
      firstAffectedUnixMs: seq.firstStartUs / 1000,
      evidence: {
        communicator: view.communicator,
        sequence: seq.sequence,
        collective: seq.collective,
        ranks: blame.ranks,
        detail: `what ${topology.label(e)} ${what} is slow on most of its connections${ratio ? ` (${ratio.toFixed(2)}x the median transfer)` : ""} ${slowText(j, judge)}; its peers' other connections are not`,
        timesMs: times,
      },
    });
  }
  const linkPairs = new Map<string, { key: number; j: Judgement }>();
  for (const [key, list] of hits.links.byKey) {
    const { sender, receiver } = cellEnds(key, topology);
    if (blamedEndpoints.has(sender) || blamedEndpoints.has(receiver)) continue;
    const j = judge.judge(list, false);
    if (!j) continue;
    const pair = sender < receiver ? `${sender}-${receiver}` : `${receiver}-${sender}`;
    if (!linkPairs.has(pair)) linkPairs.set(pair, { key, j });
  }
  for (const { key, j } of linkPairs.values()) {
    const { sender, receiver } = cellEnds(key, topology);
    const involved = transfers[j.last]!.filter((f) => f.cell === key);
    const ranks = [...new Set(involved.flatMap((f) => [f.sender, f.receiver]))].sort((a, b) => a - b);
    const { blame, action } = linkBlame(topology, sender, receiver, ranks);
    const seq = judge.sequence(j.onset);
    const times = judgementTimes(j, judge, involved);
    const ratio =
      times.observedTransferMs !== undefined && times.baselineTransferMs
        ? times.observedTransferMs / times.baselineTransferMs
        : undefined;
    candidates.push({
      faultClass: C4dFaultClass.slowLink,
      blame,
      action,
      firstAffectedUnixMs: seq.firstStartUs / 1000,
      evidence: {
        communicator: view.communicator,
        sequence: seq.sequence,
        collective: seq.collective,
        ranks,
        detail: `transfers from ${topology.label(sender)} to ${topology.label(receiver)} are slow${ratio ? ` (${ratio.toFixed(2)}x the median transfer)` : ""} ${slowText(j, judge)} while both ends' other connections are not: the path between them`,
        timesMs: times,
      },
    });
  }
  for (const [key, list] of hits.unattributable.byKey) {
    const j = judge.judge(list, false);
    if (!j) continue;
    const { sender, receiver } = cellEnds(key, topology);
    const involved = transfers[j.last]!.filter((f) => f.cell === key);
    const ranks = [...new Set(involved.flatMap((f) => [f.sender, f.receiver]))].sort((a, b) => a - b);
    const seq = judge.sequence(j.onset);
    out.ambiguous.push({
      suspected: C4dFaultClass.slowLink,
      communicator: view.communicator,
      sequence: seq.sequence,
      ranks,
      nodes: [...new Set([topology.endpoints[sender]!.node, topology.endpoints[receiver]!.node])],
      detail: `transfers from ${topology.label(sender)} to ${topology.label(receiver)} are slow ${slowText(j, judge)}, but neither end has enough other connections to compare (a ring gives each endpoint one peer per channel): the sender, the receiver and the path are equally likely`,
      timesMs: judgementTimes(j, judge, involved),
    });
  }
  verdictsOrAmbiguity(candidates, ctx.config.maxBlamedNodes, ctx.nowMs, out, "slow connections");
}

function stragglerVerdicts(
  ctx: SlowContext,
  judge: Judge,
  hits: Hits,
  flaggedGaps: Map<number, Map<number, FlaggedGap>>,
  out: Out,
): void {
  const { topology, view } = ctx;
  const byNode = new Map<string, { ranks: number[]; j: Judgement; gaps: FlaggedGap[] }>();
  for (const [rank, list] of hits.byKey) {
    const j = judge.judge(list, false);
    if (!j) continue;
    const node = topology.rankNodes[rank]!;
    const entry = byNode.get(node) ?? { ranks: [], j, gaps: [] };
    entry.ranks.push(rank);
    if (j.onset < entry.j.onset) entry.j = j;
    const gap = flaggedGaps.get(j.last)?.get(rank);
    if (gap) entry.gaps.push(gap);
    byNode.set(node, entry);
  }
  const candidates: Candidate[] = [];
  for (const [node, { ranks, j, gaps }] of byNode) {
    ranks.sort((a, b) => a - b);
    const seq = judge.sequence(j.onset);
    const timesMs: Record<string, number> = judgementTimes(j, judge, []);
    let ratioText = "";
    if (gaps.length > 0) {
      timesMs.computeGapMs = Number((median(gaps.map((g) => g.gapUs)) / 1000).toFixed(3));
      timesMs.medianComputeGapMs = Number((median(gaps.map((g) => g.medianUs)) / 1000).toFixed(3));
      timesMs.thresholdComputeGapMs = Number((median(gaps.map((g) => g.thresholdUs)) / 1000).toFixed(3));
      ratioText = ` (compute gap ${fmtMs(timesMs.computeGapMs)} ms against a median of ${fmtMs(timesMs.medianComputeGapMs)} ms)`;
    }
    candidates.push({
      faultClass: C4dFaultClass.straggler,
      blame: { node, ranks },
      action: "isolate-node",
      firstAffectedUnixMs: seq.firstStartUs / 1000,
      evidence: {
        communicator: view.communicator,
        sequence: seq.sequence,
        collective: seq.collective,
        ranks,
        detail: `ranks ${rankList(ranks)} on ${node} arrive late at collectives${ratioText} ${slowText(j, judge)}: a compute straggler; the others wait for it`,
        timesMs,
      },
    });
  }
  verdictsOrAmbiguity(candidates, ctx.config.maxBlamedNodes, ctx.nowMs, out, "stragglers");
}
