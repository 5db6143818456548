/**
 * The operator against the real API server: status and conditions, semantic checks as conditions and Events,
 * idempotence across a restart in the middle of a stream of creates, and leader failover between two processes.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  type CoreV1Event,
} from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { installCrds, metricValue, startOperatorProcess, type OperatorProcess } from "../../support/operator.js";
import { waitFor } from "../../harness/wait.js";
import { validServingDeployment, validTrainingJob, withField } from "./fixtures.js";

let cluster: TestCluster;
let objects: KubernetesObjectApi;
let custom: CustomObjectsApi;
let core: CoreV1Api;
const running: OperatorProcess[] = [];

beforeAll(async () => {
  cluster = testCluster();
  await installCrds(cluster.kubeconfigPath);
  objects = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
  custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
});

/** Short leases so failover tests take seconds, not the production 15 s. */
const FAST_LEASE = {
  GPUFLEET_LEASE_DURATION_MS: "3000",
  GPUFLEET_RENEW_DEADLINE_MS: "2000",
  GPUFLEET_RETRY_PERIOD_MS: "300",
};

async function operator(
  namespace: string,
  identity: string,
  env: Record<string, string> = {},
): Promise<OperatorProcess> {
  const process = await startOperatorProcess({
    kubeconfigPath: cluster.kubeconfigPath,
    namespace,
    identity,
    env: { GPUFLEET_LEASE_NAME: `op-${namespace}`, ...FAST_LEASE, ...env },
  });
  running.push(process);
  return process;
}

type Resource = {
  metadata: { generation?: number; resourceVersion?: string };
  status?: {
    observedGeneration?: number;
    phase?: string;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
};

async function get(plural: string, namespace: string, name: string): Promise<Resource> {
  return (await custom.getNamespacedCustomObject({
    group: "gpufleet.io",
    version: "v1alpha1",
    plural,
    namespace,
    name,
  })) as Resource;
}

async function eventsFor(namespace: string, name: string): Promise<CoreV1Event[]> {
  return (await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
}

const condition = (r: Resource, type: string) => r.status?.conditions?.find((c) => c.type === type);

describe("operator", () => {
  it("sets observedGeneration and conditions, and follows spec changes", async () => {
    const namespace = await cluster.freshNamespace("status");
    await operator(namespace, "op-a");
    await objects.create(validTrainingJob("too-big", namespace) as never);
    const first = await waitFor(
      async () => {
        const r = await get("trainingjobs", namespace, "too-big");
        return r.status?.observedGeneration === 1 && condition(r, "Placed") ? r : undefined;
      },
      { description: "too-big reconciled at generation 1", timeoutMs: 30_000 },
    );
    // Two nodes fit the default cluster, so the gang step places the job at once.
    expect(["Placed", "Running"]).toContain(first.status?.phase);

    const grown = withField(withField(validTrainingJob("too-big", namespace), "spec.nodes", 12), "spec.parallelism", {
      tp: 8,
      pp: 1,
      dp: 12,
    });
    await objects.patch(grown as never, undefined, undefined, "test", true, PatchStrategy.ServerSideApply);
    const second = await waitFor(
      async () => {
        const r = await get("trainingjobs", namespace, "too-big");
        return r.status?.observedGeneration === r.metadata.generation &&
          condition(r, "Unschedulable")?.status === "True"
          ? r
          : undefined;
      },
      { description: "too-big reconciled after the spec change", timeoutMs: 30_000 },
    );
    expect(condition(second, "Unschedulable")).toMatchObject({
      reason: "InsufficientCapacity",
      message: expect.stringMatching(/needs 12 nodes with 8 GPUs \(96 GPUs\); the cluster has 10 such nodes/),
    });
    const warning = await waitFor(
      async () => (await eventsFor(namespace, "too-big")).find((e) => e.reason === "InsufficientCapacity"),
      { description: "an InsufficientCapacity Event for too-big" },
    );
    expect(warning).toMatchObject({ type: "Warning", source: { component: "gpufleet-operator" } });
  });

  it("reports semantic errors the schema cannot catch as conditions and Events", async () => {
    const namespace = await cluster.freshNamespace("semantic");
    await operator(namespace, "op-a");
    await objects.create(
      withField(validServingDeployment("no-such-gpu", namespace), "spec.gpu", { model: "A100-40GB" }) as never,
    );
    await objects.create(
      withField(
        withField(validServingDeployment("too-large", namespace), "spec.model.paramsBillions", 2000),
        "spec.gpu",
        { model: "A100-80GB" },
      ) as never,
    );
    await objects.create(
      withField(withField(validTrainingJob("fat-node", namespace), "spec.gpusPerNode", 16), "spec.parallelism", {
        tp: 16,
        pp: 1,
        dp: 2,
      }) as never,
    );
    const expectations: [string, string, string, string, RegExp][] = [
      [
        "servingdeployments",
        "no-such-gpu",
        "Planned",
        "NoMatchingNodes",
        /no node offers GPU model A100-40GB; A100-80GB: 2 nodes, 16 GPUs; H100-80GB: 8 nodes, 64 GPUs/,
      ],
      ["servingdeployments", "too-large", "Planned", "ModelDoesNotFit", /needs 3725 GiB for weights/],
      ["trainingjobs", "fat-node", "Unschedulable", "InvalidSpec", /gpusPerNode is 16 but the largest node has 8 GPUs/],
    ];
    for (const [plural, name, type, reason, message] of expectations) {
      const r = await waitFor(
        async () => {
          const o = await get(plural, namespace, name);
          return condition(o, type)?.reason === reason ? o : undefined;
        },
        { description: `${name} ${type}=${reason}`, timeoutMs: 30_000 },
      );
      expect(condition(r, type)?.message).toMatch(message);
      await waitFor(
        async () => (await eventsFor(namespace, name)).some((e) => e.reason === reason && e.type === "Warning"),
        { description: `Warning ${reason} Event for ${name}` },
      );
    }
  });

  it("does no duplicate work when restarted in the middle of a stream of creates", async () => {
    const namespace = await cluster.freshNamespace("restart");
    const names = Array.from({ length: 12 }, (_, i) => `job-${i}`);
    const tooBig = (name: string) =>
      withField(withField(validTrainingJob(name, namespace), "spec.nodes", 16), "spec.parallelism", {
        tp: 8,
        pp: 1,
        dp: 16,
      });

    // One training worker, so at most one job is between its status write and its Event when op-first is killed
    // (with the default four, four can be, and the bound below would not hold).
    const first = await operator(namespace, "op-first", { GPUFLEET_TRAINING_WORKERS: "1" });
    await waitFor(async () => metricValue(await first.metrics(), "gpufleet_operator_leader") === 1, {
      description: "op-first leading",
    });
    for (const name of names.slice(0, 6)) await objects.create(tooBig(name) as never);
    await waitFor(async () => (await get("trainingjobs", namespace, "job-2")).status?.observedGeneration === 1, {
      description: "some jobs reconciled",
    });
    await first.stop("SIGKILL");

    const second = await operator(namespace, "op-second");
    for (const name of names.slice(6)) await objects.create(tooBig(name) as never);
    for (const name of names) {
      await waitFor(
        async () => condition(await get("trainingjobs", namespace, name), "Unschedulable")?.status === "True",
        { description: `${name} reconciled`, timeoutMs: 30_000 },
      );
    }
    // Jobs created after the restart were reconciled by op-second alone: each has its Event.
    for (const name of names.slice(6))
      await waitFor(async () => (await eventsFor(namespace, name)).length > 0, { description: `${name} Event` });
    const before = new Map<string, string | undefined>();
    for (const name of names) before.set(name, (await get("trainingjobs", namespace, name)).metadata.resourceVersion);
    const eventsBefore = (await core.listNamespacedEvent({ namespace })).items
      .map((e) => `${e.metadata?.name}:${e.count}`)
      .sort();

    await second.stop("SIGTERM");
    const third = await operator(namespace, "op-third");
    await waitFor(
      async () =>
        (metricValue(await third.metrics(), "gpufleet_operator_reconcile_total", {
          controller: "trainingjob",
          result: "success",
        }) ?? 0) >= names.length,
      {
        description: "op-third reconciled every job",
        timeoutMs: 30_000,
      },
    );

    for (const name of names)
      expect((await get("trainingjobs", namespace, name)).metadata.resourceVersion, `${name} untouched`).toBe(
        before.get(name),
      );
    expect(
      (await core.listNamespacedEvent({ namespace })).items.map((e) => `${e.metadata?.name}:${e.count}`).sort(),
    ).toEqual(eventsBefore);
    // No duplicates anywhere. Events are recorded after the status write they describe (at most once), so the one
    // job op-first's single worker may have been killed between its write and its Event has none; every other job
    // has exactly one.
    let withoutEvent = 0;
    for (const name of names) {
      const events = (await eventsFor(namespace, name)).map((e) => [e.reason, e.count]);
      if (events.length === 0 && names.indexOf(name) < 6) withoutEvent += 1;
      else expect(events, `${name} has one Event`).toEqual([["InsufficientCapacity", 1]]);
    }
    expect(withoutEvent).toBeLessThanOrEqual(1);
  });

  it("fails over between two operator processes through the Lease", async () => {
    const namespace = await cluster.freshNamespace("failover");
    const leases = cluster.kubeConfig.makeApiClient(CoordinationV1Api);
    const a = await operator(namespace, "op-a");
    const b = await operator(namespace, "op-b");
    const holder = async () =>
      (await leases.readNamespacedLease({ name: `op-${namespace}`, namespace })).spec?.holderIdentity;
    const leaderId = await waitFor(holder, { description: "a lease holder" });
    const [leader, follower] = leaderId === "op-a" ? [a, b] : [b, a];
    await waitFor(async () => metricValue(await leader.metrics(), "gpufleet_operator_leader") === 1, {
      description: "leader metric",
    });
    expect(metricValue(await follower.metrics(), "gpufleet_operator_leader")).toBe(0);

    await leader.stop("SIGKILL");
    const killedAt = Date.now();
    await waitFor(async () => (await holder()) === follower.identity, {
      description: `${follower.identity} takes the lease`,
      timeoutMs: 20_000,
    });
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs).toBeLessThan(15_000);
    await waitFor(async () => metricValue(await follower.metrics(), "gpufleet_operator_leader") === 1, {
      description: "new leader metric",
    });

    await objects.create(
      withField(validTrainingJob("after-failover", namespace), "spec.placement", { gpuModel: "H200-141GB" }) as never,
    );
    const r = await waitFor(
      async () => {
        const o = await get("trainingjobs", namespace, "after-failover");
        return condition(o, "Unschedulable") ? o : undefined;
      },
      { description: "job reconciled by the new leader", timeoutMs: 30_000 },
    );
    expect(condition(r, "Unschedulable")?.reason).toBe("NoMatchingNodes");
    expect(
      (await leases.readNamespacedLease({ name: `op-${namespace}`, namespace })).spec?.leaseTransitions,
    ).toBeGreaterThanOrEqual(1);
  });
});
