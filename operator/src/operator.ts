/**
 * Wires the operator: informers (kept warm on every replica, so a new leader starts with full caches),
 * controllers (run only while this replica holds the Lease), health and metrics endpoints.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../crds/src/common.js";
import { OPERATOR_FIELD_MANAGER, OwnedLabel } from "../../crds/src/reasons.js";
import { ServingDeploymentNames, type ServingDeployment } from "../../crds/src/serving-deployment.js";
import { TrainingJobNames, type TrainingJob } from "../../crds/src/training-job.js";
import { FabricTopologyNames, type FabricTopology } from "../../crds/src/fabric-topology.js";
import { GpuProfileNames, type GpuProfile } from "../../crds/src/gpu-profile.js";
import type { OperatorConfig } from "./config/config.js";
import { agentCsrSigner } from "./agents/csr/index.js";
import { startAgentCommands, type AgentClientPool } from "./agents/index.js";
import { OperatorMetrics } from "./metrics.js";
import { Applier } from "./runtime/apply.js";
import { systemClock, type Clock } from "./runtime/clock.js";
import { Controller } from "./runtime/controller.js";
import { settleWithin } from "./runtime/deadline.js";
import { EventRecorder } from "./runtime/events.js";
import { FencedKubeConfig } from "./runtime/fence.js";
import { BoundedKubeConfig } from "./runtime/request-timeout.js";
import { ApiRecovery, changesOf, ResilientInformer, objectKey } from "./runtime/informer.js";
import { nodePlacementFacts } from "./cluster/capacity.js";
import { LeaderElector } from "./runtime/leader.js";
import type { Logger } from "./runtime/logger.js";
import { startHealthServer } from "./runtime/server.js";
import { ServingDeploymentReconciler, type ServingExecutor } from "./serving/controller.js";
import { createClusterServingExecutor } from "./serving/executor/cluster.js";
import { DEFAULT_SCHEDULER_POLICIES, type SchedulerPolicies } from "./serving/scheduler/policy.js";
import { ServingScheduler, type SchedulerConfig } from "./serving/scheduler/scheduler.js";
import { ScalingMemory } from "./serving/scheduler/state.js";
import { TrainingJobReconciler, type TrainingGangStep } from "./training/controller.js";
import { createTrainingGangStep } from "./training/gang-step.js";
import { FabricTopologyReconciler } from "./traffic/controller.js";
import { TelemetryService, type TelemetryOptions } from "./telemetry/service.js";
import { FaultMonitor } from "./training/faults/monitor.js";
import { poolTrafficAgents, TrafficPlanController } from "./traffic/plan-controller.js";
import { KubeTrafficStatusWriter } from "./traffic/status-writer.js";
import { KubeFaultWriter } from "./training/faults/apply.js";
import type { TelemetryViews } from "./telemetry/read-model.js";

export interface OperatorHandle {
  readonly httpPort: number;
  readonly isLeader: () => boolean;
  /** Clients to the node agents (mTLS with the operator-issued certificate unless agentInsecure). */
  readonly agents: AgentClientPool;
  /** Agent telemetry read from JetStream (empty views when telemetry is off). */
  readonly telemetry: TelemetryViews;
  /** The telemetry service itself, for tests that inspect consumers and lag. */
  readonly telemetryService: TelemetryService;
  /** Stops reconciling, releases the Lease and closes the endpoints. */
  stop(): Promise<void>;
}

export interface OperatorOptions {
  config: OperatorConfig;
  kubeConfig: KubeConfig;
  logger: Logger;
  clock?: Clock;
  /** Called when leadership is lost after it was held; main exits so a fresh process campaigns again. */
  onLostLeadership?: () => void;
  servingExecutor?: ServingExecutor;
  trainingGangStep?: TrainingGangStep;
  /** Read-model and consumer limits (tests use small windows). */
  telemetry?: Pick<TelemetryOptions, "readModelLimits" | "consumerLimits">;
  /** Serving scheduler settings and policies beyond the config (tests use short cooldowns). */
  scheduler?: { config?: Partial<SchedulerConfig>; policies?: Partial<SchedulerPolicies> };
  /** C4D fault monitor of running TrainingJobs (leader only); default period 1,000 ms. */
  faultMonitor?: { periodMs?: number };
  /** C4P traffic plan controller (operator/src/traffic/plan-controller.ts). */
  trafficPlanner?: { periodMs?: number; ecmpSeeds?: number };
}

function customResourceInformer<T extends KubernetesObject>(
  kubeConfig: KubeConfig,
  plural: string,
  logger: Logger,
  metrics: OperatorMetrics,
  recovery: ApiRecovery,
): ResilientInformer<T> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return new ResilientInformer<T>({
    kubeConfig,
    resource: plural,
    path: `/apis/${API_GROUP}/${API_VERSION}/${plural}`,
    list: async () =>
      (await api.listClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural,
      })) as KubernetesListObject<T>,
    logger,
    recovery,
    onRestart: () => metrics.informerRestartsTotal.inc({ resource: plural }),
  });
}

/** No API request (list, get, write) waits longer: the API server's own default request timeout is 60 s too. */
const apiRequestTimeoutMs = 60_000;
/** How long stop() waits for each shutdown step before it logs and goes on. */
const stopStepTimeoutMs = 10_000;

export async function startOperator(options: OperatorOptions): Promise<OperatorHandle> {
  const { config, logger } = options;
  // Every API client but the elector's writes through the fence: with leader election on, a write is refused unless
  // this replica holds a lease it renewed within the renew deadline (runtime/fence.ts: a thawed or starved leader
  // must not write after another replica may have taken over).
  let elector: LeaderElector | undefined;
  const kubeConfig = config.leaderElection
    ? new FencedKubeConfig(
        options.kubeConfig,
        () =>
          elector?.holdsLease()
            ? undefined
            : `${config.identity} does not hold the leader lease ${config.namespace}/${config.leaseName}`,
        apiRequestTimeoutMs,
      )
    : new BoundedKubeConfig(options.kubeConfig, apiRequestTimeoutMs);
  const clock = options.clock ?? systemClock;
  const metrics = new OperatorMetrics();
  kubeConfig.onRequest = (method) => metrics.apiRequestsTotal.inc({ method });
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const applier = new Applier(kubeConfig, OPERATOR_FIELD_MANAGER);
  const events = new EventRecorder(kubeConfig, "gpufleet-operator", logger, metrics, clock);

  // One API server behind every informer: when one recovers, the others stop waiting out their backoff.
  const recovery = new ApiRecovery();
  const servingDeployments = customResourceInformer<ServingDeployment>(
    kubeConfig,
    ServingDeploymentNames.plural,
    logger,
    metrics,
    recovery,
  );
  const trainingJobs = customResourceInformer<TrainingJob>(
    kubeConfig,
    TrainingJobNames.plural,
    logger,
    metrics,
    recovery,
  );
  const nodes = new ResilientInformer<V1Node>({
    kubeConfig,
    resource: "nodes",
    path: "/api/v1/nodes",
    list: () => core.listNode(),
    logger,
    recovery,
    onRestart: () => metrics.informerRestartsTotal.inc({ resource: "nodes" }),
  });
  const pods = new ResilientInformer<V1Pod>({
    kubeConfig,
    resource: "pods",
    path: "/api/v1/pods",
    list: () => core.listPodForAllNamespaces(),
    logger,
    recovery,
    onRestart: () => metrics.informerRestartsTotal.inc({ resource: "pods" }),
  });
  const fabricTopologies = customResourceInformer<FabricTopology>(
    kubeConfig,
    FabricTopologyNames.plural,
    logger,
    metrics,
    recovery,
  );
  const gpuProfiles = customResourceInformer<GpuProfile>(kubeConfig, GpuProfileNames.plural, logger, metrics, recovery);
  // Agents' NATS client certificates (needs the CA, so not in insecure development mode).
  const csrSigner =
    config.agentServiceAccount && !config.agentInsecure
      ? agentCsrSigner({
          kubeConfig,
          events,
          clock,
          logger,
          metrics,
          recovery,
          settings: {
            agentUsername: `system:serviceaccount:${config.namespace}:${config.agentServiceAccount}`,
            namespace: config.namespace,
            secretPrefix: config.certSecretPrefix,
            maxLifetimeMs: config.certLeafLifetimeMs,
          },
        })
      : undefined;
  const informers = [
    servingDeployments,
    trainingJobs,
    nodes,
    pods,
    fabricTopologies,
    gpuProfiles,
    ...(csrSigner ? [csrSigner.informer] : []),
  ];
  metrics.observeResources({
    servingDeployments: () => servingDeployments.list(),
    trainingJobs: () => trainingJobs.list(),
  });

  const agentCommands = startAgentCommands({ config, core, nodes, clock, logger, metrics });
  const telemetry = new TelemetryService({
    natsUrl: config.natsUrl,
    natsTlsDir: config.natsTlsDir,
    durablePrefix: config.telemetryDurablePrefix,
    kubeConfig,
    cachedPod: (namespace, name) => pods.get(name, namespace),
    metrics,
    clock,
    logger: logger.child({ component: "telemetry" }),
    ...options.telemetry,
  });
  if (telemetry.enabled) telemetry.connect();
  else
    logger.info(
      "telemetry off: no natsUrl configured (GPUFLEET_NATS_URL); TrainingJob checkpoints and agent load are not read",
    );

  const deps = { nodes, pods, applier, events, clock };
  const scaling = new ScalingMemory();
  const serving = new Controller({
    reconciler: new ServingDeploymentReconciler({
      ...deps,
      servingDeployments,
      executor:
        options.servingExecutor ??
        createClusterServingExecutor({
          kubeConfig,
          applier,
          pods,
          gpuProfiles,
          clock,
          logger: logger.child({ controller: "servingdeployment" }),
          workerSocketDir: config.workerSocketDir,
          engineAdapterImage: config.engineAdapterImage,
          scaling,
        }),
    }),
    metrics,
    logger,
  });
  // Migration and autoscaling (leader only, beside the controllers): decisions go to `scaling`, which the
  // serving executor rolls out and writes to status.
  const scheduler = new ServingScheduler({
    servingDeployments,
    pods,
    nodes,
    events,
    metrics,
    clock,
    telemetry: telemetry.views,
    agents: agentCommands.pool,
    logger: logger.child({ component: "serving-scheduler" }),
    memory: scaling,
    enqueue: (key) => serving.enqueue(key),
    policies: { ...DEFAULT_SCHEDULER_POLICIES, ...options.scheduler?.policies },
    config: {
      periodMs: config.schedulerPeriodMs,
      drainDeadlineMs: config.drainDeadlineMs,
      migrationTimeoutMs: config.migrationTimeoutMs,
      commandTimeoutMs: config.agentCallTimeoutMs,
      ...options.scheduler?.config,
    },
  });
  const training = new Controller({
    reconciler: new TrainingJobReconciler({
      ...deps,
      trainingJobs,
      gangStep:
        options.trainingGangStep ??
        createTrainingGangStep({
          applier,
          pods,
          clock,
          logger: logger.child({ controller: "trainingjob" }),
          workerSocketDir: config.workerSocketDir,
          onRestart: (cause) => metrics.trainingGangRestartsTotal.inc({ cause }),
        }),
    }),
    metrics,
    logger,
    workers: config.trainingWorkers,
  });
  const faultMonitor = new FaultMonitor({
    trainingJobs,
    nodes,
    pods,
    telemetry: telemetry.views,
    writer: new KubeFaultWriter(kubeConfig),
    events,
    clock,
    metrics,
    logger: logger.child({ component: "faults" }),
    enqueue: (key) => training.enqueue(key),
    ...options.faultMonitor,
  });
  const trafficPlanner = new TrafficPlanController({
    trainingJobs,
    nodes,
    fabricTopologies,
    agents: poolTrafficAgents(agentCommands.pool),
    writer: new KubeTrafficStatusWriter(kubeConfig),
    events,
    clock,
    metrics,
    logger: logger.child({ component: "traffic" }),
    ...options.trafficPlanner,
  });
  const allKeys =
    <T extends KubernetesObject>(informer: ResilientInformer<T>) =>
    () =>
      informer.list().map(objectKey);
  const ownerKey = (label: string) => (pod: V1Pod) => {
    const owner = pod.metadata?.labels?.[label];
    return owner ? [`${pod.metadata?.namespace}/${owner}`] : [];
  };
  // Node events that change what placement reads; heartbeats rewrite 1,000 nodes every few minutes and change none.
  const nodeChanges = changesOf(nodes, nodePlacementFacts);
  nodeChanges.on((event, node) => logger.debug({ event, node: node.metadata?.name }, "node change for placement"));
  serving.watch(servingDeployments, (sd) => [objectKey(sd)]);
  serving.watchAll(nodeChanges, allKeys(servingDeployments));
  serving.watch(pods, ownerKey(OwnedLabel.servingDeployment));
  serving.watchAll(gpuProfiles, allKeys(servingDeployments)); // a new or changed profile re-plans every deployment
  training.watch(trainingJobs, (job) => [objectKey(job)]);
  training.watchAll(nodeChanges, allKeys(trainingJobs));
  training.watch(pods, ownerKey(OwnedLabel.trainingJob));
  const fabric = new Controller({
    reconciler: new FabricTopologyReconciler({ ...deps, fabricTopologies }),
    metrics,
    logger,
  });
  fabric.watch(fabricTopologies, (f) => [objectKey(f)]);
  fabric.watchAll(nodeChanges, allKeys(fabricTopologies));
  const controllers = [serving, training, fabric, ...(csrSigner ? [csrSigner.controller] : [])];

  await Promise.all(informers.map((i) => i.start()));
  let stopped = false;
  let controllersStarted = false;

  let resyncHandle: unknown;
  const resync = () => {
    for (const key of allKeys(servingDeployments)()) serving.enqueue(key);
    for (const key of allKeys(trainingJobs)()) training.enqueue(key);
    resyncHandle = clock.setTimeout(resync, config.resyncMs);
  };
  const startControllers = () => {
    controllersStarted = true;
    metrics.leader.set(1);
    agentCommands.lead();
    for (const c of controllers) c.start();
    scheduler.start();
    void telemetry.startLeading();
    faultMonitor.start();
    trafficPlanner.start();
    resync();
  };

  const electorKubeConfig = new BoundedKubeConfig(options.kubeConfig, undefined);
  if (config.leaderElection) {
    elector = new LeaderElector({
      // Its own keep-alive connection, apart from the controllers': a new TLS handshake for every Lease call cost
      // several event-loop turns each, seconds on a loaded host (the soak lost its lease that way). No request
      // timeout here: the elector bounds each call by its renew deadline itself.
      kubeConfig: electorKubeConfig,
      namespace: config.namespace,
      leaseName: config.leaseName,
      identity: config.identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      logger,
      clock,
      onStartedLeading: startControllers,
      onStoppedLeading: () => {
        metrics.leader.set(0);
        agentCommands.follow();
        for (const c of controllers) void c.stop();
        void scheduler.stop();
        void faultMonitor.stop();
        void trafficPlanner.stop();
        void telemetry.stopLeading();
        options.onLostLeadership?.();
      },
    });
    metrics.leader.set(0);
  }
  // start() resolves even when a first list failed (a retry is pending), and an empty pod cache makes every GPU look
  // free: campaign and reconcile only once every informer has listed.
  void Promise.all(informers.map((i) => i.whenSynced())).then(() => {
    if (stopped) return;
    logger.info({ resources: informers.length }, "caches synced");
    if (elector) elector.start();
    else startControllers();
  });

  const health = await startHealthServer({
    port: config.httpPort,
    registry: metrics.registry,
    notReadyReason: () => {
      const unsynced = informers.filter((i) => !i.hasSynced).map((i) => i.resource);
      return unsynced.length > 0 ? `caches not synced: ${unsynced.join(", ")}` : undefined;
    },
  });
  logger.info({ port: health.port, identity: config.identity }, "operator started");

  return {
    httpPort: health.port,
    isLeader: () => (elector ? elector.isLeader : controllersStarted),
    agents: agentCommands.pool,
    telemetry: telemetry.views,
    telemetryService: telemetry,
    async stop() {
      stopped = true;
      clock.clearTimeout(resyncHandle);
      // Each step is bounded: a reconcile in flight may await a request that a half-started API server accepted
      // and never answers (client-node sets no timeout), and stop() must still return (docs/reliability.md).
      const bounded = (step: Promise<unknown>, what: string) =>
        settleWithin(step, stopStepTimeoutMs, what, clock, logger);
      await Promise.all([
        ...controllers.map((c) => bounded(c.stop(), `controller ${c.name}`)),
        bounded(scheduler.stop(), "serving scheduler"),
        bounded(faultMonitor.stop(), "fault monitor"),
        bounded(trafficPlanner.stop(), "traffic planner"),
        bounded(telemetry.close(), "telemetry"),
      ]);
      if (elector) await bounded(elector.stop(), "leader lease release");
      agentCommands.stop();
      metrics.leader.set(0);
      await Promise.all(informers.map((i) => bounded(i.stop(), `informer ${i.resource}`)));
      // close() waits for open connections (keep-alive scrapers); bounded like the rest.
      await bounded(health.close(), "health server");
      kubeConfig.keepAlive.destroy(); // the API clients' open connections
      electorKubeConfig.keepAlive.destroy();
    },
  };
}
