/**
 * Entry point of the load adapter container beside a vLLM or SGLang engine (operator/src/serving/engines/pod.ts
 * adds it to each instance's leader pod). Wires the real agent socket, HTTP and timers to EngineAdapter.
 * Failures are logged as JSON lines on stderr and retried on the next tick: an engine still loading its model has
 * no /metrics yet, and the agent may restart.
 */
import { WorkerClient } from "../grpc/client.js";
import { EngineAdapter } from "./adapter.js";
import { loadAdapterConfig } from "./config.js";

const log = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.text();
}

async function main(): Promise<void> {
  const config = loadAdapterConfig(process.env);
  const client = new WorkerClient(`unix:${config.agentSocket}`);
  const adapter = new EngineAdapter(config, client, fetchText);
  let registered = false;
  let heartbeat: NodeJS.Timeout | undefined;

  const ensureRegistered = async (): Promise<void> => {
    if (registered) return;
    const intervalMs = await adapter.register();
    registered = true;
    log("registered with the node agent", { workerId: adapter.workerId, kind: config.kind, role: config.role });
    clearInterval(heartbeat);
    heartbeat = setInterval(
      () => {
        client.heartbeat(adapter.workerId).catch((error: Error) => {
          registered = false; // re-register on the next tick (the agent restarted or forgot us)
          log("heartbeat failed", { error: error.message });
        });
      },
      Math.max(100, intervalMs),
    );
    client.commands(
      adapter.workerId,
      (command) =>
        void adapter.handleCommand(command).catch((error: Error) => log("ack failed", { error: error.message })),
      (error) => {
        registered = false;
        if (error) log("command stream ended", { error: error.message });
      },
    );
  };

  const tick = async (): Promise<void> => {
    try {
      await ensureRegistered();
      await adapter.scrapeAndReport();
    } catch (error) {
      log("load report failed", { error: (error as Error).message });
    }
  };
  const timer = setInterval(() => void tick(), config.scrapeIntervalMs);
  void tick();
  const stop = () => {
    clearInterval(timer);
    clearInterval(heartbeat);
    client.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  log("engine adapter cannot start", { error: (error as Error).message });
  process.exit(2);
});
