import { describe, expect, it } from "vitest";
import { chatPrompt } from "./chat-template.js";
import { parseRequest } from "./validation.js";

const limits = { maxTokensLimit: 100, defaultMaxTokens: 16 };

describe("parseRequest", () => {
  it("normalises a completion with defaults", () => {
    expect(parseRequest("completions", { model: "m", prompt: "hi" }, limits)).toEqual({
      ok: true,
      request: {
        endpoint: "completions",
        model: "m",
        prompt: "hi",
        maxTokens: 16,
        stream: false,
        includeUsage: false,
        sampling: {},
      },
    });
  });

  it("takes a one-element prompt array, stream options and sampling, dropping nulls", () => {
    const parsed = parseRequest(
      "completions",
      {
        model: "m",
        prompt: ["hi"],
        max_tokens: 5,
        stream: true,
        stream_options: { include_usage: true },
        temperature: 0.5,
        top_p: null,
        stop: ["\n"],
      },
      limits,
    );
    expect(parsed).toMatchObject({
      ok: true,
      request: {
        prompt: "hi",
        maxTokens: 5,
        stream: true,
        includeUsage: true,
        sampling: { temperature: 0.5, stop: ["\n"] },
      },
    });
  });

  it("turns chat messages into the stated template; max_completion_tokens wins over max_tokens", () => {
    const parsed = parseRequest(
      "chat",
      {
        model: "m",
        messages: [
          { role: "developer", content: "rules" },
          {
            role: "user",
            content: [
              { type: "text", text: "a" },
              { type: "text", text: "b" },
            ],
          },
        ],
        max_tokens: 9,
        max_completion_tokens: 7,
      },
      limits,
    );
    expect(parsed).toMatchObject({
      ok: true,
      request: { endpoint: "chat", prompt: "<|system|>\nrules\n<|user|>\na\nb\n<|assistant|>\n", maxTokens: 7 },
    });
  });

  describe.each([
    { name: "not an object", endpoint: "completions" as const, body: [1], param: null },
    { name: "no model", endpoint: "completions" as const, body: { prompt: "x" }, param: "model" },
    { name: "empty prompt", endpoint: "completions" as const, body: { model: "m", prompt: "" }, param: "prompt" },
    {
      name: "several prompts",
      endpoint: "completions" as const,
      body: { model: "m", prompt: ["a", "b"] },
      param: "prompt",
    },
    {
      name: "token-id prompt",
      endpoint: "completions" as const,
      body: { model: "m", prompt: [1, 2] },
      param: "prompt",
    },
    {
      name: "max_tokens 0",
      endpoint: "completions" as const,
      body: { model: "m", prompt: "x", max_tokens: 0 },
      param: "max_tokens",
    },
    {
      name: "max_tokens over the limit",
      endpoint: "completions" as const,
      body: { model: "m", prompt: "x", max_tokens: 101 },
      param: "max_tokens",
    },
    { name: "n = 2", endpoint: "completions" as const, body: { model: "m", prompt: "x", n: 2 }, param: "n" },
    {
      name: "temperature 3",
      endpoint: "completions" as const,
      body: { model: "m", prompt: "x", temperature: 3 },
      param: "temperature",
    },
    { name: "no messages", endpoint: "chat" as const, body: { model: "m", messages: [] }, param: "messages" },
    {
      name: "unknown role",
      endpoint: "chat" as const,
      body: { model: "m", messages: [{ role: "tool", content: "x" }] },
      param: "messages.0.role",
    },
    {
      name: "image content part",
      endpoint: "chat" as const,
      body: { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: "x" }] }] },
      param: "messages.0.content",
    },
  ])("$name", ({ endpoint, body, param }) => {
    it("is a 400 naming the parameter", () => {
      const parsed = parseRequest(endpoint, body, limits);
      expect(parsed.ok).toBe(false);
      if (parsed.ok) return;
      expect(parsed.error.status).toBe(400);
      expect(parsed.error.body().error).toMatchObject({
        type: "invalid_request_error",
        code: "invalid_request",
        param,
      });
    });
  });
});

describe("chatPrompt", () => {
  it("ends with the assistant tag the completion continues", () => {
    expect(chatPrompt([{ role: "user", content: "hi" }])).toBe("<|user|>\nhi\n<|assistant|>\n");
  });
});
