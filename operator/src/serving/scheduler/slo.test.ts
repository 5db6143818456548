import { describe, expect, it } from "vitest";
import { SloWindow } from "./slo.js";

const slo = { ttftMs: 200, tpotMs: 50 };
const report = (
  id: string,
  at: number,
  ttftMs: number,
  tpotMs: number,
  busy = true,
  role: "colocated" | "decode" = "colocated",
) => ({ id, role, reportedUnixMs: at, ttftMs, tpotMs, busy });

describe("SloWindow", () => {
  it("counts each busy report once, per role, within the window", () => {
    const w = new SloWindow(10_000);
    w.add(report("a", 1, 100, 40), slo, 1_000);
    w.add(report("a", 1, 100, 40), slo, 2_000); // the same report read again
    w.add(report("b", 2, 300, 40), slo, 2_000);
    w.add(report("c", 3, 900, 900, false), slo, 2_000); // idle: says nothing about latency
    w.add(report("d", 4, 0, 80, true, "decode"), slo, 2_000);
    expect(w.attainment("colocated", 90, 3_000)).toEqual({ ttft: 0.5, tpot: 1, samples: 2, target: 0.9 });
    expect(w.attainment("decode", 90, 3_000)).toEqual({ ttft: 1, tpot: 0, samples: 1, target: 0.9 });
    expect(w.attainment("colocated", 90, 11_500)).toEqual({ ttft: 0, tpot: 1, samples: 1, target: 0.9 });
    expect(w.attainment("prefill", 90, 3_000)).toBeUndefined();
  });
});
