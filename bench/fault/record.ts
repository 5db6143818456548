/**
 * Writes a simulated job's telemetry in the replay format: 150 fault-free steps, then `fault` (an inject-fault
 * annotation value) for 150 more.
 */
import { writeFile } from "node:fs/promises";
import { NO_FAULTS, parseFaultAnnotation } from "../../agent/src/workers/simulated/faults.js";
import { simulateStep } from "../../agent/src/workers/simulated/training.js";
import { realisticNoise } from "./noise.js";
import { BENCH_JOB, placementFor } from "./scenario.js";

export async function recordScenario(file: string, ranks: number, fault: string): Promise<void> {
  const p = placementFor(ranks);
  const faults = parseFaultAnnotation(fault);
  const noise = realisticNoise(42, ranks);
  const lines = [
    JSON.stringify({ job: "bench/recorded", rankNodes: p.rankNodes, rankNics: p.rankNodes.map(() => BENCH_JOB.nic) }),
  ];
  let t = 1_780_000_000_000_000;
  let seq = 0;
  for (let step = 0; step < 300; step++) {
    const s = simulateStep(p, step >= 150 ? faults : NO_FAULTS, t, seq, noise);
    seq = s.sequenceAfter;
    for (const r of s.records) lines.push(JSON.stringify(r));
    if (s.endUnixUs === undefined) break;
    t = s.endUnixUs;
  }
  await writeFile(file, lines.join("\n") + "\n");
  console.log(`wrote ${file}: ${lines.length - 1} records of ${ranks} ranks, fault "${fault}" from step 150`);
}
