/**
 * Fetch, part two: the request trace a spec's workload.traceRef names, read from its ConfigMap and parsed once per
 * ConfigMap resourceVersion (a trace is thousands of lines; the planner reads it every reconcile).
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { parseAzureTraceCsv, type TraceRecord } from "../distserve/workload.js";

export type TraceRead = { ok: true; records: TraceRecord[] } | { ok: false; message: string };

export class TraceReader {
  private readonly parsed = new Map<string, { resourceVersion: string; records: TraceRecord[] }>();

  /** `readConfigMap` answers undefined when the ConfigMap does not exist. */
  constructor(private readonly readConfigMap: (namespace: string, name: string) => Promise<V1ConfigMap | undefined>) {}

  /** The records, or a message naming what is wrong with the reference (missing ConfigMap or key, bad CSV). */
  async read(namespace: string, configMapName: string, key: string): Promise<TraceRead> {
    const where = `workload.traceRef: ConfigMap ${namespace}/${configMapName}`;
    const cm = await this.readConfigMap(namespace, configMapName);
    if (!cm) return { ok: false, message: `${where} not found` };
    const text = cm.data?.[key];
    if (text === undefined)
      return {
        ok: false,
        message: `${where} has no key "${key}" (keys: ${
          Object.keys(cm.data ?? {})
            .sort()
            .join(", ") || "none"
        })`,
      };
    const cacheKey = `${namespace}/${configMapName}/${key}`;
    const hit = this.parsed.get(cacheKey);
    const resourceVersion = cm.metadata?.resourceVersion ?? "";
    if (hit && hit.resourceVersion === resourceVersion && resourceVersion !== "")
      return { ok: true, records: hit.records };
    try {
      const records = parseAzureTraceCsv(text);
      if (records.length === 0) return { ok: false, message: `${where} key "${key}" holds no requests` };
      this.parsed.set(cacheKey, { resourceVersion, records });
      return { ok: true, records };
    } catch (error) {
      return { ok: false, message: `${where} key "${key}": ${(error as Error).message}` };
    }
  }
}
