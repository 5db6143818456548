/**
 * Generates the TypeScript types of agent/proto/*.proto into agent/src/grpc/generated/ with proto-loader-gen-types
 * (no protoc needed). `npm run gen:proto` runs it; gen-proto.test.ts fails when the committed output is stale.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const PROTO_ROOT = resolve(here, "../../proto");
export const GENERATED_DIR = resolve(here, "generated");
export const PROTO_FILES = ["gpufleet/agent/v1/agent.proto", "gpufleet/worker/v1/worker.proto"] as const;

/** Options shared by the generator and the runtime loader (load.ts), so generated types match loaded objects. */
export const LOADER_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true } as const;

export function generate(outDir: string): void {
  const bin = resolve(here, "../../../node_modules/.bin/proto-loader-gen-types");
  rmSync(outDir, { recursive: true, force: true });
  execFileSync(
    bin,
    [
      "--longs=Number",
      "--enums=String",
      "--defaults",
      "--oneofs",
      "--grpcLib=@grpc/grpc-js",
      "--importFileExtension=.js",
      "-I",
      PROTO_ROOT,
      "-O",
      outDir,
      ...PROTO_FILES,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  // The generator writes each .proto's absolute path into a header comment; make it repo-relative so the output
  // is the same in every checkout (and the staleness test can compare it).
  const repoRoot = resolve(here, "../../..") + "/";
  for (const entry of readdirSync(outDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, "utf8");
    if (text.includes(repoRoot)) writeFileSync(file, text.replaceAll(repoRoot, ""));
  }
}

// Run as a script only under its own name: bundled into another entry point (esbuild), import.meta.url is that
// bundle's, and the bundle must not regenerate the stubs.
const invokedPath = process.argv[1] ? resolve(process.argv[1]) : "";
if (/gen-proto\.[jt]s$/.test(invokedPath) && invokedPath === fileURLToPath(import.meta.url)) {
  generate(GENERATED_DIR);
  console.log(`generated ${join("agent/src/grpc/generated")} from ${PROTO_FILES.join(", ")}`);
}
