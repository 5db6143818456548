import { Type } from "@sinclair/typebox";
import { describe, expect, it } from "vitest";
import { configFromEnv } from "./env.js";

const Schema = Type.Object({ port: Type.Integer({ minimum: 1, default: 80 }), name: Type.String({ minLength: 1 }) });
const VARIABLES = { port: "X_PORT", name: "X_NAME" } as const;
const read = (env: Record<string, string | undefined>, fallbacks?: Record<string, unknown>) =>
  configFromEnv(Schema, VARIABLES, env, {
    what: "test",
    makeError: (m) => new Error(m),
    ...(fallbacks ? { fallbacks } : {}),
  });

describe("configFromEnv", () => {
  it.each([
    { name: "converts and defaults", env: { X_NAME: "a" }, fallbacks: undefined, want: { port: 80, name: "a" } },
    {
      name: "reads numbers from text",
      env: { X_NAME: "a", X_PORT: "8080" },
      fallbacks: undefined,
      want: { port: 8080, name: "a" },
    },
    {
      name: "an empty variable is unset, so the fallback applies",
      env: { X_NAME: "" },
      fallbacks: { name: "pod-0" },
      want: { port: 80, name: "pod-0" },
    },
    {
      name: "a set variable wins over the fallback",
      env: { X_NAME: "a" },
      fallbacks: { name: "pod-0" },
      want: { port: 80, name: "a" },
    },
  ])("$name", ({ env, fallbacks, want }) => {
    expect(read(env, fallbacks)).toEqual(want);
  });

  it("names the variable, the rule and the value of every invalid field", () => {
    expect(() => read({ X_PORT: "0" })).toThrow(
      /^invalid test configuration: .*X_PORT: Expected integer to be greater or equal to 1 \(got 0\)/,
    );
    expect(() => read({ X_PORT: "0" })).toThrow(/X_NAME: /);
  });
});
