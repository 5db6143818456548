/**
 * Status conditions shaped like metav1.Condition, plus the one shared setter every controller uses.
 * lastTransitionTime moves only when status flips, so `kubectl describe` shows when a state began, not when the
 * controller last looked.
 */
import { Type, type Static } from "@sinclair/typebox";
import { StringEnum } from "./schema-helpers.js";

export const ConditionSchema = Type.Object({
  type: Type.String({
    maxLength: 316,
    description: "Condition type in CamelCase, e.g. Ready or Degraded (docs/runbooks/ has one page per type).",
  }),
  status: StringEnum(["True", "False", "Unknown"] as const, { description: "True, False or Unknown." }),
  reason: Type.String({
    maxLength: 1024,
    pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    description: "CamelCase cause of the current status, for programs and alerts.",
  }),
  message: Type.String({ maxLength: 32768, description: "What happened, for people." }),
  observedGeneration: Type.Optional(
    Type.Integer({ minimum: 0, description: "The metadata.generation the condition was set for." }),
  ),
  lastTransitionTime: Type.String({
    format: "date-time",
    description: "When status last changed (not when the condition was last checked).",
  }),
});
export type Condition = Static<typeof ConditionSchema>;
export type ConditionStatus = Condition["status"];

export const ConditionsSchema = Type.Array(ConditionSchema, {
  description: "Current state as metav1.Condition-shaped entries, one per type.",
  maxItems: 32,
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
});

/** What a controller wants a condition to say; setCondition fills in times and generation. */
export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * Returns a new condition list with `update` applied. Keeps lastTransitionTime when the status did not flip, so
 * calling it on every reconcile is idempotent and the written status changes only when something real changed.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  observedGeneration: number,
  now: Date,
): Condition[] {
  const existing = conditions?.find((c) => c.type === update.type);
  const lastTransitionTime =
    existing && existing.status === update.status
      ? existing.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, "Z");
  const next: Condition = { ...update, observedGeneration, lastTransitionTime };
  const others = (conditions ?? []).filter((c) => c.type !== update.type);
  return [...others, next].sort((a, b) => a.type.localeCompare(b.type));
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Whether writing `update` would change the condition's status, reason or message (an Event-worthy change). */
export function wouldChange(conditions: readonly Condition[] | undefined, update: ConditionUpdate): boolean {
  const current = findCondition(conditions, update.type);
  return current?.status !== update.status || current?.reason !== update.reason || current?.message !== update.message;
}
