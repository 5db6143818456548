/**
 * Fail-stop tests (C4 §3.2): a collective open for longer than the job's hang timeout.
 * - Some ranks never entered it while others wait (communication hang): blame the missing ranks' nodes. A missing
 *   rank that reported a later collective did enter (its record was lost): that is ambiguous, not a hang.
 * - Every rank entered and it never completed: the connection matrix of unfinished transfers says which endpoint
 *   or path stalled. When every connection stalled, or none did, nothing is singled out: ambiguous.
 */
import type { CommunicatorView } from "../../telemetry/read-model.js";
import type { C4dConfig } from "./config.js";
import { endpointBlame, fmtMs, linkBlame, rankList, verdictsOrAmbiguity, type Candidate } from "./blame.js";
import { cellEnds, ConnectionMatrix } from "./matrix.js";
import type { SequenceSummary } from "./sequences.js";
import type { Topology } from "./topology.js";
import { C4dFaultClass, type C4dAmbiguity, type C4dVerdict } from "./types.js";

export interface HangContext {
  view: CommunicatorView;
  sequences: readonly SequenceSummary[];
  topology: Topology;
  config: C4dConfig;
  periodMs: number | undefined;
  timeoutMs: number;
  nowMs: number;
}

type Out = { verdicts: C4dVerdict[]; ambiguous: C4dAmbiguity[] };

/** Checks the communicator's oldest open collective; later ones wait on it. */
export function detectHang(ctx: HangContext, out: Out): void {
  const open = ctx.sequences.find((s) => s.waiting);
  if (!open) return;
  const waitMs = ctx.nowMs - open.firstStartUs / 1000;
  if (waitMs <= ctx.timeoutMs) return;
  const nRanks = ctx.view.nRanks;
  const missing: number[] = [];
  for (let r = 0; r < nRanks; r++) if (!open.records.has(r)) missing.push(r);
  if (missing.length > 0) missingRanks(ctx, open, missing, waitMs, out);
  else unfinishedTransfers(ctx, open, waitMs, out);
}

function times(ctx: HangContext, open: SequenceSummary, waitMs: number): Record<string, number> {
  const t: Record<string, number> = {
    firstEnteredUnixMs: open.firstStartUs / 1000,
    waitedMs: Math.round(waitMs),
    timeoutMs: Math.round(ctx.timeoutMs),
  };
  if (ctx.periodMs !== undefined) t.collectivePeriodMs = Number(ctx.periodMs.toFixed(3));
  return t;
}

function timeoutText(ctx: HangContext): string {
  return ctx.periodMs === undefined
    ? `timeout ${fmtMs(ctx.timeoutMs)} ms (no period known yet: the job's hangTimeoutSeconds)`
    : `timeout ${fmtMs(ctx.timeoutMs)} ms = ${ctx.config.hangPeriodMultiple} x the ${fmtMs(ctx.periodMs)} ms collective period, within [${ctx.config.hangTimeoutMinMs}, ${ctx.config.hangTimeoutMaxMs}] ms`;
}

function missingRanks(ctx: HangContext, open: SequenceSummary, missing: number[], waitMs: number, out: Out): void {
  const { view, topology } = ctx;
  const base = {
    communicator: view.communicator,
    sequence: open.sequence,
    ranks: missing.slice(0, 64),
    timesMs: times(ctx, open, waitMs),
  };
  const unknown = missing.filter((r) => !topology.has(r));
  if (unknown.length > 0) {
    out.ambiguous.push({
      ...base,
      suspected: C4dFaultClass.hang,
      nodes: [],
      detail: `ranks ${rankList(unknown)} never entered ${open.collective} #${open.sequence} but are not in the job's rank map`,
    });
    return;
  }
  const laterSeen = missing.filter((r) => ctx.sequences.some((s) => s.sequence > open.sequence && s.records.has(r)));
  if (laterSeen.length > 0) {
    out.ambiguous.push({
      ...base,
      suspected: C4dFaultClass.hang,
      nodes: [...new Set(laterSeen.map((r) => topology.rankNodes[r]!))],
      detail: `no record of ranks ${rankList(laterSeen)} in ${open.collective} #${open.sequence}, yet they reported later collectives: telemetry was lost, the ranks did not hang`,
    });
    return;
  }
  const byNode = new Map<string, number[]>();
  for (const r of missing) {
    const node = topology.rankNodes[r]!;
    byNode.set(node, [...(byNode.get(node) ?? []), r]);
  }
  const waiting = open.records.size;
  const candidates: Candidate[] = [...byNode].map(([node, ranks]) => ({
    faultClass: C4dFaultClass.hang,
    blame: { node, ranks },
    action: "isolate-node",
    evidence: {
      ...base,
      collective: open.collective,
      ranks,
      detail: `ranks ${rankList(ranks)} on ${node} never entered ${open.collective} #${open.sequence} while ${waiting} of ${view.nRanks} ranks waited ${fmtMs(waitMs)} ms in it (${timeoutText(ctx)})`,
    },
    firstAffectedUnixMs: open.firstStartUs / 1000,
  }));
  verdictsOrAmbiguity(
    candidates,
    ctx.config.maxBlamedNodes,
    ctx.nowMs,
    out,
    `hang in ${open.collective} #${open.sequence}`,
  );
}

function unfinishedTransfers(ctx: HangContext, open: SequenceSummary, waitMs: number, out: Out): void {
  const { view, topology, config } = ctx;
  const matrix = new ConnectionMatrix(topology);
  const stalled = new Map<number, Set<number>>(); // cell -> ranks with an unfinished transfer in it
  for (const rec of open.records.values()) {
    if (!topology.has(rec.rank)) continue;
    for (const p of rec.peers) {
      if (!topology.has(p.peerRank)) continue;
      const bad = p.endUnixUs === 0;
      matrix.add(rec.rank, p.peerRank, bad);
      if (bad) {
        const key =
          topology.senderEndpoint(rec.rank, p.peerRank) * topology.endpointCount +
          topology.receiverEndpoint(rec.rank, p.peerRank);
        const set = stalled.get(key) ?? new Set<number>();
        set.add(rec.rank).add(p.peerRank);
        stalled.set(key, set);
      }
    }
  }
  const a = matrix.attribute(config);
  const base = { communicator: view.communicator, sequence: open.sequence, timesMs: times(ctx, open, waitMs) };
  const unended = [...open.records.values()].filter((r) => r.endUnixUs === 0).map((r) => r.rank);
  const nodesOf = (ranks: number[]): string[] =>
    [...new Set(ranks.filter((r) => topology.has(r)).map((r) => topology.rankNodes[r]!))].slice(0, 64);
  if (a.cells === 0 || a.badCells === 0 || a.badCells === a.cells) {
    const why =
      a.cells === 0
        ? "no per-connection transfers were reported"
        : a.badCells === 0
          ? "every transfer finished, so no connection is to blame"
          : "every connection has an unfinished transfer, so none stands out";
    out.ambiguous.push({
      ...base,
      suspected: C4dFaultClass.unfinished,
      ranks: unended.slice(0, 64),
      nodes: nodesOf(unended),
      detail: `all ${view.nRanks} ranks entered ${open.collective} #${open.sequence} and it has not completed in ${fmtMs(waitMs)} ms (${timeoutText(ctx)}), but ${why}`,
    });
    return;
  }
  const ranksIn = (pred: (sender: number, receiver: number) => boolean): number[] => {
    const s = new Set<number>();
    for (const [key, ranks] of stalled) {
      const ends = cellEnds(key, topology);
      if (pred(ends.sender, ends.receiver)) for (const r of ranks) s.add(r);
    }
    return [...s].sort((x, y) => x - y);
  };
  const candidates: Candidate[] = [];
  const endpoints = new Map<number, string>();
  for (const e of a.rows) endpoints.set(e, "sends");
  for (const e of a.cols) endpoints.set(e, endpoints.has(e) ? "sends and receives" : "receives");
  for (const [e, how] of endpoints) {
    const ranks = ranksIn((s, d) => (s === e && how !== "receives") || (d === e && how !== "sends")).filter((r) =>
      topology.ranksOf(e).includes(r),
    );
    const { blame, action } = endpointBlame(topology, e, ranks);
    candidates.push({
      faultClass: C4dFaultClass.unfinished,
      blame,
      action,
      firstAffectedUnixMs: open.firstStartUs / 1000,
      evidence: {
        ...base,
        collective: open.collective,
        ranks,
        detail: `every transfer ${topology.label(e)} ${how} in ${open.collective} #${open.sequence} is unfinished after ${fmtMs(waitMs)} ms while its other connections' peers completed theirs (${a.badCells} of ${a.cells} cells stalled; ${timeoutText(ctx)})`,
      },
    });
  }
  for (const key of a.links) {
    const { sender, receiver } = cellEnds(key, topology);
    const ranks = [...(stalled.get(key) ?? [])].sort((x, y) => x - y);
    const { blame, action } = linkBlame(topology, sender, receiver, ranks);
    candidates.push({
      faultClass: C4dFaultClass.unfinished,
      blame,
      action,
      firstAffectedUnixMs: open.firstStartUs / 1000,
      evidence: {
        ...base,
        collective: open.collective,
        ranks,
        detail: `transfers from ${topology.label(sender)} to ${topology.label(receiver)} in ${open.collective} #${open.sequence} are unfinished after ${fmtMs(waitMs)} ms while both ends completed their other connections: the path between them (${timeoutText(ctx)})`,
      },
    });
  }
  for (const key of a.unattributable) {
    const { sender, receiver } = cellEnds(key, topology);
    const ranks = [...(stalled.get(key) ?? [])].sort((x, y) => x - y);
    out.ambiguous.push({
      ...base,
      suspected: C4dFaultClass.unfinished,
      ranks,
      nodes: [topology.endpoints[sender]!.node, topology.endpoints[receiver]!.node],
      detail: `transfers from ${topology.label(sender)} to ${topology.label(receiver)} in ${open.collective} #${open.sequence} are unfinished, but neither end has other connections to compare: the sender, the receiver and the path are equally likely`,
    });
  }
  verdictsOrAmbiguity(
    candidates,
    config.maxBlamedNodes,
    ctx.nowMs,
    out,
    `unfinished ${open.collective} #${open.sequence}`,
  );
}
