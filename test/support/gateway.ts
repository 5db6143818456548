/** Test support for the gateway: run it and test instances (test/support/test-instance/) as real processes. */
import { SseParser } from "../../gateway/src/openai/sse.js";
import { startComponentProcess, type ComponentProcess } from "./operator.js";

export interface InstanceProcess extends ComponentProcess {
  readonly url: string;
  readonly id: string;
  stats(): Promise<{
    completed: number;
    cancelled: number;
    running: number;
    kvPulled: number;
    kvHeld: number;
    requestIds: string[];
  }>;
}

export async function startTestInstanceProcess(env: Record<string, string>): Promise<InstanceProcess> {
  const id = env.TEST_INSTANCE_ID ?? "test";
  const { process, readyLine } = await startComponentProcess({
    name: `test instance ${id}`,
    entry: "test/support/test-instance/main.ts",
    readyMessage: "test instance ready",
    env,
  });
  const url = readyLine.url as string;
  return {
    ...process,
    url,
    id,
    stats: async () => (await fetch(`${url}/test/stats`)).json() as ReturnType<InstanceProcess["stats"]>,
  };
}

export interface GatewayProcess extends ComponentProcess {
  readonly url: string;
}

export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const { process, readyLine } = await startComponentProcess({
    name: "gateway",
    entry: "gateway/src/main.ts",
    readyMessage: "gateway listening",
    env: { GPUFLEET_GATEWAY_PORT: "0", GPUFLEET_GATEWAY_HOST: "127.0.0.1", ...env },
  });
  return { ...process, url: `http://127.0.0.1:${readyLine.port as number}` };
}

/** Reads an SSE response to its end: the JSON payloads, and whether [DONE] came. */
export async function readSse(response: Response): Promise<{ events: Record<string, unknown>[]; done: boolean }> {
  const parser = new SseParser();
  const events: Record<string, unknown>[] = [];
  let done = false;
  const reader = response.body!.getReader();
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    for (const data of parser.push(chunk.value)) {
      if (data === "[DONE]") done = true;
      else events.push(JSON.parse(data) as Record<string, unknown>);
    }
  }
  return { events, done };
}

export function tokensOf(events: Record<string, unknown>[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const choice = (e.choices as { text?: string; delta?: { content?: string } }[] | undefined)?.[0];
    const text = choice?.text ?? choice?.delta?.content;
    if (text) out.push(text);
  }
  return out;
}
