#!/usr/bin/env node
/* global process, URL */
// The gpufleet CLI, installed as both `gpufleet` and `kubectl-gpufleet` (package.json "bin"), so `npx gpufleet …`
// and `kubectl gpufleet …` work. Which code it runs:
// - in a checkout (cli/main.ts beside this folder, tsx installed): the TypeScript source through tsx, so an edit is
//   live and a dist/ left by an earlier `npm run build` never answers with stale code;
// - otherwise (an installed package ships dist/ and no TypeScript; a checkout installed without dev dependencies):
//   the compiled dist/cli/main.js of `npm run build`.
import { existsSync } from "node:fs";

const SOURCE = new URL("../main.ts", import.meta.url);
const BUILT = new URL("../../dist/cli/main.js", import.meta.url);

/** tsx's register(), or undefined when tsx (a devDependency) is not installed. */
async function tsxRegister() {
  try {
    return (await import("tsx/esm/api")).register;
  } catch (error) {
    if (error?.code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw error;
  }
}

async function loadCli() {
  if (existsSync(SOURCE)) {
    const register = await tsxRegister();
    if (register) {
      register();
      return import(SOURCE.href);
    }
  }
  if (existsSync(BUILT)) return import(BUILT.href);
  process.stderr.write(
    `gpufleet: neither ${BUILT.pathname} (run \`npm run build\`) nor tsx to run ${SOURCE.pathname} is installed\n`,
  );
  process.exit(1);
}

const { run } = await loadCli();
const code = await run(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  interactive: process.stderr.isTTY === true,
  env: process.env,
});
process.exitCode = code;
