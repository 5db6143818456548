/**
 * A serving pod for a real engine (pure): the reference pod (pools.ts podObject) with its engine container's
 * command rendered for vLLM or SGLang (render.ts), and on the instance's leader a sidecar that turns the engine's
 * Prometheus metrics into gpufleet load reports (agent/src/engines/sidecar.ts), so the gateway's dispatch, the P/D
 * pools and the autoscaler see these instances as they see the reference worker.
 *
 * Pods of the reference engine are returned as they are.
 */
import type { V1Container, V1EnvVar, V1Pod } from "@kubernetes/client-node";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import type { NicType } from "../../../../crds/src/topology.js";
import { AGENT_SOCKET_ENV } from "../../agents/worker-socket.js";
import { ENGINE_CONTAINER, type PodPlacement } from "../pools.js";
import { renderEngine, sglangBootstrapPort } from "./render.js";

export const ENGINE_ADAPTER_CONTAINER = "engine-adapter";
/** The gpufleet image runs the adapter from its compiled agent (Dockerfile: dist/agent/src). */
export const ENGINE_ADAPTER_ENTRY = "/app/dist/agent/src/engines/sidecar.js";
/** The chart's image at the chart's appVersion; the operator can be told another. */
export const DEFAULT_ENGINE_ADAPTER_IMAGE = "gpufleet:0.1.0";

/** Env names the adapter reads (agent/src/engines/config.ts parses them). */
export const AdapterEnv = {
  kind: "GPUFLEET_ENGINE_KIND",
  metricsUrl: "GPUFLEET_ENGINE_METRICS_URL",
  port: "GPUFLEET_PORT",
  podIp: "POD_IP",
  podName: "POD_NAME",
  podNamespace: "POD_NAMESPACE",
  podUid: "POD_UID",
  nodeName: "NODE_NAME",
  gpuModel: "GPUFLEET_GPU_MODEL",
  /** SGLang prefill instances: the KV bootstrap server's port, which the gateway sends with each request. */
  bootstrapPort: "GPUFLEET_ENGINE_BOOTSTRAP_PORT",
} as const;

export interface EngineNode {
  nicType: NicType;
  nicCount: number;
}

export interface EnginePodOptions {
  adapterImage?: string;
}

const fieldRef = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

/** The pod with the engine's command and, on the leader, the load adapter; `pod` is not changed. */
export function withEngine(
  pod: V1Pod,
  sd: ServingDeployment,
  placement: PodPlacement,
  gpuModel: string,
  node: EngineNode,
  options: EnginePodOptions = {},
): V1Pod {
  const { engine } = sd.spec;
  if (!engine.kind || engine.kind === "reference") return pod;
  const containers = pod.spec?.containers ?? [];
  const main = containers.find((c) => c.name === ENGINE_CONTAINER);
  if (!main)
    throw new Error(`pod ${pod.metadata?.name} has no ${ENGINE_CONTAINER} container to render ${engine.kind} into`);
  const rendered = renderEngine({
    kind: engine.kind,
    model: sd.spec.model.name,
    role: placement.role,
    tp: placement.tp,
    pp: placement.pp,
    port: engine.port,
    worker: placement.worker,
    instancePods: placement.instancePods,
    leaderAddress: main.env?.find((e) => e.name === "GPUFLEET_LEADER_ADDRESS")?.value ?? placement.leaderName,
    nicType: node.nicType,
    nicCount: node.nicCount,
    userArgs: engine.args,
  });
  // The user's env (already in main.env) wins over the rendered defaults of the same name.
  const names = new Set((main.env ?? []).map((e) => e.name));
  const engineContainer: V1Container = {
    ...main,
    command: rendered.command,
    args: rendered.args,
    env: [...(main.env ?? []), ...rendered.env.filter((e) => !names.has(e.name))],
  };
  const sidecars =
    placement.worker === 0
      ? [
          adapterContainer(
            main,
            engine.kind,
            engine.port,
            gpuModel,
            options.adapterImage ?? DEFAULT_ENGINE_ADAPTER_IMAGE,
            engine.kind === "sglang" && placement.role === "prefill" ? sglangBootstrapPort(engine.args) : undefined,
          ),
        ]
      : [];
  return {
    ...pod,
    spec: { ...pod.spec!, containers: [engineContainer, ...sidecars, ...containers.filter((c) => c !== main)] },
  };
}

function adapterContainer(
  main: V1Container,
  kind: string,
  port: number,
  gpuModel: string,
  image: string,
  bootstrapPort: number | undefined,
): V1Container {
  // The instance's place (role, TP, PP, model, deployment) as the engine container has it, and the agent socket.
  const placeEnv = (main.env ?? []).filter((e) => e.name.startsWith("GPUFLEET_") || e.name === AGENT_SOCKET_ENV);
  return {
    name: ENGINE_ADAPTER_CONTAINER,
    image,
    command: ["node", ENGINE_ADAPTER_ENTRY],
    env: [
      ...placeEnv.filter(
        (e) =>
          e.name !== AdapterEnv.kind &&
          e.name !== AdapterEnv.metricsUrl &&
          e.name !== AdapterEnv.gpuModel &&
          e.name !== AdapterEnv.bootstrapPort,
      ),
      { name: AdapterEnv.kind, value: kind },
      // Containers of a pod share its network namespace: the engine's /metrics is on localhost.
      { name: AdapterEnv.metricsUrl, value: `http://127.0.0.1:${port}/metrics` },
      { name: AdapterEnv.gpuModel, value: gpuModel },
      ...(bootstrapPort === undefined ? [] : [{ name: AdapterEnv.bootstrapPort, value: String(bootstrapPort) }]),
      fieldRef(AdapterEnv.podIp, "status.podIP"),
      fieldRef(AdapterEnv.podName, "metadata.name"),
      fieldRef(AdapterEnv.podNamespace, "metadata.namespace"),
      fieldRef(AdapterEnv.podUid, "metadata.uid"),
      fieldRef(AdapterEnv.nodeName, "spec.nodeName"),
    ],
    volumeMounts: main.volumeMounts ? [...main.volumeMounts] : [],
    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "128Mi" } },
  };
}
