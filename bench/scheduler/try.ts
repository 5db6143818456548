import { backlogThroughputPerSec, simulateDispatch } from "../gateway/dispatch-sim.js";
import { policySetup, POLICIES, schedEngineConfig } from "./policies.js";
import { withArrivals, zipfWorkload } from "./workload.js";
const engine = schedEngineConfig();
const mean = Number(process.argv[2] ?? 256);
const load = Number(process.argv[3] ?? 0.9);
const n = Number(process.argv[4] ?? 10000);
const lengths = zipfWorkload(mean, n, 11);
const t0 = performance.now();
const sat = backlogThroughputPerSec(engine, lengths.slice(0, 3000).map((l) => ({ arrivalMs: 0, ...l })));
console.log("per-instance sat", sat.toFixed(3), "x16", (sat * 16).toFixed(2), ((performance.now() - t0) / 1000).toFixed(1) + "s");
const rate = load * sat * 16;
const requests = withArrivals(lengths, { kind: "poisson" }, rate, 11);
for (const policy of (process.argv[5] ? process.argv[5].split(",") : POLICIES) as typeof POLICIES) {
  const t = performance.now();
  const r = simulateDispatch(policySetup(policy, { instances: 16, requests, engine, reportIntervalMs: 1000, flushIntervalMs: 250, seed: 1 }, { initialInstances: 8, minInstances: 1, maxInstances: 16 }));
  const f = (x: number) => x.toFixed(0);
  console.log(policy.padEnd(20), `ttft ${f(r.ttft.meanMs)}/${f(r.ttft.p99Ms)} tpot ${r.tpot.meanMs.toFixed(1)}/${f(r.tpot.p99Ms)} e2e ${f(r.e2e.meanMs)}/${f(r.e2e.p99Ms)} pre ${r.preemptions} loss ${r.preemptionLoss?.meanPerRequestMs.toFixed(1)} frag ${r.fragmentationPercent.toFixed(2)}% mig ${r.migrations.committed}/${r.migrations.planned} ab ${JSON.stringify(r.migrations.abortCodes)} dt ${r.migrations.downtime.meanMs.toFixed(1)} reasons ${JSON.stringify(r.migrations.byReason)} inst-s ${f(r.instanceSeconds)} inst ${r.scaling.minInstances}-${r.scaling.maxInstances} mean ${r.scaling.meanInstances.toFixed(1)} ups ${r.scaling.ups} downs ${r.scaling.downs} lost ${r.requestsLost} rej ${r.rejectedOverloaded}/${r.rejectedNoInstance} ref ${r.refusedByInstance}`, ((performance.now() - t) / 1000).toFixed(1) + "s");
}
