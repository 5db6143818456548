/**
 * A serving plan as Kubernetes objects (pure): which instances a plan has, how they group for placement, where the
 * missing ones go, and the pods and Services that run them.
 *
 * - An instance of TP×PP GPUs that fits one node is one pod requesting TP×PP `nvidia.com/gpu`. A bigger one is a
 *   group of pods, one per node its pipeline stages landed on: the pod holding stage 0 is the leader, the others
 *   are workers told the leader's DNS name (the headless Service gives every pod one).
 * - Low node-affinity plans (DistServe Algorithm 2) are placed a unit at a time: the unit's prefill and decode
 *   segments of stage s share one node, so KV moves over NVLink. The unit is also what is created and repaired
 *   together.
 * - Pods are pinned to their planned node with a required node affinity on kubernetes.io/hostname (plus a
 *   nodeSelector on the GPU model), not with spec.nodeName. Going through kube-scheduler keeps its resource-fit
 *   check: when our picture of free GPUs is stale (another controller's pods not yet in the cache, the training
 *   gang step binding directly), the pod waits Pending instead of overcommitting the node, and taints and cordons
 *   are honoured. Serving instances need no gang binding across the plan, so the scheduler's one-pod-at-a-time
 *   binding costs nothing here; the planned node stays the only one the pod can land on.
 * - One ClusterIP Service per role selects the leaders of that role (Services route to Ready pods only); one
 *   headless Service gives every pod a stable DNS name for the leader address.
 */
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import {
  GPU_PROFILE_ENV,
  renderPlannedProfile,
  type PlannedGpuProfile,
} from "../../../common/src/hardware/planned-profile.js";
import { OwnedLabel } from "../../../crds/src/reasons.js";
import type {
  ServingDeployment,
  ServingDeploymentSpec,
  ServingDeploymentStatus,
} from "../../../crds/src/serving-deployment.js";
import { GpuResource, TopologyLabel } from "../../../crds/src/topology.js";
import { DEFAULT_WORKER_SOCKET_DIR, workerSocketMount } from "../agents/worker-socket.js";
import { controllerOwnerReference } from "../runtime/apply.js";
import {
  type FreeNode,
  type InstancePlacement,
  type InstanceRole,
  packLowAffinity,
  packPools,
} from "./distserve/packing.js";
import { contextTokens, modelShape } from "./planner-bridge.js";

export type StatusPlan = NonNullable<ServingDeploymentStatus["plan"]>;
export type Role = InstanceRole;

export const SERVING_MANAGED_BY = "gpufleet-operator";
export const ENGINE_CONTAINER = "engine";
export const ENGINE_PORT_NAME = "http";
/**
 * The engine's readiness endpoint: every engine pod (leader and workers) answers 200 on GET /health at its engine
 * port once its model (shard) is loaded, as vLLM and SGLang do. Services route only to Ready pods and `Available`
 * counts Ready instances, so Ready must mean "loaded", which only the engine can tell.
 */
export const ENGINE_HEALTH_PATH = "/health";
export const HOSTNAME_LABEL = "kubernetes.io/hostname";

/** Serving-local pod metadata beyond OwnedLabel. */
export const ServingPodLabel = {
  /** Index of the pod within its instance: "0" is the leader (holds stage 0 and serves requests). */
  worker: "gpufleet.io/worker",
} as const;
export const ServingPodAnnotation = {
  /** Placement group (instance or low-affinity unit) the pod belongs to: created and repaired together. */
  group: "gpufleet.io/group",
  /** Pods in the pod's group. */
  groupPods: "gpufleet.io/group-pods",
  /** Pods in the pod's instance. */
  instancePods: "gpufleet.io/instance-pods",
  /** The node the pod is pinned to (known before the scheduler binds it). */
  node: "gpufleet.io/node",
} as const;

const ROLE_SHORT: Record<Role, string> = { prefill: "p", decode: "d", colocated: "c" };
const ROLE_ORDER: readonly Role[] = ["prefill", "decode", "colocated"];

export interface PlannedInstance {
  role: Role;
  index: number;
  tp: number;
  pp: number;
}

/** The unit of placement, creation and repair: one instance, or for low affinity one unit of paired instances. */
export interface PlannedGroup {
  key: string;
  instances: PlannedInstance[];
  gpus: number;
  /** Low node-affinity unit number. */
  unit?: number;
}

/** One pod of a placed group. */
export interface PodPlacement {
  name: string;
  groupKey: string;
  /** Pods in the whole group (all its instances). */
  groupPods: number;
  role: Role;
  index: number;
  tp: number;
  pp: number;
  unit?: number;
  /** Pipeline stages this pod runs, ascending. */
  stages: number[];
  nodeName: string;
  gpus: number;
  /** 0 for the leader (stage 0); workers count up in stage order. */
  worker: number;
  /** Pods of this instance. */
  instancePods: number;
  leaderName: string;
}

export interface PlacedGroup {
  key: string;
  pods: PodPlacement[];
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Roles a plan runs, in a fixed order. */
export function planRoles(plan: StatusPlan): Role[] {
  return ROLE_ORDER.filter((role) => plan[role] !== undefined);
}

/** Instances of each role, in order, and how they group for placement. */
export function planGroups(plan: StatusPlan): PlannedGroup[] {
  const instance = (role: Role, index: number): PlannedInstance => ({
    role,
    index,
    tp: plan[role]!.tp,
    pp: plan[role]!.pp,
  });
  const gpusOf = (instances: PlannedInstance[]) => instances.reduce((sum, i) => sum + i.tp * i.pp, 0);
  if (plan.mode === "disaggregated" && plan.affinity === "low" && plan.prefill && plan.decode) {
    // The status keeps replica counts, not the planner's unit; any common divisor gives units whose per-stage
    // segments are no larger than the planner's, so they fit wherever its units did. The gcd keeps them fewest.
    const units = gcd(plan.prefill.replicas, plan.decode.replicas);
    const a = plan.prefill.replicas / units;
    const b = plan.decode.replicas / units;
    return Array.from({ length: units }, (_, unit) => {
      const instances = [
        ...Array.from({ length: a }, (_, i) => instance("prefill", unit * a + i)),
        ...Array.from({ length: b }, (_, i) => instance("decode", unit * b + i)),
      ];
      return { key: `unit-${unit}`, instances, gpus: gpusOf(instances), unit };
    });
  }
  const groups: PlannedGroup[] = [];
  for (const role of planRoles(plan)) {
    for (let index = 0; index < plan[role]!.replicas; index++) {
      const instances = [instance(role, index)];
      groups.push({ key: `${role}-${index}`, instances, gpus: gpusOf(instances) });
    }
  }
  return groups;
}

/** Instances per role of a plan. */
export function desiredInstances(plan: StatusPlan): Map<Role, number> {
  return new Map(planRoles(plan).map((role) => [role, plan[role]!.replicas]));
}

/**
 * Hash of what the pods of a plan run: the plan's shape and the engine. Pods are immutable, so any change here is
 * a rollout; goodput numbers and the explanation are left out (they change without changing any pod). The engine
 * kind joins the hash only when it is not the default, so hashes of reference pods stay what they were.
 */
export function planHash(plan: StatusPlan, engine: ServingDeploymentSpec["engine"]): string {
  const pool = (p: StatusPlan["prefill"]) => (p ? [p.tp, p.pp, p.replicas] : null);
  const shape = [
    plan.mode,
    plan.gpuModel,
    plan.affinity ?? null,
    pool(plan.prefill),
    pool(plan.decode),
    pool(plan.colocated),
    engine.image,
    engine.args,
    engine.port,
    engine.env.map((e) => [e.name, e.value]),
    ...(engine.kind && engine.kind !== "reference" ? [engine.kind] : []),
  ];
  return createHash("sha256").update(JSON.stringify(shape)).digest("hex").slice(0, 8);
}

const phase = (p: { tp: number; pp: number }) => `TP${p.tp}${p.pp > 1 ? `PP${p.pp}` : ""}`;

/** One-line plan for the printer column: "disagg P2×TP2 D4×TP1 (8 GPU)", "coloc 3×TP1 (3 GPU)". */
export function planSummary(plan: StatusPlan): string {
  if (plan.mode === "colocated" && plan.colocated)
    return `coloc ${plan.colocated.replicas}×${phase(plan.colocated)} (${plan.totalGpus} GPU)`;
  const p = plan.prefill;
  const d = plan.decode;
  const affinity = plan.affinity === "low" ? " low-affinity" : "";
  return `disagg P${p?.replicas ?? 0}×${p ? phase(p) : "-"} D${d?.replicas ?? 0}×${d ? phase(d) : "-"}${affinity} (${plan.totalGpus} GPU)`;
}

export function podName(sdName: string, hash: string, role: Role, index: number, worker: number): string {
  return `${sdName}-${hash}-${ROLE_SHORT[role]}${index}${worker > 0 ? `-${worker}` : ""}`;
}

/** Pods of one placed instance: its stages grouped by node, the pod holding stage 0 first (the leader). */
function instancePods(
  sdName: string,
  hash: string,
  group: PlannedGroup,
  placement: InstancePlacement,
  groupPods: number,
): PodPlacement[] {
  const byNode = new Map<string, number[]>();
  for (const s of [...placement.stages].sort((x, y) => x.stage - y.stage))
    byNode.set(s.nodeName, [...(byNode.get(s.nodeName) ?? []), s.stage]);
  const nodes = [...byNode.entries()];
  const leaderName = podName(sdName, hash, placement.role, placement.index, 0);
  return nodes.map(([nodeName, stages], worker) => ({
    name: podName(sdName, hash, placement.role, placement.index, worker),
    groupKey: group.key,
    groupPods,
    role: placement.role,
    index: placement.index,
    tp: placement.tp,
    pp: placement.pp,
    unit: group.unit,
    stages,
    nodeName,
    gpus: stages.length * placement.tp,
    worker,
    instancePods: nodes.length,
    leaderName,
  }));
}

/**
 * Places `groups` on the nodes' free GPUs one group at a time, largest first, with the planner's own packers
 * (best fit, TP never split across nodes, whole instance on one node when it fits). Groups that fit nowhere are
 * returned as blocked; the others' GPUs are taken from the free counts in order.
 */
export function placeGroups(
  sdName: string,
  hash: string,
  groups: readonly PlannedGroup[],
  nodes: readonly FreeNode[],
): { placed: PlacedGroup[]; blocked: PlannedGroup[] } {
  const free = new Map(nodes.filter((n) => n.gpusFree > 0).map((n) => [n.nodeName, n.gpusFree]));
  const placed: PlacedGroup[] = [];
  const blocked: PlannedGroup[] = [];
  const order = [...groups].sort((x, y) => y.gpus - x.gpus || x.key.localeCompare(y.key, "en", { numeric: true }));
  for (const group of order) {
    const freeNodes = [...free.entries()].map(([nodeName, gpusFree]) => ({ nodeName, gpusFree }));
    const first = group.instances[0]!;
    const packed =
      group.unit !== undefined
        ? packLowAffinity(freeNodes, {
            units: 1,
            pp: first.pp,
            prefill: perUnit(group, "prefill"),
            decode: perUnit(group, "decode"),
          })
        : packPools(freeNodes, [{ role: first.role, tp: first.tp, pp: first.pp, replicas: 1 }]);
    if (!packed.ok) {
      blocked.push(group);
      continue;
    }
    for (const { nodeName, gpus } of packed.gpusByNode) free.set(nodeName, (free.get(nodeName) ?? 0) - gpus);
    // The packers number instances from 0 in the order they were asked for (prefill, then decode); map them
    // back to this group's instances in the same order.
    const instances = packed.instances.map((p, i) => ({ ...p, index: group.instances[i]!.index }));
    const podsOf = (groupPods: number) => instances.flatMap((p) => instancePods(sdName, hash, group, p, groupPods));
    const count = podsOf(0).length;
    placed.push({ key: group.key, pods: podsOf(count) });
  }
  placed.sort((x, y) => x.key.localeCompare(y.key, "en", { numeric: true }));
  return { placed, blocked };
}

function perUnit(group: PlannedGroup, role: Role): { tp: number; perUnit: number } {
  const members = group.instances.filter((i) => i.role === role);
  return { tp: members[0]?.tp ?? 1, perUnit: members.length };
}

export const serviceName = (sdName: string, role: Role): string => `${sdName}-${role}`;
export const headlessServiceName = (sdName: string): string => `${sdName}-pods`;

function ownerLabels(sdName: string): Record<string, string> {
  return { [OwnedLabel.servingDeployment]: sdName, [OwnedLabel.managedBy]: SERVING_MANAGED_BY };
}

/**
 * The pod of one placement. Env tells the engine its place (role, TP, PP, stages, leader); the user's
 * spec.engine.env is applied over it by name, so the list has no duplicate names (server-side apply keys env by
 * name). `gpuProfile`, the GpuProfile the plan was made with, goes in as GPUFLEET_GPU_PROFILE so a simulated
 * engine steps with the plan's coefficients (common/src/hardware/planned-profile.ts).
 */
export function podObject(
  sd: ServingDeployment,
  pod: PodPlacement,
  hash: string,
  gpuModel: string,
  workerSocketDir: string = DEFAULT_WORKER_SOCKET_DIR,
  gpuProfile?: PlannedGpuProfile,
): V1Pod {
  const sdName = sd.metadata.name!;
  const namespace = sd.metadata.namespace!;
  const { engine } = sd.spec;
  const headless = headlessServiceName(sdName);
  const env = new Map<string, string>([
    ["GPUFLEET_SERVING_DEPLOYMENT", sdName],
    ["GPUFLEET_MODEL", sd.spec.model.name],
    // The planner's full model shape, so a (simulated) engine runs the model the plan was sized for.
    ["GPUFLEET_MODEL_SHAPE", JSON.stringify(modelShape(sd.spec.model, contextTokens(sd.spec.workload)))],
    ["GPUFLEET_ROLE", pod.role],
    ["GPUFLEET_INSTANCE", String(pod.index)],
    ["GPUFLEET_TP", String(pod.tp)],
    ["GPUFLEET_PP", String(pod.pp)],
    ["GPUFLEET_STAGES", pod.stages.join(",")],
    ["GPUFLEET_WORKER_INDEX", String(pod.worker)],
    ["GPUFLEET_INSTANCE_PODS", String(pod.instancePods)],
    ["GPUFLEET_LEADER_ADDRESS", `${pod.leaderName}.${headless}.${namespace}.svc`],
    ["GPUFLEET_PORT", String(engine.port)],
    ["GPUFLEET_PLAN_HASH", hash],
  ]);
  if (pod.role === "prefill")
    env.set("GPUFLEET_DECODE_SERVICE", `${serviceName(sdName, "decode")}.${namespace}.svc:${engine.port}`);
  if (pod.unit !== undefined) env.set("GPUFLEET_UNIT", String(pod.unit));
  for (const e of engine.env) env.set(e.name, e.value);
  const socket = workerSocketMount(workerSocketDir);
  env.set(socket.env.name, socket.env.value!); // after the user's env: the socket path is the agent's, not tunable
  // After the user's env too: the numbers the plan was made with are a fact of the plan, not a setting.
  if (gpuProfile) env.set(GPU_PROFILE_ENV, renderPlannedProfile(gpuProfile));
  const gpus = String(pod.gpus);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: pod.name,
      namespace,
      labels: {
        ...ownerLabels(sdName),
        [OwnedLabel.role]: pod.role,
        [OwnedLabel.instance]: String(pod.index),
        [OwnedLabel.planHash]: hash,
        [ServingPodLabel.worker]: String(pod.worker),
      },
      annotations: {
        [ServingPodAnnotation.group]: pod.groupKey,
        [ServingPodAnnotation.groupPods]: String(pod.groupPods),
        [ServingPodAnnotation.instancePods]: String(pod.instancePods),
        [ServingPodAnnotation.node]: pod.nodeName,
      },
      ownerReferences: [controllerOwnerReference(sd)],
    },
    spec: {
      hostname: pod.name,
      subdomain: headless,
      nodeSelector: { [TopologyLabel.gpuModel]: gpuModel },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: HOSTNAME_LABEL, operator: "In", values: [pod.nodeName] }] },
            ],
          },
        },
      },
      // A failed engine is replaced by the operator (whole group), never restarted half-way through a group.
      restartPolicy: pod.instancePods > 1 ? "Never" : "Always",
      containers: [
        {
          name: ENGINE_CONTAINER,
          image: engine.image,
          args: [...engine.args],
          env: [...env.entries()].map(([name, value]) => ({ name, value })),
          ports: [{ name: ENGINE_PORT_NAME, containerPort: engine.port, protocol: "TCP" }],
          resources: { requests: { [GpuResource]: gpus }, limits: { [GpuResource]: gpus } },
          volumeMounts: [socket.volumeMount],
          // Readiness only. A startup probe acts only as a deadline in front of a liveness probe, and load time
          // (seconds to tens of minutes, by model size and storage) is not something the operator can know.
          readinessProbe: {
            httpGet: { path: ENGINE_HEALTH_PATH, port: ENGINE_PORT_NAME },
            periodSeconds: 5,
            timeoutSeconds: 2,
            failureThreshold: 3,
            successThreshold: 1,
          },
        },
      ],
      volumes: [socket.volume],
    },
  };
}

/** The role Services of `roles` plus the headless Service for pod DNS names. */
export function serviceObjects(sd: ServingDeployment, roles: readonly Role[]): V1Service[] {
  const sdName = sd.metadata.name!;
  const namespace = sd.metadata.namespace!;
  const port = sd.spec.engine.port;
  const meta = (name: string, role?: Role) => ({
    name,
    namespace,
    labels: { ...ownerLabels(sdName), ...(role ? { [OwnedLabel.role]: role } : {}) },
    ownerReferences: [controllerOwnerReference(sd)],
  });
  const ports = [{ name: ENGINE_PORT_NAME, port, targetPort: port, protocol: "TCP" }];
  const services: V1Service[] = roles.map((role) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(serviceName(sdName, role), role),
    // Leaders only: workers run later pipeline stages and take no requests.
    spec: { selector: { ...ownerLabels(sdName), [OwnedLabel.role]: role, [ServingPodLabel.worker]: "0" }, ports },
  }));
  services.push({
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(headlessServiceName(sdName)),
    // Workers resolve their leader before anything is Ready.
    spec: { clusterIP: "None", publishNotReadyAddresses: true, selector: ownerLabels(sdName), ports },
  });
  return services;
}
