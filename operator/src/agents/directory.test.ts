import type { V1Node } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { agentEndpointOf } from "./directory.js";

const node = (annotations?: Record<string, string>): V1Node => ({ metadata: { name: "gpu-1", annotations } });

describe("agentEndpointOf", () => {
  it.each([
    {
      name: "an advertised endpoint",
      node: node({ "gpufleet.io/agent-endpoint": "10.1.2.3:50051" }),
      expected: { found: true, nodeName: "gpu-1", endpoint: "10.1.2.3:50051" },
    },
    {
      name: "a node not in the cache",
      node: undefined,
      expected: { found: false, nodeName: "gpu-1", reason: expect.stringMatching(/not in the cache/) },
    },
    {
      name: "no annotation",
      node: node({}),
      expected: { found: false, nodeName: "gpu-1", reason: expect.stringMatching(/no gpufleet.io\/agent-endpoint/) },
    },
    {
      name: "a malformed endpoint",
      node: node({ "gpufleet.io/agent-endpoint": "10.1.2.3" }),
      expected: { found: false, nodeName: "gpu-1", reason: expect.stringMatching(/not host:port/) },
    },
  ])("$name", ({ node: n, expected }) => {
    expect(agentEndpointOf("gpu-1", n)).toEqual(expected);
  });
});
