/**
 * Every simulation the planner runs: the analytic capacity bound of a configuration, the goodput search of one
 * configuration (colocated, prefill alone, decode alone, each on a pool filling one node), and the end-to-end
 * goodput of a disaggregated unit. Pure and deterministic for a given context.
 */
import { cannotReach } from "./bounds.js";
import { maxRateMeeting } from "./goodput.js";
import {
  type Config,
  type Context,
  type DisaggShape,
  type Measured,
  MAX_SEQS_PER_LANE,
  gpusOf,
  memo,
  nicKvGBps,
  requestsFor,
  sampleFor,
  seqsPerLane,
  shapeKey,
} from "./context.js";
import {
  type ColocatedPolicy,
  type DisaggregatedSimConfig,
  attainment,
  simulateColocated,
  simulateDisaggregated,
} from "./simulator.js";

/** Prefill throughput bound (req/s): back-to-back batches of L_m tokens, one every bottleneck-stage time. */
export function prefillCapacity(ctx: Context, c: Config): number {
  const mean = ctx.sample.meanPromptTokens;
  const perBatch = Math.max(1, Math.floor(ctx.lmTokens / mean));
  const lat = c.latency.forward({
    newTokens: perBatch * mean,
    attentionPairs: (perBatch * mean * (mean + 1)) / 2,
    kvReadTokens: 0,
    sequences: perBatch,
  });
  return (perBatch * 1000) / lat.bottleneckStageMs;
}

/**
 * Decode throughput bound (req/s): every lane running the largest batch that memory allows and whose step
 * still meets the TPOT SLO (a bigger batch would miss it for everyone in it).
 */
export function decodeCapacity(ctx: Context, c: Config): number {
  const { meanPromptTokens: p, meanOutputTokens: o } = ctx.sample;
  const stepMs = (b: number): number =>
    c.latency.forward({ newTokens: b, attentionPairs: b * (p + o / 2), kvReadTokens: b * (p + o / 2), sequences: b })
      .totalMs;
  let lo = 1;
  let hi = seqsPerLane(ctx, c);
  if (stepMs(hi) <= ctx.slo.tpotMs) lo = hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (stepMs(mid) <= ctx.slo.tpotMs) lo = mid;
    else hi = mid;
  }
  return (c.pp * lo * 1000) / (stepMs(lo) * Math.max(1, o - 1));
}

export function prefillSim(ctx: Context, c: Config, count: number): DisaggregatedSimConfig["prefill"] {
  return { latency: c.latency, count, maxBatchTokens: ctx.lmTokens, kvLinkGBps: nicKvGBps(ctx, c.gpus) };
}

export function decodeSim(c: Config, count: number, kvLinkGBps: number): DisaggregatedSimConfig["decode"] {
  return {
    latency: c.latency,
    count,
    kvCapacityTokens: c.kvCapacityTokens,
    maxSeqsPerLane: MAX_SEQS_PER_LANE,
    kvLinkGBps,
  };
}

/**
 * Instances a per-configuration search simulates together (at least one): as many as fill one node (or the
 * budget, if smaller). Goodput depends on pooling (k instances behind one shortest-queue dispatcher absorb a
 * burst better than one), so configurations are compared on equal GPU pools, not one instance each, which
 * would favour big instances (a TP4 instance pools 4 GPUs' worth of work, a TP1 instance one). Colocated and
 * disaggregated phase searches use the same pools. The searches return per-instance goodput (pool ÷ k).
 */
export function poolSize(ctx: Context, c: Config): number {
  return Math.max(1, Math.floor(Math.min(ctx.maxNodeGpus, ctx.budgetGpus) / c.gpus));
}

/**
 * Attainment each phase must reach alone. A request meets the end-to-end SLO only if it meets both TTFT and
 * TPOT; with the phases sized separately their misses add up, so each phase gets half the allowed misses
 * (union bound: 95% + 95% guarantees 90% together). Sizing both at the full target overstates every unit whose
 * phases both run near their limit, and ranks units wrongly before the end-to-end measurement.
 */
export function phaseTarget(ctx: Context): number {
  return 1 - (1 - ctx.target) / 2;
}

export function searchPrefill(ctx: Context, c: Config): number {
  const k = poolSize(ctx, c);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg: DisaggregatedSimConfig = {
    prefill: prefillSim(ctx, c, k),
    decode: decodeSim(c, 0, 1),
    kvBytesPerToken: ctx.model.kvBytesPerToken,
    phase: "prefill",
  };
  if (cannotReach(ctx, sample, { prefill: c }, phaseTarget(ctx))) return 0;
  const pool = maxRateMeeting(
    (rate) => attainment(simulateDisaggregated(sample, rate, cfg, ctx.meter), ctx.slo, "prefill"),
    {
      target: phaseTarget(ctx),
      capacityRatePerSec: k * prefillCapacity(ctx, c),
    },
  );
  return pool / k;
}

export function searchDecode(ctx: Context, c: Config, kvLinkGBps: number): number {
  const k = poolSize(ctx, c);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg: DisaggregatedSimConfig = {
    prefill: prefillSim(ctx, c, 0),
    decode: decodeSim(c, k, kvLinkGBps),
    kvBytesPerToken: ctx.model.kvBytesPerToken,
    phase: "decode",
  };
  if (cannotReach(ctx, sample, { decode: c }, phaseTarget(ctx))) return 0;
  const pool = maxRateMeeting(
    (rate) => attainment(simulateDisaggregated(sample, rate, cfg, ctx.meter), ctx.slo, "decode"),
    {
      target: phaseTarget(ctx),
      capacityRatePerSec: k * decodeCapacity(ctx, c),
    },
  );
  return pool / k;
}

/** Sarathi-Serve §4.3: the largest power-of-two token budget whose iteration stays within half the TPOT SLO. */
export function sarathiChunkTokens(ctx: Context, c: Config): number {
  let best = 128;
  for (let tokens = 128; tokens <= 8192; tokens *= 2) {
    const ms = c.latency.forward({
      newTokens: tokens,
      attentionPairs: (tokens * tokens) / 2,
      kvReadTokens: 0,
      sequences: 1,
    }).totalMs;
    if (ms <= ctx.slo.tpotMs / 2) best = tokens;
  }
  return best;
}

export function colocatedSimConfig(ctx: Context, c: Config, count: number, policy: ColocatedPolicy) {
  return {
    latency: c.latency,
    count,
    kvCapacityTokens: c.kvCapacityTokens,
    maxSeqsPerLane: MAX_SEQS_PER_LANE,
    maxBatchTokens: ctx.lmTokens,
    policy,
    chunkTokens: sarathiChunkTokens(ctx, c),
  };
}

/** Time-sharing bound: each request needs 1/prefill + 1/decode of the instance's time. */
export function colocatedCapacity(ctx: Context, c: Config): number {
  return 1 / (1 / prefillCapacity(ctx, c) + 1 / decodeCapacity(ctx, c));
}

export function searchColocated(ctx: Context, c: Config, policy: ColocatedPolicy): number {
  const k = poolSize(ctx, c);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg = colocatedSimConfig(ctx, c, k, policy);
  if (cannotReach(ctx, sample, { prefill: c, decode: c }, ctx.target)) return 0;
  const pool = maxRateMeeting((rate) => attainment(simulateColocated(sample, rate, cfg, ctx.meter), ctx.slo), {
    target: ctx.target,
    capacityRatePerSec: k * colocatedCapacity(ctx, c),
  });
  return pool / k;
}

export function disaggConfig(ctx: Context, s: DisaggShape, nPrefill: number, nDecode: number): DisaggregatedSimConfig {
  const prefill = prefillSim(ctx, s.prefill.config, nPrefill);
  if (s.affinity === "low") prefill.kvLinkGBps = s.kvLinkGBps;
  return {
    prefill,
    decode: decodeSim(s.decode.config, nDecode, s.kvLinkGBps),
    kvBytesPerToken: ctx.model.kvBytesPerToken,
    unit: s.affinity === "low" ? { prefill: s.unitPrefill, decode: s.unitDecode } : undefined,
  };
}

export function measureDisagg(ctx: Context, s: DisaggShape): number {
  const sample = sampleFor(ctx, disaggRequests(ctx, s, s.unitPrefill, s.unitDecode));
  const cfg = disaggConfig(ctx, s, s.unitPrefill, s.unitDecode);
  if (cannotReach(ctx, sample, { prefill: s.prefill.config, decode: s.decode.config }, ctx.target)) return 0;
  const rate = maxRateMeeting((r) => attainment(simulateDisaggregated(sample, r, cfg, ctx.meter), ctx.slo), {
    target: ctx.target,
    capacityRatePerSec: Math.min(
      s.unitPrefill * prefillCapacity(ctx, s.prefill.config),
      s.unitDecode * decodeCapacity(ctx, s.decode.config),
    ),
  });
  return rate / gpusOf(s, s.unitPrefill, s.unitDecode);
}

export function disaggRequests(ctx: Context, s: DisaggShape, nPrefill: number, nDecode: number): number {
  return requestsFor(ctx, nPrefill + nDecode);
}

/** Per-configuration searches and bounds, memoised: the high- and low-affinity searches ask for the same ones. */
export interface PhaseGoodputs {
  prefill(c: Config): number;
  /** Decode goodput with KV arriving over the instance's NICs (high affinity). */
  decodeNic(c: Config): number;
  /** Decode goodput with KV arriving over NVLink (low affinity). */
  decodeNvlink(c: Config): number;
  prefillCap(c: Config): number;
  decodeCap(c: Config): number;
}

export function phaseGoodputs(ctx: Context): PhaseGoodputs {
  return {
    prefill: memo((c: Config) => searchPrefill(ctx, c)),
    decodeNic: memo((c: Config) => searchDecode(ctx, c, nicKvGBps(ctx, c.gpus))),
    decodeNvlink: memo((c: Config) => searchDecode(ctx, c, c.tp * c.pp * ctx.coeffs.p2pNvlinkGBps)),
    prefillCap: memo((c: Config) => prefillCapacity(ctx, c)),
    decodeCap: memo((c: Config) => decodeCapacity(ctx, c)),
  };
}

/** Disaggregated units measured end to end, in the order measured, and the best of them by goodput per GPU. */
export class MeasuredUnits {
  /** Units that met the SLOs (goodput > 0). */
  readonly all: Measured[] = [];
  best: Measured | undefined;
  private readonly seen = new Set<string>();

  constructor(private readonly ctx: Context) {}

  has(shape: DisaggShape): boolean {
    return this.seen.has(shapeKey(shape));
  }

  measure(shape: DisaggShape): number {
    this.seen.add(shapeKey(shape));
    const perGpu = measureDisagg(this.ctx, shape);
    if (perGpu > 0) this.all.push({ shape, perGpu });
    if (perGpu > 0 && (!this.best || perGpu > this.best.perGpu)) this.best = { shape, perGpu };
    return perGpu;
  }
}
