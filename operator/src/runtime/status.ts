/**
 * The last step every reconcile shares: write the computed status if it changed, and only after that write
 * succeeded record the Events describing the change. Events tied to a successful write are never duplicated by
 * retries of a reconcile that failed before writing, and an idle reconcile emits nothing.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Applier, StatusTarget } from "./apply.js";
import type { EventSink, EventType } from "./events.js";

export interface PendingEvent {
  type: EventType;
  reason: string;
  message: string;
}

export async function commitStatus(
  deps: { applier: Applier; events: EventSink },
  object: KubernetesObject & { status?: unknown },
  target: StatusTarget,
  status: object,
  events: readonly PendingEvent[],
): Promise<boolean> {
  const wrote = await deps.applier.applyStatus(target, object.status, status, object.metadata?.resourceVersion);
  if (wrote) for (const event of events) await deps.events.record(object, event.type, event.reason, event.message);
  return wrote;
}
