/**
 * NICs from sysfs (Documentation/ABI/stable/sysfs-class-infiniband, sysfs-class-net):
 *  - RDMA ports: /sys/class/infiniband/<dev>/ports/<p>/{state,rate,link_layer,gids/}; link_layer "InfiniBand" is
 *    InfiniBand, "Ethernet" is RoCE. The port's netdev is /sys/class/infiniband/<dev>/device/net/<if>.
 *  - Plain Ethernet: /sys/class/net/<if> with a `device` (physical; virtual interfaces have none) that backs no RDMA
 *    device; speed in Mb/s from `speed`.
 * The sysfs root is a parameter so tests read fixture trees.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { NicType } from "../../../crds/src/topology.js";

export interface NicPort {
  /** RDMA device ("mlx5_0") or netdev ("eth0") for plain Ethernet. */
  device: string;
  /** RDMA port number; 1 for plain Ethernet. */
  port: number;
  type: NicType;
  bandwidthGbps: number;
  /** "ACTIVE" | "DOWN" | "INIT" | "ARMED" | ... for RDMA; "UP"/"DOWN" for Ethernet. */
  state: string;
  active: boolean;
  netdev: string | undefined;
  /** -1 when unknown. */
  numaNode: number;
  gidCount: number;
}

export class SysfsReadError extends Error {
  override name = "SysfsReadError";
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${message}`, options);
  }
}

/** "400 Gb/sec (4X NDR)" -> 400; "2.5 Gb/sec (1X SDR)" -> 2.5. */
export function parseRateGbps(text: string): number {
  const m = /^\s*([\d.]+)\s*Gb\/sec/.exec(text);
  if (!m) throw new Error(`rate "${text.trim()}" is not "<n> Gb/sec (...)"`);
  return Number(m[1]);
}

/** "4: ACTIVE" -> "ACTIVE". */
export function parsePortState(text: string): string {
  const m = /^\s*\d+:\s*(\S+)/.exec(text);
  return (m?.[1] ?? text.trim()).toUpperCase();
}

export function classifyLinkLayer(linkLayer: string): NicType {
  const value = linkLayer.trim().toLowerCase();
  if (value === "infiniband") return NicType.infiniband;
  if (value === "ethernet") return NicType.roce;
  throw new Error(`unknown link_layer "${linkLayer.trim()}"`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function list(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).filter((n) => !n.startsWith(".")).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new SysfsReadError(path, "cannot list", { cause: err });
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Reading `speed` of a down link fails with EINVAL in real sysfs.
    if (code === "ENOENT" || code === "EINVAL") return undefined;
    throw new SysfsReadError(path, "cannot read", { cause: err });
  }
}

async function numaOf(devicePath: string): Promise<number> {
  const n = Number(await readText(join(devicePath, "numa_node")));
  return Number.isInteger(n) ? n : -1;
}

export async function readNics(sysfsRoot: string): Promise<NicPort[]> {
  const out: NicPort[] = [];
  const rdmaNetdevs = new Set<string>();
  const ibRoot = join(sysfsRoot, "class/infiniband");
  for (const dev of await list(ibRoot)) {
    const devPath = join(ibRoot, dev);
    const netdevs = await list(join(devPath, "device/net"));
    netdevs.forEach((n) => rdmaNetdevs.add(n));
    const numaNode = await numaOf(join(devPath, "device"));
    for (const portName of await list(join(devPath, "ports"))) {
      const portPath = join(devPath, "ports", portName);
      try {
        const state = parsePortState((await readText(join(portPath, "state"))) ?? "");
        out.push({
          device: dev,
          port: Number(portName),
          type: classifyLinkLayer((await readText(join(portPath, "link_layer"))) ?? ""),
          bandwidthGbps: parseRateGbps((await readText(join(portPath, "rate"))) ?? ""),
          state,
          active: state === "ACTIVE",
          netdev: netdevs[0],
          numaNode,
          gidCount: (await list(join(portPath, "gids"))).length,
        });
      } catch (err) {
        if (err instanceof SysfsReadError) throw err;
        throw new SysfsReadError(portPath, (err as Error).message, { cause: err });
      }
    }
  }
  const netRoot = join(sysfsRoot, "class/net");
  for (const iface of await list(netRoot)) {
    if (rdmaNetdevs.has(iface)) continue;
    const ifPath = join(netRoot, iface);
    if (!(await exists(join(ifPath, "device")))) continue; // lo, bridges, veths, tunnels
    const speedMbps = Number(await readText(join(ifPath, "speed")));
    const oper = ((await readText(join(ifPath, "operstate"))) ?? "unknown").toUpperCase();
    out.push({
      device: iface,
      port: 1,
      type: NicType.ethernet,
      bandwidthGbps: Number.isFinite(speedMbps) && speedMbps > 0 ? speedMbps / 1000 : 0,
      state: oper,
      active: oper === "UP",
      netdev: iface,
      numaNode: await numaOf(join(ifPath, "device")),
      gidCount: 0,
    });
  }
  return out;
}
