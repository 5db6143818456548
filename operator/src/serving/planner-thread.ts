/**
 * Runs the DistServe planner on a worker thread. A plan simulates thousands of requests per candidate and takes up
 * to a few seconds; on the operator's event loop that would stall health probes, lease renewals and the other
 * controller for as long. One thread is enough (the controller reconciles one key at a time); it is unref'd so an
 * idle planner never keeps the process alive, and rebuilt after a crash.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { ServingPlanInput, ServingPlanResult } from "./distserve/planner.js";

type Reply = { id: number; result: ServingPlanResult } | { id: number; error: string };

export class PlannerThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (r: ServingPlanResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  plan(input: ServingPlanInput): Promise<ServingPlanResult> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, input });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (!waiter) return;
      if ("error" in reply) waiter.reject(new Error(`serving planner failed: ${reply.error}`));
      else waiter.resolve(reply.result);
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiter of this.pending.values())
        waiter.reject(new Error("serving planner thread stopped", { cause: error }));
      this.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`exit code ${code}`)));
    this.worker = worker;
    return worker;
  }
}

/**
 * The built image runs planner-worker.js directly. From source (tests, `npm start`) the worker is TypeScript, and
 * a worker thread does not inherit the tsx loader: register it inside the worker before importing the module.
 */
function startWorker(): Worker {
  const entry = new URL(`./planner-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (!entry.pathname.endsWith(".ts")) return new Worker(entry);
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true });
}
