/**
 * Starts the Python reference worker (agent/worker/, `python -m gpufleet_worker.serve` or another module of it) as
 * its own process, the way a worker pod runs it: the agent's socket and the pod's identity in the environment. It
 * resolves once the worker printed its ready line (it has registered with the agent and serves its HTTP API), and
 * keeps the worker's JSON log lines for the test or transcript. Used by the CPU integration test and by the H200
 * transcript (bench/gpu-worker-agent/), so both drive the worker the same way.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface PythonWorker {
  workerId: string;
  engineUrl: string;
  readonly process: ChildProcess;
  /** JSON lines the worker logged on stderr (commands, acks, registration), parsed; other lines as { text }. */
  readonly logs: Record<string, unknown>[];
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

export interface PythonWorkerOptions {
  python: string;
  /** agent/worker, the folder holding the gpufleet_worker package. */
  workerDir: string;
  module?: string;
  args: string[];
  env: Record<string, string>;
  /** How long to wait for the ready line (a GPU worker captures CUDA graphs first). */
  readyTimeoutMs?: number;
  onLog?: (line: Record<string, unknown>) => void;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

function parse(line: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : { text: line };
  } catch {
    return { text: line };
  }
}

export async function startPythonWorker(opts: PythonWorkerOptions): Promise<PythonWorker> {
  const child = spawn(opts.python, ["-m", opts.module ?? "gpufleet_worker.serve", ...opts.args], {
    cwd: opts.workerDir,
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => {
    const entry = parse(line);
    logs.push(entry);
    opts.onLog?.(entry);
  });
  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    const code = await exited(child);
    clearTimeout(timer);
    return code;
  };
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `worker did not print its ready line within ${timeoutMs} ms; log: ${JSON.stringify(logs.slice(-10))}`,
          ),
        ),
      timeoutMs,
    );
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = parse(line);
      if (entry.event === "ready") {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`starting ${opts.python}`, { cause: err }));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before it was ready; log: ${JSON.stringify(logs.slice(-10))}`));
    });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { workerId: String(ready.worker_id), engineUrl: String(ready.engine_url ?? ""), process: child, logs, stop };
}
