import { describe, expect, it } from "vitest";
import { GangStateKind, observeGang, stableHash, type GangObservationInput, type ObservedPod } from "./gang-state.js";

const pod = (rank: number, change: Partial<ObservedPod> = {}): ObservedPod => ({
  name: `j-${rank}`,
  uid: `uid-${rank}`,
  nodeName: `n${rank}`,
  phase: "Running",
  deleting: false,
  attempt: 0,
  specHash: "s",
  ...change,
});
const gang = (n: number, change: (rank: number) => Partial<ObservedPod> = () => ({})) =>
  Array.from({ length: n }, (_, r) => pod(r, change(r)));
const nodes = Array.from({ length: 6 }, (_, i) => ({ nodeName: `n${i}`, isolated: false }));
const base: GangObservationInput = {
  jobName: "j",
  gangSize: 4,
  plannedNodes: ["n0", "n1", "n2", "n3"],
  attempt: 0,
  specHash: "s",
  pods: gang(4),
  awaitingPods: new Set(),
  deletedPods: new Set(),
  nodes,
  wasPlaced: true,
};

describe("observeGang", () => {
  it.each([
    {
      name: "nothing placed yet",
      input: { ...base, pods: [], wasPlaced: false },
      kind: GangStateKind.none,
      toDelete: [],
    },
    { name: "whole gang running", input: base, kind: GangStateKind.running, toDelete: [] },
    {
      name: "whole gang, one pod still Pending",
      input: { ...base, pods: gang(4, (r) => (r === 2 ? { phase: "Pending" } : {})) },
      kind: GangStateKind.placedPending,
      toDelete: [],
    },
    {
      name: "pods created, cache shows two of four",
      input: { ...base, pods: gang(2), awaitingPods: new Set(["j-2", "j-3"]), wasPlaced: false },
      kind: GangStateKind.placing,
      toDelete: [],
    },
    {
      name: "a pod Unknown is not a failure",
      input: { ...base, pods: gang(4, (r) => (r === 1 ? { phase: "Unknown" } : {})) },
      kind: GangStateKind.placedPending,
      toDelete: [],
    },
    {
      name: "a member failed",
      input: { ...base, pods: gang(4, (r) => (r === 3 ? { phase: "Failed" } : {})) },
      kind: GangStateKind.failedMember,
      toDelete: ["j-0", "j-1", "j-2", "j-3"],
    },
    {
      name: "a member was deleted",
      input: { ...base, pods: gang(4).filter((p) => p.name !== "j-1") },
      kind: GangStateKind.failedMember,
      toDelete: ["j-0", "j-2", "j-3"],
    },
    {
      name: "a member is being deleted by someone else",
      input: { ...base, pods: gang(4, (r) => (r === 0 ? { deleting: true } : {})) },
      kind: GangStateKind.failedMember,
      toDelete: ["j-1", "j-2", "j-3"],
    },
    {
      name: "every member vanished from a placed gang",
      input: { ...base, pods: [] },
      kind: GangStateKind.failedMember,
      toDelete: [],
    },
    {
      name: "a member's node isolated",
      input: { ...base, nodes: nodes.map((n) => (n.nodeName === "n2" ? { ...n, isolated: true } : n)) },
      kind: GangStateKind.isolatedNode,
      toDelete: ["j-0", "j-1", "j-2", "j-3"],
    },
    {
      name: "a member's node left the cluster",
      input: { ...base, nodes: nodes.filter((n) => n.nodeName !== "n0") },
      kind: GangStateKind.isolatedNode,
      toDelete: ["j-0", "j-1", "j-2", "j-3"],
    },
    {
      name: "pods of the previous attempt",
      input: { ...base, attempt: 1, wasPlaced: false },
      kind: GangStateKind.draining,
      toDelete: ["j-0", "j-1", "j-2", "j-3"],
    },
    {
      name: "pods of an older spec",
      input: { ...base, specHash: "t" },
      kind: GangStateKind.draining,
      toDelete: ["j-0", "j-1", "j-2", "j-3"],
    },
    {
      name: "our deleted pods still in the cache",
      input: { ...base, deletedPods: new Set(["uid-0", "uid-1", "uid-2", "uid-3"]), wasPlaced: false },
      kind: GangStateKind.draining,
      toDelete: [],
    },
    {
      name: "terminating pods only",
      input: { ...base, pods: gang(4, () => ({ deleting: true })), wasPlaced: false },
      kind: GangStateKind.draining,
      toDelete: [],
    },
    {
      name: "part of a gang, nothing awaited, never placed",
      input: { ...base, pods: gang(2), wasPlaced: false },
      kind: GangStateKind.partial,
      toDelete: ["j-0", "j-1"],
    },
    {
      name: "all succeeded",
      input: { ...base, pods: gang(4, () => ({ phase: "Succeeded" })) },
      kind: GangStateKind.succeeded,
      toDelete: [],
    },
    {
      name: "some ranks finished, others still run",
      input: { ...base, pods: gang(4, (r) => (r < 2 ? { phase: "Succeeded" } : {})) },
      kind: GangStateKind.running,
      toDelete: [],
    },
  ])("$name → $kind", ({ input, kind, toDelete }) => {
    const state = observeGang(input);
    expect(state.kind).toBe(kind);
    expect(state.toDelete.map((p) => p.name)).toEqual(toDelete);
  });

  it("names failed and deleted members with their planned nodes", () => {
    const state = observeGang({
      ...base,
      pods: gang(4, (r) => (r === 3 ? { phase: "Failed" } : {})).filter((p) => p.name !== "j-1"),
    });
    expect(state.failed).toEqual([
      { name: "j-3", nodeName: "n3", phase: "Failed" },
      { name: "j-1", nodeName: "n1", phase: "Failed" },
    ]);
  });

  it("lists isolated nodes once, sorted", () => {
    const isolated = nodes.map((n) => (n.nodeName === "n3" || n.nodeName === "n1" ? { ...n, isolated: true } : n));
    expect(observeGang({ ...base, nodes: isolated }).isolatedNodes).toEqual(["n1", "n3"]);
  });
});

describe("stableHash", () => {
  it("ignores key order and undefined fields, and sees every value", () => {
    expect(stableHash({ a: 1, b: { c: [1, 2] } })).toBe(stableHash({ b: { c: [1, 2] }, a: 1, d: undefined }));
    expect(stableHash({ a: 1, b: { c: [1, 2] } })).not.toBe(stableHash({ a: 1, b: { c: [2, 1] } }));
    expect(stableHash({ a: 1 })).toMatch(/^[0-9a-f]{16}$/);
  });
});
