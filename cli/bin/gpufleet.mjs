#!/usr/bin/env node
/* global process */
// The gpufleet CLI from source: registers tsx (a devDependency) and runs cli/main.ts. Installed as both
// `gpufleet` and `kubectl-gpufleet` (package.json "bin"), so `npx gpufleet …` and `kubectl gpufleet …` work.
import { register } from "tsx/esm/api";

register();
const { run } = await import("../main.ts");
const code = await run(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  interactive: process.stderr.isTTY === true,
  env: process.env,
});
process.exitCode = code;
