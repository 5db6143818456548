/**
 * Plan, part one: the planner simulates thousands of requests per candidate, so it runs again only when its input
 * changed. One answer is kept per deployment (by uid), at most 1,000 deployments.
 */
import type { ServingPlanInput, ServingPlanResult } from "../distserve/planner.js";

export type PlanFn = (input: ServingPlanInput) => ServingPlanResult | Promise<ServingPlanResult>;

const MAX_ENTRIES = 1000;

export class PlannerCache {
  private readonly answers = new Map<string, { key: string; result: ServingPlanResult }>();

  constructor(private readonly plan: PlanFn) {}

  async planFor(uid: string, input: ServingPlanInput): Promise<ServingPlanResult> {
    const key = JSON.stringify(input);
    const hit = this.answers.get(uid);
    if (hit?.key === key) return hit.result;
    const result = await this.plan(input);
    this.answers.set(uid, { key, result });
    if (this.answers.size > MAX_ENTRIES) this.answers.delete(this.answers.keys().next().value as string);
    return result;
  }
}
