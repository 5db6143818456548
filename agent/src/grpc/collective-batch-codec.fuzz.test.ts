/**
 * Fuzzing the hand-written CollectiveBatch decoder (the worker socket's hottest path): random bytes, truncated and
 * byte-flipped valid batches, and length prefixes that claim more than the message holds. It must return a batch or
 * throw CollectiveBatchDecodeError (which grpc-js answers as a failed call), never another error and never allocate
 * by a claimed length: it only slices the buffer it was given.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CollectiveBatchDecodeError, decodeCollectiveBatch, encodeCollectiveBatch } from "./collective-batch-codec.js";
import type { CollectiveBatch } from "./generated/gpufleet/worker/v1/CollectiveBatch.js";

function outcome(data: Uint8Array): "decoded" | CollectiveBatchDecodeError {
  try {
    decodeCollectiveBatch(data);
    return "decoded";
  } catch (error) {
    if (error instanceof CollectiveBatchDecodeError) return error;
    throw new Error(`decoder threw ${String(error)} instead of CollectiveBatchDecodeError`, { cause: error });
  }
}

const batch: fc.Arbitrary<CollectiveBatch> = fc.record({
  workerId: fc.string({ maxLength: 10 }),
  records: fc.array(
    fc.record({
      communicator: fc.string({ maxLength: 10 }),
      rank: fc.integer({ min: -5, max: 1023 }),
      nRanks: fc.integer({ min: 0, max: 1024 }),
      collective: fc.constantFrom("AllReduce", "Send", ""),
      sequence: fc.maxSafeNat(),
      bytes: fc.maxSafeNat(),
      startUnixUs: fc.maxSafeNat(),
      endUnixUs: fc.maxSafeNat(),
      peers: fc.array(
        fc.record({
          peerRank: fc.integer({ min: -1, max: 1023 }),
          bytes: fc.maxSafeNat(),
          startUnixUs: fc.maxSafeNat(),
          endUnixUs: fc.maxSafeNat(),
        }),
        { maxLength: 3 },
      ),
    }),
    { maxLength: 5 },
  ),
});
const encoded = batch.map((b) => encodeCollectiveBatch(b)!);

describe("CollectiveBatch decoder under fuzzing", () => {
  it("random bytes: a batch or a CollectiveBatchDecodeError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), (bytes) => void outcome(bytes)),
      { numRuns: 2000 },
    );
  });

  it("valid batches round-trip; every truncation is refused or decodes to fewer complete records", () => {
    fc.assert(
      fc.property(batch, fc.nat(), (b, cut) => {
        const bytes = encodeCollectiveBatch(b)!;
        expect(decodeCollectiveBatch(bytes).records).toHaveLength(b.records!.length);
        if (bytes.length === 0) return;
        const prefix = bytes.subarray(0, cut % bytes.length);
        const result = outcome(prefix);
        // A cut at a field boundary is a shorter valid message (protobuf has no end marker); it never holds more.
        if (result === "decoded")
          expect(decodeCollectiveBatch(prefix).records.length).toBeLessThanOrEqual(b.records!.length);
      }),
      { numRuns: 500 },
    );
  });

  it("a flipped byte gives a batch or a CollectiveBatchDecodeError", () => {
    fc.assert(
      fc.property(encoded, fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, value) => {
        if (bytes.length === 0) return;
        const damaged = Uint8Array.from(bytes);
        damaged[at % damaged.length] = value;
        outcome(damaged);
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ["a record claiming 2^50 bytes", Uint8Array.from([0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])],
    ["a varint longer than 10 bytes", Uint8Array.from(Array.from({ length: 11 }, () => 0xff))],
    ["a truncated varint", Uint8Array.from([0x08, 0x80])],
    ["a group wire type", Uint8Array.from([0x0b])],
    ["a worker id of the wrong wire type", Uint8Array.from([0x08, 0x01])],
  ])("%s is refused", (_name, bytes) => {
    expect(outcome(bytes)).toBeInstanceOf(CollectiveBatchDecodeError);
  });
});
