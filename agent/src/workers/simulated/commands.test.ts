import { describe, expect, it } from "vitest";
import type { WorkerCommand__Output } from "../../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { decideCommand, type WorkerRoleForCommands } from "./commands.js";

const cmd = (c: Partial<WorkerCommand__Output>): WorkerCommand__Output =>
  ({ commandId: "c1", ...c }) as WorkerCommand__Output;
const fault = { kind: "slow-rank", rank: 1, peerRank: 0, factor: 2 };

describe("decideCommand", () => {
  it.each<{
    name: string;
    worker: WorkerRoleForCommands;
    command: WorkerCommand__Output;
    want: ReturnType<typeof decideCommand>;
  }>([
    {
      name: "drain on serving",
      worker: "serving",
      command: cmd({ command: "drain", drain: { deadlineMs: 5000 } }),
      want: { kind: "drain", deadlineMs: 5000 },
    },
    {
      name: "abort on serving",
      worker: "serving",
      command: cmd({ command: "abort", abort: { reason: "node isolated" } }),
      want: { kind: "abort", reason: "node isolated" },
    },
    {
      name: "abort without a reason",
      worker: "serving",
      command: cmd({ command: "abort", abort: { reason: "" } }),
      want: { kind: "abort", reason: "aborted by command" },
    },
    {
      name: "inject-fault on training",
      worker: "training",
      command: cmd({ command: "injectFault", injectFault: fault }),
      want: { kind: "inject-fault", fault },
    },
    {
      name: "drain on training",
      worker: "training",
      command: cmd({ command: "drain", drain: { deadlineMs: 0 } }),
      want: { kind: "reject", reason: expect.stringMatching(/serving workers/) as unknown as string },
    },
    {
      name: "inject-fault on serving",
      worker: "serving",
      command: cmd({ command: "injectFault", injectFault: fault }),
      want: { kind: "reject", reason: expect.stringMatching(/training ranks/) as unknown as string },
    },
    {
      name: "migrate-out",
      worker: "serving",
      command: cmd({
        command: "migrateOut",
        migrateOut: {
          requestId: "r",
          targetWorkerId: "w",
          targetPod: "ns/p",
          targetUrl: "http://10.0.0.2:8100/instances/uid-2",
        },
      }),
      want: {
        kind: "migrate-out",
        requestId: "r",
        targetWorkerId: "w",
        targetUrl: "http://10.0.0.2:8100/instances/uid-2",
      },
    },
    {
      name: "migrate-out without a target URL",
      worker: "serving",
      command: cmd({
        command: "migrateOut",
        migrateOut: { requestId: "r", targetWorkerId: "w", targetPod: "ns/p", targetUrl: "" },
      }),
      want: { kind: "reject", reason: expect.stringMatching(/target_url is empty/) as unknown as string },
    },
    {
      name: "migrate-out to a URL with a trailing slash",
      worker: "serving",
      command: cmd({
        command: "migrateOut",
        migrateOut: { requestId: "r", targetWorkerId: "w", targetPod: "ns/p", targetUrl: "http://h:1/" },
      }),
      want: { kind: "reject", reason: expect.stringMatching(/not an engine URL/) as unknown as string },
    },
    {
      name: "migrate-out on training",
      worker: "training",
      command: cmd({
        command: "migrateOut",
        migrateOut: { requestId: "r", targetWorkerId: "w", targetPod: "ns/p", targetUrl: "http://h:1" },
      }),
      want: { kind: "reject", reason: expect.stringMatching(/serving workers/) as unknown as string },
    },
    {
      name: "migrate-in",
      worker: "serving",
      command: cmd({ command: "migrateIn", migrateIn: { requestId: "r", sourceWorkerId: "w", sourcePod: "ns/p" } }),
      want: { kind: "reject", reason: expect.stringMatching(/source drives the migration/) as unknown as string },
    },
    {
      name: "apply-routes",
      worker: "training",
      command: cmd({ command: "applyRoutes", applyRoutes: { planId: "p", routes: [] } }),
      want: { kind: "reject", reason: expect.stringMatching(/issue 13/) as unknown as string },
    },
    {
      name: "no command set",
      worker: "serving",
      command: cmd({}),
      want: { kind: "reject", reason: "malformed command: no command set" },
    },
    {
      name: "no command id",
      worker: "serving",
      command: cmd({ commandId: "", command: "drain", drain: { deadlineMs: 0 } }),
      want: { kind: "reject", reason: "malformed command: command_id is empty" },
    },
    {
      name: "inject-fault without a body",
      worker: "training",
      command: cmd({ command: "injectFault" }),
      want: { kind: "reject", reason: "malformed command: inject_fault has no body" },
    },
  ])("$name", ({ worker, command, want }) => {
    expect(decideCommand(worker, command)).toEqual(want);
  });
});
