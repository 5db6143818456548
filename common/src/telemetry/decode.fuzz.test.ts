/**
 * Fuzzing the NATS message decoders (fast-check): random bytes, random JSON, truncated and byte-flipped valid
 * messages, other schema versions, oversized and deeply nested input. Every decoder either returns a message of its
 * schema or throws TelemetryDecodeError with a reason the readers count; nothing else escapes (no TypeError,
 * RangeError or stack overflow), and nothing is parsed above MAX_TELEMETRY_MESSAGE_BYTES.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CollectiveRecord } from "./records.js";
import {
  DecodeFailure,
  decodeCollectives,
  decodeLoad,
  decodeRdma,
  decodeWorkerEvents,
  decodeWorkers,
  encodeCollectives,
  encodeJson,
  MAX_TELEMETRY_MESSAGE_BYTES,
  Schema,
  TelemetryDecodeError,
} from "./subjects.js";

const SUBJECT = "gpufleet.v1.test.node-a";
const decoders = [
  ["collectives", (d: Uint8Array, max?: number) => decodeCollectives(SUBJECT, d, max)],
  ["load", (d: Uint8Array, max?: number) => decodeLoad(SUBJECT, d, max)],
  ["rdma", (d: Uint8Array, max?: number) => decodeRdma(SUBJECT, d, max)],
  ["workers", (d: Uint8Array, max?: number) => decodeWorkers(SUBJECT, d, max)],
  ["workerEvents", (d: Uint8Array, max?: number) => decodeWorkerEvents(SUBJECT, d, max)],
] as const;
const REASONS = new Set<string>(Object.values(DecodeFailure));

/** Runs a decoder; returns the error it threw, failing the property on anything but a TelemetryDecodeError. */
function outcome(decode: (d: Uint8Array) => unknown, data: Uint8Array): TelemetryDecodeError | "decoded" {
  try {
    decode(data);
    return "decoded";
  } catch (error) {
    if (!(error instanceof TelemetryDecodeError))
      throw new Error(`decoder threw ${String(error)} instead of TelemetryDecodeError`, { cause: error });
    expect(REASONS.has(error.reason)).toBe(true);
    expect(error.message).toContain(SUBJECT);
    return error;
  }
}

const record: fc.Arbitrary<CollectiveRecord> = fc.record({
  communicator: fc.string({ maxLength: 12 }),
  rank: fc.integer({ min: 0, max: 1023 }),
  nRanks: fc.integer({ min: 1, max: 1024 }),
  collective: fc.constantFrom("AllReduce", "AllGather", "Send"),
  sequence: fc.nat(),
  bytes: fc.nat(),
  startUnixUs: fc.nat(),
  endUnixUs: fc.nat(),
  peers: fc.array(fc.record({ peerRank: fc.nat(1023), bytes: fc.nat(), startUnixUs: fc.nat(), endUnixUs: fc.nat() }), {
    maxLength: 3,
  }),
}) as fc.Arbitrary<CollectiveRecord>;
const validCollectives = fc
  .array(record, { maxLength: 6 })
  .map((records) => encodeCollectives("node-a", records, 1_700_000_000_000, 0));

describe.each(decoders)("%s decoder under fuzzing", (_kind, decode) => {
  it("random bytes: a message or a TelemetryDecodeError, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => void outcome(decode, bytes)),
      { numRuns: 500 },
    );
  });

  it("random JSON values: a message or a TelemetryDecodeError", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => void outcome(decode, encodeJson({ wrapped: value }))),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 4 }),
        (value) => void outcome(decode, new TextEncoder().encode(JSON.stringify(value))),
      ),
      { numRuns: 300 },
    );
  });

  it("another schema version is refused by name", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }).filter((s) => !(Object.values(Schema) as string[]).includes(s)),
        (schema) => {
          const error = outcome(decode, encodeJson({ schema, node: "node-a", sentUnixMs: 1 }));
          expect(error).not.toBe("decoded");
          expect((error as TelemetryDecodeError).reason).toBe(DecodeFailure.wrongSchema);
          expect((error as TelemetryDecodeError).message).toMatch(/this reader understands gpufleet\./);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("a message above the size limit is refused before it is parsed", () => {
    // whitespace: would parse slowly if it were parsed at all
    const huge = new Uint8Array(MAX_TELEMETRY_MESSAGE_BYTES + 1).fill(0x20);
    const error = outcome(decode, huge);
    expect(error).not.toBe("decoded");
    expect((error as TelemetryDecodeError).reason).toBe(DecodeFailure.tooLarge);
    expect((error as TelemetryDecodeError).message).toMatch(/8388609 bytes, more than the 8388608-byte limit/);
    // A reader may bound it lower; the limit applies to what a valid message would otherwise be.
    const small = outcome((d) => decode(d, 16), encodeJson({ schema: "x", node: "a very long node name" }));
    expect((small as TelemetryDecodeError).reason).toBe(DecodeFailure.tooLarge);
  });

  it("deeply nested input is a TelemetryDecodeError, not a stack overflow", () => {
    const depth = 200_000;
    for (const text of ["[".repeat(depth) + "]".repeat(depth), `{"schema":${"[".repeat(depth)}${"]".repeat(depth)}}`]) {
      expect(outcome(decode, new TextEncoder().encode(text))).not.toBe("decoded");
    }
  });
});

describe("collectives: damaged valid messages", () => {
  it("every strict prefix of a valid message is refused (never half a batch)", () => {
    fc.assert(
      fc.property(validCollectives, fc.nat(), (bytes, cut) => {
        const prefix = bytes.subarray(0, cut % bytes.length);
        const error = outcome((d) => decodeCollectives(SUBJECT, d), prefix);
        expect(error).not.toBe("decoded");
        expect((error as TelemetryDecodeError).reason).toBe(DecodeFailure.notJson);
      }),
      { numRuns: 300 },
    );
  });

  it("a flipped byte gives a schema-valid message or a TelemetryDecodeError", () => {
    fc.assert(
      fc.property(validCollectives, fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, value) => {
        const damaged = Uint8Array.from(bytes);
        damaged[at % damaged.length] = value;
        const result = outcome((d) => decodeCollectives(SUBJECT, d), damaged);
        if (result === "decoded")
          for (const r of decodeCollectives(SUBJECT, damaged).records) expect(typeof r.communicator).toBe("string");
      }),
      { numRuns: 500 },
    );
  });
});
