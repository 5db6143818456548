/**
 * `gpufleet top` (pure part): the operator's /metrics page as one table of serving deployments (planned goodput
 * per GPU, instances ready/desired, queued and running requests, measured SLO attainment, migrations) and one of
 * training jobs (predicted step time against NIC-oblivious, restarts, last checkpoint), plus the fleet's fault and
 * isolation counters. Reads only what the operator exports (operator/src/metrics.ts).
 */
import { parsePrometheusText, type Sample } from "../agent/src/engines/prometheus-text.js";
import { table } from "./format.js";

export interface ServingRow {
  namespace: string;
  name: string;
  goodputPerGpu?: number;
  colocatedGoodputPerGpu?: number;
  gpus?: number;
  ready?: number;
  desired?: number;
  queued: number;
  running: number;
  /** Worst measured attainment over roles and SLOs, as a share. */
  attainment?: number;
  migrationsCompleted: number;
  migrationsFailed: number;
  migrationsInFlight: number;
}

export interface TrainingRow {
  namespace: string;
  name: string;
  predictedStepMs?: number;
  obliviousStepMs?: number;
  restarts?: number;
  lastCheckpointStep?: number;
}

export interface TopView {
  serving: ServingRow[];
  training: TrainingRow[];
  faultsByClass: Record<string, number>;
  isolations: Record<string, number>;
  gangRestarts: Record<string, number>;
}

const key = (s: Sample) => `${s.labels["namespace"]}/${s.labels["name"]}`;
const P = "gpufleet_operator_";

export function topView(metricsText: string): TopView {
  const samples = parsePrometheusText(metricsText);
  const serving = new Map<string, ServingRow>();
  const training = new Map<string, TrainingRow>();
  const sd = (s: Sample): ServingRow => {
    const k = key(s);
    let row = serving.get(k);
    if (!row)
      serving.set(
        k,
        (row = {
          namespace: s.labels["namespace"]!,
          name: s.labels["name"]!,
          queued: 0,
          running: 0,
          migrationsCompleted: 0,
          migrationsFailed: 0,
          migrationsInFlight: 0,
        }),
      );
    return row;
  };
  const tj = (s: Sample): TrainingRow => {
    const k = key(s);
    let row = training.get(k);
    if (!row) training.set(k, (row = { namespace: s.labels["namespace"]!, name: s.labels["name"]! }));
    return row;
  };
  const view: TopView = { serving: [], training: [], faultsByClass: {}, isolations: {}, gangRestarts: {} };
  for (const s of samples) {
    const l = s.labels;
    switch (s.name) {
      case `${P}serving_goodput_per_gpu`:
        if (l["plan"] === "colocated") sd(s).colocatedGoodputPerGpu = s.value;
        else sd(s).goodputPerGpu = s.value;
        break;
      case `${P}serving_gpus`:
        sd(s).gpus = s.value;
        break;
      case `${P}serving_instances`:
        if (l["state"] === "ready") sd(s).ready = s.value;
        else if (l["state"] === "desired") sd(s).desired = s.value;
        break;
      case `${P}serving_queued_requests`:
        sd(s).queued += s.value;
        break;
      case `${P}serving_running_requests`:
        sd(s).running += s.value;
        break;
      case `${P}serving_slo_attainment_ratio`: {
        const row = sd(s);
        row.attainment = Math.min(row.attainment ?? 1, s.value);
        break;
      }
      case `${P}serving_migrations_total`:
        if (l["outcome"] === "completed") sd(s).migrationsCompleted += s.value;
        else sd(s).migrationsFailed += s.value;
        break;
      case `${P}serving_migrations_in_flight`:
        sd(s).migrationsInFlight = s.value;
        break;
      case `${P}training_predicted_step_seconds`:
        if (l["placement"] === "oblivious") tj(s).obliviousStepMs = s.value * 1000;
        else tj(s).predictedStepMs = s.value * 1000;
        break;
      case `${P}training_restarts`:
        tj(s).restarts = s.value;
        break;
      case `${P}training_last_checkpoint_step`:
        tj(s).lastCheckpointStep = s.value;
        break;
      case `${P}training_faults_total`:
        view.faultsByClass[l["class"] ?? "?"] = s.value;
        break;
      case `${P}training_isolations_total`:
        view.isolations[l["target"] ?? "?"] = s.value;
        break;
      case `${P}training_gang_restarts_total`:
        view.gangRestarts[l["cause"] ?? "?"] = s.value;
        break;
    }
  }
  const byName = <T extends { namespace: string; name: string }>(a: T, b: T) =>
    a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
  view.serving = [...serving.values()].sort(byName);
  view.training = [...training.values()].sort(byName);
  return view;
}

const n = (x: number | undefined, digits = 0): string => (x === undefined ? "-" : x.toFixed(digits));

export function topTable(v: TopView, source: string): string {
  const out: string[] = [`gpufleet top: ${source}`, ""];
  out.push(`SERVING (${v.serving.length})`);
  if (v.serving.length > 0) {
    out.push(
      table([
        [
          "NAMESPACE",
          "NAME",
          "GOODPUT/GPU",
          "COLOC/GPU",
          "GPUS",
          "READY",
          "QUEUED",
          "RUNNING",
          "ATTAINMENT",
          "MIGRATIONS ok/failed/in-flight",
        ],
        ...v.serving.map((r) => [
          r.namespace,
          r.name,
          n(r.goodputPerGpu, 2),
          n(r.colocatedGoodputPerGpu, 2),
          n(r.gpus),
          `${n(r.ready)}/${n(r.desired)}`,
          r.queued,
          r.running,
          r.attainment === undefined ? "-" : `${(r.attainment * 100).toFixed(1)}%`,
          `${r.migrationsCompleted}/${r.migrationsFailed}/${r.migrationsInFlight}`,
        ]),
      ]).replace(/^/gm, "  "),
    );
  }
  out.push("", `TRAINING (${v.training.length})`);
  if (v.training.length > 0) {
    out.push(
      table([
        ["NAMESPACE", "NAME", "STEP MS (predicted)", "NIC-OBLIVIOUS MS", "RESTARTS", "CHECKPOINT"],
        ...v.training.map((r) => [
          r.namespace,
          r.name,
          n(r.predictedStepMs, 1),
          n(r.obliviousStepMs, 1),
          n(r.restarts),
          n(r.lastCheckpointStep),
        ]),
      ]).replace(/^/gm, "  "),
    );
  }
  const counts = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, c]) => `${k} ${c}`)
      .join(", ") || "none";
  out.push(
    "",
    `FAULTS  ${counts(v.faultsByClass)}`,
    `ISOLATIONS  ${counts(v.isolations)}`,
    `GANG RESTARTS  ${counts(v.gangRestarts)}`,
  );
  return out.join("\n");
}
