/**
 * GPUs from `nvidia-smi -q -x`: model, memory, UUID, PCI bus id; NUMA node comes from `nvidia-smi topo -m`
 * (the XML does not carry it). Product names map to hardware catalog keys by family and nearest memory size.
 */
import { GPU_CATALOG } from "../../../common/src/hardware/catalog.js";
import { childText, parseXml } from "./xml.js";

export interface GpuInfo {
  index: number;
  uuid: string;
  productName: string;
  /** Hardware catalog key ("H100-80GB"), or undefined when the model is not in the catalog. */
  model: string | undefined;
  memoryMiB: number;
  pciBusId: string;
  /** -1 when unknown. */
  numaNode: number;
}

export class NvidiaSmiParseError extends Error {
  override name = "NvidiaSmiParseError";
}

function mib(text: string | undefined, what: string): number {
  const match = /^(\d+)\s*MiB$/.exec(text ?? "");
  if (!match) throw new NvidiaSmiParseError(`${what}: expected "<n> MiB", got "${text}"`);
  return Number(match[1]);
}

/** Maps an nvidia-smi product name and framebuffer size to a catalog key: same family, nearest memory size. */
export function catalogModel(productName: string, memoryMiB: number): string | undefined {
  const family = /\b([A-Z]\d{2,3})\b/.exec(productName.replace(/^NVIDIA\s+/, ""))?.[1];
  if (!family) return undefined;
  const memoryGiB = memoryMiB / 1024;
  let best: { model: string; distanceGiB: number } | undefined;
  for (const spec of Object.values(GPU_CATALOG)) {
    if (!spec.model.startsWith(`${family}-`)) continue;
    const distanceGiB = Math.abs(spec.memoryGiB - memoryGiB);
    if (!best || distanceGiB < best.distanceGiB) best = { model: spec.model, distanceGiB };
  }
  // Reject a match more than 10% off: an unknown SKU of a known family must not pass for another.
  return best && best.distanceGiB <= memoryGiB * 0.1 ? best.model : undefined;
}

export function parseNvidiaSmiXml(xml: string): GpuInfo[] {
  let doc;
  try {
    doc = parseXml(xml);
  } catch (err) {
    throw new NvidiaSmiParseError("nvidia-smi -q -x output is not valid XML", { cause: err });
  }
  const log = doc.children.find((c) => c.name === "nvidia_smi_log");
  if (!log) throw new NvidiaSmiParseError("nvidia-smi -q -x output has no <nvidia_smi_log> root");
  return log.children
    .filter((c) => c.name === "gpu")
    .map((gpu, position) => {
      const productName = childText(gpu, "product_name") ?? "";
      const memoryMiB = mib(childText(gpu, "fb_memory_usage/total"), `gpu ${position} fb_memory_usage/total`);
      const minor = Number(childText(gpu, "minor_number"));
      const uuid = childText(gpu, "uuid");
      if (!uuid) throw new NvidiaSmiParseError(`gpu ${position} has no <uuid>`);
      return {
        index: Number.isInteger(minor) ? minor : position,
        uuid,
        productName,
        model: catalogModel(productName, memoryMiB),
        memoryMiB,
        pciBusId: childText(gpu, "pci/pci_bus_id") ?? gpu.attributes.id ?? "",
        numaNode: -1,
      };
    });
}
