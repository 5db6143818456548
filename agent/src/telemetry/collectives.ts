/**
 * Validation of per-collective records at the agent's gRPC edge: wire messages become the plain records of
 * common/src/telemetry/records.ts, or an error naming the bad field.
 */
import type { CollectiveRecord__Output } from "../grpc/generated/gpufleet/worker/v1/CollectiveRecord.js";
import { COLLECTIVES, type CollectiveRecord } from "../../../common/src/telemetry/records.js";

export class InvalidRecordError extends Error {
  override name = "InvalidRecordError";
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(`record ${index}: ${message}`);
  }
}

/**
 * Validates one record from the wire; throws InvalidRecordError saying which field is wrong. The decoded record has
 * exactly the fields of CollectiveRecord, so a valid one is returned as it is (no copy: this runs per record at
 * 100k records/s, and the decoded batch belongs to this call alone).
 */
export function validateRecord(r: CollectiveRecord__Output, index: number): CollectiveRecord {
  const problem = recordProblem(r);
  if (problem !== undefined) throw new InvalidRecordError(index, problem);
  return r as CollectiveRecord;
}

function recordProblem(r: CollectiveRecord__Output): string | undefined {
  if (!r.communicator) return "communicator is empty";
  if (!COLLECTIVES.has(r.collective))
    return `collective "${r.collective}" is not one of ${[...COLLECTIVES].join(", ")}`;
  if (r.nRanks <= 0) return `nRanks must be positive, got ${r.nRanks}`;
  if (r.rank < 0 || r.rank >= r.nRanks) return `rank ${r.rank} is outside 0..${r.nRanks - 1}`;
  if (r.startUnixUs <= 0) return "startUnixUs is missing";
  if (r.endUnixUs !== 0 && r.endUnixUs < r.startUnixUs)
    return `endUnixUs ${r.endUnixUs} is before startUnixUs ${r.startUnixUs}`;
  const peers = r.peers;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i]!;
    if (p.peerRank < 0 || p.peerRank >= r.nRanks) return `peer ${i}: rank ${p.peerRank} is outside 0..${r.nRanks - 1}`;
    if (p.endUnixUs !== 0 && p.endUnixUs < p.startUnixUs) return `peer ${i}: end before start`;
  }
  return undefined;
}
