/**
 * Drives the C4D detector the way the operator would: collective records reach the telemetry read model when the
 * agent's publisher has flushed them (visibleUnixMs), and the detector runs over the job's communicators every
 * tick. Verdicts and ambiguities are reported the first time they appear (deduplicated by what they blame).
 */
import type { CollectiveRecord } from "../../common/src/telemetry/records.js";
import { TelemetryReadModel } from "../../operator/src/telemetry/read-model.js";
import {
  C4dMemo,
  detectFaults,
  type C4dAmbiguity,
  type C4dConfig,
  type C4dVerdict,
} from "../../operator/src/training/c4d/index.js";

export interface TimedRecord {
  visibleUnixMs: number;
  record: CollectiveRecord;
}

/** Agent flush interval (agent/src/telemetry/publisher.ts flushIntervalMs) plus JetStream delivery to the operator. */
export const PUBLISH_DELAY_MS = 250 + 50;

/** When the operator sees a record: its completion (or, open, its start) plus the publish delay. */
export function visibleAt(record: CollectiveRecord): number {
  return Math.max(record.startUnixUs, record.endUnixUs) / 1000 + PUBLISH_DELAY_MS;
}

export const verdictKey = (v: C4dVerdict): string =>
  `${v.faultClass}|${v.blame.node}|${v.blame.peerNode ?? ""}|${v.blame.nic ?? ""}`;
const ambiguityKey = (a: C4dAmbiguity): string => `${a.suspected}|${a.nodes.join(",")}|${a.communicator}`;

export interface TickResult {
  newVerdicts: C4dVerdict[];
  newAmbiguities: C4dAmbiguity[];
  cpuUs: number;
}

export class DetectorDriver {
  readonly model = new TelemetryReadModel();
  private readonly memo = new C4dMemo();
  private readonly seenVerdicts = new Set<string>();
  private readonly seenAmbiguities = new Set<string>();
  readonly verdicts: C4dVerdict[] = [];
  readonly ambiguities: C4dAmbiguity[] = [];
  cpuUs = 0;
  ticks = 0;

  constructor(
    readonly job: string,
    readonly rankNodes: readonly string[],
    readonly rankNics: readonly (string | undefined)[] | undefined,
    readonly config: C4dConfig,
  ) {}

  /** Records now visible to the operator, in the order they arrive. */
  deliver(records: readonly CollectiveRecord[], nowMs: number): void {
    if (records.length > 0)
      this.model.applyCollectives(
        {
          node: "bench",
          sentUnixMs: nowMs,
          droppedSincePrevious: 0,
          source: undefined,
          records: records as CollectiveRecord[],
        },
        this.job,
        nowMs,
      );
  }

  tick(nowMs: number): TickResult {
    const started = process.cpuUsage();
    const report = detectFaults(
      {
        job: this.job,
        communicators: this.model.communicatorsOf(this.job),
        rankNodes: this.rankNodes,
        ...(this.rankNics ? { rankNics: this.rankNics } : {}),
      },
      this.config,
      nowMs,
      this.memo,
    );
    const used = process.cpuUsage(started);
    const cpuUs = used.user + used.system;
    this.cpuUs += cpuUs;
    this.ticks++;
    const newVerdicts = report.verdicts.filter((v) => !this.seenVerdicts.has(verdictKey(v)));
    for (const v of newVerdicts) this.seenVerdicts.add(verdictKey(v));
    const newAmbiguities = report.ambiguous.filter((a) => !this.seenAmbiguities.has(ambiguityKey(a)));
    for (const a of newAmbiguities) this.seenAmbiguities.add(ambiguityKey(a));
    this.verdicts.push(...newVerdicts);
    this.ambiguities.push(...newAmbiguities);
    return { newVerdicts, newAmbiguities, cpuUs };
  }
}
