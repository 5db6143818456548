/**
 * What the chart tests run: the Helm CLI (built once by scripts/helm-binary.sh), and a real Prometheus (Debian's
 * `prometheus` package) started as a child process on a free loopback port with a generated scrape config.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePorts } from "../../harness/cluster.js";
import { waitFor } from "../../harness/wait.js";
import { REPO_ROOT } from "../../support/paths.js";
import { run, type RunResult } from "../../support/kubectl.js";

export { run, type RunResult };

export const CHART_DIR = path.join(REPO_ROOT, "charts/gpufleet");

/** Path of the helm binary: builds it from the Go module proxy on first use (about 90 s), then cached. */
export async function helmBinary(): Promise<string> {
  const { stdout } = await promisify(execFile)("bash", [path.join(REPO_ROOT, "scripts/helm-binary.sh")], {
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  const lines = stdout.trim().split("\n");
  if (lines.length !== 1 || !lines[0]) throw new Error(`helm-binary.sh must print one line, got: ${stdout}`);
  return lines[0];
}

/** One free loopback port (the harness's picker). */
export async function freeLoopbackPort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

export interface PromQueryResult {
  status: "success" | "error";
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: unknown[] };
}

export interface PrometheusProcess {
  readonly child: ChildProcess;
  readonly url: string;
  query(expr: string): Promise<PromQueryResult>;
  /** Scrape targets' health as Prometheus sees them. */
  targetHealth(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts Prometheus scraping `targets` (host:port) every second, and waits until it is ready. */
export async function startPrometheus(targets: string[]): Promise<PrometheusProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), "gpufleet-prometheus-"));
  const config = [
    "global:",
    "  scrape_interval: 1s",
    "  evaluation_interval: 1s",
    "scrape_configs:",
    "  - job_name: gpufleet",
    "    static_configs:",
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n");
  await writeFile(path.join(dir, "prometheus.yml"), config);
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    "prometheus",
    [
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.on("exit", (code) => {
      exited = code;
      resolve();
    }),
  );
  const stop = async () => {
    if (exited === undefined) child.kill("SIGTERM");
    await exit;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await fetch(`${url}/-/ready`)).ok, {
      description: "prometheus ready",
      timeoutMs: 30_000,
      abortIf: () => {
        if (exited !== undefined) throw new Error(`prometheus exited with ${exited}: ${stderr}`);
      },
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    child,
    url,
    async query(expr) {
      const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
      return (await response.json()) as PromQueryResult;
    },
    async targetHealth() {
      const body = (await (await fetch(`${url}/api/v1/targets`)).json()) as {
        data: { activeTargets: { health: string }[] };
      };
      return body.data.activeTargets.map((t) => t.health);
    },
    stop,
  };
}
