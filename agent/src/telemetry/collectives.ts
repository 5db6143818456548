/**
 * Validation of per-collective records at the agent's gRPC edge: wire messages become the plain records of
 * common/src/telemetry/records.ts, or an error naming the bad field.
 */
import type { CollectiveRecord__Output } from "../grpc/generated/gpufleet/worker/v1/CollectiveRecord.js";
import { COLLECTIVES, type Collective, type CollectiveRecord } from "../../../common/src/telemetry/records.js";

export class InvalidRecordError extends Error {
  override name = "InvalidRecordError";
  constructor(readonly index: number, message: string) {
    super(`record ${index}: ${message}`);
  }
}

/** Validates one record from the wire; throws InvalidRecordError saying which field is wrong. */
export function validateRecord(r: CollectiveRecord__Output, index: number): CollectiveRecord {
  const fail = (m: string): never => { throw new InvalidRecordError(index, m); };
  if (!r.communicator) fail("communicator is empty");
  if (!COLLECTIVES.has(r.collective)) fail(`collective "${r.collective}" is not one of ${[...COLLECTIVES].join(", ")}`);
  if (r.nRanks <= 0) fail(`nRanks must be positive, got ${r.nRanks}`);
  if (r.rank < 0 || r.rank >= r.nRanks) fail(`rank ${r.rank} is outside 0..${r.nRanks - 1}`);
  if (r.startUnixUs <= 0) fail("startUnixUs is missing");
  if (r.endUnixUs !== 0 && r.endUnixUs < r.startUnixUs) fail(`endUnixUs ${r.endUnixUs} is before startUnixUs ${r.startUnixUs}`);
  const peers = r.peers.map((p, i) => {
    if (p.peerRank < 0 || p.peerRank >= r.nRanks) fail(`peer ${i}: rank ${p.peerRank} is outside 0..${r.nRanks - 1}`);
    if (p.endUnixUs !== 0 && p.endUnixUs < p.startUnixUs) fail(`peer ${i}: end before start`);
    return { peerRank: p.peerRank, bytes: p.bytes, startUnixUs: p.startUnixUs, endUnixUs: p.endUnixUs };
  });
  return {
    communicator: r.communicator, rank: r.rank, nRanks: r.nRanks, collective: r.collective as Collective,
    sequence: r.sequence, bytes: r.bytes, startUnixUs: r.startUnixUs, endUnixUs: r.endUnixUs, peers,
  };
}
