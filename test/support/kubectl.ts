/** Runs real command-line tools (kubectl, helm, …) as a user would, capturing their output. */
import { spawn } from "node:child_process";
import { REPO_ROOT } from "./paths.js";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion, feeding `stdin`; never throws on a non-zero exit (tests assert on it). It runs in the
 * repository root unless `cwd` says otherwise.
 */
export function run(
  command: string,
  args: string[],
  options: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}

/** The real kubectl (Debian's) against a kubeconfig. */
export function kubectl(kubeconfigPath: string, args: string[], stdin?: string): Promise<RunResult> {
  return run("kubectl", args, { ...(stdin === undefined ? {} : { stdin }), env: { KUBECONFIG: kubeconfigPath } });
}
