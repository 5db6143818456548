/**
 * Where the control-plane binaries come from, in the order the issue asks for: $GPUFLEET_K8S_BIN pointing at
 * existing binaries, the cache ~/.cache/gpufleet/k8s/<versions>/, a Go build into that cache. All three live in
 * scripts/k8s-binaries.sh (also used by CI and scripts/setup-system.sh), so the harness only runs it: when the
 * binaries exist it answers in milliseconds; otherwise it builds (minutes), its progress on our stderr.
 */
import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const K8S_BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
export type K8sBinary = (typeof K8S_BINARIES)[number];
export type K8sBinaries = Record<K8sBinary, string>;

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/k8s-binaries.sh");

async function runScript(): Promise<string> {
  const child = spawn("bash", [SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  if (code !== 0) throw new Error(`scripts/k8s-binaries.sh failed with exit code ${code} (its messages are above)`);
  const dir = stdout.trim().split("\n").at(-1);
  if (!dir) throw new Error("scripts/k8s-binaries.sh printed no directory");
  return dir;
}

/** Resolves (building if needed) the directory of the Kubernetes binaries and checks each is executable. */
export async function resolveK8sBinaries(): Promise<K8sBinaries> {
  const dir = await runScript();
  const entries = await Promise.all(
    K8S_BINARIES.map(async (name) => {
      const file = path.join(dir, name);
      await access(file, constants.X_OK).catch((err: unknown) => {
        throw new Error(`${file} is not an executable file`, { cause: err });
      });
      return [name, file] as const;
    }),
  );
  return Object.fromEntries(entries) as K8sBinaries;
}
