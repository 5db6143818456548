/**
 * detectFaults: one pass of the C4D detector over a job's collective telemetry (pure: no I/O, no clock, no state
 * between calls; everything comes from the read model's window of recent sequences). Per communicator: the hang
 * tests on its oldest open collective (hang.ts), the slow tests on its recent completed ones (slow.ts); across the
 * job: a non-communication hang when no collective is open and none has started for the hang timeout.
 */
import { fmtMs } from "./blame.js";
import type { C4dConfig } from "./config.js";
import { detectHang } from "./hang.js";
import { collectivePeriodMs, hangTimeoutMs, recentSequences, type SequenceSummary } from "./sequences.js";
import { C4dMemo } from "./memo.js";
import { detectSlow } from "./slow.js";
import { C4dAction, C4dFaultClass, type C4dInput, type C4dReport } from "./types.js";

/** Sequences read per communicator beyond the slow window: the open ones at the tail. */
const OPEN_SEQUENCE_ALLOWANCE = 8;

/**
 * `memo` (optional, one per job, kept by the caller) only saves CPU: the report is the same without it.
 */
export function detectFaults(
  input: C4dInput,
  config: C4dConfig,
  nowMs: number,
  memo: C4dMemo = new C4dMemo(),
): C4dReport {
  const topology = memo.topologyFor(input.rankNodes, input.rankNics, config);
  const report: C4dReport = { verdicts: [], ambiguous: [] };
  let anyOpen = false;
  let latest: { communicator: string; last: SequenceSummary; timeoutMs: number } | undefined;
  for (const view of input.communicators) {
    const sequences = recentSequences(view, config.slowWindowSequences + OPEN_SEQUENCE_ALLOWANCE);
    if (sequences.length === 0) continue;
    const periodMs = collectivePeriodMs(sequences);
    const timeoutMs = hangTimeoutMs(periodMs, config);
    if (sequences.some((s) => s.waiting)) anyOpen = true;
    const last = sequences[sequences.length - 1]!;
    if (!latest || last.lastEndUs > latest.last.lastEndUs)
      latest = { communicator: view.communicator, last, timeoutMs };
    detectHang({ view, sequences, topology, config, periodMs, timeoutMs, nowMs }, report);
    detectSlow({ view, sequences, topology, config, periodMs, nowMs }, report, memo.analysesOf(view.communicator));
  }
  memo.retain(new Set(input.communicators.map((c) => c.communicator)));
  if (!anyOpen && latest) jobHang(latest, config, nowMs, report);
  return report;
}

/**
 * No collective is open and none has started since the last completed one: nothing communication-related is
 * waiting, so no rank is to blame. A checkpoint write or an evaluation pause also stops collectives, which is why
 * this waits the job's full hangTimeoutSeconds rather than a multiple of the period.
 */
function jobHang(
  latest: { communicator: string; last: SequenceSummary },
  config: C4dConfig,
  nowMs: number,
  report: C4dReport,
): void {
  const lastEndMs = latest.last.lastEndUs / 1000;
  const quietMs = nowMs - lastEndMs;
  if (quietMs <= config.hangTimeoutMaxMs) return;
  report.verdicts.push({
    faultClass: C4dFaultClass.jobHang,
    blame: { node: "", ranks: [] },
    action: C4dAction.restartOnly,
    evidence: {
      communicator: latest.communicator,
      sequence: latest.last.sequence,
      collective: latest.last.collective,
      ranks: [],
      detail: `no rank has entered a collective for ${fmtMs(quietMs)} ms since ${latest.last.collective} #${latest.last.sequence} completed and none is open (timeout ${config.hangTimeoutMaxMs} ms, the job's hangTimeoutSeconds): a non-communication hang (data loading, storage, a deadlock outside collectives)`,
      timesMs: { lastCompletedUnixMs: lastEndMs, quietMs: Math.round(quietMs), timeoutMs: config.hangTimeoutMaxMs },
    },
    firstAffectedUnixMs: lastEndMs,
    detectedUnixMs: nowMs,
  });
}
