/**
 * One row of the reliability table (issue 15): what was injected, what was expected, what happened, and counts of
 * lost and duplicated objects, requests and records. Scenarios return rows; the bench writes them to
 * bench/results/reliability.json and .md, and the chaos tests (test/chaos/) assert on the same rows.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { REPO_ROOT } from "../../test/support/paths.js";
import type { RestartableServer, RestartTimes } from "../../test/harness/cluster.js";

export interface ReliabilityRow {
  scenario: string;
  /** The fault, as done ("SIGKILL to the leader (op-a) with 37 of 128 pods created"). */
  injected: string;
  /** What must hold. */
  expected: string;
  /** What was observed, in words. */
  happened: string;
  passed: boolean;
  /** Objects, requests or records that should exist and do not (pods missing from the gang, unseen changes, …). */
  lost: number;
  /** Objects, requests or records present twice (two live pods for one rank, a record delivered twice, …). */
  duplicated: number;
  /** Scale of the workload (GPUs, pods, objects). */
  scale: Record<string, number>;
  /** Measured milliseconds, by name (failoverMs, recoveryMs, …). */
  timingsMs: Record<string, number>;
  /** Further counts a scenario reports (staleWrites, informerRestarts, …). */
  counts?: Record<string, number>;
  /** Why a number is what it is, or what was not covered. */
  notes?: string[];
}

/** What a scenario runs against: the cluster (a test's shared one or the bench's own) and its chaos controls. */
export interface ChaosContext {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  natsUrl?: string;
  /** Present when the harness started the cluster: kill and start etcd / kube-apiserver. */
  restart?: (name: RestartableServer | RestartableServer[], opts?: { downMs?: number }) => Promise<RestartTimes>;
  /** Present when the harness runs NATS. */
  nats?: { stop(): Promise<void>; start(): Promise<void> };
  /** A namespace `<prefix>-<random>` with its default ServiceAccount; deleted by whoever made the context. */
  freshNamespace(prefix: string): Promise<string>;
  log(message: string): void;
}

/** Lease settings of one run (the chart's defaults in the bench; shorter ones in tests to stay fast). */
export interface LeaseSettings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** The chart's defaults (charts/gpufleet/values.yaml operator.leaderElection), read from the chart itself. */
export function chartLeaseSettings(): LeaseSettings {
  const values = parse(readFileSync(path.join(REPO_ROOT, "charts/gpufleet/values.yaml"), "utf8")) as {
    operator: { leaderElection: LeaseSettings };
  };
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = values.operator.leaderElection;
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}

export const round = (ms: number): number => Math.round(ms);
