/**
 * Vitest globalSetup of the integration project: one cluster for the whole run (default profile, with NATS), or
 * the existing cluster named by KUBECONFIG when GPUFLEET_USE_EXISTING_CLUSTER=true (see useExistingCluster). Test files
 * reach it through
 * inject() (see context.ts); teardown stops it even when tests failed (and processes.ts covers a crash).
 */
import type { TestProject } from "vitest/node";
import {
  EXISTING_CLUSTER_PROFILE_ENV,
  existingClusterRequested,
  startLocalCluster,
  useExistingCluster,
} from "./cluster.js";
import type { LocalCluster } from "./cluster.js";
import { installCrds } from "../support/operator.js";
import { applyProfileFabrics } from "./fabric.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin kubeconfig of the cluster under test. */
    kubeconfigPath: string;
    /** nats:// URL of the NATS server, "" when there is none (existing cluster without GPUFLEET_NATS_URL). */
    natsUrl: string;
    /** Whether the harness started the cluster (false: an existing one). */
    localCluster: boolean;
    /** Cluster profile the local cluster was started with ("" for an existing cluster). */
    clusterProfile: string;
    /** Process ids of the local cluster's servers, by name. */
    clusterPids: Record<string, number>;
  }
}

let cluster: LocalCluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  const log = (message: string): void => console.error(`[harness] ${message}`);
  if (existingClusterRequested()) {
    // GPUFLEET_EXISTING_CLUSTER_PROFILE=default also creates that profile's kwok nodes (the cluster must run kwok).
    const profile = process.env[EXISTING_CLUSTER_PROFILE_ENV];
    cluster = await useExistingCluster({ ...(profile ? { profile } : {}), log });
    log(`using the existing cluster of ${cluster.kubeconfigPath}`);
  } else {
    cluster = await startLocalCluster({ profile: "default", withNats: true, log });
  }
  // Install gpufleet's CRDs once, first: kube-controller-manager's garbage collector only learns of new resource
  // types on its periodic rediscovery, so owned pods of a CRD installed later linger until it runs.
  await installCrds(cluster.kubeconfigPath);
  log("gpufleet CRDs installed");
  if (cluster.profile)
    log(
      `${await applyProfileFabrics(cluster.kubeconfigPath, cluster.profile)} FabricTopology object(s) of the profile applied`,
    );
  project.provide("kubeconfigPath", cluster.kubeconfigPath);
  project.provide("natsUrl", cluster.natsUrl ?? "");
  project.provide("localCluster", cluster.local);
  project.provide("clusterProfile", cluster.profile?.name ?? "");
  project.provide("clusterPids", cluster.pids);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
  cluster = undefined;
}
