/**
 * The simulated serving instances speak the engine API (common/src/engine-api.ts) for real, on the local cluster:
 * the operator (in-process) plans a ServingDeployment and creates its pods, the agent (its own process,
 * simulation mode) runs their engines and serves them on its engine port; the test finds each instance's
 * engineUrl in its load reports on NATS and calls it over HTTP as the gateway does.
 * - colocated: a completion streamed and not, exactly max_tokens tokens of the placeholder text, usage right;
 *   a client that disconnects mid-stream cancels the request and its blocks are free in the next load report;
 *   a drained instance answers 503 and says so on /health.
 * - disaggregated: prefill → decode, the decode instance pulling the KV from the prefill instance; its first token
 *   comes no earlier than the modelled transfer time (KV bytes over the link between the two pods' nodes) after
 *   the call (NVLink inside a node; a decode instance on a node with 1 Gbit/s NICs makes the wait ~1.3 s), and the
 *   prefill instance's blocks are freed once the decode side has the KV.
 */
import * as grpc from "@grpc/grpc-js";
import type { V1Pod } from "@kubernetes/client-node";
import { connect, type NatsConnection, type Subscription } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import { kvLink, kvTransferMs, type KvLinkEnd } from "../../../agent/src/simulation/instances/kv-transfer.js";
import { placeholderText } from "../../../agent/src/simulation/instances/tokens.js";
import { simulatedNodeFacts } from "../../../agent/src/simulation/model.js";
import {
  EngineHeader,
  EnginePath,
  estimateTokens,
  kvPath,
  validateEngineChunk,
  validateInstanceLoadFields,
  validatePrefillResponse,
  type EngineChunk,
  type PrefillResponse,
} from "../../../common/src/engine-api.js";
import { decodeLoad, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { ServingDeployment, ServingDeploymentSpec } from "../../../crds/src/serving-deployment.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { startInProcessOperator, startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";
import { LLAMA_3_8B } from "../../support/builders.js";

let cluster: TestCluster;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
let agentClient: NodeAgentClient | undefined;
let nats: NatsConnection | undefined;
let loadSub: Subscription | undefined;
const loads: (LoadEntry & { receivedMs: number })[] = [];

beforeAll(async () => {
  cluster = testCluster();
  operator = await startInProcessOperator(cluster, "siminstances-it");
  const started = await startSimulatedAgent({
    kubeconfigPath: cluster.kubeconfigPath,
    natsUrl: cluster.natsUrl,
    name: "agent-siminstances",
    env: { GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200", GPUFLEET_AGENT_ENGINE_PORT: "0" },
  });
  agent = started.agent;
  agentClient = new NodeAgentClient(`127.0.0.1:${started.grpcPort}`, grpc.credentials.createInsecure(), 5000);
  nats = await connect({ servers: cluster.natsUrl });
  loadSub = nats.subscribe(subscriptionFor("load"), {
    callback: (_err, m) =>
      loads.push(...decodeLoad(m.subject, m.data).reports.map((r) => ({ ...r, receivedMs: Date.now() }))),
  });
});

afterAll(async () => {
  loadSub?.unsubscribe();
  await nats?.close();
  agentClient?.close();
  await agent?.stop();
  await operator?.stop();
});

const servingGroup = { group: API_GROUP, version: API_VERSION, plural: "servingdeployments" };
const MODEL = LLAMA_3_8B.name;

interface Instance {
  pod: V1Pod;
  report: LoadEntry;
  url: string;
  workerId: string;
}

async function deploy(namespace: string, name: string, mode: "colocated" | "disaggregated"): Promise<Instance[]> {
  const sd: ServingDeployment = {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name, namespace },
    spec: {
      model: LLAMA_3_8B,
      gpu: { model: "H100-80GB" },
      mode,
      engine: { image: "vllm/vllm-openai:v0.11.0", args: [] },
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
      workload: { arrivalRatePerSec: 2, preset: "chatbot" },
    } as unknown as ServingDeploymentSpec,
  };
  await cluster.objects.create(sd);
  const roles = mode === "colocated" ? ["colocated"] : ["prefill", "decode"];
  const pods = await waitFor(
    async () => {
      const bound = (
        await cluster.core.listNamespacedPod({ namespace, labelSelector: `gpufleet.io/serving-deployment=${name}` })
      ).items.filter((p) => p.spec?.nodeName);
      const present = new Set(bound.map((p) => p.metadata?.labels?.["gpufleet.io/role"] ?? "colocated"));
      return roles.every((r) => present.has(r)) ? bound : undefined;
    },
    { description: `bound ${roles.join(" and ")} pods of ${namespace}/${name}`, timeoutMs: 60_000 },
  );
  const instances: Instance[] = [];
  for (const pod of pods) {
    const report = await waitFor(() => (latestLoad(pod)?.engineUrl ? latestLoad(pod) : undefined), {
      description: `a load report with an engineUrl from ${pod.metadata!.name}`,
      timeoutMs: 30_000,
    });
    instances.push({ pod, report, url: report.engineUrl!, workerId: report.workerId });
  }
  return instances;
}

const latestLoad = (pod: V1Pod) =>
  loads.filter((l) => l.podNamespace === pod.metadata!.namespace && l.podName === pod.metadata!.name).at(-1);
const roleOf = (i: Instance) => i.pod.metadata?.labels?.["gpufleet.io/role"] ?? "colocated";

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

/** Reads an SSE response to its end: the JSON of each `data:` event (with its arrival time) and whether [DONE] came. */
async function readSse(
  response: Response,
  onEvent?: (event: unknown) => void,
): Promise<{ events: { data: unknown; atMs: number }[]; done: boolean }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: { data: unknown; atMs: number }[] = [];
  let buffered = "";
  let done = false;
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    buffered += decoder.decode(chunk.value, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) !== -1) {
      const line = buffered.slice(0, end).replace(/^data: /, "");
      buffered = buffered.slice(end + 2);
      if (line === "[DONE]") done = true;
      else {
        const data: unknown = JSON.parse(line);
        events.push({ data, atMs: performance.now() });
        onEvent?.(data);
      }
    }
  }
  return { events, done };
}

function chunks(events: { data: unknown }[]): EngineChunk[] {
  return events.map((e) => {
    const v = validateEngineChunk(e.data);
    if (!v.ok) throw new Error(`bad chunk ${JSON.stringify(e.data)}: ${v.message}`);
    return v.value;
  });
}

describe("a colocated simulated instance", () => {
  let namespace: string;
  let instance: Instance;

  beforeAll(async () => {
    namespace = await cluster.freshNamespace("siminst-colocated");
    instance = (await deploy(namespace, "solo", "colocated"))[0]!;
  });

  afterAll(async () => {
    await cluster.customObjects
      .deleteNamespacedCustomObject({ ...servingGroup, namespace, name: "solo" })
      .catch(() => undefined);
  });

  it("reports what the gateway needs to route to it", () => {
    const fields = validateInstanceLoadFields(instance.report);
    expect(fields.ok, fields.ok ? "" : fields.message).toBe(true);
    expect(instance.report).toMatchObject({
      role: "colocated",
      model: MODEL,
      servingDeployment: `${namespace}/solo`,
      highPriorityRunning: 0,
      draining: false,
    });
    expect(instance.url).toBe(`${new URL(instance.url).origin}/instances/${instance.pod.metadata!.uid}`);
  });

  it("answers /health with its role, model and instance", async () => {
    const res = await fetch(`${instance.url}${EnginePath.health}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", role: "colocated", model: MODEL, instance: instance.workerId });
  });

  it("completes without streaming: max_tokens placeholder tokens and their usage", async () => {
    const prompt = "Tell me a story about a fox.";
    const res = await post(
      `${instance.url}${EnginePath.completions}`,
      { model: MODEL, prompt, max_tokens: 12 },
      { [EngineHeader.requestId]: "plain-1" },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get(EngineHeader.requestId)).toBe("plain-1");
    const body = (await res.json()) as EngineChunk;
    expect(validateEngineChunk(body).ok).toBe(true);
    expect(body.choices[0]).toEqual({ index: 0, text: placeholderText(0, 12), finish_reason: "length" });
    expect(body.usage).toEqual({
      prompt_tokens: estimateTokens(prompt),
      completion_tokens: 12,
      total_tokens: estimateTokens(prompt) + 12,
    });
  });

  it("streams a completion as SSE chunks: one per token, then finish_reason and usage, then [DONE]", async () => {
    const prompt = "x".repeat(400);
    const res = await post(
      `${instance.url}${EnginePath.completions}`,
      { model: MODEL, prompt, max_tokens: 20, stream: true },
      { [EngineHeader.requestId]: "stream-1" },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const { events, done } = await readSse(res);
    expect(done).toBe(true);
    const all = chunks(events);
    const tokens = all.filter((c) => c.choices[0]!.text !== "");
    expect(tokens).toHaveLength(20);
    expect(tokens.map((c) => c.choices[0]!.text).join("")).toBe(placeholderText(0, 20));
    expect(all.at(-1)).toMatchObject({
      choices: [{ text: "", finish_reason: "length" }],
      usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
    });
  });

  it.each([
    ["a body that is not JSON", "{not json", 400, "invalid_json"],
    ["max_tokens 0", { model: MODEL, prompt: "hi", max_tokens: 0 }, 400, "invalid_request"],
    ["another model", { model: "gpt-4", prompt: "hi", max_tokens: 4 }, 404, "model_not_found"],
    [
      "more tokens than the context",
      { model: MODEL, prompt: "hi", max_tokens: 100_000 },
      400,
      "context_length_exceeded",
    ],
  ])("refuses %s with the contract's error body", async (_name, body, status, code) => {
    const res = await fetch(`${instance.url}${EnginePath.completions}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: { code, type: expect.any(String), message: expect.any(String) } });
  });

  it("serves no prefill or decode route, and no unknown instance", async () => {
    const prefill = await post(`${instance.url}${EnginePath.prefill}`, {
      request_id: "p",
      model: MODEL,
      prompt: "hi",
      max_tokens: 4,
    });
    expect(prefill.status).toBe(404);
    const unknown = await fetch(`${new URL(instance.url).origin}/instances/no-such-pod${EnginePath.health}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "instance_not_found" } });
  });

  it("cancels a request whose client disconnects, freeing its blocks (next load report), and counts it high priority while it runs", async () => {
    const controller = new AbortController();
    const res = await post(
      `${instance.url}${EnginePath.completions}`,
      { model: MODEL, prompt: "y".repeat(2000), max_tokens: 3000, stream: true },
      { [EngineHeader.requestId]: "gone-1", [EngineHeader.priority]: "high" },
      controller.signal,
    );
    expect(res.status).toBe(200);
    let seen = 0;
    const reading = readSse(res, () => {
      seen += 1;
    }).catch((err: unknown) => err);
    const busy = await waitFor(
      () =>
        loads.find((l) => l.workerId === instance.workerId && (l.kvBlocksUsed ?? 0) > 0 && l.highPriorityRunning === 1),
      { description: "a load report with the request's blocks, high priority", timeoutMs: 20_000 },
    );
    expect(busy.runningRequests).toBe(1);
    await waitFor(() => seen >= 3, { description: "three streamed tokens", timeoutMs: 20_000 });
    const disconnectedMs = Date.now();
    controller.abort();
    await reading;
    const freed = await waitFor(
      () =>
        loads.find(
          (l) =>
            l.workerId === instance.workerId &&
            l.receivedMs > disconnectedMs &&
            l.kvBlocksUsed === 0 &&
            l.runningRequests === 0,
        ),
      { description: "a load report with the blocks freed", timeoutMs: 20_000 },
    );
    expect(freed.highPriorityRunning).toBe(0);
    // 3000 tokens at ~6 ms per step would still be running: the blocks are free because the request was cancelled.
    await waitFor(
      () => agent!.logs.find((l) => l.msg === "client disconnected: request cancelled" && l.requestId === "gone-1"),
      { description: "the cancellation logged", timeoutMs: 10_000 },
    );
  });

  it("answers 503 once drained, and /health says draining", async () => {
    await agentClient!
      .sendWorkerCommand(instance.workerId, { commandId: "drain-it", drain: { deadlineMs: 0 } })
      .catch(() => undefined);
    await waitFor(
      () => agent!.logs.find((l) => l.msg === "simulated worker acted on command" && l.commandId === "drain-it"),
      { description: "the drain applied", timeoutMs: 20_000 },
    );
    const res = await post(`${instance.url}${EnginePath.completions}`, { model: MODEL, prompt: "hi", max_tokens: 4 });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ error: { code: "draining" } });
    expect(await (await fetch(`${instance.url}${EnginePath.health}`)).json()).toMatchObject({ status: "draining" });
  });
});

describe("a disaggregated simulated deployment", () => {
  let namespace: string;
  let prefill: Instance;
  let decode: Instance;

  beforeAll(async () => {
    namespace = await cluster.freshNamespace("siminst-disagg");
    const instances = await deploy(namespace, "split", "disaggregated");
    prefill = instances.find((i) => roleOf(i) === "prefill")!;
    decode = instances.find((i) => roleOf(i) === "decode")!;
  });

  afterAll(async () => {
    await cluster.customObjects
      .deleteNamespacedCustomObject({ ...servingGroup, namespace, name: "split" })
      .catch(() => undefined);
  });

  /** The instance's end of a KV link, from its node's facts as the agent reads them. */
  async function linkEnd(pod: V1Pod, report: LoadEntry): Promise<KvLinkEnd> {
    const facts = simulatedNodeFacts(await cluster.core.readNode({ name: pod.spec!.nodeName! }));
    return {
      nodeName: facts.nodeName,
      gpuModel: facts.gpus[0]?.model ?? "H100-80GB",
      gpus: report.tp! * report.pp!,
      nicGBpsPerGpu: facts.nics.reduce((sum, n) => sum + n.bandwidthGbps, 0) / 8 / facts.gpus.length,
    };
  }

  it("prefills on the prefill instance, and the decode instance pulls the KV and streams tokens 2..max_tokens after the modelled transfer", async () => {
    expect(prefill.report).toMatchObject({ role: "prefill", servingDeployment: `${namespace}/split` });
    expect(decode.report).toMatchObject({ role: "decode", servingDeployment: `${namespace}/split` });
    const prompt = "z".repeat(12_000); // 3000 tokens (the shape's context is 4096): ~0.39 GB of Llama-3-8B KV
    const maxTokens = 16;
    const pre = await post(
      `${prefill.url}${EnginePath.prefill}`,
      { request_id: "hand-1", model: MODEL, prompt, max_tokens: maxTokens },
      { [EngineHeader.requestId]: "hand-1" },
    );
    expect(pre.status, pre.status === 200 ? "" : await pre.clone().text()).toBe(200);
    const parsed = validatePrefillResponse(await pre.json());
    expect(parsed.ok, parsed.ok ? "" : parsed.message).toBe(true);
    const prefilled = (parsed as { value: PrefillResponse }).value;
    const kvBytesPerToken = 2 * 32 * 8 * 128 * 2;
    expect(prefilled).toMatchObject({
      request_id: "hand-1",
      prompt_tokens: 3000,
      first_token: { text: placeholderText(0, 1) },
      finish_reason: null,
    });
    expect(prefilled.kv).toEqual({
      source_url: prefill.url,
      source_instance: prefill.workerId,
      request_id: "hand-1",
      blocks: Math.ceil(3000 / 16),
      bytes: 3000 * kvBytesPerToken,
      block_size_tokens: 16,
    });
    // The prefill instance holds the KV until the decode side has pulled it.
    await waitFor(() => loads.find((l) => l.workerId === prefill.workerId && l.heldKvBlocks === prefilled.kv.blocks), {
      description: "the prefill instance holding the KV",
      timeoutMs: 20_000,
    });

    const link = kvLink(await linkEnd(prefill.pod, prefill.report), await linkEnd(decode.pod, decode.report));
    const expectedMs = kvTransferMs(prefilled.kv.bytes, link);
    expect(expectedMs).toBeGreaterThan(0);

    const startedMs = performance.now();
    const res = await post(
      `${decode.url}${EnginePath.decode}`,
      {
        request_id: "hand-1",
        model: MODEL,
        prompt_tokens: prefilled.prompt_tokens,
        max_tokens: maxTokens,
        first_token: prefilled.first_token,
        kv: prefilled.kv,
        stream: true,
      },
      { [EngineHeader.requestId]: "hand-1" },
    );
    expect(res.status, res.status === 200 ? "" : await res.clone().text()).toBe(200);
    expect(res.headers.get("x-gpufleet-kv-link")).toBe(link.kind);
    expect(Number(res.headers.get("x-gpufleet-kv-transfer-ms"))).toBeCloseTo(expectedMs, 2);
    const { events, done } = await readSse(res);
    expect(done).toBe(true);
    const all = chunks(events);
    const tokens = all.filter((c) => c.choices[0]!.text !== "");
    expect(tokens.map((c) => c.choices[0]!.text).join("")).toBe(placeholderText(1, maxTokens));
    expect(all.at(-1)).toMatchObject({
      choices: [{ finish_reason: "length" }],
      usage: { prompt_tokens: 3000, completion_tokens: maxTokens, total_tokens: 3000 + maxTokens },
    });
    const firstTokenAfterMs = events.find((e) => (e.data as EngineChunk).choices[0]!.text !== "")!.atMs - startedMs;
    expect(firstTokenAfterMs).toBeGreaterThanOrEqual(expectedMs);

    // The decode side freed the KV on the prefill instance once it had it.
    const gone = await fetch(`${prefill.url}${kvPath("hand-1")}`);
    expect(gone.status).toBe(404);
    await waitFor(() => latestLoad(prefill.pod)?.heldKvBlocks === 0, {
      description: "the prefill instance's blocks freed",
      timeoutMs: 20_000,
    });
  });

  it("waits the modelled transfer over a slow NIC to another node: the first decode token comes no earlier than bytes / link bandwidth after the call", async () => {
    // A decode instance of the same model on a node of its own with 1 Gbit/s NICs (a pod bound by name, as a
    // scheduler would): the KV crosses nodes at 8 × 1 Gbit/s / 8 GPUs × 0.8 efficiency = 0.1 GB/s per GPU.
    const nodeName = `siminst-slow-nic-${process.pid}`;
    await cluster.core.createNode({
      body: {
        metadata: {
          name: nodeName,
          annotations: {
            "kwok.x-k8s.io/node": "fake",
            "gpufleet.io/sim-gpu-model": "H100-80GB",
            "gpufleet.io/sim-gpu-count": "8",
            "gpufleet.io/sim-nic-bandwidth-gbps": "1",
          },
        },
        spec: { taints: [{ key: "gpufleet.io/test-only", effect: "NoSchedule" }] },
      },
    });
    try {
      // The operator's model shape for the deployment, as its decode pod has it.
      const shape = decode.pod.spec!.containers[0]!.env!.find((e) => e.name === "GPUFLEET_MODEL_SHAPE")!.value!;
      const env = { GPUFLEET_ROLE: "decode", GPUFLEET_MODEL_SHAPE: shape, GPUFLEET_TP: "1", GPUFLEET_PP: "1" };
      const pod = await cluster.core.createNamespacedPod({
        namespace,
        body: {
          metadata: {
            name: "slow-decode",
            labels: { "gpufleet.io/serving-deployment": "manual", "gpufleet.io/role": "decode" },
          },
          spec: {
            nodeName,
            tolerations: [{ key: "gpufleet.io/test-only", operator: "Exists" }],
            containers: [
              {
                name: "engine",
                image: "vllm/vllm-openai:v0.11.0",
                env: Object.entries(env).map(([name, value]) => ({ name, value })),
              },
            ],
          },
        },
      });
      const slow = await waitFor(() => (latestLoad(pod)?.engineUrl ? latestLoad(pod) : undefined), {
        description: "a load report from the slow-NIC decode instance",
        timeoutMs: 30_000,
      });
      const prompt = "w".repeat(4000); // 1000 tokens: 131 MB of KV
      const pre = await post(`${prefill.url}${EnginePath.prefill}`, {
        request_id: "slow-1",
        model: MODEL,
        prompt,
        max_tokens: 4,
      });
      expect(pre.status).toBe(200);
      const prefilled = (await pre.json()) as PrefillResponse;
      const link = kvLink(await linkEnd(prefill.pod, prefill.report), {
        nodeName,
        gpuModel: "H100-80GB",
        gpus: 1,
        nicGBpsPerGpu: 0.125,
      });
      expect(link).toEqual({ kind: "nic", GBps: 0.1 });
      const expectedMs = kvTransferMs(prefilled.kv.bytes, link);
      expect(expectedMs).toBeCloseTo(1310.72, 2);

      const startedMs = performance.now();
      const res = await post(`${slow.engineUrl!}${EnginePath.decode}`, {
        request_id: "slow-1",
        model: MODEL,
        prompt_tokens: prefilled.prompt_tokens,
        max_tokens: 4,
        first_token: prefilled.first_token,
        kv: prefilled.kv,
        stream: true,
      });
      expect(res.status, res.status === 200 ? "" : await res.clone().text()).toBe(200);
      expect(res.headers.get("x-gpufleet-kv-link")).toBe("nic");
      expect(Number(res.headers.get("x-gpufleet-kv-transfer-ms"))).toBeCloseTo(expectedMs, 2);
      const { events, done } = await readSse(res);
      expect(done).toBe(true);
      expect(
        chunks(events)
          .map((c) => c.choices[0]!.text)
          .join(""),
      ).toBe(placeholderText(1, 4));
      const firstTokenAfterMs = events[0]!.atMs - startedMs;
      expect(firstTokenAfterMs).toBeGreaterThanOrEqual(expectedMs);
      await cluster.core.deleteNamespacedPod({ namespace, name: "slow-decode" });
    } finally {
      await cluster.core.deleteNode({ name: nodeName }).catch(() => undefined);
    }
  });

  it("answers 410 kv_gone when the KV is no longer on the prefill instance, and each role refuses the other's routes", async () => {
    const kv = {
      source_url: prefill.url,
      source_instance: prefill.workerId,
      request_id: "never-prefilled",
      blocks: 1,
      bytes: 131072,
      block_size_tokens: 16,
    };
    const res = await post(`${decode.url}${EnginePath.decode}`, {
      request_id: "never-prefilled",
      model: MODEL,
      prompt_tokens: 1,
      max_tokens: 4,
      first_token: { text: "the " },
      kv,
    });
    expect(res.status).toBe(410);
    expect(await res.json()).toMatchObject({ error: { code: "kv_gone" } });
    expect(
      (await post(`${decode.url}${EnginePath.prefill}`, { request_id: "p", model: MODEL, prompt: "hi", max_tokens: 4 }))
        .status,
    ).toBe(404);
    expect(
      (await post(`${prefill.url}${EnginePath.completions}`, { model: MODEL, prompt: "hi", max_tokens: 4 })).status,
    ).toBe(404);
    expect((await fetch(`${prefill.url}${kvPath("never-prefilled")}`, { method: "DELETE" })).status).toBe(404);
  });
});
