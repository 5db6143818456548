/** Reads RDMA port counters from sysfs and turns consecutive readings into rates (I/O around rdma.ts). */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { portRates, type PortRates, type PortReading } from "./rdma.js";

async function names(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).filter((n) => !n.startsWith("."));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new Error(`listing ${path}`, { cause: err });
  }
}

export async function readPortCounters(sysfsRoot: string): Promise<PortReading[]> {
  const ibRoot = join(sysfsRoot, "class/infiniband");
  const out: PortReading[] = [];
  for (const device of (await names(ibRoot)).sort()) {
    for (const port of (await names(join(ibRoot, device, "ports"))).sort()) {
      const counters: Record<string, bigint> = {};
      for (const dir of ["counters", "hw_counters"]) {
        const base = join(ibRoot, device, "ports", port, dir);
        for (const name of await names(base)) {
          const text = (await readFile(join(base, name), "utf8").catch(() => "")).trim();
          if (/^\d+$/.test(text)) counters[name] = BigInt(text);
        }
      }
      out.push({ device, port: Number(port), counters });
    }
  }
  return out;
}

/** Keeps the previous reading per port; each sample() returns the rates since the last one. */
export class RdmaSampler {
  private previous = new Map<string, { reading: PortReading; atMs: number }>();

  constructor(
    private readonly sysfsRoot: string,
    private readonly nowMs: () => number = Date.now,
  ) {}

  async sample(): Promise<PortRates[]> {
    const atMs = this.nowMs();
    const readings = await readPortCounters(this.sysfsRoot);
    const rates: PortRates[] = [];
    for (const reading of readings) {
      const key = `${reading.device}/${reading.port}`;
      const before = this.previous.get(key);
      if (before && atMs > before.atMs) rates.push(portRates(before.reading, reading, atMs - before.atMs));
      this.previous.set(key, { reading, atMs });
    }
    return rates;
  }
}
