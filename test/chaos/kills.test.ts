/**
 * Process kills under serving (bench/reliability/kills.ts) on the integration run's shared cluster: the agent of a
 * streaming instance, of a prefilling instance and of a migration's destination is SIGKILLed, and what the client,
 * the gateway and the operator see is checked; the agent restarted runs its pods again. Asserts behaviour, not
 * speed: the times go to the rows (and the bench's table), with generous bounds only where the design states one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentKillMidTraining, servingKills, type ServingKillScenario } from "../../bench/reliability/kills.js";
import type { ReliabilityRow } from "../../bench/reliability/row.js";
import { chaosContext } from "./context.js";

const rows = new Map<ServingKillScenario, ReliabilityRow | Error>();

function row(name: ServingKillScenario): ReliabilityRow {
  const r = rows.get(name);
  if (!r) throw new Error(`scenario "${name}" did not run`);
  if (r instanceof Error) throw r;
  return r;
}

describe("agent SIGKILL under serving", () => {
  beforeAll(async () => {
    await servingKills(chaosContext(), async (name, run) => {
      try {
        const row = await run();
        console.log(JSON.stringify(row));
        rows.set(name, row);
      } catch (error) {
        rows.set(name, error as Error);
      }
    });
  }, 900_000);
  afterAll(() => rows.clear());

  it("mid-stream: one error event, no [DONE], no token twice; the instance drops out of both views; the restarted agent serves it again", () => {
    const r = row("agent SIGKILL mid-stream");
    expect(r, r.happened).toMatchObject({ passed: true, duplicated: 0 });
    expect(r.counts!.tokensDelivered).toBeGreaterThanOrEqual(r.counts!.tokensAtKill!);
    expect(r.counts!.tokensDelivered).toBeLessThan(r.scale.maxTokens!);
    expect(r.counts!.requestsAfterRecovery).toBe(2);
    // The operator's scheduler counts an instance gone once its last report is loadStaleMs (5 s) old: it cannot
    // notice sooner than that, and must not take much longer (reports are read as they arrive).
    expect(r.timingsMs.killToOperatorStaleMs).toBeGreaterThanOrEqual(4_000);
    expect(r.timingsMs.killToOperatorStaleMs).toBeLessThan(30_000);
  });

  it("before the first token: retried exactly once on the other instance, the client gets the whole completion once", () => {
    const r = row("agent SIGKILL before the first token");
    expect(r, r.happened).toMatchObject({ passed: true, lost: 0, duplicated: 0 });
    expect(r.counts).toMatchObject({ retries: 1, attempts: 2 });
  });

  it("mid-migration: the destination's agent dies, the source keeps the request and the client gets every token once", () => {
    const r = row("agent SIGKILL mid-migration (destination)");
    expect(r, r.happened).toMatchObject({ passed: true, lost: 0, duplicated: 0 });
    expect(r.counts!.migrationsFollowed).toBe(0);
  });

  it("mid-migration: the source's agent dies, the client gets a clear error, and the destination frees the pre-allocation without ever running the request", () => {
    const r = row("agent SIGKILL mid-migration (source)");
    expect(r, r.happened).toMatchObject({ passed: true, duplicated: 0 });
    expect(r.counts!.destinationRan).toBe(0);
    expect(r.counts!.tokensDelivered).toBeLessThan(r.scale.maxTokens!);
  });
});

describe("agent SIGKILL under training", () => {
  it("the gang restarts once, every new rank from the last reported checkpoint, and checkpoints on", async () => {
    const r = await agentKillMidTraining(chaosContext(), { hangTimeoutSeconds: 10 });
    console.log(JSON.stringify(r));
    expect(r, r.happened).toMatchObject({ passed: true, duplicated: 0 });
    expect(r.counts!.resumeStep).toBe(r.counts!.lastCheckpointStep);
    // Found by the job-wide hang rule: not before hangTimeoutSeconds of quiet.
    expect(r.timingsMs.killToFaultActedMs).toBeGreaterThanOrEqual(9_000);
  }, 400_000);
});
