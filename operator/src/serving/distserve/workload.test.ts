import { describe, expect, it } from "vitest";
import { loadTraceFile } from "../trace-file.js";
import { parseAzureTraceCsv, sampleWorkload, type TraceRecord } from "./workload.js";

/** Mean prompt and output tokens of the whole trace after fitting each request into the context (as sampling does). */
function trimmedMeans(trace: readonly TraceRecord[], maxContextTokens: number): { prompt: number; output: number } {
  let prompt = 0;
  let output = 0;
  for (const r of trace) {
    const o = Math.max(1, Math.min(r.outputTokens, Math.floor(maxContextTokens / 2)));
    output += o;
    prompt += Math.max(1, Math.min(r.promptTokens, maxContextTokens - o));
  }
  return { prompt: prompt / trace.length, output: output / trace.length };
}

describe("workloads", () => {
  it.each([
    ["chatbot", 600, 1400, 100, 300],
    ["code-completion", 100, 220, 60, 140],
    ["summarization", 1300, 2100, 100, 200],
  ] as const)("%s has its stated mean lengths", (name, pLo, pHi, oLo, oHi) => {
    const s = sampleWorkload(name, { count: 4000, seed: 7, maxContextTokens: 8192 });
    expect(s.meanPromptTokens).toBeGreaterThan(pLo);
    expect(s.meanPromptTokens).toBeLessThan(pHi);
    expect(s.meanOutputTokens).toBeGreaterThan(oLo);
    expect(s.meanOutputTokens).toBeLessThan(oHi);
    // Poisson at 1 req/s: mean gap ≈ 1 s.
    expect((s.unitRateArrivalMs[3999] as number) / 4000).toBeGreaterThan(900);
    expect((s.unitRateArrivalMs[3999] as number) / 4000).toBeLessThan(1100);
  });

  it("fits every request into the model context", () => {
    const s = sampleWorkload("summarization", { count: 500, seed: 1, maxContextTokens: 2048 });
    expect(s.maxSequenceTokens).toBeLessThanOrEqual(2048);
  });

  it("is deterministic under a seed and differs across seeds", () => {
    const a = sampleWorkload("chatbot", { count: 100, seed: 3, maxContextTokens: 4096 });
    const b = sampleWorkload("chatbot", { count: 100, seed: 3, maxContextTokens: 4096 });
    const c = sampleWorkload("chatbot", { count: 100, seed: 4, maxContextTokens: 4096 });
    expect(b).toEqual(a);
    expect(c.promptTokens).not.toEqual(a.promptTokens);
  });

  it("replays trace arrivals rescaled to 1 request/s, keeping their burstiness", () => {
    const trace = [0, 100, 200, 5000, 5100, 5200].map((t, i) => ({
      arrivalMs: t,
      promptTokens: 10 + i,
      outputTokens: 5,
    }));
    const s = sampleWorkload({ trace }, { count: 6, seed: 1, maxContextTokens: 4096, arrivals: "trace" });
    const gaps = [...s.unitRateArrivalMs].slice(1).map((t, i) => t - (s.unitRateArrivalMs[i] as number));
    expect((s.unitRateArrivalMs[5] as number) - (s.unitRateArrivalMs[0] as number)).toBeCloseTo(5000, 0);
    expect(Math.max(...gaps) / Math.min(...gaps)).toBeGreaterThan(10);
  });

  it("parses the Azure CSV and reports bad lines by number", () => {
    const text =
      "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.5000000,374,44\n2023-11-16 18:15:47.0000000,10,2\n";
    const records = parseAzureTraceCsv(text);
    expect(records).toHaveLength(2);
    expect((records[1]?.arrivalMs ?? 0) - (records[0]?.arrivalMs ?? 0)).toBeCloseTo(500, 3);
    expect(() => parseAzureTraceCsv(`${text}2023-11-16 18:15:48,x,2\n`)).toThrow(/trace line 4: bad ContextTokens "x"/);
    expect(() => parseAzureTraceCsv("a,b,c\n")).toThrow(/expected header/);
  });

  it.each([
    ["unknown name", "chat" as never, /workload "chat" is not one of/],
    ["zero mean", { prompt: { mean: 0 }, output: { mean: 10 } }, /prompt.mean must be ≥ 1/],
    ["empty trace", { trace: [] }, /no records/],
  ])("rejects %s", (_n, lengths, message) => {
    expect(() => sampleWorkload(lengths, { count: 10, seed: 1, maxContextTokens: 2048 })).toThrow(message);
  });

  describe("a trace sample stands for the whole trace (Azure conversation trace, OPT's 2,048-token context)", () => {
    const trace = loadTraceFile();
    const whole = trimmedMeans(trace, 2048);
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

    it("is the trace the issue measured: 931 prompt and 211 output tokens on average", () => {
      expect(whole.prompt).toBeCloseTo(931, -1);
      expect(whole.output).toBeCloseTo(211, -1);
    });

    // Tolerances: prompt lengths are stratified, so the mean prompt is all but exact (1%); the mean output follows
    // only through its correlation with the prompt, and its sampling error shrinks as 1/√n (6% at 200 requests,
    // the planner's smallest sample; 2% at 3,000, its largest).
    it.each([
      [200, 0.01, 0.06],
      [3000, 0.01, 0.02],
    ])(
      "%i requests: mean prompt within %f and mean output within %f of the trace's, for every seed 1–10",
      (count, promptTolerance, outputTolerance) => {
        for (const arrivals of ["poisson", "trace"] as const) {
          for (const seed of seeds) {
            const s = sampleWorkload({ trace }, { count, seed, maxContextTokens: 2048, arrivals });
            expect(Math.abs(s.meanPromptTokens / whole.prompt - 1), `prompt, seed ${seed}, ${arrivals}`).toBeLessThan(
              promptTolerance,
            );
            expect(Math.abs(s.meanOutputTokens / whole.output - 1), `output, seed ${seed}, ${arrivals}`).toBeLessThan(
              outputTolerance,
            );
          }
        }
      },
    );

    it("draws its requests in random order, not sorted by length", () => {
      const s = sampleWorkload({ trace }, { count: 1000, seed: 1, maxContextTokens: 2048 });
      const mean = (from: number, to: number) =>
        s.promptTokens.slice(from, to).reduce((a, b) => a + b, 0) / (to - from);
      expect(Math.abs(mean(0, 500) / mean(500, 1000) - 1)).toBeLessThan(0.15);
    });

    it("keeps each request's prompt and output together, as the trace has them", () => {
      const pairs = new Set(trace.map((r) => `${r.promptTokens}/${r.outputTokens}`));
      const s = sampleWorkload({ trace }, { count: 500, seed: 3, maxContextTokens: 1 << 20 });
      for (let i = 0; i < s.count; i++) expect(pairs.has(`${s.promptTokens[i]}/${s.outputTokens[i]}`)).toBe(true);
    });
  });
});
