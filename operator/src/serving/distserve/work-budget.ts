/**
 * The planner's work budget: a bound on the simulation one planning run may do, so that no accepted spec keeps
 * the serving controller (which plans one deployment at a time) busy for minutes.
 *
 * Work is counted, not timed: one unit per simulated event plus one per sequence a batch step advances
 * (simulator.ts WorkMeter). A count makes the cut-off deterministic: the same input stops at the same point and
 * gives the same answer on a loaded CI runner and on an idle laptop, which a wall-clock deadline would not.
 *
 * Each GPU model the planner considers gets SEARCH_WORK_UNITS for its searches (colocated baselines, phase
 * searches, end-to-end units, local search, close calls) and then FINALIZE_WORK_UNITS more to verify and size
 * the plan it ranks first, so a search cut short still ends in a verified plan. When the search budget runs out,
 * the stages not yet run are skipped and the best plan found so far is verified and returned, its explanation
 * saying so; when nothing meeting the SLOs was found by then, or the verification runs out too, the answer is a
 * PlanningBudgetExhausted failure naming the stage it stopped in. Pure.
 */
import { WorkBudgetExhausted, type WorkMeter } from "./simulator.js";

/**
 * Search work per GPU model. The serving benchmark's specs (bench/serving.ts's 40 scenarios, chatbot from the
 * preset, and its planner-timing clusters of 8 to 1,024 GPUs) spend at most 35.4 M (docs/serving-planner.md has
 * the counts). A unit costs about 0.1–0.3 µs on an idle core and up to 1 µs on the 2 shared cores of the
 * development machine, so search and verification together stop within 7–21 s of an idle core.
 */
export const SEARCH_WORK_UNITS = 60_000_000;
/** Verification work on top of whatever the search spent. */
export const FINALIZE_WORK_UNITS = 10_000_000;

/** Where a planning run stands against its budget. */
export class WorkBudget {
  readonly meter: WorkMeter;
  /** The search stage the budget ran out in; undefined while it lasts. */
  cutShortIn: string | undefined;

  constructor(
    readonly searchUnits: number = SEARCH_WORK_UNITS,
    readonly finalizeUnits: number = FINALIZE_WORK_UNITS,
  ) {
    this.meter = { spent: 0, limit: searchUnits };
  }

  /**
   * Runs one search stage. Once the budget is out (in this stage or an earlier one) the stage is skipped; what
   * it found before running out stays wherever the stage collects its results.
   */
  stage(name: string, run: () => void): void {
    if (this.cutShortIn !== undefined) return;
    try {
      run();
    } catch (error) {
      if (!(error instanceof WorkBudgetExhausted)) throw error;
      this.cutShortIn = name;
    }
  }

  /** Opens the verification allowance: FINALIZE_WORK_UNITS beyond what the search spent. */
  startFinalize(): void {
    this.meter.limit = this.meter.spent + this.finalizeUnits;
  }

  /** Explanation note for a plan whose search was cut short. */
  cutShortNote(): string | undefined {
    if (this.cutShortIn === undefined) return undefined;
    return (
      `search cut short: its work budget of ${this.searchUnits} simulation units ran out in ${this.cutShortIn}, ` +
      `so this is the best plan found until then (stages after it were skipped)`
    );
  }
}

export { WorkBudgetExhausted };
