import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { LOADER_OPTIONS, PROTO_FILES, PROTO_ROOT } from "./gen-proto.js";
import { loadProtos } from "./load.js";
import {
  CollectiveBatchDecodeError,
  decodeCollectiveBatch,
  encodeCollectiveBatch,
  FIELDS,
} from "./collective-batch-codec.js";
import type { CollectiveBatch } from "./generated/gpufleet/worker/v1/CollectiveBatch.js";
import type * as grpc from "@grpc/grpc-js";

const method = (loadProtos().gpufleet.worker.v1.WorkerAgent.service as grpc.ServiceDefinition).ReportCollectives!;
const protobufjsEncode = (b: CollectiveBatch): Buffer => method.requestSerialize(b);
const protobufjsDecode = (buf: Buffer): unknown => method.requestDeserialize(buf);

function batch(): CollectiveBatch {
  return {
    workerId: "wörker-0",
    records: [
      {
        communicator: "9f1c2a7d",
        rank: 3,
        nRanks: 8,
        collective: "AllReduce",
        sequence: 2 ** 40 + 7,
        bytes: 268_435_456,
        startUnixUs: 1_700_000_000_000_123,
        endUnixUs: 1_700_000_000_001_023,
        peers: [
          { peerRank: 4, bytes: 469_762_048, startUnixUs: 1_700_000_000_000_200, endUnixUs: 1_700_000_000_000_900 },
          { peerRank: 0, bytes: 0, startUnixUs: 1, endUnixUs: 0 },
        ],
      },
      {
        communicator: "9f1c2a7d",
        rank: 0,
        nRanks: 8,
        collective: "AllReduce",
        sequence: 0,
        bytes: 0,
        startUnixUs: 5,
        endUnixUs: 0,
        peers: [],
      },
      {
        communicator: "other",
        rank: -1,
        nRanks: -2147483648,
        collective: "Send",
        sequence: Number.MAX_SAFE_INTEGER,
        bytes: 1,
        startUnixUs: 127,
        endUnixUs: 128,
        peers: [{ peerRank: -5, bytes: 16_384, startUnixUs: 2 ** 35, endUnixUs: 2 ** 35 + 1 }],
      },
      {},
    ],
  };
}

describe("CollectiveBatch codec", () => {
  it("uses the field numbers and types of worker.proto", () => {
    const pkg = protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
    const fieldsOf = (name: string) => {
      const type = (
        pkg[`gpufleet.worker.v1.${name}`] as {
          type: { field: { name: string; number: number; type: string; label: string }[] };
        }
      ).type;
      return Object.fromEntries(type.field.map((f) => [f.name, `${f.number} ${f.type} ${f.label}`]));
    };
    expect(fieldsOf("CollectiveBatch")).toEqual({
      workerId: `${FIELDS.batch.workerId} TYPE_STRING LABEL_OPTIONAL`,
      records: `${FIELDS.batch.records} TYPE_MESSAGE LABEL_REPEATED`,
    });
    const r = FIELDS.record;
    expect(fieldsOf("CollectiveRecord")).toEqual({
      communicator: `${r.communicator} TYPE_STRING LABEL_OPTIONAL`,
      rank: `${r.rank} TYPE_INT32 LABEL_OPTIONAL`,
      nRanks: `${r.nRanks} TYPE_INT32 LABEL_OPTIONAL`,
      collective: `${r.collective} TYPE_STRING LABEL_OPTIONAL`,
      sequence: `${r.sequence} TYPE_UINT64 LABEL_OPTIONAL`,
      bytes: `${r.bytes} TYPE_UINT64 LABEL_OPTIONAL`,
      startUnixUs: `${r.startUnixUs} TYPE_UINT64 LABEL_OPTIONAL`,
      endUnixUs: `${r.endUnixUs} TYPE_UINT64 LABEL_OPTIONAL`,
      peers: `${r.peers} TYPE_MESSAGE LABEL_REPEATED`,
    });
    const p = FIELDS.peer;
    expect(fieldsOf("PeerTransfer")).toEqual({
      peerRank: `${p.peerRank} TYPE_INT32 LABEL_OPTIONAL`,
      bytes: `${p.bytes} TYPE_UINT64 LABEL_OPTIONAL`,
      startUnixUs: `${p.startUnixUs} TYPE_UINT64 LABEL_OPTIONAL`,
      endUnixUs: `${p.endUnixUs} TYPE_UINT64 LABEL_OPTIONAL`,
    });
  });

  it("writes what protobufjs reads back as the same batch (fields at their default value left out, as proto3 allows)", () => {
    expect(protobufjsDecode(encodeCollectiveBatch(batch())!)).toEqual(protobufjsDecode(protobufjsEncode(batch())));
    expect(encodeCollectiveBatch({ records: [{ rank: -1, sequence: 2 ** 40 }] })!.toString("hex")).toBe(
      protobufjsEncode({ records: [{ rank: -1, sequence: 2 ** 40 }] }).toString("hex"),
    );
    expect(encodeCollectiveBatch({})!.length).toBe(0);
  });

  it("decodes into the objects proto-loader gives", () => {
    const wire = protobufjsEncode(batch());
    expect(decodeCollectiveBatch(wire)).toEqual(protobufjsDecode(wire));
    expect(decodeCollectiveBatch(Buffer.alloc(0))).toEqual(protobufjsDecode(Buffer.alloc(0)));
  });

  it("leaves values it does not take to protobufjs", () => {
    expect(encodeCollectiveBatch({ records: [{ sequence: "12" }] })).toBeUndefined();
    expect(encodeCollectiveBatch({ records: [{ bytes: 1.5 }] })).toBeUndefined();
  });

  it("skips unknown fields and refuses a truncated message", () => {
    const wire = protobufjsEncode(batch());
    // Field 15 (varint) and field 14 (length-delimited, 2 bytes) before the batch: unknown to this version.
    const withUnknown = Buffer.concat([Buffer.from([(15 << 3) | 0, 0x96, 0x01, (14 << 3) | 2, 2, 0x61, 0x62]), wire]);
    expect(decodeCollectiveBatch(withUnknown)).toEqual(protobufjsDecode(wire));
    expect(() => decodeCollectiveBatch(wire.subarray(0, wire.length - 3))).toThrow(CollectiveBatchDecodeError);
    expect(() => decodeCollectiveBatch(Buffer.from([(2 << 3) | 0, 1]))).toThrow(/wire type/);
  });
});
