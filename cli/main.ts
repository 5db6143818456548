/**
 * The gpufleet CLI (`npx gpufleet …`, `kubectl gpufleet …`): parse, run one command, print its result on stdout and
 * progress and errors on stderr. Thin: what is printed comes from the pure modules beside this one.
 */
import { loadTraceFile } from "../operator/src/serving/trace-file.js";
import { PlannerThread } from "../operator/src/serving/planner-thread.js";
import { USAGE, parseCliArgs, type Command } from "./args.js";
import { clusterFromKube, clusterFromProfile, type ClusterView } from "./cluster.js";
import { CliError, usageError } from "./errors.js";
import { explainServing, explainTraining } from "./explain.js";
import { render, servingTable, trainingTable } from "./format.js";
import { Kube } from "./kube.js";
import { previewServing, type ServingPreview } from "./plan-serving.js";
import { previewTraining, type TrainingPreview } from "./plan-training.js";
import { loadResourceFile } from "./resources.js";
import { topTable, topView } from "./top.js";

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stderr is a terminal: progress may redraw one line. */
  interactive: boolean;
  env: NodeJS.ProcessEnv;
}

/** Shows that a long step is alive: a redrawn line on a terminal, a start and an end line otherwise. */
async function withProgress<T>(io: Io, what: string, work: Promise<T>): Promise<T> {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  if (!io.interactive) io.err(`${what} …\n`);
  const timer = io.interactive ? setInterval(() => io.err(`\r${what} … ${elapsed()}`), 200) : undefined;
  try {
    const result = await work;
    io.err(io.interactive ? `\r${what}: done in ${elapsed()}\n` : `${what}: done in ${elapsed()}\n`);
    return result;
  } finally {
    clearInterval(timer);
  }
}

async function plan(cmd: Extract<Command, { command: "plan" }>, io: Io): Promise<string> {
  const resources = loadResourceFile(cmd.file);
  const trace = cmd.trace ? { path: cmd.trace, records: readTrace(cmd.trace) } : undefined;
  const kube = cmd.live ? new Kube(cmd) : undefined;
  const cluster: ClusterView = kube ? await clusterFromKube(kube) : await clusterFromProfile(cmd.profile ?? "default");
  const gpuProfiles = kube ? await kube.listGpuProfiles() : [];
  const planner = new PlannerThread();
  try {
    const previews: (ServingPreview | TrainingPreview)[] = [];
    for (const r of resources) {
      const name = `${r.kind} ${r.object.metadata.namespace}/${r.object.metadata.name}`;
      if (r.kind === "ServingDeployment") {
        const existing = kube
          ? await kube.servingDeploymentIfAny(r.object.metadata.namespace!, r.object.metadata.name!)
          : undefined;
        const ownPods =
          kube && existing
            ? (await kube.ownedPods(r.object.metadata.namespace!, "ServingDeployment", r.object.metadata.name!)).filter(
                (p) => p.metadata?.ownerReferences?.some((o) => o.uid === existing.metadata.uid),
              )
            : [];
        previews.push(
          await withProgress(
            io,
            `planning ${name} on ${cluster.source}`,
            previewServing(r.object, cluster, {
              plan: (input) => planner.plan(input),
              ...(trace ? { trace } : {}),
              ownPods,
              gpuProfiles,
            }),
          ),
        );
      } else {
        if (trace) throw usageError("--trace applies to a ServingDeployment, not a TrainingJob");
        previews.push(previewTraining(r.object, cluster));
      }
    }
    const value = previews.length === 1 ? previews[0]! : previews;
    return render(value, cmd.output, () =>
      previews.map((p) => (p.kind === "ServingDeployment" ? servingTable(p) : trainingTable(p))).join("\n\n---\n\n"),
    );
  } finally {
    await planner.close();
  }
}

function readTrace(path: string) {
  try {
    const records = loadTraceFile(path);
    if (records.length === 0) throw usageError(`--trace ${path}: holds no requests`);
    return records;
  } catch (error) {
    if (error instanceof CliError) throw error;
    const detail =
      error instanceof Error && error.cause instanceof Error
        ? `${error.message}: ${error.cause.message}`
        : (error as Error).message;
    throw usageError(`--trace ${detail}`, { cause: error });
  }
}

async function explain(cmd: Extract<Command, { command: "explain" }>): Promise<string> {
  const kube = new Kube(cmd);
  const now = Date.now();
  if (cmd.kind === "ServingDeployment") {
    const sd = await kube.servingDeployment(cmd.namespace, cmd.name);
    const [events, pods] = await Promise.all([
      kube.eventsFor(cmd.namespace, cmd.kind, cmd.name),
      kube.ownedPods(cmd.namespace, cmd.kind, cmd.name),
    ]);
    return explainServing(sd, events, pods, now);
  }
  const job = await kube.trainingJob(cmd.namespace, cmd.name);
  const [events, pods] = await Promise.all([
    kube.eventsFor(cmd.namespace, cmd.kind, cmd.name),
    kube.ownedPods(cmd.namespace, cmd.kind, cmd.name),
  ]);
  return explainTraining(job, events, pods, now);
}

async function top(cmd: Extract<Command, { command: "top" }>): Promise<string> {
  let text: string;
  try {
    const response = await fetch(cmd.metricsUrl, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    text = await response.text();
  } catch (error) {
    throw new CliError(
      `cannot read the operator's metrics at ${cmd.metricsUrl}: ${(error as Error).message} (port-forward the operator's Service, or pass --metrics-url)`,
      1,
      { cause: error },
    );
  }
  const view = topView(text);
  return render(view, cmd.output, () => topTable(view, cmd.metricsUrl));
}

/** Runs one command line; returns the exit code. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  try {
    const cmd = parseCliArgs(argv, io.env);
    let output: string;
    if (cmd.command === "help") output = USAGE;
    else if (cmd.command === "plan") output = await plan(cmd, io);
    else if (cmd.command === "explain") output = await explain(cmd);
    else output = await top(cmd);
    io.out(`${output}\n`);
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`error: ${error.message}\n`);
      return error.exitCode;
    }
    io.err(`error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
