/**
 * The recent collectives of one communicator, in sequence order, with what every test needs: which ranks are in,
 * whether any is still waiting, and when it began and ended. The job's collective period (median start-to-start
 * interval of consecutive completed collectives) is the yardstick for every timeout.
 */
import type { CollectiveRecord } from "../../../../common/src/telemetry/records.js";
import type { CommunicatorView } from "../../telemetry/read-model.js";
import { median } from "./stats.js";

export interface SequenceSummary {
  sequence: number;
  records: ReadonlyMap<number, CollectiveRecord>;
  collective: string;
  /** Some rank that entered has not completed: the collective is still open. */
  waiting: boolean;
  firstStartUs: number;
  /** Latest completion (0 while none completed). */
  lastEndUs: number;
}

/** The last `count` sequences of the communicator (ascending), summarised. */
export function recentSequences(view: CommunicatorView, count: number): SequenceSummary[] {
  const keys = [...view.sequences.keys()].sort((a, b) => a - b);
  const out: SequenceSummary[] = [];
  for (const sequence of keys.slice(Math.max(0, keys.length - count))) {
    const records = view.sequences.get(sequence)!;
    let waiting = false;
    let firstStartUs = Infinity;
    let lastEndUs = 0;
    let collective = "";
    for (const r of records.values()) {
      collective ||= r.collective;
      if (r.endUnixUs === 0) waiting = true;
      else if (r.endUnixUs > lastEndUs) lastEndUs = r.endUnixUs;
      if (r.startUnixUs < firstStartUs) firstStartUs = r.startUnixUs;
    }
    if (records.size > 0) out.push({ sequence, records, collective, waiting, firstStartUs, lastEndUs });
  }
  return out;
}

/** Median interval between the starts of consecutive completed collectives, ms; undefined with fewer than 3. */
export function collectivePeriodMs(sequences: readonly SequenceSummary[]): number | undefined {
  const gaps: number[] = [];
  for (let i = 1; i < sequences.length; i++) {
    const a = sequences[i - 1]!;
    const b = sequences[i]!;
    if (a.waiting || b.waiting || b.sequence !== a.sequence + 1) continue;
    gaps.push((b.firstStartUs - a.firstStartUs) / 1000);
  }
  return gaps.length >= 2 ? median(gaps) : undefined;
}

/** Hang timeout of a communicator: a multiple of its period, within the job's bounds. */
export function hangTimeoutMs(
  periodMs: number | undefined,
  config: { hangPeriodMultiple: number; hangTimeoutMinMs: number; hangTimeoutMaxMs: number },
): number {
  if (periodMs === undefined) return config.hangTimeoutMaxMs;
  return Math.min(config.hangTimeoutMaxMs, Math.max(config.hangTimeoutMinMs, config.hangPeriodMultiple * periodMs));
}
