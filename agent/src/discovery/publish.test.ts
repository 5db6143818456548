import type { CoreV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { AGENT_FIELD_MANAGER, LabelPublishError, NodeLabelPublisher, nodeLabelsApplyPatch } from "./publish.js";

describe("NodeLabelPublisher", () => {
  it("server-side applies only the labels, as the agent's field manager, with the apply content type", async () => {
    const calls: unknown[][] = [];
    const core = {
      patchNode: async (...args: unknown[]) => {
        calls.push(args);
        return {};
      },
    } as unknown as CoreV1Api;
    await new NodeLabelPublisher(core).apply("n1", { "gpufleet.io/gpu-count": "8" });
    expect(calls).toHaveLength(1);
    const [request, options] = calls[0] as [Record<string, unknown>, { middleware: unknown[] }];
    expect(request).toEqual({
      name: "n1",
      body: nodeLabelsApplyPatch("n1", { "gpufleet.io/gpu-count": "8" }),
      fieldManager: AGENT_FIELD_MANAGER,
      force: true,
    });
    expect(request.body).toEqual({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1", labels: { "gpufleet.io/gpu-count": "8" } },
    });
    expect(options.middleware).toHaveLength(1);
  });

  it("wraps API errors with the node name", async () => {
    const core = {
      patchNode: async () => {
        throw new Error("forbidden");
      },
    } as unknown as CoreV1Api;
    const err = await new NodeLabelPublisher(core).apply("n7", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabelPublishError);
    expect((err as Error).message).toContain("n7");
    expect((err as Error).cause).toBeInstanceOf(Error);
  });
});
