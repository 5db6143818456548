/**
 * Process kills under serving (issue 15, Chaos): the agent that runs the simulated instances is SIGKILLed, as a node
 * agent crashing or OOM-killed would be. Every part is a real process or server: the operator in this process
 * (telemetry over NATS, mTLS to the agents), two agent processes (each the agent of its own kwok nodes,
 * GPUFLEET_AGENT_SIM_NODE_PREFIX, as two real nodes each have theirs), and the gateway process. Rows:
 *
 * 1. mid-stream: a stream that has started when its instance's agent dies ends with one SSE error event and no
 *    [DONE]; every token the client got is the completion's own prefix (nothing repeated). The KV of the request
 *    died with the process, and a real engine's continuation cannot be re-derived elsewhere, so it is not resumed.
 *    Timed: kill → the gateway's view drops the instance, kill → the operator's read model holds no fresh report
 *    of it (the serving scheduler's loadStaleMs), agent restart → the instance reported again and routed.
 * 2. before the first token: a request in its prefill (7,000 prompt tokens on an A10: ~1.7 s) when the agent dies
 *    is retried once on the other instance; the client gets the whole completion once, with one [DONE].
 * 3. mid-migration: the destination's agent dies while the KV stages stream to it; the source keeps the request
 *    (the ack says destination-died) and the client gets every token once.
 */
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type V1Pod } from "@kubernetes/client-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { API_GROUP, API_VERSION } from "../../crds/src/common.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import { trainingJob } from "../../test/support/builders.js";
import { placeholderText } from "../../agent/src/simulation/instances/tokens.js";
import { decodeLoad, Stream, subscriptionFor, type LoadEntry } from "../../common/src/telemetry/subjects.js";
import { SseParser } from "../../gateway/src/openai/sse.js";
import type { OperatorHandle } from "../../operator/src/operator.js";
import { llama3ShapeJson, simulatedNodeBody, TEST_ONLY_TAINT } from "../../test/support/builders.js";
import { DEFAULT_SCHEDULER_CONFIG } from "../../operator/src/serving/scheduler/scheduler.js";
import { waitFor } from "../../test/harness/wait.js";
import { writeOperatorIssuedAgentCerts } from "../../test/support/agent-certs.js";
import { startGatewayProcess, type GatewayProcess } from "../../test/support/gateway.js";
import {
  metricValue,
  startInProcessOperator,
  startSimulatedAgent,
  type ComponentProcess,
} from "../../test/support/operator.js";
import { round, type ChaosContext, type ReliabilityRow } from "./row.js";

const DEPLOYMENT_LABEL = "kills";

/** Llama-3-8B's shape (8,192 tokens of context) under a model name of this run's own. */
const shapeOf = (name: string): string => llama3ShapeJson(name);

interface Instance {
  pod: string;
  node: string;
  workerId: string;
  engineUrl: string;
}

interface StreamResult {
  text: string;
  tokens: number;
  done: boolean;
  error?: { message?: string; code?: string };
  /** x-gpufleet-instance: every instance that answered, in order. */
  instances: string[];
}

interface Streaming {
  tokens: string[];
  finished: Promise<StreamResult>;
}

/** The agents, gateway and operator of one run of the serving kill scenarios. */
class ServingKillRig {
  readonly run = `${Date.now().toString(36)}-${process.pid}`;
  readonly model = `kills-${this.run}`;
  readonly shape = shapeOf(this.model);
  readonly loads: (LoadEntry & { node: string; receivedMs: number })[] = [];
  readonly agents = new Map<"a" | "b", ComponentProcess>();
  readonly nodes: string[] = [];
  operator!: OperatorHandle;
  gateway!: GatewayProcess;
  namespace!: string;
  private nats!: NatsConnection;
  private readonly core: CoreV1Api;
  private readonly tlsDir = mkdtempSync(join(tmpdir(), "gpufleet-kills-tls-"));

  constructor(private readonly ctx: ChaosContext & { natsUrl: string }) {
    this.core = ctx.kubeConfig.makeApiClient(CoreV1Api);
  }

  prefix(agent: "a" | "b"): string {
    return `kill-${agent}-${this.run}-`;
  }

  async start(): Promise<void> {
    this.nats = await connect({ servers: this.ctx.natsUrl });
    this.nats.subscribe(subscriptionFor(Stream.load), {
      callback: (_err, m) => {
        const message = decodeLoad(m.subject, m.data);
        for (const r of message.reports)
          if (r.model === this.model) this.loads.push({ ...r, node: message.node, receivedMs: Date.now() });
      },
    });
    this.namespace = await this.ctx.freshNamespace("kills");
    this.operator = await startInProcessOperator(this.ctx, `kills-${this.run}`, {
      natsUrl: this.ctx.natsUrl,
      durablePrefix: `kills-${process.pid}-${this.run}`,
    });
    await writeOperatorIssuedAgentCerts({ core: this.core }, this.tlsDir);
    for (const agent of ["a", "b"] as const) await this.startAgent(agent);
    this.gateway = await startGatewayProcess({ GPUFLEET_GATEWAY_NATS_URL: this.ctx.natsUrl });
    // A10s: a 7,000-token prefill takes ~1.7 s of simulated time (a window to kill an agent in); one slow node
    // (1 Gbit/s NICs) per agent, so KV stages of a migration take seconds.
    for (const agent of ["a", "b"] as const) {
      await this.createNode(`${this.prefix(agent)}a10`, { "gpufleet.io/sim-gpu-model": "A10-24GB" });
      await this.createNode(`${this.prefix(agent)}slow`, {
        "gpufleet.io/sim-gpu-model": "H100-80GB",
        "gpufleet.io/sim-nic-bandwidth-gbps": "1",
      });
    }
    await waitFor(
      async () => {
        for (const name of this.nodes)
          if (!(await this.core.readNode({ name })).metadata?.annotations?.["gpufleet.io/agent-endpoint"]) return false;
        return true;
      },
      { description: "each agent advertising its endpoint on its nodes", timeoutMs: 60_000 },
    );
  }

  async startAgent(agent: "a" | "b"): Promise<void> {
    const started = await startSimulatedAgent({
      kubeconfigPath: this.ctx.kubeconfigPath,
      natsUrl: this.ctx.natsUrl,
      name: `agent-kills-${agent}`,
      env: {
        GPUFLEET_AGENT_TLS_DIR: this.tlsDir,
        GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
        GPUFLEET_AGENT_ENGINE_PORT: "0",
        GPUFLEET_AGENT_SIM_NODE_PREFIX: this.prefix(agent),
      },
    });
    this.agents.set(agent, started.agent);
  }

  /** SIGKILL, as the kernel's OOM killer or a crash would end it: no handler runs, nothing is flushed. */
  async killAgent(agent: "a" | "b"): Promise<number> {
    const killedMs = Date.now();
    await this.agents.get(agent)!.stop("SIGKILL");
    this.agents.delete(agent);
    return killedMs;
  }

  agentOf(instance: Instance): "a" | "b" {
    return instance.node.startsWith(this.prefix("a")) ? "a" : "b";
  }

  private async createNode(name: string, annotations: Record<string, string>): Promise<void> {
    await this.core.createNode({ body: simulatedNodeBody(name, annotations) });
    this.nodes.push(name);
  }

  latest(pod: string, afterMs = 0) {
    return this.loads
      .filter((l) => l.podName === pod && l.podNamespace === this.namespace && l.receivedMs > afterMs)
      .at(-1);
  }

  /** A colocated instance bound to `node`, once it reports its engineUrl. */
  async startInstance(pod: string, node: string): Promise<Instance> {
    const env = { GPUFLEET_ROLE: "colocated", GPUFLEET_MODEL_SHAPE: this.shape, GPUFLEET_TP: "1", GPUFLEET_PP: "1" };
    const body: V1Pod = {
      metadata: {
        name: pod,
        labels: { "gpufleet.io/serving-deployment": DEPLOYMENT_LABEL, "gpufleet.io/role": "colocated" },
      },
      spec: {
        nodeName: node,
        tolerations: [{ key: TEST_ONLY_TAINT.key, operator: "Exists" }],
        containers: [
          {
            name: "engine",
            image: "vllm/vllm-openai:v0.11.0",
            env: Object.entries(env).map(([name, value]) => ({ name, value })),
          },
        ],
      },
    };
    await this.core.createNamespacedPod({ namespace: this.namespace, body });
    const report = await waitFor(() => (this.latest(pod)?.engineUrl ? this.latest(pod) : undefined), {
      description: `a load report with an engineUrl from ${pod}`,
      timeoutMs: 60_000,
    });
    return { pod, node, workerId: report.workerId, engineUrl: report.engineUrl! };
  }

  async deletePods(): Promise<void> {
    const pods = (await this.core.listNamespacedPod({ namespace: this.namespace })).items;
    for (const p of pods)
      await this.core
        .deleteNamespacedPod({ namespace: this.namespace, name: p.metadata!.name!, gracePeriodSeconds: 0 })
        .catch(() => undefined);
    await this.routed(0, 30_000).catch(() => undefined);
  }

  /** How many colocated instances of the model the gateway routes now. */
  async gatewayInstances(): Promise<number> {
    const body = (await (await fetch(`${this.gateway.url}/v1/models`)).json()) as {
      data: { id: string; gpufleet: { instances: { colocated: number } } }[];
    };
    return body.data.find((m) => m.id === this.model)?.gpufleet.instances.colocated ?? 0;
  }

  async routed(count: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => (await this.gatewayInstances()) === count, {
      description: `the gateway routing ${count} instance(s) of ${this.model}`,
      timeoutMs,
      intervalMs: 100,
    });
  }

  /** Whether the operator's read model holds a report of `instance` fresh enough for the serving scheduler. */
  operatorSeesFresh(instance: Instance): boolean {
    const now = Date.now();
    return this.operator.telemetry
      .loadOf(`${this.namespace}/${DEPLOYMENT_LABEL}`)
      .some((l) => l.workerId === instance.workerId && now - l.receivedUnixMs <= DEFAULT_SCHEDULER_CONFIG.loadStaleMs);
  }

  async gatewayMetric(name: string, labels: Record<string, string>): Promise<number> {
    return metricValue(await (await fetch(`${this.gateway.url}/metrics`)).text(), name, labels) ?? 0;
  }

  /** A streamed completion through the gateway; resolves once the response headers came (the stream goes on). */
  async stream(requestId: string, promptTokens: number, maxTokens: number): Promise<Streaming> {
    const response = await fetch(`${this.gateway.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: JSON.stringify({
        model: this.model,
        prompt: "x".repeat(4 * promptTokens),
        max_tokens: maxTokens,
        stream: true,
      }),
    });
    if (response.status !== 200) throw new Error(`the gateway answered ${response.status}: ${await response.text()}`);
    const instances = (response.headers.get("x-gpufleet-instance") ?? "")
      .split(",")
      .filter(Boolean)
      .map((s) => s.replace(/^colocated:/, ""));
    const tokens: string[] = [];
    const finished = (async (): Promise<StreamResult> => {
      const parser = new SseParser();
      const reader = response.body!.getReader();
      let done = false;
      let error: StreamResult["error"];
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        for (const data of parser.push(chunk.value)) {
          if (data === "[DONE]") {
            done = true;
            continue;
          }
          const event = JSON.parse(data) as { error?: StreamResult["error"]; choices?: { text?: string }[] };
          if (event.error) error = event.error;
          const text = event.choices?.[0]?.text;
          if (text) tokens.push(text);
        }
      }
      return { text: tokens.join(""), tokens: tokens.length, done, ...(error ? { error } : {}), instances };
    })();
    return { tokens, finished };
  }

  async stop(): Promise<void> {
    await this.deletePods().catch(() => undefined);
    await this.gateway?.stop();
    for (const agent of this.agents.values()) await agent.stop();
    await this.operator?.stop();
    await this.nats?.close();
    for (const name of this.nodes) await this.core.deleteNode({ name }).catch(() => undefined);
    rmSync(this.tlsDir, { recursive: true, force: true });
  }
}

/** The longest prefix of the completion that `text` is, in tokens; -1 when it is not a prefix (a repeat or a gap). */
function prefixTokens(text: string, tokens: number): number {
  return text === placeholderText(0, tokens) ? tokens : -1;
}

async function midStream(rig: ServingKillRig): Promise<ReliabilityRow> {
  const a = await rig.startInstance("inst-a", `${rig.prefix("a")}a10`);
  const b = await rig.startInstance("inst-b", `${rig.prefix("b")}a10`);
  await rig.routed(2);
  const maxTokens = 3_000;
  const streaming = await rig.stream(`kill-stream-${rig.run}`, 200, maxTokens);
  await waitFor(() => streaming.tokens.length >= 50 || undefined, {
    description: "50 tokens streamed",
    timeoutMs: 30_000,
  });
  const result0 = streaming.finished;
  // The instance whose reports run the request is the one streaming it.
  const victim = await waitFor(
    () => [a, b].find((i) => (rig.latest(i.pod, Date.now() - 1000)?.runningRequests ?? 0) > 0),
    { description: "the instance running the stream", timeoutMs: 20_000 },
  );
  const survivor = victim === a ? b : a;
  const agent = rig.agentOf(victim);
  const tokensAtKill = streaming.tokens.length;
  const killedMs = await rig.killAgent(agent);
  const result = await result0;
  const clientEndedMs = Date.now() - killedMs;
  await rig.routed(1);
  const gatewayDroppedMs = Date.now() - killedMs;
  await waitFor(() => !rig.operatorSeesFresh(victim) || undefined, {
    description: "the operator's view holding no fresh report of the killed agent's instance",
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  const operatorStaleMs = Date.now() - killedMs;
  const survivorFresh = rig.operatorSeesFresh(survivor);

  // The agent comes back (a restarted DaemonSet pod): it finds the pod bound to its node and runs it again.
  const restartMs = Date.now();
  await rig.startAgent(agent);
  await rig.routed(2);
  await waitFor(() => rig.operatorSeesFresh(victim) || undefined, {
    description: "the operator seeing the restarted agent's instance again",
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  const recoveredMs = Date.now() - restartMs;
  // Both serve again: two requests at once land one on each (freeness), and each completes whole.
  const after = await Promise.all(
    [0, 1].map(async (i) => (await rig.stream(`kill-after-${i}-${rig.run}`, 100, 200)).finished),
  );
  const afterWhole = after.filter((r) => r.done && !r.error && r.text === placeholderText(0, 200)).length;

  const prefix = prefixTokens(result.text, result.tokens);
  const clearError = !result.done && result.error !== undefined && result.tokens < maxTokens;
  const passed = clearError && prefix === result.tokens && survivorFresh && afterWhole === 2;
  return {
    scenario: "agent SIGKILL mid-stream",
    injected: `SIGKILL to the agent running the instance that streamed a ${maxTokens}-token completion, ${tokensAtKill} tokens in`,
    expected:
      "the client gets one error event and no [DONE] (never a truncation passed off as success), no token twice; the gateway and the operator stop counting the instance; the restarted agent runs it again",
    happened:
      `client: ${result.tokens} tokens (${prefix === result.tokens ? "the completion's exact prefix" : "NOT a prefix"}), ` +
      `${result.done ? "[DONE]" : "no [DONE]"}, error event ${result.error ? `"${result.error.message?.slice(0, 240)}"` : "none"}; ` +
      `gateway dropped the instance after ${gatewayDroppedMs} ms, the operator's view after ${operatorStaleMs} ms ` +
      `(loadStaleMs ${DEFAULT_SCHEDULER_CONFIG.loadStaleMs}); the surviving instance stayed fresh: ${survivorFresh}; ` +
      `restarted agent reported the instance again after ${recoveredMs} ms; ${afterWhole}/2 requests after it completed whole`,
    passed,
    lost: 0,
    duplicated: prefix === result.tokens ? 0 : 1,
    scale: { instances: 2, agents: 2, maxTokens },
    timingsMs: {
      killToClientErrorMs: round(clientEndedMs),
      killToGatewayDropMs: round(gatewayDroppedMs),
      killToOperatorStaleMs: round(operatorStaleMs),
      restartToReportedMs: round(recoveredMs),
    },
    counts: { tokensAtKill, tokensDelivered: result.tokens, requestsAfterRecovery: afterWhole },
    notes: [
      "the stream is ended, not resumed: the request's KV died with the agent's process, and a real engine's sampled continuation cannot be re-derived on another instance without repeating or changing tokens the client already has",
      "gateway: dispatch skips the instance from the failed call on (marked suspect for GPUFLEET_GATEWAY_SUSPECT_MS, 5 s); /v1/models (the timing here) counts it until GPUFLEET_GATEWAY_INSTANCE_STALE_MS (5 s) without reports. Operator: by report age alone (the serving scheduler's loadStaleMs); no agent-liveness signal is faster",
    ],
  };
}

async function beforeFirstToken(rig: ServingKillRig): Promise<ReliabilityRow> {
  const a = await rig.startInstance("pre-a", `${rig.prefix("a")}a10`);
  const b = await rig.startInstance("pre-b", `${rig.prefix("b")}a10`);
  await rig.routed(2);
  const retriesBefore = await rig.gatewayMetric("gpufleet_gateway_upstream_retries_total", {
    model: rig.model,
    role: "colocated",
    reason: "unreachable",
  });
  const maxTokens = 200;
  const sentMs = Date.now();
  const streaming = rig.stream(`kill-prefill-${rig.run}`, 7_000, maxTokens);
  // The instance in the prefill reports the request (running or queued) before its first token.
  const victim = await waitFor(
    () =>
      [a, b].find((i) => {
        const l = rig.latest(i.pod, sentMs);
        return l && l.runningRequests + l.queueLength > 0;
      }),
    { description: "the instance prefilling the request", timeoutMs: 20_000, intervalMs: 20 },
  );
  const survivor = victim === a ? b : a;
  const killedMs = await rig.killAgent(rig.agentOf(victim));
  const result = await (await streaming).finished;
  const completedMs = Date.now() - killedMs;
  const retries =
    (await rig.gatewayMetric("gpufleet_gateway_upstream_retries_total", {
      model: rig.model,
      role: "colocated",
      reason: "unreachable",
    })) - retriesBefore;
  const whole = result.done && !result.error && result.text === placeholderText(0, maxTokens);
  const endedOnSurvivor = result.instances.at(-1) === survivor.workerId;
  // Restart the agent for the next scenario (and so the pods it owns are served again).
  await rig.startAgent(rig.agentOf(victim));
  const passed = whole && endedOnSurvivor && retries === 1;
  return {
    scenario: "agent SIGKILL before the first token",
    injected: "SIGKILL to the agent of the instance prefilling a 7,000-token prompt (A10, ~1.7 s of prefill)",
    expected: "retried once on the other instance: the client gets the whole completion once, one [DONE]",
    happened:
      `client: ${result.tokens}/${maxTokens} tokens, ${whole ? "exactly the completion" : "NOT the completion"}, ` +
      `${result.done ? "[DONE]" : "no [DONE]"}${result.error ? `, error "${result.error.message}"` : ""}; ` +
      `instances answering: ${result.instances.map((i) => (i === victim.workerId ? "killed" : i === survivor.workerId ? "survivor" : i)).join(" → ")}; ` +
      `${retries} retry (unreachable); done ${completedMs} ms after the kill`,
    passed,
    lost: whole ? 0 : 1,
    duplicated: result.tokens > maxTokens ? result.tokens - maxTokens : 0,
    scale: { instances: 2, agents: 2, promptTokens: 7_000, maxTokens },
    timingsMs: { killToCompletedMs: round(completedMs) },
    counts: { retries, attempts: result.instances.length },
  };
}

async function midMigration(rig: ServingKillRig): Promise<ReliabilityRow> {
  // Source on agent a's A10, destination on agent b's slow node: 4,000 prompt tokens of KV take seconds to stage.
  const source = await rig.startInstance("mig-src", `${rig.prefix("a")}a10`);
  const destination = await rig.startInstance("mig-dst", `${rig.prefix("b")}slow`);
  await rig.routed(2);
  // Freeness dispatch sends it to either: whichever runs it is the source, the other the destination (the slow
  // node's side bounds the stages in both directions). 1,500 tokens: ~40 s of decode on an A10.
  const maxTokens = 1_500;
  const requestId = `kill-mig-${rig.run}`;
  const streaming = await rig.stream(requestId, 4_000, maxTokens);
  const { to, acking } = await migrationUnderWay(rig, requestId, source, destination, Date.now());
  const tokensAtKill = streaming.tokens.length;
  const killedMs = await rig.killAgent(rig.agentOf(to));
  const ack = await acking;
  const ackMs = Date.now() - killedMs;
  const result = await streaming.finished;
  const whole = result.done && !result.error && result.text === placeholderText(0, maxTokens);
  const stayed = ack.outcome === "failed" && /destination-died/.test(ack.reason);
  // The source alone runs it to the end: its last report before the end showed it, and no follow was counted.
  const followed = await rig.gatewayMetric("gpufleet_gateway_migrations_followed_total", {
    model: rig.model,
    role: "colocated",
    outcome: "followed",
  });
  await rig.startAgent(rig.agentOf(to));
  return {
    scenario: "agent SIGKILL mid-migration (destination)",
    injected: `SIGKILL to the destination's agent while the KV stages of a migrating request (4,000 prompt tokens, ${tokensAtKill} generated) streamed to it over 1 Gbit/s`,
    expected:
      "the source keeps the request (ack failed: destination-died); the client gets every token once, one [DONE]",
    happened:
      `ack ${ack.outcome} after ${ackMs} ms: "${ack.reason.slice(0, 160)}"; client ${result.tokens}/${maxTokens} tokens, ` +
      `${whole ? "exactly the completion" : "NOT the completion"}, ${result.done ? "[DONE]" : "no [DONE]"}; migrations followed ${followed}`,
    passed: whole && stayed && followed === 0,
    lost: whole ? 0 : 1,
    duplicated: result.tokens > maxTokens ? result.tokens - maxTokens : 0,
    scale: { instances: 2, agents: 2, promptTokens: 4_000, maxTokens },
    timingsMs: { killToAckMs: round(ackMs) },
    counts: { tokensAtKill, tokensDelivered: result.tokens, migrationsFollowed: followed },
  };
}

/** Opens a migration of `requestId` from whichever of the two instances runs it, and waits until the destination
 * holds the pre-allocation (it reports migrating in). */
async function migrationUnderWay(
  rig: ServingKillRig,
  requestId: string,
  one: Instance,
  other: Instance,
  sentMs: number,
) {
  const running = await waitFor(() => [one, other].find((i) => (rig.latest(i.pod, sentMs)?.runningRequests ?? 0) > 0), {
    description: "the instance running the request",
    timeoutMs: 30_000,
  });
  const [from, to] = running === one ? [one, other] : [other, one];
  const acking = rig.operator.agents.sendWorkerCommand(
    from.node,
    from.workerId,
    {
      commandId: `migrate-${requestId}`,
      migrateOut: {
        requestId,
        targetWorkerId: to.workerId,
        targetPod: `${rig.namespace}/${to.pod}`,
        targetUrl: to.engineUrl,
      },
    },
    60_000,
  );
  const askedMs = Date.now();
  await waitFor(() => (rig.latest(to.pod, askedMs)?.migrating === "in" ? true : undefined), {
    description: "the destination reporting a migration in",
    timeoutMs: 20_000,
    intervalMs: 20,
  });
  return { from, to, acking };
}

async function midMigrationSource(rig: ServingKillRig): Promise<ReliabilityRow> {
  const one = await rig.startInstance("mig2-a", `${rig.prefix("a")}a10`);
  const other = await rig.startInstance("mig2-b", `${rig.prefix("b")}slow`);
  await rig.routed(2);
  const maxTokens = 1_500;
  const requestId = `kill-mig-src-${rig.run}`;
  const streaming = await rig.stream(requestId, 4_000, maxTokens);
  const { from, to, acking } = await migrationUnderWay(rig, requestId, one, other, Date.now());
  // The ack cannot come: the agent that would send it is the one killed.
  acking.catch(() => undefined);
  const tokensAtKill = streaming.tokens.length;
  const killedMs = await rig.killAgent(rig.agentOf(from));
  const result = await streaming.finished;
  const clientEndedMs = Date.now() - killedMs;
  // The destination frees the pre-allocation when its lease runs out (no stage renews it) and never runs the
  // request: no commit came, so it has nothing to decode from.
  await waitFor(
    () => {
      const l = rig.latest(to.pod, killedMs);
      return l && l.migrating === undefined ? true : undefined;
    },
    { description: "the destination dropping the pre-allocation", timeoutMs: 60_000, intervalMs: 50 },
  );
  const freedMs = Date.now() - killedMs;
  const destinationRan = rig.loads.some(
    (l) => l.podName === to.pod && l.receivedMs > killedMs && l.runningRequests > 0,
  );
  const prefix = prefixTokens(result.text, result.tokens);
  const clearError = !result.done && result.error !== undefined;
  await rig.startAgent(rig.agentOf(from));
  return {
    scenario: "agent SIGKILL mid-migration (source)",
    injected: `SIGKILL to the source's agent while the KV stages of a migrating request (4,000 prompt tokens, ${tokensAtKill} generated) streamed to the destination`,
    expected:
      "the client gets one error event and no [DONE], no token twice; the destination frees its pre-allocation when the lease lapses and never runs the request (owned by no instance, not by two)",
    happened:
      `client: ${result.tokens} tokens (${prefix === result.tokens ? "the completion's exact prefix" : "NOT a prefix"}), ` +
      `${result.done ? "[DONE]" : "no [DONE]"}, error event ${result.error ? "yes" : "none"}, ${clientEndedMs} ms after the kill; ` +
      `destination dropped the pre-allocation after ${freedMs} ms and ${destinationRan ? "RAN" : "never ran"} the request`,
    passed: clearError && prefix === result.tokens && !destinationRan,
    lost: 0,
    duplicated: (prefix === result.tokens ? 0 : 1) + (destinationRan ? 1 : 0),
    scale: { instances: 2, agents: 2, promptTokens: 4_000, maxTokens },
    timingsMs: { killToClientErrorMs: round(clientEndedMs), killToPreallocationFreedMs: round(freedMs) },
    counts: { tokensAtKill, tokensDelivered: result.tokens, destinationRan: destinationRan ? 1 : 0 },
    notes: ["not resumed on the destination: the KV copy was not committed, so the destination lacks part of it"],
  };
}

export const servingKillScenarios = {
  "agent SIGKILL mid-stream": midStream,
  "agent SIGKILL before the first token": beforeFirstToken,
  "agent SIGKILL mid-migration (destination)": midMigration,
  "agent SIGKILL mid-migration (source)": midMigrationSource,
} as const;
export type ServingKillScenario = keyof typeof servingKillScenarios;

/**
 * Runs the serving kill scenarios on one rig (operator, two agents, gateway), each with instances of its own;
 * `attempt` wraps each (the bench turns an error into a failed row, a test rethrows it).
 */
export async function servingKills(
  ctx: ChaosContext,
  attempt: (name: ServingKillScenario, run: () => Promise<ReliabilityRow>) => Promise<void>,
): Promise<void> {
  if (!ctx.natsUrl) throw new Error("the serving kill scenarios need NATS (agent telemetry)");
  const rig = new ServingKillRig({ ...ctx, natsUrl: ctx.natsUrl });
  try {
    await rig.start();
    for (const [name, scenario] of Object.entries(servingKillScenarios) as [
      ServingKillScenario,
      (rig: ServingKillRig) => Promise<ReliabilityRow>,
    ][]) {
      await attempt(name, () => scenario(rig));
      await rig.deletePods();
      for (const agent of ["a", "b"] as const) if (!rig.agents.has(agent)) await rig.startAgent(agent);
    }
  } finally {
    await rig.stop();
  }
}

/**
 * Training: the agent running every simulated rank of a 2-node gang is SIGKILLed. Its ranks stop without a word
 * (no collective, no checkpoint report), the operator's C4D monitor finds the job quiet past hangTimeoutSeconds
 * (a job-wide hang: nobody to blame) and restarts the whole gang from status.lastCheckpointStep; the restarted
 * agent runs the new attempt's ranks from that step. A simulated checkpoint takes no time (it is reported once
 * every rank finished its step), so "mid-checkpoint" is the Python worker's case, covered by its barrier
 * (agent/worker/gpufleet_worker/train/checkpoint.py commit_checkpoint).
 */
export async function agentKillMidTraining(
  ctx: ChaosContext,
  opts: { hangTimeoutSeconds: number },
): Promise<ReliabilityRow> {
  if (!ctx.natsUrl) throw new Error("the training kill scenario needs NATS (agent telemetry)");
  const run = `${Date.now().toString(36)}-${process.pid}`;
  const custom = ctx.kubeConfig.makeApiClient(CustomObjectsApi);
  const namespace = await ctx.freshNamespace("kills-train");
  const name = "train";
  const getJob = async () =>
    (await custom.getNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: "trainingjobs",
      namespace,
      name,
    })) as TrainingJob;
  const operator = await startInProcessOperator(ctx, `kills-train-${run}`, {
    natsUrl: ctx.natsUrl,
    durablePrefix: `kills-train-${process.pid}-${run}`,
  });
  const agentOpts = {
    kubeconfigPath: ctx.kubeconfigPath,
    natsUrl: ctx.natsUrl,
    name: "agent-kills-train",
    env: { GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200", GPUFLEET_AGENT_ENGINE_PORT: "0" },
  };
  let agent: ComponentProcess | undefined = (await startSimulatedAgent(agentOpts)).agent;
  try {
    await KubernetesObjectApi.makeApiClient(ctx.kubeConfig).create(
      trainingJob(name, namespace, {
        nodes: 2,
        gpusPerNode: 8,
        parallelism: { tp: 8, pp: 1, dp: 2 },
        checkpoint: { path: `/ckpt/${name}`, intervalSteps: 5 },
        faultPolicy: {
          maxRestarts: 3,
          slowRankTolerancePercent: 30,
          hangTimeoutSeconds: opts.hangTimeoutSeconds,
          restartBackoffSeconds: 1,
        },
        placement: { nicAware: true, gpuModel: "H100-80GB" },
      }),
    );
    await waitFor(
      async () => {
        const j = await getJob();
        return j.status?.phase === "Running" && (j.status.lastCheckpointStep ?? 0) >= 10 ? j : undefined;
      },
      { description: `${namespace}/${name} Running with a checkpoint at step ≥ 10`, timeoutMs: 300_000 },
    ).catch(async (err: Error) => {
      const status = (await getJob().catch(() => undefined))?.status;
      throw new Error(
        `${err.message}; status phase ${status?.phase}, lastCheckpointStep ${status?.lastCheckpointStep}, conditions ${JSON.stringify(status?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`))}`,
        { cause: err },
      );
    });
    const killedMs = Date.now();
    await agent.stop("SIGKILL");
    agent = undefined;
    // A report already on its way may still land: the step the job holds once the restart began is the one
    // the new attempt must resume from.
    const restarted = await waitFor(
      async () => {
        const j = await getJob();
        return (j.status?.restarts ?? 0) >= 1 ? j : undefined;
      },
      { description: "the gang restarted after the agent's death", timeoutMs: 60_000 + opts.hangTimeoutSeconds * 3000 },
    );
    const restartSeenMs = Date.now() - killedMs;
    const fault = restarted.status?.faults?.[0];
    const lastStep = restarted.status?.lastCheckpointStep ?? 0;
    const detectedMs = fault ? Date.parse(fault.actedTime) - killedMs : NaN;

    // The agent comes back and runs the new attempt's ranks.
    agent = (await startSimulatedAgent(agentOpts)).agent;
    const resumed = await waitFor(
      async () => {
        const j = await getJob();
        return j.status?.phase === "Running" &&
          (j.status.restarts ?? 0) === 1 &&
          (j.status.lastCheckpointStep ?? 0) > lastStep
          ? j
          : undefined;
      },
      { description: "the new attempt Running and checkpointing past the resume step", timeoutMs: 120_000 },
    );
    const pods = (await ctx.kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).items;
    const resumeSteps = [
      ...new Set(pods.map((p) => p.spec?.containers[0]?.env?.find((e) => e.name === "GPUFLEET_RESUME_STEP")?.value)),
    ];
    const resumeStep = Number(resumeSteps[0]);
    const passed =
      fault?.faultClass === "job-hang" &&
      resumeSteps.length === 1 &&
      resumeStep === lastStep &&
      resumeStep % 5 === 0 &&
      (resumed.status?.lastCheckpointStep ?? 0) > resumeStep;
    return {
      scenario: "agent SIGKILL mid-training",
      injected: `SIGKILL to the agent running all 16 simulated ranks of a 2-node gang (checkpoint every 5 steps, hangTimeoutSeconds ${opts.hangTimeoutSeconds}), at checkpoint step ${lastStep}`,
      expected:
        "the operator finds the job quiet past hangTimeoutSeconds and restarts the whole gang once, every new rank resuming from the last reported (complete) checkpoint",
      happened:
        `fault ${fault?.faultClass ?? "none"} acted ${Math.round(detectedMs)} ms after the kill (restart seen at ${restartSeenMs} ms); ` +
        `new attempt's pods resume from step(s) ${resumeSteps.join(", ")} (last checkpoint ${lastStep}); ` +
        `after the agent's restart the job checkpointed on to step ${resumed.status?.lastCheckpointStep}; restarts ${resumed.status?.restarts}`,
      passed,
      lost: 0,
      duplicated: (resumed.status?.restarts ?? 0) - 1,
      scale: { nodes: 2, ranks: 16 },
      timingsMs: { killToFaultActedMs: round(detectedMs), killToRestartSeenMs: round(restartSeenMs) },
      counts: { lastCheckpointStep: lastStep, resumeStep, restarts: resumed.status?.restarts ?? 0 },
      notes: [
        "detection is bounded by the job's hangTimeoutSeconds (a job-wide hang): the operator has no faster agent-liveness signal for training",
      ],
    };
  } finally {
    await custom
      .deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: "trainingjobs", namespace, name })
      .catch(() => undefined);
    await agent?.stop();
    await operator.stop();
  }
}
