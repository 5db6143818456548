/**
 * Output of the CLI (pure): `--output table` (default, for people), `json` and `yaml` (the same object, for
 * scripts). Tables are plain text, columns aligned, no colour (the CLI is often piped).
 */
import { stringify } from "yaml";
import { usageError } from "./errors.js";
import type { ServingPreview } from "./plan-serving.js";
import type { TrainingPreview } from "./plan-training.js";

export const OutputFormats = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OutputFormats)[number];

export function parseOutputFormat(value: string | undefined): OutputFormat {
  const v = value ?? "table";
  if (!(OutputFormats as readonly string[]).includes(v))
    throw usageError(`--output must be one of ${OutputFormats.join(", ")}, got "${v}"`);
  return v as OutputFormat;
}

/** Rows as aligned columns; the first row is the header. */
export function table(rows: readonly (readonly (string | number)[])[]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, [...c].length)), []);
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + " ".repeat(widths[i]! - [...c].length)))
        .join("   ")
        .trimEnd(),
    )
    .join("\n");
}

export function render(value: object, format: OutputFormat, asTable: () => string): string {
  if (format === "json") return JSON.stringify(value, null, 2);
  if (format === "yaml") return stringify(value, { lineWidth: 0 }).trimEnd();
  return asTable();
}

const num = (x: number | undefined, digits = 3): string => (x === undefined ? "-" : x.toFixed(digits));

export function servingTable(p: ServingPreview): string {
  const out: string[] = [];
  out.push(`ServingDeployment ${p.namespace}/${p.name} on ${p.cluster.source}`);
  out.push(
    `  GPUs: ${p.cluster.gpus.map((g) => `${g.gpuModel} ${g.gpusFree}/${g.gpus} free on ${g.nodes} nodes`).join("; ") || "none"}`,
  );
  out.push(
    `  workload: ${p.workload.arrivalRatePerSec} req/s, ${p.workload.lengths}; SLO TTFT ≤ ${p.slo.ttftMs} ms, TPOT ≤ ${p.slo.tpotMs} ms, ${p.slo.attainmentPercent}% attainment`,
  );
  out.push("");
  if (p.plan) {
    out.push(`PLAN  ${p.planSummary}`);
    out.push(
      `  goodput ${num(p.plan.goodputPerGpu)} req/s per GPU, predicted attainment ${num(p.plan.predictedAttainmentPercent, 1)}% (target ${p.slo.attainmentPercent}%)`,
    );
  } else {
    out.push(`NO PLAN  ${p.failure?.reason ?? "unknown"}: ${p.failure?.message ?? ""}`);
  }
  if (p.plan && p.failure) out.push(`  note: ${p.failure.reason}: ${p.failure.message}`);
  if (p.alternatives.length > 0) {
    out.push("");
    out.push(
      "ALTERNATIVES (best goodput per GPU of each kind; * = the deployed shape, which minimises GPUs for the rate)",
    );
    out.push(
      table([
        ["", "KIND", "SHAPE", "GOODPUT/GPU"],
        ...p.alternatives.map((a) => [a.chosen ? "*" : "", a.kind, a.shape, num(a.goodputPerGpu)]),
      ]).replace(/^/gm, "  "),
    );
  }
  if (p.bounds.length > 0) {
    out.push("");
    out.push("BOUNDED BY");
    for (const b of p.bounds) out.push(`  ${b.binding ? "●" : "○"} ${b.limit}: ${b.detail}`);
  }
  if (p.gpuProfile) {
    const g = p.gpuProfile;
    out.push("");
    out.push(
      `GPU PROFILE  ${g.name ? `GpuProfile ${g.name}` : "shipped defaults"}, ${g.gpuModel}: ${g.memoryGiB} GiB, ${g.peakTflops} TFLOP/s peak (${g.achievedTflops} modelled), HBM ${g.hbmBandwidthGBps} GB/s (${g.achievedHbmGBps} modelled), NVLink ${g.nvlinkGBpsPerDirection} GB/s per direction, ${g.memoryUtilization * 100}% of memory for the engine`,
    );
  }
  if (p.placement.length > 0)
    out.push(`PLACEMENT  ${p.placement.map((n) => `${n.nodeName}: ${n.gpus} GPU`).join(", ")}`);
  if (p.engineCommands?.length) {
    out.push("");
    out.push("ENGINE COMMANDS (as the operator renders them into each pod)");
    for (const c of p.engineCommands) {
      out.push(`  ${c.pod} (${c.role} on ${c.node})`);
      const env = Object.entries(c.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      if (env) out.push(`    env: ${env}`);
      out.push(`    ${c.command}`);
    }
  }
  if (p.plan?.explanation) {
    out.push("");
    out.push("EXPLANATION (status.plan.explanation)");
    for (const part of p.plan.explanation.split("; ")) out.push(`  ${part}`);
  }
  return out.join("\n");
}

export function trainingTable(p: TrainingPreview): string {
  const out: string[] = [];
  const par = p.parallelism;
  out.push(`TrainingJob ${p.namespace}/${p.name} on ${p.cluster.source}`);
  out.push(`  gang: ${par.nodes} nodes × ${par.gpusPerNode} GPUs, TP${par.tp} × PP${par.pp} × DP${par.dp}`);
  out.push("");
  if (!p.placement) {
    out.push(`NO PLACEMENT  ${p.failure?.reason ?? "unknown"}: ${p.failure?.message ?? ""}`);
    return out.join("\n");
  }
  const pl = p.placement;
  out.push(`PLACEMENT (${p.strategy})  ${p.planSummary}`);
  out.push(
    `  predicted step ${pl.predictedStepMs} ms vs NIC-oblivious ${pl.obliviousStepMs} ms (${num(p.speedupVsOblivious, 2)}× faster)`,
  );
  out.push(
    `  islands: ${pl.islands.join(" → ")}; ranks per island: ${Object.entries(pl.ranksPerIsland)
      .map(([i, n]) => `${i} ${n}`)
      .join(", ")}`,
  );
  out.push(`  layers per stage: ${pl.layersPerStage.join(", ")}`);
  out.push("");
  out.push("STAGES");
  out.push(
    table([
      ["STAGE", "ISLAND", "NIC", "LAYERS", "DP ALL-REDUCE", "TO NEXT", "BUSY MS", "NODES"],
      ...p.stages.map((s) => [
        s.stage,
        s.island,
        s.nicType,
        s.layers,
        s.dpTransport,
        s.nextTransport ?? "-",
        s.busyMs.toFixed(1),
        s.nodes.join(","),
      ]),
    ]).replace(/^/gm, "  "),
  );
  out.push("");
  out.push("NCCL SETTINGS PER GROUP");
  for (const g of p.ncclGroups)
    out.push(
      `  ${g.nodes.join(",")}: ${
        Object.entries(g.env)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ") || "(defaults)"
      }`,
    );
  return out.join("\n");
}
