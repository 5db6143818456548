/**
 * Starts a real nats-server on a free loopback port for the agent's integration tests and benchmark, and stops it
 * (SIGTERM, then SIGKILL) so no process is left behind. Self-contained until test/harness owns NATS for everyone
 * (test/harness/cluster.ts starts one with the whole cluster; this one needs no cluster).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, createConnection } from "node:net";

export interface NatsServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
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
    socket.once("data", (d) => { socket.destroy(); resolve(d.toString().startsWith("INFO ")); });
    socket.once("error", () => resolve(false));
    socket.setTimeout(500, () => { socket.destroy(); resolve(false); });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", () => r()));
}

export async function startNatsServer(binary = process.env.NATS_SERVER_BIN ?? "nats-server", timeoutMs = 10_000): Promise<NatsServer> {
  const port = await freePort();
  const child = spawn(binary, ["-a", "127.0.0.1", "-p", String(port), "-m", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  const spawnError = new Promise<never>((_, reject) => child.once("error", (err) => reject(new Error(`starting ${binary} (apt-get install nats-server)`, { cause: err }))));
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
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited(child);
      clearTimeout(timer);
    },
  };
}
