/**
 * The reconcile both gpufleet resources share (Kueue's GenericJob idea, in small): read the object from the cache,
 * let the controller decide (checks, plan, apply), fold the decided conditions into status with
 * observedGeneration, write status only if it changed, and record Events only after that write. Controllers
 * supply `decide`; everything around it lives here once.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { setCondition, type Condition, type ConditionUpdate } from "../../../crds/src/conditions.js";
import type { Applier, StatusTarget } from "./apply.js";
import type { Clock } from "./clock.js";
import type { ReconcileResult } from "./controller.js";
import type { EventSink } from "./events.js";
import { parseKey, type ResilientInformer } from "./informer.js";
import { commitStatus, type PendingEvent } from "./status.js";

/** What a controller decided in one reconcile. */
export interface StepOutcome<Status> {
  status: Partial<Status>;
  conditions: ConditionUpdate[];
  events: PendingEvent[];
  requeueAfterMs?: number;
}

type ResourceWithStatus<Status> = KubernetesObject & {
  metadata: NonNullable<KubernetesObject["metadata"]>;
  status?: Status & { conditions?: Condition[] };
};

export interface LifecycleDeps {
  applier: Applier;
  events: EventSink;
  clock: Pick<Clock, "now">;
}

export async function reconcileResource<Status extends object, T extends ResourceWithStatus<Status>>(opts: {
  key: string;
  informer: Pick<ResilientInformer<T>, "get">;
  target: Omit<StatusTarget, "namespace" | "name">;
  deps: LifecycleDeps;
  /** Objects to leave alone (e.g. terminal phases); deleted objects are always skipped. */
  skip?: (object: T) => boolean;
  decide: (object: T) => Promise<StepOutcome<Status>>;
}): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(opts.key);
  const object = opts.informer.get(name, namespace);
  if (!object || object.metadata.deletionTimestamp || opts.skip?.(object)) return {};
  const generation = object.metadata.generation ?? 0;
  const now = new Date(opts.deps.clock.now());
  const outcome = await opts.decide(object);
  let conditions: Condition[] = [...(object.status?.conditions ?? [])];
  for (const update of outcome.conditions) conditions = setCondition(conditions, update, generation, now);
  const status = { ...object.status, ...outcome.status, observedGeneration: generation, conditions };
  await commitStatus(opts.deps, object, { ...opts.target, namespace, name }, status, outcome.events);
  return outcome.requeueAfterMs === undefined ? {} : { requeueAfterMs: outcome.requeueAfterMs };
}
