/**
 * Starts a real nats-server with JetStream (`-js`, a store directory of its own) on a free loopback port for the
 * agent's and the telemetry integration tests and the benchmark, and stops it (SIGTERM, then SIGKILL) so no
 * process is left behind. `stop()` then `start()` brings the same server back on the same port and store, as a
 * NATS outage followed by a restart would (test/harness/cluster.ts starts the cluster-wide one; this one needs no
 * cluster and may be stopped without disturbing other test files).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServer {
  url: string;
  port: number;
  /** Process id of the current server process (changes on start()). */
  readonly pid: number;
  /** JetStream store directory (kept across stop/start, removed by close()). */
  storeDir: string;
  /** Stops the server process; the store stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store; resolves once it greets. */
  start(): Promise<void>;
  /** stop() and remove the store. */
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      const port = typeof address === "object" && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("data", (d) => {
      socket.destroy();
      resolve(d.toString().startsWith("INFO "));
    });
    socket.once("error", () => resolve(false));
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once("exit", () => r()));
}

async function spawnServer(binary: string, port: number, storeDir: string, timeoutMs: number): Promise<ChildProcess> {
  const child = spawn(binary, ["-a", "127.0.0.1", "-p", String(port), "-m", "0", "-js", "-sd", storeDir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const spawnError = new Promise<never>((_, reject) =>
    child.once("error", (err) => reject(new Error(`starting ${binary} (apt-get install nats-server)`, { cause: err }))),
  );
  const deadline = Date.now() + timeoutMs;
  const ready = (async () => {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${stderr}`);
      if (await greets(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server did not greet on port ${port} within ${timeoutMs} ms: ${stderr}`);
  })();
  try {
    await Promise.race([ready, spawnError]);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited(child);
  clearTimeout(timer);
}

export async function startNatsServer(
  binary = process.env.NATS_SERVER_BIN ?? "nats-server",
  timeoutMs = 10_000,
): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "gpufleet-nats-"));
  let child: ChildProcess;
  try {
    child = await spawnServer(binary, port, storeDir, timeoutMs);
  } catch (err) {
    rmSync(storeDir, { recursive: true, force: true });
    throw err;
  }
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid!;
    },
    storeDir,
    stop: () => stopChild(child),
    async start() {
      if (child.exitCode === null && child.signalCode === null)
        throw new Error(`nats-server on port ${port} is still running`);
      child = await spawnServer(binary, port, storeDir, timeoutMs);
    },
    async close() {
      await stopChild(child);
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
  return server;
}
