/**
 * When a draining instance may go (pure). Scale-in sends the instance Drain (it admits nothing new and reports
 * draining: true, so dispatch avoids it); the migration policy then treats it as a source of all its requests.
 * Its pods are deleted only when a report received after the drain began shows it empty — no running, no queued
 * request, no migration in progress — or, failing that, once the drain deadline has passed (an Event then says
 * how many requests were still there). The deadline is long by default: waiting costs GPU-seconds, deleting a pod
 * with requests on it loses them.
 */
import type { LiveInstance } from "./instances.js";

export type DrainProgress =
  | { kind: "wait"; requestsLeft: number | undefined }
  | { kind: "empty" }
  | { kind: "deadline"; requestsLeft: number | undefined; running: number | undefined; queued: number | undefined }
  | { kind: "gone" };

export interface DrainEntryView {
  startedMs: number;
  deadlineMs: number;
}

/**
 * `instance` is the instance's latest live report (undefined when it no longer reports: its pod is gone or it
 * stopped). `podExists`: its leader pod is still in the cache.
 */
export function drainProgress(
  entry: DrainEntryView,
  instance: LiveInstance | undefined,
  podExists: boolean,
  nowMs: number,
): DrainProgress {
  if (!podExists) return { kind: "gone" };
  // Only a report made after the drain began speaks for the drained instance.
  const report = instance && instance.reportedUnixMs >= entry.startedMs ? instance : undefined;
  const running = report?.load.runningRequests;
  const queued = report?.load.queuedRequests;
  const left = report ? report.load.runningRequests + report.load.queuedRequests : undefined;
  if (report && report.load.draining && left === 0 && report.migrating === undefined) return { kind: "empty" };
  if (nowMs >= entry.deadlineMs) return { kind: "deadline", requestsLeft: left, running, queued };
  return { kind: "wait", requestsLeft: left };
}
