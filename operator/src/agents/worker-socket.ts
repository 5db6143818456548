/**
 * The worker socket in worker pods, as device plugins share theirs with kubelet: the agent serves its Unix socket
 * in a host directory (chart value agent.workerSocketDir, operator setting workerSocketDir), and every serving and
 * training pod mounts that directory and finds the socket through GPUFLEET_AGENT_SOCKET.
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";

export const DEFAULT_WORKER_SOCKET_DIR = "/var/run/gpufleet";
export const WORKER_SOCKET_VOLUME = "gpufleet-agent-socket";
/** Where the directory appears inside worker containers (the agent's own mount point too). */
export const WORKER_SOCKET_MOUNT_PATH = "/run/gpufleet";
export const AGENT_SOCKET_FILE = "agent.sock";
export const AGENT_SOCKET_ENV = "GPUFLEET_AGENT_SOCKET";

export interface WorkerSocketMount {
  volume: V1Volume;
  volumeMount: V1VolumeMount;
  env: V1EnvVar;
}

export function workerSocketMount(hostDir: string = DEFAULT_WORKER_SOCKET_DIR): WorkerSocketMount {
  return {
    // DirectoryOrCreate: a worker scheduled before the agent started waits for the socket instead of failing to mount.
    volume: { name: WORKER_SOCKET_VOLUME, hostPath: { path: hostDir, type: "DirectoryOrCreate" } },
    // Read-write: a worker connects to the socket file (connect(2) needs write permission on it).
    volumeMount: { name: WORKER_SOCKET_VOLUME, mountPath: WORKER_SOCKET_MOUNT_PATH },
    env: { name: AGENT_SOCKET_ENV, value: `${WORKER_SOCKET_MOUNT_PATH}/${AGENT_SOCKET_FILE}` },
  };
}
