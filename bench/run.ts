/**
 * Benchmark dispatcher: `npm run bench -- <name>` runs bench/<name>.ts; with no name it runs every bench/*.ts
 * (other than this file and tests) that exports `run(): Promise<void>`. Each bench writes
 * bench/results/<name>.json and bench/results/<name>.md itself; then the figures of the benches that ran are
 * rendered from that JSON (bench/figures). `npm run bench -- figures` renders every figure from the JSON on disk.
 */
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFigures } from "./figures/index.js";

const benchDir = dirname(fileURLToPath(import.meta.url));

async function load(name: string): Promise<{ run?: unknown }> {
  return (await import(pathToFileURL(join(benchDir, `${name}.ts`)).href)) as { run?: unknown };
}

async function main(): Promise<void> {
  const names = process.argv
    .slice(2)
    .filter((a) => a !== "--")
    // options after the name go to the bench
    .filter((_, i, all) => !all.slice(0, i + 1).some((x) => x.startsWith("--")));
  const all = readdirSync(benchDir)
    .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
    .map((f) => basename(f, ".ts"))
    .sort();
  if (names.length === 1 && names[0] === "figures") return void (await writeFigures()); // figures from the JSON on disk
  for (const name of names) {
    if (!all.includes(name)) throw new Error(`no bench named "${name}"; have: ${all.join(", ") || "none"}`);
  }
  for (const name of names.length > 0 ? names : all) {
    const mod = await load(name);
    if (typeof mod.run !== "function") {
      if (names.length > 0) throw new Error(`bench/${name}.ts does not export run()`);
      continue;
    }
    const started = performance.now();
    console.log(`bench ${name}: running`);
    await (mod.run as () => Promise<void>)();
    console.log(`bench ${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  await writeFigures({ benches: names.length > 0 ? names : all }); // bench/figures: SVGs beside the tables
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
