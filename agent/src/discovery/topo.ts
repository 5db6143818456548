/**
 * `nvidia-smi topo -m`: the connection matrix between GPUs and NICs, CPU/NUMA affinity per GPU and the NIC legend
 * ("NIC0: mlx5_0"). Cells: X (self), NV# (# bonded NVLinks), PIX, PXB, PHB, NODE, SYS — nearest to farthest.
 */

export const Link = { self: "X", pix: "PIX", pxb: "PXB", phb: "PHB", node: "NODE", sys: "SYS" } as const;

export interface TopoMatrix {
  /** Row/column device names in order: "GPU0", ..., "NIC0", ... */
  devices: string[];
  /** links[row][column], cell text as printed ("NV18", "PIX", "X"). */
  links: Record<string, Record<string, string>>;
  /** GPU name -> NUMA node (-1 when N/A). */
  numaNode: Record<string, number>;
  /** "NIC0" -> "mlx5_0". */
  nicNames: Record<string, string>;
}

export class TopoParseError extends Error {
  override name = "TopoParseError";
}

// nvidia-smi underlines the header row with ANSI escapes when it thinks it writes to a terminal.
const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, ""); // eslint-disable-line no-control-regex

const fields = (line: string): string[] =>
  stripAnsi(line)
    .split("\t")
    .map((f) => f.trim())
    .filter((f) => f !== "");

export function parseTopoMatrix(text: string): TopoMatrix {
  const lines = text.split("\n");
  const headerIndex = lines.findIndex((l) => /^\s*(?:\x1b\[[0-9;]*m)?GPU0\b/.test(l)); // eslint-disable-line no-control-regex
  if (headerIndex < 0) throw new TopoParseError("nvidia-smi topo -m output has no header row starting with GPU0");
  const header = fields(lines[headerIndex]!);
  const devices = header.filter((h) => /^(GPU|NIC)\d+$/.test(h));
  const numaColumn = header.indexOf("NUMA Affinity");
  const links: TopoMatrix["links"] = {};
  const numaNode: TopoMatrix["numaNode"] = {};
  for (const line of lines.slice(headerIndex + 1)) {
    const row = fields(line);
    const name = row[0];
    if (!name || !devices.includes(name)) {
      if (row.length === 0 || /^Legend:/.test(row[0] ?? "")) break;
      continue;
    }
    const cells = row.slice(1);
    if (cells.length < devices.length)
      throw new TopoParseError(`row ${name} has ${cells.length} cells, expected at least ${devices.length}`);
    links[name] = Object.fromEntries(devices.map((d, i) => [d, cells[i]!]));
    if (name.startsWith("GPU") && numaColumn >= 0) {
      const numa = Number(cells[numaColumn]);
      numaNode[name] = Number.isInteger(numa) ? numa : -1;
    }
  }
  const nicNames: TopoMatrix["nicNames"] = {};
  for (const m of text.matchAll(/^\s*(NIC\d+):\s*(\S+)\s*$/gm)) nicNames[m[1]!] = m[2]!;
  for (const d of devices) if (!links[d]) throw new TopoParseError(`device ${d} is in the header but has no row`);
  return { devices, links, numaNode, nicNames };
}

const NEAR: readonly string[] = [Link.pix, Link.pxb];

/** GPU indexes whose PCIe path to the named NIC (e.g. "mlx5_0") crosses no host bridge (PIX or PXB). */
export function nearestGpus(topo: TopoMatrix, nicDevice: string): number[] {
  const nic = Object.entries(topo.nicNames).find(([, dev]) => dev === nicDevice)?.[0];
  if (!nic) return [];
  return topo.devices
    .filter((d) => d.startsWith("GPU") && NEAR.includes(topo.links[d]?.[nic] ?? ""))
    .map((d) => Number(d.slice(3)));
}

/** Number of bonded NVLinks between two GPUs (0 when they talk over PCIe). */
export function nvlinkCount(topo: TopoMatrix, a: number, b: number): number {
  const cell = topo.links[`GPU${a}`]?.[`GPU${b}`] ?? "";
  const m = /^NV(\d+)$/.exec(cell);
  return m ? Number(m[1]) : 0;
}
