/**
 * Test support for the operator: install the generated CRDs into a cluster, and run the operator as a real
 * process (as it runs in a pod) or in-process.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { spawn, type ChildProcess } from "node:child_process";
import { loadOperatorConfig } from "../../operator/src/config/config.js";
import { startOperator, type OperatorHandle, type OperatorOptions } from "../../operator/src/operator.js";
import { createLogger, silentLogger } from "../../operator/src/runtime/logger.js";
import path from "node:path";
import { waitFor } from "../harness/wait.js";
import { kubectl } from "./kubectl.js";
import { REPO_ROOT } from "./paths.js";

export { REPO_ROOT } from "./paths.js";

/**
 * Installs crds/*.yaml with kubectl server-side apply, as a user would, and waits until they are Established.
 * Not through client-node: its typed serializer drops `default` and `x-kubernetes-validations` from CRD schemas.
 */
export async function installCrds(kubeconfigPath: string): Promise<void> {
  const crdDir = path.join(REPO_ROOT, "crds");
  const applied = await kubectl(kubeconfigPath, [
    "apply",
    "--server-side",
    "--field-manager=gpufleet-install",
    "-f",
    crdDir,
  ]);
  if (applied.code !== 0) throw new Error(`installing CRDs failed: ${applied.stderr}`);
  const established = await kubectl(kubeconfigPath, [
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "-f",
    crdDir,
  ]);
  if (established.code !== 0) throw new Error(`CRDs not Established: ${established.stderr}`);
}

export interface ComponentProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** The last 4,000 characters it wrote to stderr (an uncaught exception's stack lands there, not in the log). */
  stderrTail(): string;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs a TypeScript entry point in its own process, as its container would, and resolves once it logs
 * `readyMessage` (JSON logs; the matching line is returned too). Fails at once, with its stderr, if it exits.
 */
export async function startComponentProcess(opts: {
  name: string;
  entry: string;
  env: Record<string, string>;
  readyMessage: string;
  timeoutMs?: number;
  /** Node flags before the entry (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}): Promise<{ process: ComponentProcess; readyLine: Record<string, unknown> }> {
  const argv = [...(opts.nodeArgs ?? []), "--import", "tsx", path.join(REPO_ROOT, opts.entry)];
  const child = spawn(process.execPath, argv, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let buffered = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve((exited = code))));
  const abortIf = () => {
    if (exited !== undefined) throw new Error(`${opts.name} exited with ${exited}: ${stderr.slice(-2000)}`);
  };
  const componentProcess: ComponentProcess = {
    child,
    name: opts.name,
    logs,
    stderrTail: () => stderr,
    async stop(signal = "SIGTERM") {
      if (exited === undefined) child.kill(signal);
      return exit;
    },
  };
  try {
    const readyLine = await waitFor(() => logs.find((l) => l.msg === opts.readyMessage), {
      description: `${opts.name}: "${opts.readyMessage}"`,
      timeoutMs: opts.timeoutMs ?? 60_000,
      abortIf,
    });
    return { process: componentProcess, readyLine };
  } catch (error) {
    await componentProcess.stop("SIGKILL");
    throw error;
  }
}

export interface OperatorProcess extends ComponentProcess {
  readonly identity: string;
  httpPort(): Promise<number>;
  metrics(): Promise<string>;
}

/** Starts `operator/src/main.ts` in its own process and waits for "operator started". */
export async function startOperatorProcess(opts: {
  kubeconfigPath: string;
  namespace: string;
  identity: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
}): Promise<OperatorProcess> {
  const { process: operator, readyLine } = await startComponentProcess({
    name: `operator ${opts.identity}`,
    entry: "operator/src/main.ts",
    nodeArgs: opts.nodeArgs,
    readyMessage: "operator started",
    env: {
      KUBECONFIG: opts.kubeconfigPath,
      GPUFLEET_NAMESPACE: opts.namespace,
      GPUFLEET_IDENTITY: opts.identity,
      GPUFLEET_HTTP_PORT: "0",
      GPUFLEET_LOG_LEVEL: "debug",
      ...opts.env,
    },
  });
  const port = readyLine.port as number;
  return {
    ...operator,
    identity: opts.identity,
    httpPort: async () => port,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
  };
}

/** Reads one sample of a Prometheus text exposition (first match of name and label subset). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(match[3]);
  }
  return undefined;
}

/** Starts `agent/src/main.ts` in simulation mode against the test cluster; resolves with its gRPC port. */
export async function startSimulatedAgent(opts: {
  kubeconfigPath: string;
  natsUrl: string;
  name?: string;
  env?: Record<string, string>;
}): Promise<{ agent: ComponentProcess; grpcPort: number }> {
  const name = opts.name ?? "agent";
  const { process: agent, readyLine } = await startComponentProcess({
    name,
    entry: "agent/src/main.ts",
    readyMessage: "agent serving",
    env: {
      KUBECONFIG: opts.kubeconfigPath,
      GPUFLEET_AGENT_SIMULATE: "true",
      GPUFLEET_NATS_URL: opts.natsUrl,
      GPUFLEET_AGENT_SOCKET: path.join(REPO_ROOT, ".gpufleet", `${name.replace(/\W+/g, "-")}-${process.pid}.sock`),
      GPUFLEET_AGENT_GRPC_ADDRESS: "127.0.0.1:0",
      GPUFLEET_AGENT_HTTP_PORT: "0",
      GPUFLEET_AGENT_ADVERTISE_HOST: "127.0.0.1",
      // Tests that do not exercise mTLS run the agent with the explicit development flag.
      ...(opts.env?.GPUFLEET_AGENT_TLS_DIR ? {} : { GPUFLEET_AGENT_INSECURE: "true" }),
      ...opts.env,
    },
  });
  return { agent, grpcPort: readyLine.grpcPort as number };
}

/**
 * The operator in this test process (no leader election, any free port), after installing the CRDs: faster than
 * a separate process for tests that exercise reconcilers rather than the process itself.
 */
export async function startInProcessOperator(
  cluster: { kubeConfig: KubeConfig; kubeconfigPath: string },
  identity: string,
  /** natsUrl turns telemetry on; durablePrefix keeps this operator's JetStream consumers apart from other tests'. */
  telemetry: {
    natsUrl?: string;
    durablePrefix?: string;
    options?: OperatorOptions["telemetry"];
    scheduler?: OperatorOptions["scheduler"];
  } = {},
): Promise<OperatorHandle> {
  await installCrds(cluster.kubeconfigPath);
  const config = loadOperatorConfig({
    GPUFLEET_LEADER_ELECTION: "false",
    GPUFLEET_HTTP_PORT: "0",
    GPUFLEET_IDENTITY: identity,
    GPUFLEET_NAMESPACE: "default",
    ...(telemetry.natsUrl ? { GPUFLEET_NATS_URL: telemetry.natsUrl } : {}),
    ...(telemetry.durablePrefix ? { GPUFLEET_TELEMETRY_DURABLE_PREFIX: telemetry.durablePrefix } : {}),
  });
  return startOperator({
    config,
    kubeConfig: cluster.kubeConfig,
    // GPUFLEET_TEST_OPERATOR_LOG=warn (or any level) shows the in-process operator's log, to diagnose a test or bench.
    logger: process.env["GPUFLEET_TEST_OPERATOR_LOG"]
      ? createLogger({ level: process.env["GPUFLEET_TEST_OPERATOR_LOG"], name: identity })
      : silentLogger,
    ...(telemetry.options ? { telemetry: telemetry.options } : {}),
    ...(telemetry.scheduler ? { scheduler: telemetry.scheduler } : {}),
  });
}
