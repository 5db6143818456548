/**
 * What each engine kind can do for the scheduler (pure). Live migration (Llumnix MigrateOut) moves a running
 * request's KV to another instance mid-decode; only gpufleet's reference worker implements it. vLLM and SGLang
 * instances are dispatched to, split into prefill and decode pools, and scaled on their load reports, but never
 * asked to migrate: a scale-in drain of one waits for its requests to finish.
 */
import { EngineKind } from "../../../../crds/src/serving-deployment.js";

/** Whether the scheduler may send MigrateOut to instances of this engine kind. */
export function engineMigrates(kind: EngineKind | undefined): boolean {
  return (kind ?? EngineKind.reference) === EngineKind.reference;
}
