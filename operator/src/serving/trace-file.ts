/**
 * Reads a request trace from disk (the one I/O helper of the serving package; the planner itself stays pure).
 * The bundled trace is data/traces/azure-llm-2023-conv.csv: Azure Public Dataset, CC-BY 4.0, attribution
 * Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type TraceRecord, parseAzureTraceCsv } from "./distserve/workload.js";

/** The Azure LLM 2023 conversation trace shipped in this repository. */
export const AZURE_CONV_TRACE_PATH = fileURLToPath(
  new URL("../../../data/traces/azure-llm-2023-conv.csv", import.meta.url),
);

export function loadTraceFile(path: string = AZURE_CONV_TRACE_PATH): TraceRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`reading trace ${path}`, { cause: error });
  }
  try {
    return parseAzureTraceCsv(text);
  } catch (error) {
    throw new Error(`parsing trace ${path}: ${(error as Error).message}`, { cause: error });
  }
}
