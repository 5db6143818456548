/**
 * Request workloads for the serving simulator: arrivals and prompt/output lengths, all from a seeded PRNG.
 *
 * DistServe (Zhong et al., OSDI 2024, §6.1) evaluates three applications; we rebuild them as follows.
 * - chatbot: DistServe used ShareGPT. We use the Azure LLM inference trace 2023, conversation service, instead:
 *   given as trace records (the benchmark reads data/traces/; a spec names a ConfigMap), or, for the named
 *   preset, sampled from the trace's empirical length quantiles embedded below (prompt and output sampled
 *   independently, which drops their correlation).
 * - trace records: request lengths drawn over the whole trace, stratified by prompt length (stratifiedRecords);
 *   with arrivals: "trace", the arrival gaps of a contiguous window at a seeded offset. Those quantiles are derived
 * data: Azure Public Dataset, CC-BY 4.0; Patel et al., "Splitwise:
 *   Efficient generative LLM inference using phase splitting", ISCA 2024.
 * - code-completion (HumanEval-like: short prompts, short outputs): prompt lognormal, mean 150 tokens, σ=0.45,
 *   clipped to [16, 512]; output lognormal, mean 100, σ=0.5, clipped to [8, 384].
 * - summarization (LongBench-like: long prompts, short outputs): prompt lognormal, mean 1,700, σ=0.35, clipped to
 *   [512, 3,800]; output lognormal, mean 150, σ=0.4, clipped to [32, 400].
 * - explicit distributions {prompt:{mean,max?}, output:{mean,max?}}: lognormal with that mean and σ=0.6.
 * Every request is then fitted into the model's context the way DistServe filters ShareGPT: output ≤ half the
 * context, prompt ≤ context − output.
 *
 * Arrivals: Poisson (exponential gaps), or a trace's own timestamps rescaled to the target mean rate, which keeps
 * its burstiness. Samples are generated once at 1 request/s and divided by the rate, so every rate and every
 * configuration sees the same requests (common random numbers make the goodput search monotone and fair).
 */
import { seededRandom } from "../../../../common/src/random.js";

export const NamedWorkload = {
  chatbot: "chatbot",
  codeCompletion: "code-completion",
  summarization: "summarization",
} as const;
export type NamedWorkload = (typeof NamedWorkload)[keyof typeof NamedWorkload];

export interface LengthDistribution {
  mean: number;
  max?: number;
}

export interface LengthDistributions {
  prompt: LengthDistribution;
  output: LengthDistribution;
}

export interface TraceRecord {
  /** Arrival time; only the differences matter. Needed for arrivals: "trace". */
  arrivalMs?: number;
  promptTokens: number;
  outputTokens: number;
}

export type WorkloadLengths = NamedWorkload | LengthDistributions | { trace: readonly TraceRecord[] };

export const ArrivalProcess = { poisson: "poisson", trace: "trace" } as const;
export type ArrivalProcess = (typeof ArrivalProcess)[keyof typeof ArrivalProcess];

/** Requests at 1 request/s; divide arrivals by a rate to get that rate. */
export interface WorkloadSample {
  count: number;
  unitRateArrivalMs: Float64Array;
  promptTokens: Int32Array;
  outputTokens: Int32Array;
  meanPromptTokens: number;
  meanOutputTokens: number;
  maxPromptTokens: number;
  maxSequenceTokens: number;
}

/** Seeded PRNG (mulberry32) for workloads and the simulator. */
export const makeRng = seededRandom;

function normal(rng: () => number): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

interface LogNormal {
  mean: number;
  sigma: number;
  min: number;
  max: number;
}

function sampleLogNormal(rng: () => number, d: LogNormal): number {
  const mu = Math.log(d.mean) - (d.sigma * d.sigma) / 2;
  return Math.round(Math.min(d.max, Math.max(d.min, Math.exp(mu + d.sigma * normal(rng)))));
}

/**
 * Empirical quantiles (0, 1, 5, 10, …, 95, 99, 100 %) of ContextTokens and GeneratedTokens in the Azure LLM
 * inference trace 2023, conversation service (19,366 requests). Azure Public Dataset, CC-BY 4.0; attribution:
 * Patel et al., "Splitwise", ISCA 2024.
 */
const AZURE_CONV_QUANTILE_LEVELS = [
  0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95,
  0.99, 1,
];
const AZURE_CONV_PROMPT_QUANTILES = [
  2, 29, 181, 207, 372, 387, 396, 403, 414, 703, 984, 1020, 1045, 1071, 1097, 1130, 1189, 1315, 1876, 2734, 4083, 4142,
  14050,
];
const AZURE_CONV_OUTPUT_QUANTILES = [
  7, 16, 41, 54, 67, 77, 85, 91, 96, 103, 113, 129, 151, 177, 217, 384, 395, 400, 411, 424, 451, 601, 1000,
];

function sampleQuantiles(rng: () => number, values: readonly number[]): number {
  const u = rng();
  const levels = AZURE_CONV_QUANTILE_LEVELS;
  let i = 1;
  while (i < levels.length - 1 && (levels[i] ?? 1) < u) i++;
  const lo = levels[i - 1] ?? 0;
  const hi = levels[i] ?? 1;
  const a = values[i - 1] ?? 1;
  const b = values[i] ?? a;
  return Math.max(1, Math.round(a + ((u - lo) / (hi - lo)) * (b - a)));
}

const SYNTHETIC: Readonly<Record<Exclude<NamedWorkload, "chatbot">, { prompt: LogNormal; output: LogNormal }>> = {
  "code-completion": {
    prompt: { mean: 150, sigma: 0.45, min: 16, max: 512 },
    output: { mean: 100, sigma: 0.5, min: 8, max: 384 },
  },
  summarization: {
    prompt: { mean: 1700, sigma: 0.35, min: 512, max: 3800 },
    output: { mean: 150, sigma: 0.4, min: 32, max: 400 },
  },
};

/** The trace ordered by prompt, then output length; computed once per trace (a planner run samples it often). */
const sortedTraces = new WeakMap<readonly TraceRecord[], TraceRecord[]>();
function byPromptLength(records: readonly TraceRecord[]): TraceRecord[] {
  let sorted = sortedTraces.get(records);
  if (!sorted) {
    sorted = [...records].sort((a, b) => a.promptTokens - b.promptTokens || a.outputTokens - b.outputTokens);
    sortedTraces.set(records, sorted);
  }
  return sorted;
}

/**
 * `n` trace records drawn over the whole trace, stratified by prompt length, in random order. The records are
 * ordered by prompt (then output) length and cut into `n` equal strata; one record is drawn uniformly from each,
 * and the draws are shuffled (Fisher–Yates) so lengths do not rise with the arrival index. Each request keeps
 * its record's prompt and output together. Against independent draws with replacement this removes the sampling
 * error of the mean prompt and shrinks that of the mean output: on the conversation trace, 200 requests over 30
 * seeds came within 0.1% (prompt) and 3.8% (output) of the whole trace's means, against 9% and 16.5%.
 */
function stratifiedRecords(rng: () => number, records: readonly TraceRecord[], n: number): TraceRecord[] {
  const sorted = byPromptLength(records);
  const drawn: TraceRecord[] = [];
  for (let i = 0; i < n; i++)
    drawn.push(sorted[Math.min(sorted.length - 1, Math.floor(((i + rng()) / n) * sorted.length))] as TraceRecord);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [drawn[i], drawn[j]] = [drawn[j] as TraceRecord, drawn[i] as TraceRecord];
  }
  return drawn;
}

export class InvalidWorkloadError extends Error {
  override name = "InvalidWorkloadError";
}

export interface SampleOptions {
  count: number;
  seed: number;
  maxContextTokens: number;
  arrivals?: ArrivalProcess;
}

/** Validates a workload description; returns a message naming the bad field, or undefined when it is fine. */
export function workloadProblem(lengths: WorkloadLengths, arrivals: ArrivalProcess = "poisson"): string | undefined {
  if (typeof lengths === "string") {
    return Object.values(NamedWorkload).includes(lengths)
      ? undefined
      : `workload "${lengths}" is not one of ${Object.values(NamedWorkload).join(", ")}`;
  }
  if ("trace" in lengths) {
    if (!Array.isArray(lengths.trace) || lengths.trace.length === 0) return "workload trace has no records";
    for (const [i, r] of lengths.trace.entries()) {
      if (!(
        Number.isInteger(r.promptTokens) &&
        r.promptTokens > 0 &&
        Number.isInteger(r.outputTokens) &&
        r.outputTokens > 0
      )) {
        return `workload trace record ${i}: promptTokens and outputTokens must be positive integers`;
      }
      if (arrivals === "trace" && !Number.isFinite(r.arrivalMs))
        return `workload trace record ${i}: arrivalMs is needed to replay trace arrivals`;
    }
    return undefined;
  }
  if (arrivals === "trace") return "arrivals: trace needs a workload given as trace records";
  for (const key of ["prompt", "output"] as const) {
    const d = lengths[key];
    if (!d || !(d.mean >= 1)) return `workload ${key}.mean must be ≥ 1 token, got ${String(d?.mean)}`;
    if (d.max !== undefined && !(d.max >= d.mean))
      return `workload ${key}.max (${d.max}) must be ≥ ${key}.mean (${d.mean})`;
  }
  return undefined;
}

/** Draws `count` requests at 1 request/s; deterministic for a given seed. Throws InvalidWorkloadError. */
export function sampleWorkload(lengths: WorkloadLengths, options: SampleOptions): WorkloadSample {
  const arrivals = options.arrivals ?? "poisson";
  const problem = workloadProblem(lengths, arrivals);
  if (problem) throw new InvalidWorkloadError(problem);
  if (!(Number.isInteger(options.count) && options.count > 0))
    throw new InvalidWorkloadError(`sample count must be a positive integer, got ${options.count}`);
  const rng = makeRng(options.seed);
  const n = options.count;
  const unitRateArrivalMs = new Float64Array(n);
  const promptTokens = new Int32Array(n);
  const outputTokens = new Int32Array(n);
  const ctx = options.maxContextTokens;

  let draw: (i: number) => [number, number];
  let traceGaps: number[] | undefined;
  if (typeof lengths === "string" && lengths === "chatbot") {
    draw = () => [sampleQuantiles(rng, AZURE_CONV_PROMPT_QUANTILES), sampleQuantiles(rng, AZURE_CONV_OUTPUT_QUANTILES)];
  } else if (typeof lengths === "string") {
    const d = SYNTHETIC[lengths as Exclude<NamedWorkload, "chatbot">];
    draw = () => [sampleLogNormal(rng, d.prompt), sampleLogNormal(rng, d.output)];
  } else if ("trace" in lengths) {
    const records = lengths.trace;
    // Arrival gaps: a contiguous window of the trace at a seeded offset (when the trace is longer than the
    // sample), wrapping around, because burstiness is a property of consecutive arrivals.
    const offsetDraw = rng();
    const offset = records.length > n ? Math.floor(offsetDraw * records.length) : 0;
    const windowRecord = (i: number): TraceRecord => records[(offset + i) % records.length] as TraceRecord;
    // Lengths: drawn over the whole trace, not from the window (one window is not the trace: the conversation
    // trace's windows of a few hundred requests average 736–848 prompt tokens against 931 for the whole).
    const lengthsDrawn = stratifiedRecords(rng, records, n);
    draw = (i) => [(lengthsDrawn[i] as TraceRecord).promptTokens, (lengthsDrawn[i] as TraceRecord).outputTokens];
    if (arrivals === "trace") {
      // Gaps between consecutive records; wrapping from the end back to the start has no real gap (NaN here,
      // replaced by the mean gap below).
      traceGaps = [];
      for (let i = 0; i < n; i++) {
        const prev = i === 0 ? undefined : windowRecord(i - 1).arrivalMs;
        const cur = windowRecord(i).arrivalMs ?? 0;
        traceGaps.push(
          prev === undefined ? 0 : cur >= prev && (offset + i) % records.length !== 0 ? cur - prev : Number.NaN,
        );
      }
    }
  } else {
    const p: LogNormal = { mean: lengths.prompt.mean, sigma: 0.6, min: 1, max: lengths.prompt.max ?? ctx };
    const o: LogNormal = { mean: lengths.output.mean, sigma: 0.6, min: 1, max: lengths.output.max ?? ctx };
    draw = () => [sampleLogNormal(rng, p), sampleLogNormal(rng, o)];
  }

  let t = 0;
  for (let i = 0; i < n; i++) {
    const [prompt, output] = draw(i);
    const out = Math.max(1, Math.min(output, Math.floor(ctx / 2)));
    outputTokens[i] = out;
    promptTokens[i] = Math.max(1, Math.min(prompt, ctx - out));
    if (!traceGaps) {
      t += -Math.log(1 - rng()) * 1000; // exponential gap, mean 1 s
      unitRateArrivalMs[i] = t;
    }
  }
  if (traceGaps) {
    const gaps = traceGaps;
    const finite = gaps.filter((g, i) => i > 0 && Number.isFinite(g));
    const meanGap = finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : 1;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const g = gaps[i] ?? 0;
      acc += Number.isFinite(g) ? g : meanGap;
      unitRateArrivalMs[i] = acc;
    }
    // Rescale so the mean rate is 1 request/s: n requests over n seconds.
    const span = unitRateArrivalMs[n - 1] ?? 0;
    const scale = span > 0 ? ((n - 1) * 1000) / span : 1;
    for (let i = 0; i < n; i++) unitRateArrivalMs[i] = (unitRateArrivalMs[i] ?? 0) * scale;
  }
  let sumP = 0;
  let sumO = 0;
  let maxP = 0;
  let maxSeq = 0;
  for (let i = 0; i < n; i++) {
    const p = promptTokens[i] ?? 0;
    const o = outputTokens[i] ?? 0;
    sumP += p;
    sumO += o;
    maxP = Math.max(maxP, p);
    maxSeq = Math.max(maxSeq, p + o);
  }
  return {
    count: n,
    unitRateArrivalMs,
    promptTokens,
    outputTokens,
    meanPromptTokens: sumP / n,
    meanOutputTokens: sumO / n,
    maxPromptTokens: maxP,
    maxSequenceTokens: maxSeq,
  };
}

export class TraceParseError extends Error {
  override name = "TraceParseError";
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`trace line ${line}: ${message}`);
  }
}

/**
 * Parses the Azure LLM inference trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens; timestamps like
 * "2023-11-16 18:15:46.6805900", taken as UTC). Pure: the caller reads the file.
 */
export function parseAzureTraceCsv(text: string): TraceRecord[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? "").trim();
  if (header !== "TIMESTAMP,ContextTokens,GeneratedTokens") {
    throw new TraceParseError(
      1,
      `expected header TIMESTAMP,ContextTokens,GeneratedTokens, got "${header.slice(0, 80)}"`,
    );
  }
  const records: TraceRecord[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    if (line === "") continue;
    const [ts, ctx, gen] = line.split(",");
    const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(ts ?? "");
    if (!m) throw new TraceParseError(i + 1, `bad timestamp "${ts}"`);
    const fraction = Number(`0.${m[7] ?? "0"}`);
    const arrivalMs =
      Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) +
      fraction * 1000;
    const promptTokens = Number(ctx);
    const outputTokens = Number(gen);
    if (!Number.isInteger(promptTokens) || promptTokens <= 0)
      throw new TraceParseError(i + 1, `bad ContextTokens "${ctx}"`);
    if (!Number.isInteger(outputTokens) || outputTokens <= 0)
      throw new TraceParseError(i + 1, `bad GeneratedTokens "${gen}"`);
    records.push({ arrivalMs, promptTokens, outputTokens });
  }
  return records;
}
