/**
 * KV hand-off between a prefill and a decode instance (pure): the link between them and how long the KV takes
 * to cross it, with the coefficients of the common latency model (common/src/models/latency.ts), as the DistServe
 * planner charges it (operator/src/serving/plan.ts: NVLink pairs inside a node, NICs between nodes, the slower
 * side bounds the transfer):
 * - same node: min(GPUs of either side) point-to-point NVLink pairs, each at `p2pNvlinkGBps`;
 * - different nodes: each side sends or receives over its GPUs' share of the node's NICs
 *   (GPUs · nicGBpsPerGpu · nicEfficiency); the slower side sets the rate.
 * Time = bytes / rate. No bytes move in simulation: the decode side waits the modelled time before importing.
 *
 * Also the body of GET /gpufleet/v1/kv/<id> on a simulated prefill instance (the contract leaves the KV payload to
 * the instance): the KV's block-level description and the source's link, from which the decode side times it.
 */
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { latencyCoefficients, type LatencyCoefficients } from "../../../../common/src/models/latency.js";

export interface KvLinkEnd {
  nodeName: string;
  gpuModel: string;
  /** GPUs of the instance (TP · PP). */
  gpus: number;
  /** The node's NIC bandwidth per GPU in GB/s (Σ NIC Gbit/s / 8 / GPUs on the node). */
  nicGBpsPerGpu: number;
}

export const KvLinkKind = { nvlink: "nvlink", nic: "nic" } as const;
export type KvLinkKind = (typeof KvLinkKind)[keyof typeof KvLinkKind];

export interface KvLink {
  kind: KvLinkKind;
  GBps: number;
}

export function kvLink(
  source: KvLinkEnd,
  destination: KvLinkEnd,
  coefficientsOf: (gpuModel: string) => LatencyCoefficients = latencyCoefficients,
): KvLink {
  const src = coefficientsOf(source.gpuModel);
  const dst = coefficientsOf(destination.gpuModel);
  if (source.nodeName === destination.nodeName) {
    return {
      kind: KvLinkKind.nvlink,
      GBps: Math.min(source.gpus, destination.gpus) * Math.min(src.p2pNvlinkGBps, dst.p2pNvlinkGBps),
    };
  }
  const side = (end: KvLinkEnd, c: LatencyCoefficients) => end.gpus * end.nicGBpsPerGpu * c.nicEfficiency;
  return { kind: KvLinkKind.nic, GBps: Math.min(side(source, src), side(destination, dst)) };
}

/** Milliseconds for `bytes` over `link` (1 GB/s moves 1e6 bytes per ms). */
export function kvTransferMs(bytes: number, link: KvLink): number {
  if (!(link.GBps > 0)) throw new RangeError(`a KV link needs a positive bandwidth, got ${link.GBps} GB/s`);
  return bytes / (link.GBps * 1e6);
}

/** GET /gpufleet/v1/kv/<id> on a simulated prefill instance. */
export const KvDescription = Type.Object({
  request_id: Type.String({ minLength: 1 }),
  model: Type.String({ minLength: 1 }),
  prompt_tokens: Type.Integer({ minimum: 1 }),
  /** Tokens sampled so far (1 after a prefill). */
  output_tokens: Type.Integer({ minimum: 1 }),
  priority: Type.Number(),
  blocks: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0 }),
  block_size_tokens: Type.Integer({ minimum: 1 }),
  source: Type.Object({
    node: Type.String({ minLength: 1 }),
    gpu_model: Type.String({ minLength: 1 }),
    gpus: Type.Integer({ minimum: 1 }),
    nic_gbps_per_gpu: Type.Number({ exclusiveMinimum: 0 }),
  }),
});
export type KvDescription = Static<typeof KvDescription>;

const kvDescriptionChecker = TypeCompiler.Compile(KvDescription);

export function parseKvDescription(value: unknown): KvDescription | string {
  if (kvDescriptionChecker.Check(value)) return value;
  const first = kvDescriptionChecker.Errors(value).First();
  return first ? `${first.path || "body"}: ${first.message}` : "invalid KV description";
}

export function sourceEnd(d: KvDescription): KvLinkEnd {
  return {
    nodeName: d.source.node,
    gpuModel: d.source.gpu_model,
    gpus: d.source.gpus,
    nicGBpsPerGpu: d.source.nic_gbps_per_gpu,
  };
}
