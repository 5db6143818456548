/**
 * Deterministic discrete-event simulator of LLM serving pools, used by the planner to measure SLO attainment.
 *
 * Disaggregated (DistServe, Zhong et al. OSDI 2024, §4 and §5):
 * - arrivals go to the prefill instance with the fewest outstanding prompt tokens (DistServe's controller
 *   dispatches to the shortest queue); each prefill instance serves FCFS and batches queued prompts until the
 *   batch would exceed the saturating token count L_m (§3.1); a PP instance accepts a new batch every
 *   bottleneck-stage time while earlier batches are still in later stages;
 * - the first token leaves with the prefill (TTFT); the KV cache (prompt · kvBytesPerToken) then crosses the
 *   link between the prefill instance and the least-loaded decode instance (in low node-affinity plans, one of
 *   its own unit, over NVLink); each side's link is a FIFO at the slower side's bandwidth;
 * - decode instances run continuous batching (Orca/vLLM): a request joins at the next step if its KV fits; it
 *   reserves prompt + output tokens on admission (the simulator knows output lengths, so no preemption is
 *   modelled). A PP decode instance runs PP micro-batch "lanes", each with 1/PP of the KV memory, whose step
 *   time is the full pipeline round trip; this is how PP raises decode throughput but not per-token speed. The
 *   lanes share the instance's stages (FIFO per stage), so a slow micro-batch delays the others.
 * Colocated (the baseline):
 * - vLLM (Kwon et al., SOSP 2023): an iteration prefills waiting prompts whenever they fit (prefill first, the
 *   running decodes stall), otherwise runs one decode step;
 * - chunked prefill (Sarathi-Serve, Agrawal et al., OSDI 2024, §4): every iteration carries all running decodes
 *   plus prompt chunks up to a token budget, so decodes never stall behind a whole prompt.
 *
 * TTFT = first token − arrival; TPOT = (finish − first token) / (output − 1), DistServe §2's definitions.
 * Everything is deterministic: same sample, rate and configuration give the same outcome.
 */
import { type InstanceLatencyModel } from "../../../../common/src/models/latency.js";
import type { WorkloadSample } from "./workload.js";

export interface SimOutcome {
  ttftMs: Float64Array;
  tpotMs: Float64Array;
}

export interface Slo {
  ttftMs: number;
  tpotMs: number;
}

/** Fraction (0–1) of requests meeting both SLOs; `phase` checks only one of them. */
export function attainment(outcome: SimOutcome, slo: Slo, phase: "both" | "prefill" | "decode" = "both"): number {
  const n = outcome.ttftMs.length;
  if (n === 0) return 1;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const ttftOk = phase === "decode" || (outcome.ttftMs[i] ?? Infinity) <= slo.ttftMs;
    const tpotOk = phase === "prefill" || (outcome.tpotMs[i] ?? Infinity) <= slo.tpotMs;
    if (ttftOk && tpotOk) ok++;
  }
  return ok / n;
}

export interface PrefillPoolSim {
  latency: InstanceLatencyModel;
  count: number;
  maxBatchTokens: number;
  /** KV egress bandwidth of one instance. */
  kvLinkGBps: number;
}

export interface DecodePoolSim {
  latency: InstanceLatencyModel;
  count: number;
  kvCapacityTokens: number;
  maxSeqsPerLane: number;
  /** KV ingress bandwidth of one instance. */
  kvLinkGBps: number;
}

export interface DisaggregatedSimConfig {
  prefill: PrefillPoolSim;
  decode: DecodePoolSim;
  kvBytesPerToken: number;
  /** Low node-affinity units: prefill instance i sends KV only to decode instances of unit ⌊i/prefill⌋. */
  unit?: { prefill: number; decode: number };
  /** Simulate one phase alone: "prefill" ignores decode; "decode" feeds arrivals straight to KV transfer. */
  phase?: "both" | "prefill" | "decode";
}

/**
 * Work a simulation may still do: one unit per simulated event plus one per sequence a batch step advances (what
 * the event loop's cost is proportional to). Shared by every simulation of one planning run (work-budget.ts), so
 * a run is bounded by a count, not a clock: the same input stops at the same point on any machine.
 */
export interface WorkMeter {
  spent: number;
  limit: number;
}

/** Thrown inside a simulation when its WorkMeter runs out; the planner catches it (work-budget.ts). */
export class WorkBudgetExhausted extends Error {
  constructor(readonly meter: WorkMeter) {
    super(`simulation work budget of ${meter.limit} units exhausted`);
    this.name = "WorkBudgetExhausted";
  }
}

/** Charges `units` of work; throws WorkBudgetExhausted once the meter is past its limit. */
function charge(meter: WorkMeter | undefined, units: number): void {
  if (!meter) return;
  meter.spent += units;
  if (meter.spent > meter.limit) throw new WorkBudgetExhausted(meter);
}

export const ColocatedPolicy = { vllm: "vllm", chunked: "chunked" } as const;
export type ColocatedPolicy = (typeof ColocatedPolicy)[keyof typeof ColocatedPolicy];

export interface ColocatedSimConfig {
  latency: InstanceLatencyModel;
  count: number;
  kvCapacityTokens: number;
  maxSeqsPerLane: number;
  /** vLLM: prompt tokens in one prefill iteration. */
  maxBatchTokens: number;
  policy: ColocatedPolicy;
  /** Sarathi: token budget per iteration (decodes + prompt chunks). */
  chunkTokens: number;
}

// ---------------------------------------------------------------------------------------------------------
// Event queue: binary min-heap on (time, insertion order) so equal times resolve deterministically.

const Ev = { arrival: 0, prefillFree: 1, prefillDone: 2, decodeArrive: 3, laneDone: 4 } as const;

class EventHeap {
  private t: number[] = [];
  private s: number[] = [];
  private k: number[] = [];
  private a: number[] = [];
  private b: number[] = [];
  private seq = 0;
  size = 0;
  // Popped event, read by the caller.
  time = 0;
  kind = 0;
  argA = 0;
  argB = 0;

  push(time: number, kind: number, a: number, b: number): void {
    let i = this.size++;
    const s = this.seq++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = this.t[p] as number;
      if (pt < time || (pt === time && (this.s[p] as number) < s)) break;
      this.t[i] = pt;
      this.s[i] = this.s[p] as number;
      this.k[i] = this.k[p] as number;
      this.a[i] = this.a[p] as number;
      this.b[i] = this.b[p] as number;
      i = p;
    }
    this.t[i] = time;
    this.s[i] = s;
    this.k[i] = kind;
    this.a[i] = a;
    this.b[i] = b;
  }

  pop(): boolean {
    if (this.size === 0) return false;
    this.time = this.t[0] as number;
    this.kind = this.k[0] as number;
    this.argA = this.a[0] as number;
    this.argB = this.b[0] as number;
    const n = --this.size;
    if (n === 0) return true;
    const lt = this.t[n] as number;
    const ls = this.s[n] as number;
    const lk = this.k[n] as number;
    const la = this.a[n] as number;
    const lb = this.b[n] as number;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (
        r < n &&
        ((this.t[r] as number) < (this.t[c] as number) ||
          ((this.t[r] as number) === (this.t[c] as number) && (this.s[r] as number) < (this.s[c] as number)))
      )
        c = r;
      const ct = this.t[c] as number;
      if (lt < ct || (lt === ct && ls < (this.s[c] as number))) break;
      this.t[i] = ct;
      this.s[i] = this.s[c] as number;
      this.k[i] = this.k[c] as number;
      this.a[i] = this.a[c] as number;
      this.b[i] = this.b[c] as number;
      i = c;
    }
    this.t[i] = lt;
    this.s[i] = ls;
    this.k[i] = lk;
    this.a[i] = la;
    this.b[i] = lb;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Shared request state and the continuous-batching lane used by decode and colocated instances.

interface Requests {
  arrivalMs: Float64Array;
  prompt: Int32Array;
  output: Int32Array;
  firstTokenMs: Float64Array;
  finishMs: Float64Array;
  /** Decode tokens still to generate. */
  remaining: Int32Array;
  /** Tokens of KV the request holds (prompt + generated). */
  ctx: Int32Array;
  /** Prompt tokens already prefilled (chunked prefill). */
  prefilled: Int32Array;
}

function makeRequests(sample: WorkloadSample, ratePerSec: number): Requests {
  const n = sample.count;
  const arrivalMs = new Float64Array(n);
  for (let i = 0; i < n; i++) arrivalMs[i] = (sample.unitRateArrivalMs[i] as number) / ratePerSec;
  return {
    arrivalMs,
    prompt: sample.promptTokens,
    output: sample.outputTokens,
    firstTokenMs: new Float64Array(n).fill(Number.NaN),
    finishMs: new Float64Array(n).fill(Number.NaN),
    remaining: new Int32Array(n),
    ctx: new Int32Array(n),
    prefilled: new Int32Array(n),
  };
}

function outcomeOf(req: Requests): SimOutcome {
  const n = req.arrivalMs.length;
  const ttftMs = new Float64Array(n);
  const tpotMs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const first = req.firstTokenMs[i] as number;
    const finish = req.finishMs[i] as number;
    const out = req.output[i] as number;
    ttftMs[i] = Number.isNaN(first) ? Infinity : first - (req.arrivalMs[i] as number);
    tpotMs[i] = Number.isNaN(finish) ? Infinity : out > 1 ? (finish - first) / (out - 1) : 0;
  }
  return { ttftMs, tpotMs };
}

const LaneMode = { decode: 0, vllm: 1, chunked: 2 } as const;
type LaneMode = (typeof LaneMode)[keyof typeof LaneMode];

/**
 * The PP stages of one instance, shared by its micro-batch lanes. Stages serve micro-batches FIFO in the order
 * they were launched (Megatron/vLLM pipeline schedule), so a long prefill micro-batch in one lane holds every
 * stage for its full stage time and the other lanes' decode micro-batches queue behind it stage by stage: the
 * pipeline bubble that makes prefill-decode interference hit all running requests of a PP instance, not just
 * the 1/PP in the same lane.
 */
class Pipeline {
  private readonly stageFreeMs: Float64Array;
  constructor(readonly stages: number) {
    this.stageFreeMs = new Float64Array(stages);
  }

  /** Reserves every stage in turn for a micro-batch launched at `now`; returns when it leaves the last stage. */
  launch(now: number, totalMs: number): number {
    if (this.stages === 1) return now + totalMs;
    const stageMs = totalMs / this.stages;
    let t = now;
    for (let s = 0; s < this.stages; s++) {
      t = Math.max(t, this.stageFreeMs[s] as number) + stageMs;
      this.stageFreeMs[s] = t;
    }
    return t;
  }
}

class Lane {
  running: number[] = [];
  waiting: number[] = [];
  waitHead = 0;
  /** Admitted, prompt not fully prefilled (chunked only). */
  prefilling: number[] = [];
  reservedTokens = 0;
  ctxTokens = 0;
  /** Reserved plus waiting tokens: what dispatch balances. */
  loadTokens = 0;
  busy = false;
  iterDecode = 0;
  iterPrefill: number[] = [];
  iterChunkTokens: number[] = [];

  constructor(
    readonly id: number,
    readonly mode: LaneMode,
    readonly latency: InstanceLatencyModel,
    readonly capacityTokens: number,
    readonly maxSeqs: number,
    readonly maxBatchTokens: number,
    readonly chunkTokens: number,
    readonly pipeline: Pipeline,
  ) {}

  private need(req: Requests, r: number): number {
    return (req.prompt[r] as number) + (req.output[r] as number);
  }

  private fits(req: Requests, r: number, inFlight: number): boolean {
    if (inFlight >= this.maxSeqs) return false;
    // A request bigger than the whole lane still runs alone rather than deadlocking the simulation.
    return this.reservedTokens + this.need(req, r) <= this.capacityTokens || inFlight === 0;
  }

  enqueue(req: Requests, r: number): void {
    this.waiting.push(r);
    this.loadTokens += this.need(req, r);
  }

  private admitDecodes(req: Requests): void {
    while (this.waitHead < this.waiting.length) {
      const r = this.waiting[this.waitHead] as number;
      if (!this.fits(req, r, this.running.length)) break;
      this.waitHead++;
      this.reservedTokens += this.need(req, r);
      req.ctx[r] = (req.prompt[r] as number) + 1;
      this.ctxTokens += req.ctx[r] as number;
      this.running.push(r);
    }
    this.compactWaiting();
  }

  private compactWaiting(): void {
    if (this.waitHead > 64 && this.waitHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitHead);
      this.waitHead = 0;
    }
  }

  /** Starts the next iteration if idle and there is work; schedules its completion. */
  kick(req: Requests, heap: EventHeap, now: number): void {
    if (this.busy) return;
    this.iterDecode = 0;
    this.iterPrefill.length = 0;
    this.iterChunkTokens.length = 0;
    let newTokens = 0;
    let attentionPairs = 0;
    let kvReadTokens = 0;
    let sequences = 0;
    if (this.mode === LaneMode.decode) {
      this.admitDecodes(req);
    } else if (this.mode === LaneMode.vllm) {
      // Prefill-first: admit waiting prompts FCFS while memory, sequence slots and the token budget allow.
      let inFlight = this.running.length;
      while (this.waitHead < this.waiting.length) {
        const r = this.waiting[this.waitHead] as number;
        const p = req.prompt[r] as number;
        if (this.iterPrefill.length > 0 && newTokens + p > this.maxBatchTokens) break;
        if (!this.fits(req, r, inFlight)) break;
        this.waitHead++;
        inFlight++;
        this.reservedTokens += this.need(req, r);
        this.iterPrefill.push(r);
        newTokens += p;
        attentionPairs += (p * (p + 1)) / 2;
        sequences++;
      }
      this.compactWaiting();
    } else {
      // Sarathi-Serve: all decodes plus prompt chunks up to the token budget.
      let budget = Math.max(0, this.chunkTokens - this.running.length);
      let i = 0;
      while (budget > 0) {
        let r: number;
        if (i < this.prefilling.length) r = this.prefilling[i] as number;
        else {
          if (this.waitHead >= this.waiting.length) break;
          r = this.waiting[this.waitHead] as number;
          if (!this.fits(req, r, this.running.length + this.prefilling.length)) break;
          this.waitHead++;
          this.reservedTokens += this.need(req, r);
          this.prefilling.push(r);
        }
        const done = req.prefilled[r] as number;
        const c = Math.min(budget, (req.prompt[r] as number) - done);
        this.iterPrefill.push(r);
        this.iterChunkTokens.push(c);
        newTokens += c;
        attentionPairs += c * done + (c * (c + 1)) / 2;
        kvReadTokens += done;
        if (done + c === req.prompt[r]) sequences++;
        budget -= c;
        i++;
      }
      this.compactWaiting();
    }
    const decodeNow = this.mode !== LaneMode.vllm || this.iterPrefill.length === 0;
    if (decodeNow && this.running.length > 0) {
      this.iterDecode = this.running.length;
      newTokens += this.iterDecode;
      attentionPairs += this.ctxTokens;
      kvReadTokens += this.ctxTokens;
      sequences += this.iterDecode;
    }
    if (newTokens === 0) return;
    this.busy = true;
    const ms = this.latency.forward({ newTokens, attentionPairs, kvReadTokens, sequences }).totalMs;
    heap.push(this.pipeline.launch(now, ms), Ev.laneDone, this.id, 0);
  }

  /** Applies a finished iteration: tokens generated, first tokens emitted, finished requests released. */
  complete(req: Requests, now: number): void {
    this.busy = false;
    if (this.iterDecode > 0) {
      let kept = 0;
      for (let i = 0; i < this.running.length; i++) {
        const r = this.running[i] as number;
        req.ctx[r] = (req.ctx[r] as number) + 1;
        this.ctxTokens++;
        req.remaining[r] = (req.remaining[r] as number) - 1;
        if ((req.remaining[r] as number) <= 0) this.finish(req, r, now);
        else this.running[kept++] = r;
      }
      this.running.length = kept;
    }
    if (this.mode === LaneMode.vllm) {
      for (const r of this.iterPrefill) this.firstToken(req, r, now);
    } else if (this.mode === LaneMode.chunked) {
      let kept = 0;
      const chunkOf = new Map<number, number>();
      for (let i = 0; i < this.iterPrefill.length; i++)
        chunkOf.set(this.iterPrefill[i] as number, this.iterChunkTokens[i] as number);
      for (const r of this.prefilling) {
        req.prefilled[r] = (req.prefilled[r] as number) + (chunkOf.get(r) ?? 0);
        if (req.prefilled[r] === req.prompt[r]) this.firstToken(req, r, now);
        else this.prefilling[kept++] = r;
      }
      this.prefilling.length = kept;
    }
  }

  private firstToken(req: Requests, r: number, now: number): void {
    req.firstTokenMs[r] = now;
    req.remaining[r] = (req.output[r] as number) - 1;
    if ((req.remaining[r] as number) <= 0) {
      this.finish(req, r, now, false);
      return;
    }
    req.ctx[r] = (req.prompt[r] as number) + 1;
    this.ctxTokens += req.ctx[r] as number;
    this.running.push(r);
  }

  private finish(req: Requests, r: number, now: number, holdsCtx = true): void {
    req.finishMs[r] = now;
    const need = this.need(req, r);
    this.reservedTokens -= need;
    this.loadTokens -= need;
    if (holdsCtx) this.ctxTokens -= req.ctx[r] as number;
  }
}

function makeLanes(
  instances: number,
  lanesPer: number,
  mode: LaneMode,
  latency: InstanceLatencyModel,
  capacityTokens: number,
  maxSeqs: number,
  maxBatchTokens: number,
  chunkTokens: number,
): Lane[] {
  const lanes: Lane[] = [];
  let pipeline = new Pipeline(lanesPer);
  for (let i = 0; i < instances * lanesPer; i++) {
    if (i % lanesPer === 0) pipeline = new Pipeline(lanesPer);
    lanes.push(
      new Lane(i, mode, latency, Math.floor(capacityTokens / lanesPer), maxSeqs, maxBatchTokens, chunkTokens, pipeline),
    );
  }
  return lanes;
}

/** Least-loaded lane among instances [first, first+count), ties to the lowest index. */
function pickLane(lanes: readonly Lane[], lanesPer: number, first: number, count: number): Lane {
  let best = lanes[first * lanesPer] as Lane;
  let bestInstanceLoad = Infinity;
  for (let d = first; d < first + count; d++) {
    let load = 0;
    for (let l = 0; l < lanesPer; l++) load += (lanes[d * lanesPer + l] as Lane).loadTokens;
    if (load < bestInstanceLoad) {
      bestInstanceLoad = load;
      for (let l = 0; l < lanesPer; l++) {
        const lane = lanes[d * lanesPer + l] as Lane;
        if (l === 0 || lane.loadTokens < best.loadTokens) best = lane;
      }
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------

/** Simulates prefill and decode pools (or one of them) at `ratePerSec`. */
export function simulateDisaggregated(
  sample: WorkloadSample,
  ratePerSec: number,
  cfg: DisaggregatedSimConfig,
  meter?: WorkMeter,
): SimOutcome {
  const phase = cfg.phase ?? "both";
  const req = makeRequests(sample, ratePerSec);
  const heap = new EventHeap();
  const n = sample.count;
  for (let r = 0; r < n; r++) heap.push(req.arrivalMs[r] as number, Ev.arrival, r, 0);

  const pCount = cfg.prefill.count;
  const queues: number[][] = Array.from({ length: pCount }, () => []);
  const queueHead = new Int32Array(pCount);
  const outstanding = new Float64Array(pCount);
  const nextAcceptMs = new Float64Array(pCount);
  const freeScheduled = new Uint8Array(pCount);
  const egressFreeMs = new Float64Array(pCount);
  const batches: number[][] = [];

  const dPP = cfg.decode.latency.parallelism.pp;
  const lanes = makeLanes(
    cfg.decode.count,
    dPP,
    LaneMode.decode,
    cfg.decode.latency,
    cfg.decode.kvCapacityTokens,
    cfg.decode.maxSeqsPerLane,
    0,
    0,
  );
  const ingressFreeMs = new Float64Array(cfg.decode.count);
  const kvBytesPerMs = Math.min(phase === "decode" ? Infinity : cfg.prefill.kvLinkGBps, cfg.decode.kvLinkGBps) * 1e6;

  const sendToDecode = (r: number, p: number, now: number): void => {
    const unit = cfg.unit;
    const first = unit && p >= 0 ? Math.floor(p / unit.prefill) * unit.decode : 0;
    const count = unit && p >= 0 ? Math.min(unit.decode, cfg.decode.count - first) : cfg.decode.count;
    const lane = pickLane(lanes, dPP, first, count);
    const d = Math.floor(lane.id / dPP);
    const start = Math.max(now, p >= 0 ? (egressFreeMs[p] as number) : now, ingressFreeMs[d] as number);
    const end = start + ((req.prompt[r] as number) * cfg.kvBytesPerToken) / kvBytesPerMs;
    if (p >= 0) egressFreeMs[p] = end;
    ingressFreeMs[d] = end;
    heap.push(end, Ev.decodeArrive, lane.id, r);
  };

  const tryStart = (p: number, now: number): void => {
    const q = queues[p] as number[];
    if (queueHead[p] === q.length) return;
    if (now < (nextAcceptMs[p] as number)) {
      if (!freeScheduled[p]) {
        freeScheduled[p] = 1;
        heap.push(nextAcceptMs[p] as number, Ev.prefillFree, p, 0);
      }
      return;
    }
    const batch: number[] = [];
    let tokens = 0;
    let pairs = 0;
    while ((queueHead[p] as number) < q.length) {
      const r = q[queueHead[p] as number] as number;
      const s = req.prompt[r] as number;
      if (batch.length > 0 && tokens + s > cfg.prefill.maxBatchTokens) break;
      batch.push(r);
      tokens += s;
      pairs += (s * (s + 1)) / 2;
      queueHead[p] = (queueHead[p] as number) + 1;
    }
    const lat = cfg.prefill.latency.forward({
      newTokens: tokens,
      attentionPairs: pairs,
      kvReadTokens: 0,
      sequences: batch.length,
    });
    nextAcceptMs[p] = now + lat.bottleneckStageMs;
    batches.push(batch);
    heap.push(now + lat.totalMs, Ev.prefillDone, p, batches.length - 1);
    if ((queueHead[p] as number) < q.length && !freeScheduled[p]) {
      freeScheduled[p] = 1;
      heap.push(nextAcceptMs[p] as number, Ev.prefillFree, p, 0);
    }
  };

  while (heap.pop()) {
    const now = heap.time;
    charge(meter, heap.kind === Ev.laneDone ? 1 + (lanes[heap.argA] as Lane).running.length : 1);
    switch (heap.kind) {
      case Ev.arrival: {
        const r = heap.argA;
        if (phase === "decode") {
          req.firstTokenMs[r] = now;
          req.remaining[r] = (req.output[r] as number) - 1;
          if ((req.remaining[r] as number) <= 0) req.finishMs[r] = now;
          else sendToDecode(r, -1, now);
          break;
        }
        let p = 0;
        for (let i = 1; i < pCount; i++) if ((outstanding[i] as number) < (outstanding[p] as number)) p = i;
        (queues[p] as number[]).push(r);
        outstanding[p] = (outstanding[p] as number) + (req.prompt[r] as number);
        tryStart(p, now);
        break;
      }
      case Ev.prefillFree: {
        freeScheduled[heap.argA] = 0;
        tryStart(heap.argA, now);
        break;
      }
      case Ev.prefillDone: {
        const p = heap.argA;
        for (const r of batches[heap.argB] as number[]) {
          outstanding[p] = (outstanding[p] as number) - (req.prompt[r] as number);
          req.firstTokenMs[r] = now;
          req.remaining[r] = (req.output[r] as number) - 1;
          if (phase === "prefill" || (req.remaining[r] as number) <= 0) req.finishMs[r] = now;
          else sendToDecode(r, p, now);
        }
        batches[heap.argB] = [];
        break;
      }
      case Ev.decodeArrive: {
        const lane = lanes[heap.argA] as Lane;
        lane.enqueue(req, heap.argB);
        lane.kick(req, heap, now);
        break;
      }
      case Ev.laneDone: {
        const lane = lanes[heap.argA] as Lane;
        lane.complete(req, now);
        lane.kick(req, heap, now);
        break;
      }
    }
  }
  const outcome = outcomeOf(req);
  if (phase === "prefill") outcome.tpotMs.fill(0);
  return outcome;
}

/** Simulates `count` colocated instances (each doing prefill and decode) at `ratePerSec`. */
export function simulateColocated(
  sample: WorkloadSample,
  ratePerSec: number,
  cfg: ColocatedSimConfig,
  meter?: WorkMeter,
): SimOutcome {
  const req = makeRequests(sample, ratePerSec);
  const heap = new EventHeap();
  for (let r = 0; r < sample.count; r++) heap.push(req.arrivalMs[r] as number, Ev.arrival, r, 0);
  const pp = cfg.latency.parallelism.pp;
  const mode = cfg.policy === ColocatedPolicy.chunked ? LaneMode.chunked : LaneMode.vllm;
  const lanes = makeLanes(
    cfg.count,
    pp,
    mode,
    cfg.latency,
    cfg.kvCapacityTokens,
    cfg.maxSeqsPerLane,
    cfg.maxBatchTokens,
    cfg.chunkTokens,
  );
  while (heap.pop()) {
    const now = heap.time;
    charge(meter, heap.kind === Ev.arrival ? 1 : 1 + (lanes[heap.argA] as Lane).running.length);
    if (heap.kind === Ev.arrival) {
      const lane = pickLane(lanes, pp, 0, cfg.count);
      lane.enqueue(req, heap.argA);
      lane.kick(req, heap, now);
    } else {
      const lane = lanes[heap.argA] as Lane;
      lane.complete(req, now);
      lane.kick(req, heap, now);
    }
  }
  return outcomeOf(req);
}
