import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  kvTransferParamsOf,
  randomBootstrapRoom,
  sglangBodyJson,
  sglangBootstrap,
  vllmDecodeBody,
  vllmPrefillBody,
} from "./engine-handoff.js";

/** The documented request shapes (sources inside the file). */
const documented = JSON.parse(readFileSync(new URL("./fixtures/engine-pd-requests.json", import.meta.url), "utf8")) as {
  vllm: { prefillRequest: { set: Record<string, unknown>; absent: string[] }; prefillAnswer: Record<string, unknown> };
  sglang: { request: { added: Record<string, string>; bootstrapRoomMax: string; defaultBootstrapPort: number } };
};

const completion = {
  model: "meta-llama/Llama-3.1-8B-Instruct",
  prompt: "The capital of France is",
  maxTokens: 64,
  sampling: { temperature: 0.2, stop: ["\n"] },
};

describe("vLLM hand-off bodies", () => {
  it("asks the prefill instance for one unstreamed token and a remote decode, keeping the client's sampling", () => {
    const body = vllmPrefillBody(completion);
    expect(body).toMatchObject(documented.vllm.prefillRequest.set);
    for (const field of documented.vllm.prefillRequest.absent) expect(body).not.toHaveProperty(field);
    expect(body).toMatchObject({ model: completion.model, prompt: completion.prompt, temperature: 0.2, stop: ["\n"] });
  });

  it("passes the prefill answer's kv_transfer_params to the decode instance unchanged, with the client's max_tokens", () => {
    const params = kvTransferParamsOf(documented.vllm.prefillAnswer);
    expect(params).toEqual({ ok: true, value: documented.vllm.prefillAnswer.kv_transfer_params });
    const body = vllmDecodeBody(completion, params.ok ? params.value : undefined);
    expect(body).toMatchObject({
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
      kv_transfer_params: documented.vllm.prefillAnswer.kv_transfer_params,
    });
  });

  it.each([
    ["no kv_transfer_params (the prefill finished the request)", { choices: [] }, { ok: true, value: undefined }],
    ["null kv_transfer_params", { kv_transfer_params: null }, { ok: true, value: undefined }],
    ["not an object", "text", { ok: false, message: "the answer is not a JSON object", param: null }],
    ["params not an object", { kv_transfer_params: [1] }, expect.objectContaining({ ok: false })],
  ])("reads a prefill answer with %s", (_name, answer, expected) => {
    expect(kvTransferParamsOf(answer)).toEqual(expected);
  });

  it("sends no kv_transfer_params to decode when the prefill gave none (the decode instance runs it all)", () => {
    expect(vllmDecodeBody(completion, undefined)).not.toHaveProperty("kv_transfer_params");
  });
});

describe("SGLang hand-off body", () => {
  const max = BigInt(documented.sglang.request.bootstrapRoomMax);

  it("adds exactly the documented bootstrap fields, the room as its exact 63-bit digits", () => {
    const room = max - 12345n; // far above 2^53: a JSON Number would round it
    const text = sglangBodyJson(completion, sglangBootstrap("http://10.0.0.5:8000", 9100, room));
    expect(text).toMatch(new RegExp(`"bootstrap_room":${room}}$`));
    const parsed = JSON.parse(text) as Record<string, unknown>;
    for (const field of Object.keys(documented.sglang.request.added)) expect(parsed).toHaveProperty(field);
    expect(parsed).toMatchObject({
      model: completion.model,
      prompt: completion.prompt,
      max_tokens: 64,
      temperature: 0.2,
      stream: true,
      bootstrap_host: "10.0.0.5",
      bootstrap_port: 9100,
    });
  });

  it("takes the host from the prefill URL as mini_lb does (IPv6 in brackets) and SGLang's default port", () => {
    expect(sglangBootstrap("http://[fd00::5]:8000", undefined, 1n)).toEqual({
      host: "[fd00::5]",
      port: documented.sglang.request.defaultBootstrapPort,
      room: 1n,
    });
  });

  it("draws rooms in [0, 2^63 - 1]", () => {
    expect(randomBootstrapRoom(Buffer.alloc(8, 0xff))).toBe(max);
    expect(randomBootstrapRoom(Buffer.alloc(8, 0))).toBe(0n);
    const rooms = new Set(Array.from({ length: 100 }, () => randomBootstrapRoom()));
    expect(rooms.size).toBe(100);
    for (const room of rooms) expect(room >= 0n && room <= max).toBe(true);
  });
});
