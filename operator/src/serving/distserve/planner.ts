/**
 * DistServe planner: chooses prefill and decode parallelism, replica counts and placement for a
 * ServingDeployment, and compares them with the best colocated (vLLM / Sarathi-Serve) plan.
 *
 * Follows Zhong et al., "DistServe", OSDI 2024, §4:
 * - Algorithm 1, high node-affinity (§4.1): prefill and decode configurations are chosen independently; for each
 *   phase every (TP, PP) that fits in GPU memory is simulated alone and its goodput found by binary search on
 *   the rate; the phase picks the configuration with the best goodput per GPU; replicas are then
 *   ⌈rate / per-instance goodput⌉ for each phase. KV crosses the scale-out NICs. Two departures, both checked
 *   against exhaustive search in bench/serving.ts: each configuration is simulated as a pool of instances
 *   filling one node rather than one instance, so configurations are compared at equal pooling (one instance
 *   of TP1 vs one of TP4 compares 1 GPU of queueing against 4); and the top two configurations of each phase
 *   are paired within the GPU budget and the best two units measured end to end, because the two
 *   per-phase winners may not fit the budget together and the runner-up can win once the phases interact;
 *   then a short local search on the end-to-end measurement (neighbouring replica counts and TP/PP) refines
 *   the best unit. Each phase is sized to half the allowed misses (95% for a 90% target), since a request
 *   must meet both SLOs.
 * - Algorithm 2, low node-affinity (§4.2): when the NICs cannot carry the KV stream, prefill and decode
 *   instances share the same PP degree and stage s of both sits on one node, so KV moves over NVLink; a unit is
 *   `a` prefill and `b` decode instances whose per-stage segments fit one node.
 * The plan the phase search picks is then simulated end to end (prefill, KV transfer, decode) to measure its
 * real goodput per GPU and its attainment at the target rate; replicas are added to the bottleneck phase until
 * the target attainment holds. The deployed plan is the candidate (disaggregated units, the best colocated
 * plan; `mode` limits which) that needs the fewest GPUs for the target rate, ties to the higher measured goodput
 * per GPU; at high rates that is the best per-GPU plan, at low rates a smaller unit can win. `alternatives`
 * always reports the best per-GPU plan of each kind (DistServe's objective), and vLLM and Sarathi separately. The plan
 * never uses more GPUs than the cluster has free (or maxGpus): it says what
 * is missing instead.
 *
 * Every search runs on one seeded workload sample (a trace's lengths drawn over the whole trace, workload.ts);
 * finalists whose goodputs per GPU are within 10% of each other are measured on two more seeds and ranked by the
 * mean (close-calls.ts).
 *
 * Pure: no I/O, no clock; deterministic for a given input (the seed defaults to 1).
 *
 * The parts, one file each: context.ts (what the search shares), measurements.ts (every simulation: bounds,
 * phase searches, end-to-end units), colocated.ts (baselines), high-affinity.ts (Algorithm 1 and the local
 * search), low-affinity.ts (Algorithm 2), close-calls.ts (finalists re-measured on more seeds), ranking.ts
 * (fewest GPUs first, verified and packed), messages.ts (failures and explanations), types.ts (input and answer).
 */
import { GPU_CATALOG } from "../../../../common/src/hardware/catalog.js";
import {
  type LatencyCoefficients,
  instanceLatencyModel,
  instanceMemory,
  latencyCoefficients,
} from "../../../../common/src/models/latency.js";
import { type DerivedModel, InvalidModelShapeError, deriveModel } from "../../../../common/src/models/model-shapes.js";
import { settleCloseCalls } from "./close-calls.js";
import { type ColocatedBaselines, betterOf, searchColocatedBaselines } from "./colocated.js";
import {
  type Config,
  type Phase,
  type SearchSpace,
  enumerateConfigs,
  makeContext,
  nicKvGBps,
  stageBlock,
} from "./context.js";
import { climbHighAffinity, highAffinityUnits } from "./high-affinity.js";
import { bestLowAffinityUnit } from "./low-affinity.js";
import { MeasuredUnits, measureDisagg, phaseGoodputs } from "./measurements.js";
import { capacityFailure, fail, modelDoesNotFit, sloOutOfReach } from "./messages.js";
import type { FreeNode } from "./packing.js";
import { type SearchResults, rankAndFinalize } from "./ranking.js";
import {
  type ClusterNode,
  type DisaggregatedPlanShape,
  PlanFailureReason,
  type PlanWork,
  type ServingPlanError,
  type ServingPlanInput,
  type ServingPlanOk,
  type ServingPlanResult,
  ServingMode,
} from "./types.js";
import { WorkBudget, WorkBudgetExhausted } from "./work-budget.js";
import { workloadProblem } from "./workload.js";

export * from "./types.js";

function inputProblem(input: ServingPlanInput): string | undefined {
  const { slo, workload } = input;
  if (!slo || !(slo.ttftMs > 0) || !(slo.tpotMs > 0))
    return `slo.ttftMs and slo.tpotMs must be > 0, got ${slo?.ttftMs} and ${slo?.tpotMs}`;
  if (!(slo.attainmentPercent > 0 && slo.attainmentPercent <= 100))
    return `slo.attainmentPercent must be in (0, 100], got ${slo.attainmentPercent}`;
  if (!workload || !(workload.arrivalRatePerSec > 0 && Number.isFinite(workload.arrivalRatePerSec))) {
    return `workload.arrivalRatePerSec must be a positive number, got ${workload?.arrivalRatePerSec}`;
  }
  const wp = workloadProblem(workload.lengths, workload.arrivals);
  if (wp) return wp;
  if (!Object.values(ServingMode).includes(input.mode))
    return `mode must be one of ${Object.values(ServingMode).join(", ")}, got "${input.mode}"`;
  if (input.maxGpus !== undefined && !(Number.isInteger(input.maxGpus) && input.maxGpus > 0))
    return `maxGpus must be a positive integer, got ${input.maxGpus}`;
  if (!Array.isArray(input.nodes)) return "nodes must be a list";
  const seen = new Set<string>();
  for (const node of input.nodes) {
    const where = `node ${node.nodeName || "(unnamed)"}`;
    if (!node.nodeName) return "every node needs a nodeName";
    if (seen.has(node.nodeName)) return `${where} is listed twice`;
    seen.add(node.nodeName);
    if (!(Number.isInteger(node.gpuCount) && node.gpuCount > 0))
      return `${where}: gpuCount must be a positive integer, got ${node.gpuCount}`;
    if (!(Number.isInteger(node.gpusFree) && node.gpusFree >= 0 && node.gpusFree <= node.gpuCount)) {
      return `${where}: gpusFree must be an integer in [0, gpuCount=${node.gpuCount}], got ${node.gpusFree}`;
    }
    if (!(node.nicBandwidthGbps > 0) || !(Number.isInteger(node.nicCount) && node.nicCount > 0)) {
      return `${where}: nicBandwidthGbps and nicCount must be positive, got ${node.nicBandwidthGbps} and ${node.nicCount}`;
    }
  }
  if (input.gpuModel !== undefined && !(input.gpuModel in GPU_CATALOG)) {
    return `gpuModel "${input.gpuModel}" is not in the hardware catalog (${Object.keys(GPU_CATALOG).join(", ")})`;
  }
  const o = input.options;
  if (
    o?.requestsPerInstance !== undefined &&
    !(Number.isInteger(o.requestsPerInstance) && o.requestsPerInstance >= 20)
  ) {
    return `options.requestsPerInstance must be an integer ≥ 20, got ${o.requestsPerInstance}`;
  }
  for (const key of ["search", "finalize"] as const) {
    const units = o?.workBudget?.[key];
    if (units !== undefined && !(Number.isInteger(units) && units > 0))
      return `options.workBudget.${key} must be a positive integer, got ${units}`;
  }
  return undefined;
}

/** Plans a ServingDeployment. Pure and deterministic; see the file comment for the algorithm. */
export function planServing(input: ServingPlanInput): ServingPlanResult {
  const problem = inputProblem(input);
  if (problem) return fail(PlanFailureReason.invalidInput, problem);
  let model: DerivedModel;
  try {
    model = deriveModel(input.model);
  } catch (error) {
    if (error instanceof InvalidModelShapeError) return fail(PlanFailureReason.invalidInput, error.message);
    throw error;
  }
  const candidates = input.nodes.filter((n) =>
    input.gpuModel ? n.gpuModel === input.gpuModel : n.gpuModel in GPU_CATALOG,
  );
  const gpuModels = [...new Set(candidates.map((n) => n.gpuModel))].sort();
  if (gpuModels.length === 0) {
    const what = input.gpuModel ? `${input.gpuModel} nodes` : "nodes with a known GPU model";
    return fail(
      PlanFailureReason.insufficientCapacity,
      `cluster has no ${what} (known: ${Object.keys(GPU_CATALOG).join(", ")})`,
    );
  }
  const results: ServingPlanResult[] = [];
  const spent: PlanWork = { units: 0, cutShort: false };
  for (const gpuModel of gpuModels) {
    let coeffs: LatencyCoefficients;
    try {
      coeffs = latencyCoefficients(gpuModel, input.coefficientOverrides);
    } catch (error) {
      return fail(PlanFailureReason.invalidInput, (error as Error).message);
    }
    const work = new WorkBudget(input.options?.workBudget?.search, input.options?.workBudget?.finalize);
    results.push(
      planOnGpuModel(
        input,
        model,
        coeffs,
        candidates.filter((n) => n.gpuModel === gpuModel),
        work,
      ),
    );
    spent.units += work.meter.spent;
    spent.cutShort ||= work.cutShortIn !== undefined;
  }
  const ok = results.filter((r): r is ServingPlanOk => r.ok);
  if (ok.length > 0) {
    // Fewest GPUs for the target rate, then the best goodput per GPU.
    ok.sort(
      (a, b) => a.totalGpus - b.totalGpus || b.goodputPerGpu - a.goodputPerGpu || a.gpuModel.localeCompare(b.gpuModel),
    );
    const best = ok[0] as ServingPlanOk;
    const profile = input.gpuProfiles?.[best.gpuModel];
    return { ...best, ...(profile ? { gpuProfile: profile } : {}), work: spent };
  }
  const capacity = results.find((r) => !r.ok && r.reason === PlanFailureReason.insufficientCapacity);
  return { ...((capacity ?? results[0]) as ServingPlanError), work: spent };
}

/** The best plan on one GPU model's nodes: search the colocated baselines and both affinities, then rank. */
function planOnGpuModel(
  input: ServingPlanInput,
  model: DerivedModel,
  coeffs: LatencyCoefficients,
  nodes: readonly ClusterNode[],
  work: WorkBudget,
): ServingPlanResult {
  const gpuModel = coeffs.gpuModel;
  const ctx = makeContext(input, model, coeffs, nodes, work.meter);
  const freeNodes: FreeNode[] = nodes
    .filter((n) => n.gpusFree > 0)
    .map((n) => ({ nodeName: n.nodeName, gpusFree: n.gpusFree }));
  const budget = Math.min(
    freeNodes.reduce((sum, n) => sum + n.gpusFree, 0),
    input.maxGpus ?? Infinity,
  );
  const maxInstanceGpus = input.options?.maxInstanceGpus ?? 64;
  const fitting = enumerateConfigs(ctx, maxInstanceGpus);
  if (fitting.serving.length === 0 || fitting.prefill.length === 0) return modelDoesNotFit(ctx, maxInstanceGpus);
  // Only instances the free GPUs can hold at least once are worth simulating.
  const maxFreeNode = freeNodes.reduce((max, n) => Math.max(max, n.gpusFree), 0);
  const placeable = (c: Config): boolean => c.gpus <= budget && stageBlock(c, maxFreeNode) <= maxFreeNode;
  const space: SearchSpace = {
    configs: { prefill: fitting.prefill.filter(placeable), serving: fitting.serving.filter(placeable) },
    budget,
    freeNodes,
    maxFreeNode,
  };
  if (space.configs.serving.length === 0 || space.configs.prefill.length === 0) {
    const smallest = [...fitting.serving].sort((x, y) => x.gpus - y.gpus)[0] as Config;
    return capacityFailure(input, gpuModel, smallest.gpus, stageBlock(smallest, ctx.maxNodeGpus), freeNodes, budget);
  }

  // Every stage runs within the work budget (work-budget.ts); one that runs out keeps what it found so far and
  // the later stages are skipped.
  const byPolicy: ColocatedBaselines["byPolicy"] = { chunked: undefined, vllm: undefined };
  work.stage("the colocated baselines", () => searchColocatedBaselines(ctx, space.configs.serving, byPolicy));
  const colocated: ColocatedBaselines = { byPolicy, best: betterOf(byPolicy) };
  // Disaggregated: phase searches (Algorithm 1), low-affinity units (Algorithm 2), both measured end to end (the
  // KV transfer and the interplay of the phases only show in the whole simulation, and decide between them),
  // then the local search from the best high-affinity unit. Close calls between the finalists are settled on
  // further seeds (close-calls.ts) before ranking.
  const units = new MeasuredUnits(ctx);
  const notes: string[] = [];
  if (input.mode !== "colocated") {
    const goodputs = phaseGoodputs(ctx);
    work.stage("the disaggregated phase searches", () => {
      const high = highAffinityUnits(ctx, space, goodputs);
      if (high.note) notes.push(high.note);
      const low = bestLowAffinityUnit(ctx, space, goodputs);
      for (const shape of low ? [...high.shapes, low] : high.shapes) units.measure(shape);
    });
    work.stage("the local search around the best disaggregated unit", () =>
      climbHighAffinity(ctx, space, goodputs, units),
    );
  }

  const found = units.all.length > 0 || colocated.best !== undefined;
  if (work.cutShortIn !== undefined && !(found && (input.mode !== "disaggregated" || units.all.length > 0))) {
    return fail(
      PlanFailureReason.planningBudgetExhausted,
      `planning ${ctx.model.shape.name} on ${gpuModel} stopped after ${work.meter.spent} simulation units (budget ` +
        `${work.searchUnits}) in ${work.cutShortIn}, before any ${input.mode === "disaggregated" ? "disaggregated " : ""}` +
        `configuration was found to meet TTFT ≤ ${ctx.slo.ttftMs} ms and TPOT ≤ ${ctx.slo.tpotMs} ms`,
    );
  }
  if (input.mode === "disaggregated" && units.all.length === 0) return sloOutOfReach(ctx, "disaggregated");
  if (!found) return sloOutOfReach(ctx, "any");
  let results: SearchResults = { colocated, units: units.all, bestUnit: units.best, notes };
  work.stage("the close-call re-measurements", () => {
    results = settleCloseCalls(ctx, results);
  });
  const cutShort = work.cutShortNote();
  if (cutShort) results = { ...results, notes: [...results.notes, cutShort] };
  work.startFinalize();
  try {
    return rankAndFinalize(ctx, space, results);
  } catch (error) {
    if (!(error instanceof WorkBudgetExhausted)) throw error;
    return fail(
      PlanFailureReason.planningBudgetExhausted,
      `verifying the ${ctx.model.shape.name} plan on ${gpuModel} at ${input.workload.arrivalRatePerSec} req/s ran ` +
        `past its work budget (${work.finalizeUnits} simulation units after ${work.searchUnits} of search)`,
    );
  }
}

/**
 * Goodput per GPU (req/s/GPU) of a given disaggregated plan (high node-affinity unless the shape says low),
 * measured with the same simulator, workload sample and settings planServing uses; 0 when it cannot meet the
 * SLOs or does not fit. The benchmark's exhaustive search calls this for every shape within a GPU budget.
 */
export function measureDisaggregatedGoodputPerGpu(
  input: ServingPlanInput,
  gpuModel: string,
  shape: DisaggregatedPlanShape,
): number {
  const model = deriveModel(input.model);
  const coeffs = latencyCoefficients(gpuModel, input.coefficientOverrides);
  const nodes = input.nodes.filter((n) => n.gpuModel === gpuModel);
  const ctx = makeContext(input, model, coeffs, nodes);
  const config = (c: { tp: number; pp: number }): Config => ({
    tp: c.tp,
    pp: c.pp,
    gpus: c.tp * c.pp,
    kvCapacityTokens: instanceMemory(model, coeffs, c).kvCapacityTokens,
    latency: instanceLatencyModel(model, coeffs, c, {
      sameNode: c.tp * c.pp <= ctx.maxNodeGpus,
      nicGBpsPerGpu: ctx.nicGBpsPerGpu,
    }),
  });
  const pc = config(shape.prefill);
  const dc = config(shape.decode);
  if (
    pc.kvCapacityTokens < Math.max(ctx.lmTokens, ctx.sample.maxPromptTokens) ||
    dc.kvCapacityTokens / dc.pp < ctx.sample.maxSequenceTokens
  )
    return 0;
  const phase = (c: Config): Phase => ({ config: c, goodput: 1, perGpu: 1 / c.gpus });
  const low = shape.affinity === "low";
  if (low && (pc.pp !== dc.pp || shape.prefill.replicas * pc.tp + shape.decode.replicas * dc.tp > ctx.maxNodeGpus))
    return 0;
  return measureDisagg(ctx, {
    prefill: phase(pc),
    decode: phase(dc),
    affinity: low ? "low" : "high",
    unitPrefill: shape.prefill.replicas,
    unitDecode: shape.decode.replicas,
    estimatePerGpu: 0,
    kvLinkGBps: low ? Math.min(pc.tp, dc.tp) * pc.pp * coeffs.p2pNvlinkGBps : nicKvGBps(ctx, dc.gpus),
  });
}
