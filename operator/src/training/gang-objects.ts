/**
 * The Kubernetes objects of a TrainingJob's gang, built from a placement (pure): one headless Service giving node
 * rank 0's pod its stable DNS name (MASTER_ADDR), and one pod per planned node, bound to it with
 * spec.nodeName. Binding directly is deliberate: the gang is all or nothing, and kube-scheduler would place
 * members one at a time, so a gang could end up half-bound while the rest waits. The planner already checked the
 * whole gang fits; the pods request the GPUs so the cluster's accounting (and a real kubelet's admission) sees them.
 */
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import { OwnedLabel } from "../../../crds/src/reasons.js";
import { GpuResource } from "../../../crds/src/topology.js";
import type { TrainingJob } from "../../../crds/src/training-job.js";
import { controllerOwnerReference } from "../runtime/apply.js";
import type { GangPod } from "./gang.js";
import { workerSocketMount } from "../agents/worker-socket.js";
import { GangAnnotation } from "./gang-state.js";

export const GANG_MANAGED_BY = "gpufleet-operator";
export const GANG_CONTAINER = "trainer";
export const GANG_PORT_NAME = "rendezvous";
export const GANG_ROLE = "training-worker";

export interface GangObjectOptions {
  masterPort: number;
  attempt: number;
  specHash: string;
  planHash: string;
  /** Host directory of the agent's worker socket (default /var/run/gpufleet). */
  workerSocketDir?: string;
}

/** Labels every object of the gang carries. */
export function gangLabels(jobName: string): Record<string, string> {
  return { [OwnedLabel.trainingJob]: jobName, [OwnedLabel.managedBy]: GANG_MANAGED_BY };
}

export function gangService(job: TrainingJob, opts: GangObjectOptions): V1Service {
  const name = job.metadata.name!;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: job.metadata.namespace!,
      labels: { ...gangLabels(name), [OwnedLabel.role]: GANG_ROLE },
      ownerReferences: [controllerOwnerReference(job)],
    },
    spec: {
      clusterIP: "None",
      // Only node rank 0's pod: MASTER_ADDR is the one name the ranks resolve (static rendezvous: torchrun's
      // --node-rank, then the store at MASTER_ADDR; NCCL exchanges addresses through it). Selecting the whole gang
      // made the endpoint controllers rewrite an object of up to 1,000 addresses at every pod change: on the
      // 8,000-GPU job kube-controller-manager spent 8.4 s of CPU on that, 1.75 s with this selector (docs/soak.md).
      selector: { ...gangLabels(name), [OwnedLabel.instance]: "0" },
      // Rendezvous happens before any pod is Ready; the DNS names must resolve from the start.
      publishNotReadyAddresses: true,
      ports: [{ name: GANG_PORT_NAME, port: opts.masterPort, targetPort: opts.masterPort, protocol: "TCP" }],
    },
  };
}

/**
 * The pod of one planned node. Env: the placement's (torch.distributed, ranks, layers, NCCL, checkpoint, resume)
 * with the user's spec.env applied over it by name, so a user can tune NCCL but the list has no duplicate names
 * (server-side apply keys env by name).
 */
export function gangPodObject(job: TrainingJob, pod: GangPod, serviceName: string, opts: GangObjectOptions): V1Pod {
  const name = job.metadata.name!;
  const env = new Map<string, string>(Object.entries(pod.env));
  for (const e of job.spec.env ?? []) env.set(e.name, e.value);
  const socket = workerSocketMount(opts.workerSocketDir);
  env.set(socket.env.name, socket.env.value!); // after spec.env: the socket path is the agent's, not tunable
  const gpus = String(pod.gpus);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: pod.podName,
      namespace: job.metadata.namespace!,
      labels: {
        ...gangLabels(name),
        [OwnedLabel.role]: GANG_ROLE,
        [OwnedLabel.instance]: String(pod.nodeRank),
        [OwnedLabel.planHash]: opts.planHash,
      },
      annotations: {
        [GangAnnotation.attempt]: String(opts.attempt),
        [GangAnnotation.specHash]: opts.specHash,
        [GangAnnotation.nodeRank]: String(pod.nodeRank),
      },
      ownerReferences: [controllerOwnerReference(job)],
    },
    spec: {
      nodeName: pod.nodeName,
      hostname: pod.hostname,
      subdomain: serviceName,
      // The gang restarts as a whole (the operator's job), never one container in place.
      restartPolicy: "Never",
      containers: [
        {
          name: GANG_CONTAINER,
          image: job.spec.image,
          command: [...job.spec.command],
          args: [...(job.spec.args ?? [])],
          env: [...env.entries()].map(([k, value]) => ({ name: k, value })),
          ports: [{ name: GANG_PORT_NAME, containerPort: opts.masterPort, protocol: "TCP" }],
          resources: { requests: { [GpuResource]: gpus }, limits: { [GpuResource]: gpus } },
          volumeMounts: [socket.volumeMount],
        },
      ],
      volumes: [socket.volume],
    },
  };
}
