/**
 * gpufleet as a user installs it (issue 16): `npm pack` of this repository (its prepack script rebuilds dist/), the
 * tarball unpacked as node_modules/gpufleet of an empty project beside the production dependencies only (no tsx,
 * no TypeScript), and the CLI run through its installed bins as a user runs it: `npx gpufleet …`, and
 * `kubectl gpufleet …` with the real kubectl finding the plugin `kubectl-gpufleet` on PATH. Every answer must equal
 * the in-process CLI's (cli/main.ts `run`) for the same arguments, except for the profile's path, which must be the
 * package's own clusters/default.yaml: profiles resolve from the package, not from the working directory.
 *
 * The production dependencies are this checkout's own, linked in where `npm install --omit=dev` would place them,
 * so the test needs no registry; docs/cli.md records the same run done
 * with a real `npm install --omit=dev` of the tarball. The build and the planner take tens of seconds: the hooks and
 * tests are given minutes and assert what is printed, never how fast.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run as runInProcess } from "../../../cli/main.js";
import { run, type RunResult } from "../../support/kubectl.js";
import { REPO_ROOT } from "../../support/paths.js";

const work = mkdtempSync(path.join(tmpdir(), "gpufleet-package-"));
/** An empty npm project that has installed the tarball. */
const project = path.join(work, "project");
const modules = path.join(project, "node_modules");
let tarballEntries: string[] = [];

async function succeed(command: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A package's folder as node resolves `name` from `fromDir`: the nearest node_modules/name up to the checkout. */
function resolvePackage(fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (existsSync(path.join(candidate, "package.json"))) return candidate;
    if (dir === REPO_ROOT) return undefined;
  }
}

/**
 * The names at the top of the checkout's node_modules that its production dependencies need, transitively (nested
 * copies come inside their parents). Computed from the package.json files, since `npm ls --omit=dev` does not
 * understand a worktree whose node_modules is a link.
 */
function productionDependencies(): string[] {
  const top = new Set<string>();
  const seen = new Set<string>();
  const visit = (dir: string): void => {
    const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    const optional = [
      ...Object.keys(manifest.optionalDependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ];
    // npm lists an optional dependency under dependencies too; optional wins.
    const required = Object.keys(manifest.dependencies ?? {}).filter((name) => !optional.includes(name));
    for (const name of [...required, ...optional]) {
      const found = resolvePackage(dir, name);
      if (found === undefined) {
        if (required.includes(name)) throw new Error(`${dir} needs ${name}, which is not installed`);
        continue; // an optional or peer dependency this install does not have
      }
      if (seen.has(found)) continue;
      seen.add(found);
      if (found === path.join(REPO_ROOT, "node_modules", name)) top.add(name);
      visit(found);
    }
  };
  visit(REPO_ROOT);
  return [...top].sort();
}

/** What `npm install --omit=dev <tarball>` leaves: the package, its production dependencies and its bins. */
async function installTarball(tarball: string): Promise<void> {
  mkdirSync(path.join(modules, ".bin"), { recursive: true });
  await succeed("tar", ["xzf", tarball, "-C", modules]);
  renameSync(path.join(modules, "package"), path.join(modules, "gpufleet"));
  for (const name of productionDependencies()) {
    mkdirSync(path.dirname(path.join(modules, name)), { recursive: true });
    symlinkSync(path.join(REPO_ROOT, "node_modules", name), path.join(modules, name));
  }
  const manifest = JSON.parse(readFileSync(path.join(modules, "gpufleet", "package.json"), "utf8")) as {
    bin: Record<string, string>;
  };
  for (const [name, file] of Object.entries(manifest.bin))
    symlinkSync(path.join("..", "gpufleet", file), path.join(modules, ".bin", name));
}

beforeAll(async () => {
  mkdirSync(project);
  await succeed("npm", ["pack", "--pack-destination", work]);
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${work}`);
  tarballEntries = (await succeed("tar", ["tzf", path.join(work, tarball)])).trim().split("\n");
  await installTarball(path.join(work, tarball));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The installed bins first on PATH, then node itself (the bin's `#!/usr/bin/env node`), then the rest. */
const installedEnv = {
  PATH: [path.join(modules, ".bin"), path.dirname(process.execPath), process.env["PATH"]].join(path.delimiter),
  // npx must find the project's own bin, never fetch one.
  npm_config_offline: "true",
};
const installed = (command: string, args: string[]): Promise<RunResult> =>
  run(command, args, { cwd: project, env: installedEnv });

async function inProcess(args: string[]): Promise<string> {
  let out = "";
  const code = await runInProcess(args, { out: (t) => (out += t), err: () => {}, interactive: false, env: {} });
  expect(code).toBe(0);
  return out;
}

const sample = (file: string): string => path.join(REPO_ROOT, "examples", file);
/** How each names the default profile: the in-process CLI from this checkout, the installed one from the package. */
const checkoutSource = `profile default (${path.relative(process.cwd(), path.join(REPO_ROOT, "clusters", "default.yaml"))})`;
const packageSource = "profile default (node_modules/gpufleet/clusters/default.yaml)";

describe("the packed and installed CLI", () => {
  it("ships the compiled CLI, its bin and the cluster profiles, and no TypeScript", () => {
    expect(tarballEntries).toEqual(
      expect.arrayContaining([
        "package/cli/bin/gpufleet.mjs",
        "package/dist/cli/main.js",
        "package/dist/operator/src/serving/planner-worker.js",
        "package/clusters/default.yaml",
      ]),
    );
    expect(tarballEntries.filter((f) => f.endsWith(".ts"))).toEqual([]);
    expect(existsSync(path.join(modules, "tsx")) || existsSync(path.join(modules, "typescript"))).toBe(false);
  });

  it.each(["gpt-7b-holmes.yaml", "llama31-8b-disaggregated.yaml"])(
    "npx gpufleet plan -f %s -o json equals the in-process plan",
    async (file) => {
      const r = await installed("npx", ["gpufleet", "plan", "-f", sample(file), "-o", "json"]);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { cluster: { source: string } };
      const want = JSON.parse(await inProcess(["plan", "-f", sample(file), "-o", "json"])) as typeof got;
      expect(want.cluster.source).toBe(checkoutSource);
      expect(got.cluster.source).toBe(packageSource);
      expect(got).toEqual({ ...want, cluster: { ...want.cluster, source: packageSource } });
    },
  );

  it("kubectl gpufleet --help prints the CLI's usage", async () => {
    const r = await installed("kubectl", ["gpufleet", "--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(await inProcess(["--help"]));
  });

  it("kubectl gpufleet plan prints the in-process table", async () => {
    const r = await installed("kubectl", ["gpufleet", "plan", "-f", sample("gpt-7b-holmes.yaml")]);
    expect(r.code, r.stderr).toBe(0);
    const want = await inProcess(["plan", "-f", sample("gpt-7b-holmes.yaml")]);
    expect(want).toContain(checkoutSource);
    expect(r.stdout).toBe(want.replaceAll(checkoutSource, packageSource));
  });
});
