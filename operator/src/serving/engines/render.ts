/**
 * The serve command of a real engine (vLLM, SGLang) for one serving pod (pure): the engine's own flags for the
 * pod's role in a disaggregated plan (the KV-transfer connector per role), its tensor and pipeline parallelism, and
 * for an instance spread over several pods, the engine's multi-node launch. spec.engine.args follow the rendered
 * flags, so a user can add any flag the engine has.
 *
 * The flags follow the engines' documentation (fixtures with source URLs in render.test.ts):
 *   vLLM     `vllm serve MODEL --tensor-parallel-size T --pipeline-parallel-size P`; prefill and decode pass
 *            `--kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_producer"|"kv_consumer"}'` with
 *            VLLM_NIXL_SIDE_CHANNEL_HOST/PORT for the NIXL handshake
 *            (https://docs.vllm.ai/en/stable/features/nixl_connector_usage/); an instance over several pods runs
 *            on a Ray cluster (`ray start --head` on the leader, `ray start --address` on the others,
 *            `--distributed-executor-backend ray`; https://docs.vllm.ai/en/stable/serving/parallelism_scaling/).
 *   SGLang   `python3 -m sglang.launch_server --model-path MODEL --tp-size T --pp-size P --enable-metrics`;
 *            prefill and decode pass `--disaggregation-mode prefill|decode --disaggregation-transfer-backend nixl`
 *            (https://docs.sglang.io/advanced_features/pd_disaggregation.html); several pods pass
 *            `--dist-init-addr LEADER:PORT --nnodes N --node-rank R`.
 * NIXL carries KV over UCX; on RDMA nodes UCX_NET_DEVICES lists the node's HCAs (NCCL's variables do not apply to
 * it, as vLLM's guide says), named as the training NCCL settings name them (training/nccl.ts).
 *
 * What these engines cannot do: gpufleet's live migration of running requests (Llumnix MigrateOut) needs the
 * reference worker's KV hand-off, so the scheduler never asks a vLLM or SGLang instance to migrate
 * (capabilities.ts); a scale-in drain waits for their requests to finish instead.
 */
import type { V1EnvVar } from "@kubernetes/client-node";
import { SGLANG_DEFAULT_BOOTSTRAP_PORT } from "../../../../common/src/engine-pd.js";
import type { EngineKind } from "../../../../crds/src/serving-deployment.js";
import type { NicType } from "../../../../crds/src/topology.js";
import { DEFAULT_NCCL_OPTIONS } from "../../training/nccl.js";

export type ServingRole = "prefill" | "decode" | "colocated";

/** What the renderer needs to know about one pod of one instance. */
export interface EnginePodInput {
  kind: Exclude<EngineKind, "reference">;
  /** The model to load (spec.model.name: a Hugging Face id or a path in the image). */
  model: string;
  role: ServingRole;
  tp: number;
  pp: number;
  port: number;
  /** 0 for the leader (serves requests); 1.. for the instance's other pods. */
  worker: number;
  /** Pods of this instance (1 when it fits one node). */
  instancePods: number;
  /** DNS name of the instance's leader pod. */
  leaderAddress: string;
  /** The pod's node fabric, for the KV transport's network devices. */
  nicType: NicType;
  nicCount: number;
  /** spec.engine.args, appended after the rendered flags. */
  userArgs: readonly string[];
}

export interface RenderedEngine {
  command: string[];
  args: string[];
  env: V1EnvVar[];
}

/** Ports the engines use besides the HTTP port (their documented defaults where they have one). */
export const EnginePorts = {
  /** VLLM_NIXL_SIDE_CHANNEL_PORT: the NIXL handshake (vLLM's default). */
  nixlSideChannel: 5600,
  /** Ray's GCS port on the leader of a multi-pod vLLM instance (ray start's default). */
  rayHead: 6379,
  /** --dist-init-addr port of a multi-pod SGLang instance (the port SGLang's examples use). */
  sglangDistInit: 5000,
  /** SGLang's KV bootstrap server on a prefill instance (its default; not rendered, spec.engine.args may move it). */
  sglangBootstrap: SGLANG_DEFAULT_BOOTSTRAP_PORT,
} as const;

const BOOTSTRAP_PORT_FLAG = "--disaggregation-bootstrap-port";

/**
 * The port a SGLang prefill instance's bootstrap server listens on: `--disaggregation-bootstrap-port` when
 * spec.engine.args sets it (the last one wins, as with argparse), else SGLang's default. The load adapter reports
 * it, and the gateway sends it to both instances of a request as `bootstrap_port`.
 */
export function sglangBootstrapPort(userArgs: readonly string[]): number {
  let port: number = EnginePorts.sglangBootstrap;
  userArgs.forEach((arg, i) => {
    const value =
      arg === BOOTSTRAP_PORT_FLAG
        ? userArgs[i + 1]
        : arg.startsWith(`${BOOTSTRAP_PORT_FLAG}=`)
          ? arg.slice(BOOTSTRAP_PORT_FLAG.length + 1)
          : undefined;
    if (value === undefined) return;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new EngineRenderError(`${BOOTSTRAP_PORT_FLAG} must be a port number, got ${JSON.stringify(value)}`);
    port = n;
  });
  return port;
}

export class EngineRenderError extends Error {
  override name = "EngineRenderError";
}

export function renderEngine(input: EnginePodInput): RenderedEngine {
  const problem = inputProblem(input);
  if (problem) throw new EngineRenderError(`${input.kind} ${input.role} pod ${input.worker}: ${problem}`);
  return input.kind === "vllm" ? renderVllm(input) : renderSglang(input);
}

function inputProblem(input: EnginePodInput): string | undefined {
  for (const [field, value] of [
    ["tp", input.tp],
    ["pp", input.pp],
    ["instancePods", input.instancePods],
    ["port", input.port],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) return `${field} must be a positive integer, got ${value}`;
  }
  if (!(Number.isInteger(input.worker) && input.worker >= 0 && input.worker < input.instancePods))
    return `worker must be in [0, ${input.instancePods}), got ${input.worker}`;
  if (input.model.trim() === "") return "model must name the model to load";
  return undefined;
}

/** The KV connector settings of vLLM's NixlConnector for a role (none when colocated). */
export function vllmKvTransferConfig(role: ServingRole): string | undefined {
  if (role === "colocated") return undefined;
  return JSON.stringify({ kv_connector: "NixlConnector", kv_role: role === "prefill" ? "kv_producer" : "kv_consumer" });
}

function renderVllm(input: EnginePodInput): RenderedEngine {
  const multiPod = input.instancePods > 1;
  const env = [...kvTransportEnv(input)];
  if (input.role !== "colocated") {
    env.push({ name: "VLLM_NIXL_SIDE_CHANNEL_PORT", value: String(EnginePorts.nixlSideChannel) });
    // The decode side reaches the prefill side's handshake at this address (its pod IP).
    env.push({ name: "VLLM_NIXL_SIDE_CHANNEL_HOST", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
  }
  const serve = [
    "vllm",
    "serve",
    input.model,
    "--host",
    "0.0.0.0",
    "--port",
    String(input.port),
    "--tensor-parallel-size",
    String(input.tp),
    "--pipeline-parallel-size",
    String(input.pp),
  ];
  const kv = vllmKvTransferConfig(input.role);
  if (kv) serve.push("--kv-transfer-config", kv);
  if (multiPod) serve.push("--distributed-executor-backend", "ray");
  serve.push(...input.userArgs);
  if (!multiPod) return { command: [serve[0]!], args: serve.slice(1), env };
  // The leader starts the Ray head and serves once its peers joined (vLLM waits for the placement group's GPUs);
  // the others join the head and keep Ray running.
  const script =
    input.worker === 0
      ? `ray start --head --port=${EnginePorts.rayHead} && exec ${shellJoin(serve)}`
      : `exec ray start --address=${input.leaderAddress}:${EnginePorts.rayHead} --block`;
  return { command: ["/bin/sh", "-c"], args: [script], env };
}

function renderSglang(input: EnginePodInput): RenderedEngine {
  const args = [
    "-m",
    "sglang.launch_server",
    "--model-path",
    input.model,
    "--host",
    "0.0.0.0",
    "--port",
    String(input.port),
    "--tp-size",
    String(input.tp),
    "--pp-size",
    String(input.pp),
    // SGLang serves /metrics only when asked; the load adapter reads it.
    "--enable-metrics",
  ];
  if (input.role !== "colocated")
    args.push("--disaggregation-mode", input.role, "--disaggregation-transfer-backend", "nixl");
  if (input.instancePods > 1) {
    args.push(
      "--dist-init-addr",
      `${input.leaderAddress}:${EnginePorts.sglangDistInit}`,
      "--nnodes",
      String(input.instancePods),
      "--node-rank",
      String(input.worker),
    );
  }
  args.push(...input.userArgs);
  return { command: ["python3"], args, env: kvTransportEnv(input) };
}

/** UCX devices for NIXL: the node's HCAs on an RDMA fabric; UCX's own choice (TCP) on plain Ethernet. */
function kvTransportEnv(input: EnginePodInput): V1EnvVar[] {
  if (input.role === "colocated" || input.nicType === "ethernet") return [];
  const devices = Array.from({ length: input.nicCount }, (_, i) => `${DEFAULT_NCCL_OPTIONS.hcaPrefix}${i}:1`).join(",");
  return [{ name: "UCX_NET_DEVICES", value: devices }];
}

/** Quotes words for /bin/sh: safe words bare, everything else in single quotes. */
export function shellJoin(words: readonly string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** The rendered command as one shell line, for docs and the CLI. */
export function commandLine(rendered: RenderedEngine): string {
  return shellJoin([...rendered.command, ...rendered.args]);
}
