/**
 * A nats-server of a test's own, started from a config file (TLS, authorization: what the shared cluster's NATS does
 * not run), ready once it greets on `port`; fails at once, with its log, if it exits while starting.
 */
import { natsGreeting } from "../harness/cluster.js";
import { spawnManaged, type ManagedProcess } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";

export async function startConfiguredNats(opts: {
  name: string;
  configPath: string;
  port: number;
  runDir: string;
  description: string;
}): Promise<ManagedProcess> {
  const server = await spawnManaged({
    name: opts.name,
    command: process.env["GPUFLEET_NATS_SERVER"] ?? "nats-server",
    args: ["-c", opts.configPath],
    runDir: opts.runDir,
  });
  await waitFor(() => natsGreeting("127.0.0.1", opts.port), {
    description: `${opts.description} INFO greeting`,
    timeoutMs: 30_000,
    abortIf: () => server.assertRunning(),
  });
  return server;
}
