/**
 * `npm run bench -- fault --replay FILE`: runs the detector over recorded telemetry. FILE is JSON lines:
 *   line 1: {"job": "ns/name", "rankNodes": ["node-a", ...], "rankNics"?: ["mlx5_0", ...],
 *            "faultPolicy"?: {"slowRankTolerancePercent": 30, "hangTimeoutSeconds": 60}}
 *   then one CollectiveRecord per line, as agents publish them (communicator, rank, nRanks, collective, sequence,
 *   bytes, startUnixUs, endUnixUs (0 = not completed), peers: [{peerRank, bytes, startUnixUs, endUnixUs}]),
 *   optionally with "receivedUnixMs" (when the operator got it; default: completion, or start, + 300 ms).
 * The detector runs every 500 ms of record time from the first record to the last plus --tail-ms (default 5,000).
 */
import { readFile } from "node:fs/promises";
import type { CollectiveRecord } from "../../common/src/telemetry/records.js";
import { c4dConfigFor } from "../../operator/src/training/c4d/index.js";
import { DetectorDriver, visibleAt } from "./drive.js";

export class ReplayFormatError extends Error {
  override name = "ReplayFormatError";
}

interface Header {
  job: string;
  rankNodes: string[];
  rankNics?: (string | undefined)[];
  faultPolicy?: { slowRankTolerancePercent?: number; hangTimeoutSeconds?: number };
}

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

function parseRecord(value: unknown, line: number): { record: CollectiveRecord; visibleUnixMs: number } {
  const r = value as Record<string, unknown>;
  for (const k of ["rank", "nRanks", "sequence", "bytes", "startUnixUs", "endUnixUs"])
    if (!isNum(r[k])) throw new ReplayFormatError(`line ${line}: "${k}" must be a number`);
  if (typeof r.communicator !== "string" || typeof r.collective !== "string")
    throw new ReplayFormatError(`line ${line}: "communicator" and "collective" must be strings`);
  if (!Array.isArray(r.peers)) throw new ReplayFormatError(`line ${line}: "peers" must be an array`);
  for (const [i, p] of (r.peers as Record<string, unknown>[]).entries()) {
    for (const k of ["peerRank", "bytes", "startUnixUs", "endUnixUs"])
      if (!isNum(p?.[k])) throw new ReplayFormatError(`line ${line}: peers[${i}].${k} must be a number`);
  }
  const { receivedUnixMs, ...rest } = r;
  const record = rest as unknown as CollectiveRecord;
  return { record, visibleUnixMs: isNum(receivedUnixMs) ? receivedUnixMs : visibleAt(record) };
}

export function parseReplay(text: string): {
  header: Header;
  records: { record: CollectiveRecord; visibleUnixMs: number }[];
} {
  const lines = text.split("\n");
  let header: Header | undefined;
  const records: { record: CollectiveRecord; visibleUnixMs: number }[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (cause) {
      throw new ReplayFormatError(`line ${i + 1}: not JSON`, { cause });
    }
    if (!header) {
      const h = value as Partial<Header>;
      if (typeof h.job !== "string" || !Array.isArray(h.rankNodes) || !h.rankNodes.every((n) => typeof n === "string"))
        throw new ReplayFormatError(`line ${i + 1}: the first line must be the job header {"job", "rankNodes": [...]}`);
      header = h as Header;
      return;
    }
    records.push(parseRecord(value, i + 1));
  });
  if (!header) throw new ReplayFormatError("empty file: no job header");
  records.sort((a, b) => a.visibleUnixMs - b.visibleUnixMs);
  return { header, records };
}

export async function replay(file: string, tailMs: number): Promise<void> {
  const { header, records } = parseReplay(await readFile(file, "utf8"));
  if (records.length === 0) throw new ReplayFormatError(`${file}: no records after the header`);
  const driver = new DetectorDriver(
    header.job,
    header.rankNodes,
    header.rankNics,
    c4dConfigFor(header.faultPolicy ?? {}),
  );
  const firstMs = records[0]!.visibleUnixMs;
  const endMs = records[records.length - 1]!.visibleUnixMs + tailMs;
  let head = 0;
  console.log(
    `replay ${file}: job ${header.job}, ${header.rankNodes.length} ranks, ${records.length} records, ${((endMs - firstMs) / 1000).toFixed(1)} s`,
  );
  for (let nowMs = firstMs; nowMs <= endMs; nowMs += 500) {
    let last = head;
    while (last < records.length && records[last]!.visibleUnixMs <= nowMs) last++;
    driver.deliver(
      records.slice(head, last).map((r) => r.record),
      nowMs,
    );
    head = last;
    const tick = driver.tick(nowMs);
    const at = `+${((nowMs - firstMs) / 1000).toFixed(1)} s`;
    for (const v of tick.newVerdicts) {
      console.log(
        `${at} VERDICT ${v.faultClass} -> ${v.action} node=${v.blame.node}${v.blame.nic ? ` nic=${v.blame.nic}` : ""}${v.blame.peerNode ? ` peer=${v.blame.peerNode}` : ""} ranks=${v.blame.ranks.slice(0, 16).join(",")}`,
      );
      console.log(
        `    ${v.evidence.communicator} ${v.evidence.collective} #${v.evidence.sequence}: ${v.evidence.detail}`,
      );
      console.log(
        `    times ${JSON.stringify(v.evidence.timesMs)}; first affected ${new Date(v.firstAffectedUnixMs).toISOString()}, latency ${(v.detectedUnixMs - v.firstAffectedUnixMs).toFixed(0)} ms`,
      );
    }
    for (const a of tick.newAmbiguities)
      console.log(`${at} AMBIGUOUS (suspected ${a.suspected}) nodes=${a.nodes.join(",")}: ${a.detail}`);
  }
  console.log(
    `replay done: ${driver.verdicts.length} verdicts, ${driver.ambiguities.length} ambiguities, detector CPU ${(driver.cpuUs / 1000).toFixed(0)} ms over ${driver.ticks} ticks`,
  );
}
