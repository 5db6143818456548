/**
 * What a simulated worker does with a command from its stream (pure): the action to carry out, or the rejection
 * to acknowledge. The runtime carries the action out and acknowledges the outcome (AckCommand) with what
 * actually happened.
 */
import type { WorkerCommand__Output } from "../../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";

export const CommandOutcome = { applied: "applied", rejected: "rejected", failed: "failed" } as const;
export type CommandOutcome = (typeof CommandOutcome)[keyof typeof CommandOutcome];

export type CommandAction =
  | { kind: "drain"; deadlineMs: number }
  | { kind: "abort"; reason: string }
  | { kind: "inject-fault"; fault: { kind: string; rank: number; peerRank: number; factor: number } }
  | { kind: "migrate-out"; requestId: string; targetWorkerId: string; targetUrl: string }
  | { kind: "reject"; reason: string };

/** What the worker is, as far as commands care. */
export type WorkerRoleForCommands = "serving" | "training";

export function decideCommand(worker: WorkerRoleForCommands, command: WorkerCommand__Output): CommandAction {
  if (!command.commandId) return { kind: "reject", reason: "malformed command: command_id is empty" };
  switch (command.command) {
    case "drain":
      if (worker !== "serving")
        return { kind: "reject", reason: "drain applies to serving workers; a training rank admits no requests" };
      return { kind: "drain", deadlineMs: command.drain?.deadlineMs ?? 0 };
    case "abort":
      if (worker !== "serving")
        return {
          kind: "reject",
          reason: "abort applies to serving workers (it cancels running requests); a training rank has none",
        };
      return { kind: "abort", reason: command.abort?.reason || "aborted by command" };
    case "injectFault": {
      if (worker !== "training") return { kind: "reject", reason: "inject-fault applies to simulated training ranks" };
      const f = command.injectFault;
      if (!f) return { kind: "reject", reason: "malformed command: inject_fault has no body" };
      return { kind: "inject-fault", fault: { kind: f.kind, rank: f.rank, peerRank: f.peerRank, factor: f.factor } };
    }
    case "migrateOut": {
      if (worker !== "serving")
        return { kind: "reject", reason: "migrate-out applies to serving workers; a training rank has no requests" };
      const m = command.migrateOut;
      if (!m?.requestId) return { kind: "reject", reason: "malformed command: migrate_out.request_id is empty" };
      if (!m.targetUrl)
        return {
          kind: "reject",
          reason:
            "malformed command: migrate_out.target_url is empty (the source pushes the KV to the destination's engine API)",
        };
      if (!/^https?:\/\/[^/?#]+(\/[^/?#]+)*$/.test(m.targetUrl))
        return {
          kind: "reject",
          reason: `malformed command: migrate_out.target_url '${m.targetUrl}' is not an engine URL (http(s)://host[:port][/path], no trailing slash)`,
        };
      return {
        kind: "migrate-out",
        requestId: m.requestId,
        targetWorkerId: m.targetWorkerId || m.targetUrl,
        targetUrl: m.targetUrl,
      };
    }
    case "migrateIn":
      // The source drives a migration (MigrateOut); the destination takes part through its engine API.
      return {
        kind: "reject",
        reason:
          "migrate-in is not used by simulated workers: the source drives the migration (migrate-out) and the destination answers on its engine API",
      };
    case "applyRoutes":
      return { kind: "reject", reason: "traffic routes have no executor in workers yet (issue 13)" };
    default:
      return { kind: "reject", reason: "malformed command: no command set" };
  }
}
