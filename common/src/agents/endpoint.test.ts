import { describe, expect, it } from "vitest";
import { EndpointError, parseAgentEndpoint } from "./endpoint.js";

describe("parseAgentEndpoint", () => {
  it.each([
    ["10.0.3.7:50051", { host: "10.0.3.7", port: 50051 }],
    ["[fd00::7]:50051", { host: "[fd00::7]", port: 50051 }],
    ["agent.local:1", { host: "agent.local", port: 1 }],
  ])("reads %s", (value, expected) => expect(parseAgentEndpoint(value)).toEqual(expected));

  it.each(["10.0.3.7", ":50051", "10.0.3.7:0", "10.0.3.7:70000", "http://10.0.3.7:50051", ""])(
    "refuses %j",
    (value) => {
      expect(() => parseAgentEndpoint(value)).toThrow(EndpointError);
    },
  );
});
