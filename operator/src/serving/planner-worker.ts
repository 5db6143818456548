/** Worker-thread entry of the serving planner (see planner-thread.ts): plans each input it is sent. */
import { parentPort } from "node:worker_threads";
import { planServing, type ServingPlanInput } from "./distserve/planner.js";

parentPort?.on("message", ({ id, input }: { id: number; input: ServingPlanInput }) => {
  try {
    parentPort!.postMessage({ id, result: planServing(input) });
  } catch (error) {
    parentPort!.postMessage({ id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
});
