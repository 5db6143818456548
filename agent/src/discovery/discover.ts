/**
 * Discovery on a real node: runs nvidia-smi (binary configurable) and reads sysfs (root configurable), joins GPUs
 * with NUMA and GPU<->NIC affinity from the topology matrix.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { NodeFacts } from "./facts.js";
import { parseNvidiaSmiXml } from "./gpus.js";
import { readNics } from "./nics.js";
import { nearestGpus, parseTopoMatrix } from "./topo.js";

/** Runs a command and returns its stdout; injected so tests replay fixtures. */
export type CommandRunner = (command: string, args: readonly string[], timeoutMs: number) => Promise<string>;

export const execRunner: CommandRunner = async (command, args, timeoutMs) => {
  try {
    const { stdout } = await promisify(execFile)(command, [...args], {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    throw new Error(`${command} ${args.join(" ")} failed`, { cause: err });
  }
};

export interface DiscoveryOptions {
  nodeName: string;
  nvidiaSmiPath: string;
  sysfsRoot: string;
  commandTimeoutMs: number;
  leaf: string | undefined;
  island: string | undefined;
  run: CommandRunner;
}

export async function discoverNode(opts: DiscoveryOptions): Promise<NodeFacts> {
  const [xml, topoText, nics] = await Promise.all([
    opts.run(opts.nvidiaSmiPath, ["-q", "-x"], opts.commandTimeoutMs),
    opts.run(opts.nvidiaSmiPath, ["topo", "-m"], opts.commandTimeoutMs),
    readNics(opts.sysfsRoot),
  ]);
  const gpus = parseNvidiaSmiXml(xml);
  const topo = parseTopoMatrix(topoText);
  for (const gpu of gpus) gpu.numaNode = topo.numaNode[`GPU${gpu.index}`] ?? -1;
  return {
    nodeName: opts.nodeName,
    simulated: false,
    gpus,
    nics: nics.map((n) => ({ ...n, nearestGpus: nearestGpus(topo, n.device) })),
    leaf: opts.leaf,
    island: opts.island,
  };
}
