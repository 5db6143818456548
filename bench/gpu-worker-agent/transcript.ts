/**
 * The agent-driven transcript of issue 14: the real node agent (main.ts in real mode, bundled) beside the Python
 * reference worker, with a real nats-server. Discovery runs nvidia-smi; serving workers (colocated, prefill,
 * decode) register over the agent's socket and serve the instance API; the operator's calls go to the agent's gRPC
 * port (GetNodeInfo, ListWorkers, SendWorkerCommand, RunDiagnostic); load, collective and checkpoint telemetry is
 * read back from NATS; training ranks (NCCL on the GPU, gloo on CPU) report collectives and checkpoints.
 *
 * Every step is recorded with what was asked, what came back and how long it took, also when it failed, into
 * OUT_DIR/gpu-worker-agent-transcript.json, and the agent's and workers' logs into OUT_DIR. Run on the H200 by
 * bench/gpu-worker-agent/device-run.sh (bundled with esbuild, see there); on CPU with BACKEND=numpy for a dry run.
 *
 * Environment: AGENT_BUNDLE (agent.mjs), NATS_BIN, PYTHON, WORKER_DIR (agent/worker), OUT_DIR, BACKEND
 * (torch | numpy), NODE_NAME, NVIDIA_SMI (optional override for a dry run), TRAIN_STEPS.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { connect } from "nats";
import { NodeAgentClient } from "../../agent/src/grpc/client.js";
import { validateInstanceLoadFields } from "../../common/src/engine-api.js";
import { MODEL_SHAPES } from "../../common/src/models/model-shapes.js";
import {
  decodeCollectives,
  decodeLoad,
  decodeWorkerEvents,
  decodeWorkers,
  subscriptionFor,
  type LoadEntry,
} from "../../common/src/telemetry/subjects.js";
import { startNatsServer } from "../../test/integration/agent/nats-server.js";
import { readSse, tokensOf } from "../../test/support/gateway.js";
import { startPythonWorker, type PythonWorker } from "../../test/support/python-worker.js";

const env = process.env;
const need = (k: string): string => {
  const v = env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const OUT = need("OUT_DIR");
const BACKEND = env.BACKEND ?? "torch";
const NODE = env.NODE_NAME ?? "h200-node-0";
const PYTHON = env.PYTHON ?? "python3";
const WORKER_DIR = need("WORKER_DIR");
const GPU = BACKEND === "torch";
const SHAPE = GPU
  ? { ...MODEL_SHAPES["Llama-3-8B"], intermediateSize: 14336 }
  : { name: "tiny-llama", layers: 2, hiddenSize: 64, heads: 4, kvHeads: 2, intermediateSize: 128, vocabSize: 512 };
const MODEL = SHAPE.name;
const work = mkdtempSync(join(tmpdir(), "gpufleet-transcript-"));
const socket = join(work, "agent.sock");
const t0 = Date.now();

interface Step {
  step: string;
  ok: boolean;
  ms: number;
  atMs: number;
  result?: unknown;
  error?: string;
}
const steps: Step[] = [];
async function step<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
  const start = Date.now();
  try {
    const result = await fn();
    steps.push({ step: name, ok: true, ms: Date.now() - start, atMs: start - t0, result });
    console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ok   ${name}: ${JSON.stringify(result).slice(0, 400)}`);
    return result;
  } catch (err) {
    const e = err as Error & { code?: number; details?: string };
    const error = `${e.code !== undefined ? `${grpc.status[e.code] ?? e.code}: ` : ""}${e.details ?? e.message}${e.cause ? ` (cause: ${String(e.cause)})` : ""}`;
    steps.push({ step: name, ok: false, ms: Date.now() - start, atMs: start - t0, error });
    console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] FAIL ${name}: ${error}`);
    return undefined;
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const post = (url: string, body: object, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
const prompt = (tokens: number, salt: string) => `${salt} `.padEnd(tokens * 4, "abcd efgh ijkl mnop ");

async function runToEnd(
  name: string,
  args: string[],
  extraEnv: Record<string, string>,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const child = spawn(PYTHON, args, {
    cwd: WORKER_DIR,
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(join(OUT, `${name}.log`));
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    log.write(d);
  });
  child.stderr.on("data", (d: Buffer) => log.write(d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once("close", r));
  clearTimeout(timer);
  log.end();
  if (code !== 0) throw new Error(`${name} exited with ${code}; see ${name}.log`);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const nats = await startNatsServer(need("NATS_BIN"));
  const nc = await connect({ servers: nats.url });
  const seen = {
    load: [] as LoadEntry[],
    collectiveMessages: 0,
    collectiveRecords: [] as {
      rank: number;
      sequence: number;
      communicator: string;
      durationUs: number;
      bytes: number;
      pod?: string;
    }[],
    workers: [] as unknown[],
    workerEvents: [] as unknown[],
  };
  void (async () => {
    for await (const m of nc.subscribe(subscriptionFor("load")))
      seen.load.push(...decodeLoad(m.subject, m.data).reports);
  })();
  void (async () => {
    for await (const m of nc.subscribe(subscriptionFor("collectives"))) {
      const d = decodeCollectives(m.subject, m.data);
      seen.collectiveMessages++;
      for (const r of d.records)
        seen.collectiveRecords.push({
          rank: r.rank,
          sequence: r.sequence,
          communicator: r.communicator,
          durationUs: r.endUnixUs - r.startUnixUs,
          bytes: r.bytes,
          pod: d.source?.podName,
        });
    }
  })();
  void (async () => {
    for await (const m of nc.subscribe(subscriptionFor("workers"))) seen.workers.push(decodeWorkers(m.subject, m.data));
  })();
  void (async () => {
    for await (const m of nc.subscribe(subscriptionFor("worker-events")))
      seen.workerEvents.push(decodeWorkerEvents(m.subject, m.data));
  })();

  const agentLog = createWriteStream(join(OUT, "agent.log"));
  const agent: ChildProcess = spawn(
    process.execPath,
    ["--input-type=module", "-e", `await import(${JSON.stringify(need("AGENT_BUNDLE"))})`],
    {
      env: {
        ...process.env,
        NODE_NAME: NODE,
        GPUFLEET_AGENT_SIMULATE: "false",
        GPUFLEET_AGENT_INSECURE: "true",
        GPUFLEET_NATS_URL: nats.url,
        GPUFLEET_AGENT_SOCKET: socket,
        GPUFLEET_AGENT_GRPC_ADDRESS: "127.0.0.1:50551",
        GPUFLEET_AGENT_HTTP_PORT: "9455",
        GPUFLEET_AGENT_HEARTBEAT_INTERVAL_MS: "1000",
        GPUFLEET_AGENT_WORKER_PYTHON: PYTHON,
        GPUFLEET_AGENT_WORKER_DIR: WORKER_DIR,
        ...(env.NVIDIA_SMI ? { GPUFLEET_AGENT_NVIDIA_SMI: env.NVIDIA_SMI } : {}),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  agent.stdout!.pipe(agentLog);
  agent.stderr!.pipe(agentLog);
  const operator = new NodeAgentClient("127.0.0.1:50551", grpc.credentials.createInsecure(), 120_000);
  const workers: PythonWorker[] = [];
  try {
    await step("agent starts in real mode and discovers this node (GetNodeInfo)", async () => {
      for (let i = 0; ; i++) {
        try {
          const info = await operator.getNodeInfo(NODE, 2000);
          return {
            nodeName: info.nodeName,
            simulated: info.simulated,
            gpus: info.gpus.map((g) => ({
              index: g.index,
              model: g.model,
              productName: g.productName,
              memoryMib: g.memoryMib,
              uuid: g.uuid,
              pciBusId: g.pciBusId,
            })),
            nics: info.nics.length,
            labels: info.labels,
          };
        } catch (err) {
          if (i > 120 || agent.exitCode !== null) throw err;
          await sleep(500);
        }
      }
    });
    const gpuUuid = (await operator.getNodeInfo(NODE).catch(() => undefined))?.gpus[0]?.uuid ?? "";
    const start = (role: string, blocks: number) =>
      startPythonWorker({
        python: PYTHON,
        workerDir: WORKER_DIR,
        args: [
          "--backend",
          BACKEND,
          "--role",
          role,
          "--num-blocks",
          String(blocks),
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--load-interval-ms",
          "500",
          "--gpu-model",
          GPU ? "H200-141GB" : "cpu",
        ],
        env: {
          GPUFLEET_AGENT_SOCKET: socket,
          POD_NAMESPACE: "serving",
          POD_NAME: `llama-${role}-0`,
          POD_UID: `uid-${role}`,
          NODE_NAME: NODE,
          NVIDIA_VISIBLE_DEVICES: gpuUuid,
          GPUFLEET_MODEL_SHAPE: JSON.stringify(SHAPE),
          GPUFLEET_SERVING_DEPLOYMENT: "serving/llama",
        },
        readyTimeoutMs: 600_000,
        onLog: (l) => writeFileSync(join(OUT, `worker-${role}.log`), `${JSON.stringify(l)}\n`, { flag: "a" }),
      });
    const serving = await step(
      "three serving workers start (colocated, prefill, decode) and register over the socket",
      async () => {
        const started = await Promise.allSettled([
          start("colocated", GPU ? 8192 : 512),
          start("prefill", GPU ? 4096 : 512),
          start("decode", GPU ? 8192 : 512),
        ]);
        for (const s of started) if (s.status === "fulfilled") workers.push(s.value);
        const failed = started.find((s) => s.status === "rejected");
        if (failed) throw failed.reason as Error;
        return workers.map((w) => ({ workerId: w.workerId, engineUrl: w.engineUrl }));
      },
    );
    const [colocated, prefill, decode] = serving ? workers : [];
    await step("ListWorkers shows them healthy", async () =>
      (await operator.listWorkers(NODE)).workers.map((w) => ({
        workerId: w.workerId,
        kind: w.kind,
        state: w.state,
        simulated: w.simulated,
        pod: `${w.podNamespace}/${w.podName}`,
      })),
    );
    if (colocated && prefill && decode) {
      await step("colocated: streamed completion through the instance API (512-token prompt, 32 tokens)", async () => {
        const s = Date.now();
        const res = await post(
          `${colocated.engineUrl}/v1/completions`,
          { model: MODEL, prompt: prompt(512, "colocated"), max_tokens: 32, stream: true },
          { "x-request-id": "tx-colocated-1" },
        );
        const { events, done } = await readSse(res);
        const tokens = tokensOf(events);
        return {
          status: res.status,
          done,
          tokens: tokens.length,
          text: tokens.join("").slice(0, 120),
          usage: events.at(-1)?.usage,
          wallMs: Date.now() - s,
        };
      });
      const pd = await step("P/D: prefill a 2048-token prompt on the prefill worker (KV held on the GPU)", async () => {
        const s = Date.now();
        const res = await post(
          `${prefill.engineUrl}/gpufleet/v1/prefill`,
          { request_id: "tx-pd-1", model: MODEL, prompt: prompt(2048, "pd"), max_tokens: 64 },
          { "x-request-id": "tx-pd-1" },
        );
        const body = (await res.json()) as {
          prompt_tokens: number;
          first_token: { text: string };
          kv: { bytes: number; blocks: number };
        };
        return { status: res.status, wallMs: Date.now() - s, ...body };
      });
      if (pd) {
        await step(
          "P/D: the decode worker pulls the KV from the prefill worker (second process, same GPU), imports it and streams tokens 2..64",
          async () => {
            const s = Date.now();
            const res = await post(`${decode.engineUrl}/gpufleet/v1/decode`, {
              request_id: "tx-pd-1",
              model: MODEL,
              prompt_tokens: pd.prompt_tokens,
              max_tokens: 64,
              first_token: pd.first_token,
              kv: pd.kv,
              stream: true,
            });
            const { events, done } = await readSse(res);
            const tokens = tokensOf(events);
            const imported = decode.logs.find((l) => l.event === "kv_imported" && l.request_id === "tx-pd-1");
            const pullMs = Number(imported?.pull_ms ?? NaN);
            return {
              status: res.status,
              done,
              tokens: tokens.length,
              usage: events.at(-1)?.usage,
              wallMs: Date.now() - s,
              kvImported: imported,
              kvPullGBps: pd.kv.bytes / (pullMs / 1000) / 1e9,
              text: (pd.first_token.text + tokens.join("")).slice(0, 120),
              fullText: pd.first_token.text + tokens.join(""),
            };
          },
        );
        await step("the same prompt colocated gives the same greedy tokens as the P/D path", async () => {
          const res = await post(`${colocated.engineUrl}/v1/completions`, {
            model: MODEL,
            prompt: prompt(2048, "pd"),
            max_tokens: 64,
          });
          const body = (await res.json()) as { choices: { text: string }[] };
          const pdText = (
            steps.find((x) => x.step.startsWith("P/D: the decode worker"))?.result as { fullText?: string } | undefined
          )?.fullText;
          return { equal: body.choices[0]!.text === pdText, colocated: body.choices[0]!.text.slice(0, 120) };
        });
      }
      await step("load reports of all three reach NATS with the gateway's fields", async () => {
        for (let i = 0; i < 40; i++) {
          const latest = workers.map((w) => seen.load.filter((e) => e.workerId === w.workerId).at(-1));
          if (latest.every(Boolean)) return latest.map((e) => ({ valid: validateInstanceLoadFields(e).ok, ...e }));
          await sleep(250);
        }
        throw new Error(`load entries seen for ${[...new Set(seen.load.map((e) => e.workerId))].join(", ")}`);
      });
      await step("SendWorkerCommand migrate_out to the decode worker: rejected with the reason", () =>
        operator.sendWorkerCommand(decode.workerId, {
          commandId: "tx-migrate-1",
          migrateOut: { requestId: "tx-pd-1", targetWorkerId: colocated.workerId },
        }),
      );
      await step(
        "SendWorkerCommand abort to the colocated worker while it streams: applied, the stream ends with an error event",
        async () => {
          const res = await post(`${colocated.engineUrl}/v1/completions`, {
            model: MODEL,
            prompt: prompt(256, "abort"),
            max_tokens: 4000,
            stream: true,
          });
          const reading = readSse(res);
          await sleep(GPU ? 500 : 200);
          const ack = await operator.sendWorkerCommand(colocated.workerId, {
            commandId: "tx-abort-1",
            abort: { reason: "transcript: abort while streaming" },
          });
          const { events, done } = await reading;
          return { ack, tokensBeforeAbort: tokensOf(events).length, lastEvent: events.at(-1), done };
        },
      );
      await step(
        "SendWorkerCommand drain to the decode worker: applied; /health 503; the next load report says draining",
        async () => {
          const ack = await operator.sendWorkerCommand(decode.workerId, {
            commandId: "tx-drain-1",
            drain: { deadlineMs: 0 },
          });
          const health = await fetch(`${decode.engineUrl}/health`);
          for (let i = 0; i < 40 && !seen.load.some((e) => e.workerId === decode.workerId && e.draining); i++)
            await sleep(250);
          return {
            ack,
            healthStatus: health.status,
            health: await health.json(),
            loadDraining: seen.load.some((e) => e.workerId === decode.workerId && e.draining),
          };
        },
      );
    }
    for (const w of workers) await w.stop();
    for (const d of ["gpu-gemm", "hbm-copy", "all-reduce", "gpu-inventory"])
      await step(`RunDiagnostic ${d}`, () => operator.runDiagnostic(NODE, d, 180_000));

    const trainEnv = (rank: number, world: number, port: number, resume = 0): Record<string, string> => ({
      GPUFLEET_AGENT_SOCKET: socket,
      POD_NAMESPACE: "training",
      POD_NAME: `job-${world}-${rank}`,
      POD_UID: `uid-train-${world}-${rank}`,
      NODE_NAME: NODE,
      RANK: String(rank),
      WORLD_SIZE: String(world),
      LOCAL_RANK: "0",
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: String(port),
      GPUFLEET_RESUME_STEP: String(resume),
      GPUFLEET_TRAINING_JOB: `training/job-${world}`,
    });
    const steps_ = Number(env.TRAIN_STEPS ?? 60);
    const trainArgs = (backend: string, dir: string, hidden: number) => [
      "-m",
      "gpufleet_worker.train",
      "--backend",
      backend,
      "--steps",
      String(steps_),
      "--hidden",
      String(hidden),
      "--layers",
      "4",
      "--batch",
      "64",
      "--report-every",
      "10",
      "--checkpoint-dir",
      join(work, dir),
      "--checkpoint-interval",
      "20",
    ];
    if (GPU) {
      await step(
        `training: one NCCL rank on the GPU, ${steps_} steps, every all-reduce timed and reported, checkpoints every 20`,
        () => runToEnd("train-nccl", trainArgs("nccl", "ckpt-nccl", 4096), trainEnv(0, 1, 29511), 300_000),
      );
      await step("training: the NCCL rank restarted with GPUFLEET_RESUME_STEP=20 ends at the same parameters", () =>
        runToEnd(
          "train-nccl-resume",
          trainArgs("nccl", "ckpt-nccl", 4096),
          { ...trainEnv(0, 1, 29512, 20), POD_UID: "uid-train-1-0-resumed" },
          300_000,
        ),
      );
    }
    await step(`training: two gloo ranks on CPU, ${steps_} steps`, async () => {
      const ranks = await Promise.all(
        [0, 1].map((r) =>
          runToEnd(`train-gloo-${r}`, trainArgs("gloo", "ckpt-gloo", 256), trainEnv(r, 2, 29513), 300_000),
        ),
      );
      return ranks;
    });
    await step("collective records and checkpoint events reached NATS", async () => {
      await sleep(1500);
      const byPod: Record<string, { records: number; ranks: number[]; sequences: [number, number]; medianUs: number }> =
        {};
      for (const r of seen.collectiveRecords) {
        const k = r.pod ?? "?";
        const e = (byPod[k] ??= { records: 0, ranks: [], sequences: [Infinity, -Infinity], medianUs: 0 });
        e.records++;
        if (!e.ranks.includes(r.rank)) e.ranks.push(r.rank);
        e.sequences = [Math.min(e.sequences[0], r.sequence), Math.max(e.sequences[1], r.sequence)];
      }
      for (const [k, e] of Object.entries(byPod)) {
        const ds = seen.collectiveRecords
          .filter((r) => (r.pod ?? "?") === k)
          .map((r) => r.durationUs)
          .sort((a, b) => a - b);
        e.medianUs = ds[Math.floor(ds.length / 2)] ?? 0;
      }
      return {
        collectiveMessages: seen.collectiveMessages,
        byPod,
        checkpointEvents: seen.workerEvents,
        workerEvents: seen.workers.length,
      };
    });
    await step("agent metrics after the run", async () =>
      (await (await fetch("http://127.0.0.1:9455/metrics")).text())
        .split("\n")
        .filter((l) => /^gpufleet_agent_(grpc_requests_total|telemetry|worker_)/.test(l))
        .slice(0, 80),
    );
  } finally {
    for (const w of workers) await w.stop();
    operator.close();
    agent.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1000));
    await nc.close();
    await nats.close();
    const transcript = {
      node: NODE,
      backend: BACKEND,
      model: MODEL,
      startedUnixMs: t0,
      seconds: (Date.now() - t0) / 1000,
      steps,
      loadSamples: seen.load.slice(-12),
    };
    writeFileSync(join(OUT, "gpu-worker-agent-transcript.json"), JSON.stringify(transcript, null, 1));
    const okCount = steps.filter((s) => s.ok).length;
    console.log(`transcript: ${okCount} of ${steps.length} steps ok in ${transcript.seconds.toFixed(1)} s`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
