/**
 * `npm start`: the whole gpufleet system on this machine. Sets up what is missing (Debian packages, cached
 * Kubernetes binaries), starts a local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok GPU nodes
 * from clusters/<profile>.yaml, nats-server), installs the CRDs, starts the operator, the node agent (simulation
 * mode for kwok nodes) and the gateway, applies examples/, prints their status, waits until the gateway routes every
 * sample ServingDeployment's model, sends one streamed completion through it with curl and ends with that curl line;
 * then keeps running until Ctrl-C, and cleans up.
 *
 * Flags: --profile <name|path> (default "default"), --once (print the status and exit; for scripts and tests).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { connect } from "nats";
import { SUBJECT_PREFIX } from "../common/src/telemetry/subjects.js";
import { startLocalCluster, type LocalCluster } from "../test/harness/cluster.js";
import { waitFor } from "../test/harness/wait.js";
import { kubectl } from "../test/support/kubectl.js";
import { REPO_ROOT, installCrds } from "../test/support/operator.js";
import { applyProfileFabrics } from "../test/harness/fabric.js";

const { values } = parseArgs({
  options: { profile: { type: "string", default: "default" }, once: { type: "boolean", default: false } },
});
const logDir = path.join(REPO_ROOT, ".gpufleet", "logs");
mkdirSync(logDir, { recursive: true });
const say = (message: string) => console.log(`[gpufleet] ${message}`);

interface Component {
  name: string;
  child: ChildProcess;
}
const components: Component[] = [];
let cluster: LocalCluster | undefined;
let stopping = false;

/** Runs a TypeScript entry point as its own process (as its container would), logging to .gpufleet/logs/<name>.log. */
function startComponent(name: string, entry: string, env: Record<string, string>): Component {
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: "w" });
  const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, entry)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  child.on("exit", (code, signal) => {
    if (!stopping)
      say(`${name} exited (${signal ?? code}); see ${path.relative(REPO_ROOT, path.join(logDir, `${name}.log`))}`);
  });
  const component = { name, child };
  components.push(component);
  return component;
}

/** Listens to the agents' NATS subjects for a moment and summarises what the simulated workers report. */
async function sampleTelemetry(natsUrl: string, windowMs: number): Promise<string> {
  const nc = await connect({ servers: natsUrl });
  const counts = new Map<string, number>();
  const subscription = nc.subscribe(`${SUBJECT_PREFIX}.>`, {
    callback: (_err, message) => {
      const stream = message.subject.split(".")[2] ?? message.subject;
      counts.set(stream, (counts.get(stream) ?? 0) + 1);
    },
  });
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  subscription.unsubscribe();
  await nc.close();
  const lines = [...counts.entries()].map(([stream, n]) => `  ${SUBJECT_PREFIX}.${stream}.*: ${n} messages`);
  return `telemetry on NATS in ${windowMs / 1000} s:\n${lines.length > 0 ? lines.join("\n") : "  (none yet: no gpufleet pods are running)"}\n`;
}

const GATEWAY_PORT = 18000;
const GATEWAY_URL = `http://127.0.0.1:${GATEWAY_PORT}`;

interface RoutedModel {
  id: string;
  gpufleet: { mode: string; servingDeployments: string[]; instances: Record<string, number> };
}

/**
 * Waits until /v1/models routes the model of every ServingDeployment in the cluster to live instances of each role it
 * needs.
 */
async function waitForSampleModels(kubeconfigPath: string): Promise<RoutedModel[]> {
  const out = await kubectl(kubeconfigPath, [
    "get",
    "sd",
    "-A",
    "-o",
    'jsonpath={range .items[*]}{.spec.model.name}{"\\n"}{end}',
  ]);
  const wanted = [...new Set(out.stdout.split("\n").filter((l) => l !== ""))];
  if (wanted.length === 0) throw new Error("examples/ holds no ServingDeployment: nothing for the gateway to route");
  return waitFor(
    async () => {
      const list = (await (await fetch(`${GATEWAY_URL}/v1/models`)).json()) as { data: RoutedModel[] };
      const live = (m: RoutedModel | undefined) =>
        m !== undefined &&
        (m.gpufleet.mode === "colocated"
          ? m.gpufleet.instances.colocated! > 0
          : m.gpufleet.instances.prefill! > 0 && m.gpufleet.instances.decode! > 0);
      const routed = wanted.map((id) => list.data.find((m) => m.id === id));
      return routed.every(live) ? (routed as RoutedModel[]) : undefined;
    },
    { description: `the gateway routing ${wanted.join(", ")} (GET ${GATEWAY_URL}/v1/models)`, timeoutMs: 60_000 },
  );
}

function completionCurlArgs(model: string): string[] {
  const body = JSON.stringify({ model, prompt: "Hello", max_tokens: 16, stream: true });
  return ["-sN", `${GATEWAY_URL}/v1/completions`, "-H", "content-type: application/json", "-d", body];
}

const shellQuote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say("stopping…");
    await Promise.all(
      components.map(
        ({ child }) =>
          new Promise<void>((resolve) =>
            child.exitCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM")),
          ),
      ),
    );
    await cluster?.stop();
    say("stopped; nothing left running");
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  say("checking system packages and Kubernetes binaries (the first run builds them from the Go module proxy)…");
  const setup = spawnSync("bash", [path.join(REPO_ROOT, "scripts/setup-system.sh")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (setup.status !== 0) throw new Error("scripts/setup-system.sh failed");

  say(`starting the local cluster (profile ${values.profile})…`);
  cluster = await startLocalCluster({ profile: values.profile, log: (m) => say(`  ${m}`) });
  const kubeconfigPath = cluster.kubeconfigPath;
  await installCrds(kubeconfigPath);
  say("CRDs installed");
  if (cluster.profile)
    say(
      `${await applyProfileFabrics(kubeconfigPath, cluster.profile)} FabricTopology object(s) of the profile applied`,
    );

  const common = { KUBECONFIG: kubeconfigPath, GPUFLEET_NATS_URL: cluster.natsUrl ?? "" };
  const namespace = "gpufleet-system";
  await kubectl(kubeconfigPath, ["create", "namespace", namespace]);
  startComponent("operator", "operator/src/main.ts", {
    ...common,
    GPUFLEET_NAMESPACE: namespace,
    GPUFLEET_IDENTITY: "gpufleet-operator-0",
    GPUFLEET_HTTP_PORT: "18080",
  });
  await waitFor(async () => (await fetch("http://127.0.0.1:18080/readyz")).ok, {
    description: "operator ready",
    timeoutMs: 60_000,
  });
  say("operator ready: metrics at http://127.0.0.1:18080/metrics");
  // mTLS as in a cluster: the operator issues the agent's certificate into a Secret; the agent reads it from files
  // (kubelet would mount it). Copied once: a rotation (after 20 of its 30 days) is not mirrored here.
  const agentTls = await waitFor(
    async () => {
      const out = await kubectl(kubeconfigPath, ["get", "secret", "-n", namespace, "gpufleet-agent-tls", "-o", "json"]);
      return out.code === 0 ? (JSON.parse(out.stdout) as { data: Record<string, string> }) : undefined;
    },
    { description: "the operator issued the agent certificate", timeoutMs: 60_000 },
  );
  const tlsDir = path.join(REPO_ROOT, ".gpufleet", "agent-tls");
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  for (const key of ["ca.crt", "tls.crt", "tls.key"])
    writeFileSync(path.join(tlsDir, key), Buffer.from(agentTls.data[key] ?? "", "base64"), { mode: 0o600 });
  // One agent process serves every kwok node in simulation mode (a real cluster runs one per node, as a DaemonSet).
  startComponent("agent", "agent/src/main.ts", {
    ...common,
    GPUFLEET_AGENT_SIMULATE: "true",
    GPUFLEET_AGENT_SOCKET: path.join(REPO_ROOT, ".gpufleet", "agent.sock"),
    GPUFLEET_AGENT_GRPC_ADDRESS: "127.0.0.1:18051",
    GPUFLEET_AGENT_HTTP_PORT: "19400",
    GPUFLEET_AGENT_TLS_DIR: tlsDir,
    GPUFLEET_AGENT_ADVERTISE_HOST: "127.0.0.1",
    GPUFLEET_AGENT_ENGINE_PORT: "18100",
  });
  await waitFor(async () => (await fetch("http://127.0.0.1:19400/readyz")).ok, {
    description: "agent ready",
    timeoutMs: 60_000,
  });
  say("agent ready (simulation mode, mTLS on 127.0.0.1:18051): metrics at http://127.0.0.1:19400/metrics");
  // The gateway learns instances from the agents' load reports on NATS: without NATS there is nothing to route to.
  if (!cluster.natsUrl) throw new Error("the gateway needs NATS, and the local cluster started without it");
  startComponent("gateway", "gateway/src/main.ts", {
    GPUFLEET_GATEWAY_NATS_URL: cluster.natsUrl,
    GPUFLEET_GATEWAY_HOST: "127.0.0.1",
    GPUFLEET_GATEWAY_PORT: String(GATEWAY_PORT),
    POD_NAME: "gpufleet-gateway-0",
  });
  await waitFor(async () => (await fetch(`${GATEWAY_URL}/readyz`)).ok, {
    description: "gateway ready",
    timeoutMs: 60_000,
  });
  say(`gateway ready: OpenAI API at ${GATEWAY_URL}/v1, metrics at ${GATEWAY_URL}/metrics`);

  const applied = await kubectl(kubeconfigPath, ["apply", "-f", path.join(REPO_ROOT, "examples")]);
  if (applied.code !== 0) throw new Error(`applying examples/ failed: ${applied.stderr}`);
  say(`applied examples/:\n${applied.stdout.trim()}`);

  await waitFor(
    async () => {
      // One line per resource ("name generation observedGeneration"): every resource must have been seen.
      const out = await kubectl(kubeconfigPath, [
        "get",
        "sd,tj",
        "-A",
        "-o",
        'jsonpath={range .items[*]}{.metadata.name} {.metadata.generation} {.status.observedGeneration}{"\\n"}{end}',
      ]);
      const lines = out.stdout.split("\n").filter((l) => l !== "");
      return (
        lines.length > 0 &&
        lines.every((l) => {
          const [, generation, observed] = l.split(" ");
          return observed !== "" && observed === generation;
        })
      );
    },
    { description: "sample resources reconciled", timeoutMs: 60_000 },
  );
  // Give pods a moment to come up so the status printed is the settled one; a resource still rolling is shown as is.
  const transient = new Set(["Placed", "Progressing", "Restarting"]);
  await waitFor(
    async () => {
      const out = await kubectl(kubeconfigPath, [
        "get",
        "sd,tj",
        "-A",
        "-o",
        'jsonpath={range .items[*]}{.status.phase}{"\\n"}{end}',
      ]);
      return out.stdout.split("\n").every((phase) => !transient.has(phase));
    },
    { description: "sample resources settled", timeoutMs: 60_000 },
  ).catch(() => say("some resources are still rolling out; showing them as they are"));
  const status = await kubectl(kubeconfigPath, ["get", "sd,tj", "-A", "-o", "wide"]);
  const pods = await kubectl(kubeconfigPath, [
    "get",
    "pods",
    "-A",
    "-o",
    "wide",
    "--field-selector=metadata.namespace!=kube-system",
  ]);
  console.log(`\n${status.stdout}\n${pods.stdout || "(no pods)\n"}`);
  if (cluster.natsUrl) console.log(await sampleTelemetry(cluster.natsUrl, 3_000));
  const routed = await waitForSampleModels(kubeconfigPath);
  say(`the gateway routes ${routed.map((m) => `${m.id} (${m.gpufleet.mode})`).join(", ")}`);
  // Show a disaggregated route when there is one: the request then crosses prefill → KV pull → decode.
  const shown = routed.find((m) => m.gpufleet.mode === "disaggregated") ?? routed[0]!;
  const curlArgs = completionCurlArgs(shown.id);
  const answer = spawnSync("curl", [...curlArgs, "--max-time", "30", "--fail-with-body"], { encoding: "utf8" });
  const events = answer.stdout.split("\n").filter((l) => l.startsWith("data: "));
  if (answer.status !== 0 || events.at(-1) !== "data: [DONE]")
    throw new Error(
      `the sample completion through the gateway failed (curl exit ${answer.status}): ${answer.stdout.slice(0, 500)}${answer.stderr}`,
    );
  say(`use the cluster: export KUBECONFIG=${kubeconfigPath}`);
  say(`logs: ${path.relative(REPO_ROOT, logDir)}/`);
  say(
    `a streamed completion from ${shown.id} through the gateway (${events.length - 1} events, then [DONE]); first lines:`,
  );
  console.log(events.slice(0, 3).join("\n"));
  if (!values.once) say("running; Ctrl-C to stop and clean up");
  // Last, so the line to copy is the end of the output.
  say("send one yourself:");
  console.log(["curl", ...curlArgs].map(shellQuote).join(" "));
  if (values.once) await shutdown(0);
  setInterval(() => {}, 1 << 30);
} catch (error) {
  console.error(`[gpufleet] start failed: ${(error as Error).message}`);
  await shutdown(1);
}
