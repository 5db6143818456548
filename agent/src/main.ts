/**
 * Node agent entry point. Real mode: discover this node, apply its topology labels, serve workers and the operator,
 * sample RDMA counters. Simulation mode (GPUFLEET_AGENT_SIMULATE=true): serve every kwok node at once, apply
 * labels to those that lack them, and run simulated workers for the pods bound to them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CertificatesV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import express from "express";
import { connect, type NatsConnection } from "nats";
import { pino, type Logger } from "pino";
import { Registry } from "prom-client";
import { natsCredentialOptions } from "../../common/src/nats/connect.js";
import { hasTopologyLabels } from "../../crds/src/topology.js";
import { AgentCore } from "./agent.js";
import { agentNatsIdentity, loadConfig, natsConnectionOptions, requireOperatorTls } from "./config.js";
import { NodeDiagnostics } from "./diagnostics.js";
import { GpuMeasurer } from "./gpu-diagnostics.js";
import { discoverNode, execRunner } from "./discovery/discover.js";
import { factsToLabels, type NodeFacts } from "./discovery/facts.js";
import { NodeLabelPublisher } from "./discovery/publish.js";
import { obtainNatsCertificate } from "./nats-certificate.js";
import { WorkerClient } from "./grpc/client.js";
import { EndpointAdvertiser } from "./grpc/advertise.js";
import { AgentMetrics, collectProcessMetrics } from "./metrics.js";
import { isSimulatedNode, simulatedNodeFacts } from "./simulation/model.js";
import { EngineServer } from "./simulation/instances/server.js";
import { SimulationRuntime } from "./simulation/runtime.js";
import { SimulatedFabric } from "./simulation/fabric.js";
import { watchFabricTopologies } from "./simulation/fabric-watch.js";
import { DEFAULT_PUBLISHER_LIMITS } from "./telemetry/publisher.js";
import { JetStreamTransport } from "./telemetry/jetstream.js";
import { RdmaSampler } from "./telemetry/rdma-sampler.js";

/** Labels for facts that can have them; none where they cannot (no active NIC, say): GetNodeInfo still answers. */
function labelsOrNone(f: NodeFacts | undefined): Record<string, string> | undefined {
  if (!f) return undefined;
  try {
    return factsToLabels(f);
  } catch {
    return undefined;
  }
}

/**
 * Obtains the NATS client certificate before the first connect (the agent does not start without it) and renews it
 * at 2/3 of its lifetime, retrying a failed renewal every 30 s; nats.js reads the files on its next (re)connect.
 * Returns the renewal timer's stopper.
 */
async function keepNatsCertificate(
  config: ReturnType<typeof loadConfig>,
  kc: KubeConfig,
  log: Pick<Logger, "info" | "warn">,
): Promise<() => void> {
  const certificates = kc.makeApiClient(CertificatesV1Api);
  let timer: NodeJS.Timeout | undefined;
  const obtain = async (): Promise<void> => {
    const got = await obtainNatsCertificate({
      certificates,
      node: config.nodeName,
      dir: config.natsTlsDir,
      caPem: readFileSync(join(config.tlsDir, "ca.crt"), "utf8"),
      expirationSeconds: config.natsCsrExpirationSeconds,
    });
    log.info(
      { csr: got.csrName, notAfter: new Date(got.notAfterMs).toISOString() },
      "NATS client certificate signed by the operator",
    );
    const renewInMs = got.notBeforeMs + ((got.notAfterMs - got.notBeforeMs) * 2) / 3 - Date.now();
    schedule(Math.max(1000, renewInMs));
  };
  const schedule = (ms: number): void => {
    timer = setTimeout(() => {
      obtain().catch((err: unknown) => {
        log.warn({ err }, "renewing the NATS client certificate failed; retrying in 30 s");
        schedule(30_000);
      });
    }, ms);
    timer.unref();
  };
  await obtain();
  return () => clearTimeout(timer);
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  requireOperatorTls(config);
  const log = pino({ level: config.logLevel, base: { component: "gpufleet-agent" } });
  const registry = new Registry();
  collectProcessMetrics(registry);
  const metrics = new AgentMetrics(registry);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const labeler = new NodeLabelPublisher(core);
  const facts = new Map<string, NodeFacts>();
  const published = new Map<string, Record<string, string>>();
  let ready = false;
  let nc: NatsConnection | undefined = undefined; // set once connected; /readyz reads it from the start
  // Served from the start: the start-up can wait a while (the NATS certificate, admission to NATS, the streams)
  // and the liveness probe must not restart the pod meanwhile; readiness says "starting" until it is done.
  const app = express();
  app.get("/healthz", (_req, res) => {
    res.send("ok");
  });
  app.get("/readyz", (_req, res) => {
    res
      .status(ready && !nc?.isClosed() ? 200 : 503)
      .send(!ready ? "starting" : nc ? "ready" : "ready (telemetry off: no NATS URL)");
  });
  app.get("/metrics", (_req, res) => {
    void registry.metrics().then((text) => res.type(registry.contentType).send(text));
  });
  const http = app.listen(config.httpPort, () => log.info({ port: config.httpPort }, "http listening"));

  const applyLabels = async (f: NodeFacts): Promise<void> => {
    try {
      const labels = factsToLabels(f);
      await labeler.apply(f.nodeName, labels);
      published.set(f.nodeName, labels);
      metrics.labelApplies.inc({ node: f.nodeName, result: "ok" });
      log.info({ node: f.nodeName, labels }, "applied topology labels");
    } catch (err) {
      metrics.labelApplies.inc({
        node: f.nodeName,
        result: err instanceof Error && err.name === "FactsError" ? "invalid_facts" : "error",
      });
      log.error({ node: f.nodeName, err }, "applying topology labels failed");
    }
  };

  const renewNatsCertificate = config.natsCsr ? await keepNatsCertificate(config, kc, log) : undefined;
  const nats = natsConnectionOptions(config.natsUrl);
  const perNodeIdentity = config.natsTlsDir !== "" && !config.simulate;
  if (nats && perNodeIdentity) log.info("connecting to NATS as this node's agent (retrying until it admits this node)");
  nc = nats
    ? await connect({
        ...nats,
        // Only with a certificate folder: without one the node name need not be a valid NATS identity.
        ...(config.natsTlsDir ? natsCredentialOptions(config.natsTlsDir, agentNatsIdentity(config)) : {}),
        // Under authorization a new node is admitted once the operator's user list reaches the server (kubelet's
        // ConfigMap sync, then a reload): keep trying rather than exit.
        ...(perNodeIdentity ? { waitOnFirstConnect: true, ignoreAuthErrorAbort: true } : {}),
        name: `gpufleet-agent-${config.nodeName || "sim"}`,
        // Reconnect forever, every 0.5 s (the client's default waits 2 s): telemetry held during an outage goes out
        // soon after NATS is back.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      })
    : undefined;
  if (!nc)
    log.warn(
      "telemetry off: no NATS URL configured (GPUFLEET_NATS_URL); telemetry is counted as dropped (reason no_transport)",
    );
  const waitedFor = new Set<string>();
  const rdma = new RdmaSampler(config.sysfsRoot);
  const gpuMeasurer = new GpuMeasurer({ python: config.workerPython, workerDir: config.workerDir });
  // Simulation only: the kwok nodes' leaf-spine fabric, which ApplyTrafficPlan programs and simulated ranks run over.
  const simFabric = config.simulate
    ? new SimulatedFabric({
        placeOf: (n) => {
          const f = facts.get(n);
          return f && { leaf: f.leaf, island: f.island };
        },
        nicsOf: (n) => facts.get(n)?.nics.map((x) => x.device),
      })
    : undefined;
  const agent = new AgentCore(
    {
      workerSocketPath: config.workerSocketPath,
      operatorAddress: config.operatorAddress,
      tls: config.tlsDir ? { dir: config.tlsDir, refreshIntervalMs: config.tlsRefreshIntervalMs } : undefined,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      missedHeartbeatsLimit: config.missedHeartbeatsLimit,
      publisherLimits: DEFAULT_PUBLISHER_LIMITS,
      onTlsReload: (e) =>
        e.ok
          ? log.info({ notAfter: e.notAfter }, "reloaded operator-port certificates")
          : log.warn({ err: e.error }, "certificate reload skipped; serving with the previous set"),
      ...(simFabric ? { traffic: simFabric } : {}),
    },
    nc
      ? await JetStreamTransport.connect(nc, {
          // Under NATS authorization a node's agent may not create streams (authorization.ts); the operator does.
          streams: perNodeIdentity ? "await" : "ensure",
          onWaiting: (stream) => {
            if (waitedFor.has(stream)) return;
            waitedFor.add(stream);
            log.info({ stream }, "waiting for the operator to create the JetStream stream");
          },
        })
      : undefined,
    {
      nodeNames: () => [...facts.keys()],
      facts: (n) => facts.get(n),
      labels: (n) => published.get(n) ?? labelsOrNone(facts.get(n)),
    },
    new NodeDiagnostics({
      rediscover: async (n, timeoutMs) =>
        config.simulate
          ? facts.get(n)!
          : discoverNode({
              nodeName: n,
              nvidiaSmiPath: config.nvidiaSmiPath,
              sysfsRoot: config.sysfsRoot,
              commandTimeoutMs: timeoutMs,
              leaf: config.leaf,
              island: config.island,
              run: execRunner,
            }),
      publishedLabels: (n) => published.get(n),
      sampleRdma: async (_n, budgetMs) => {
        if (config.simulate) return undefined;
        await rdma.sample();
        await new Promise((r) => setTimeout(r, Math.min(1000, budgetMs / 2)));
        return rdma.sample();
      },
      ...(config.simulate ? {} : { measureGpu: (_n: string, d, budgetMs: number) => gpuMeasurer.measure(d, budgetMs) }),
    }),
    metrics,
    (e) =>
      log.info(
        {
          event: e.event,
          workerId: e.worker.workerId,
          pod: `${e.worker.podNamespace}/${e.worker.podName}`,
          node: e.worker.nodeName,
        },
        "worker event",
      ),
  );
  await agent.start();
  log.info(
    {
      socket: config.workerSocketPath,
      grpcPort: agent.server.operatorPort,
      simulate: config.simulate,
      tls: config.tlsDir !== "",
      telemetry: nc ? "nats" : "off",
    },
    "agent serving",
  );
  const advertiser = config.advertiseHost
    ? new EndpointAdvertiser(core, `${config.advertiseHost}:${agent.server.operatorPort}`, (node, err) =>
        err
          ? log.error({ node, err }, "advertising the agent endpoint failed")
          : log.info(
              { node, endpoint: `${config.advertiseHost}:${agent.server.operatorPort}` },
              "advertised agent endpoint",
            ),
      )
    : undefined;
  if (!advertiser) log.warn("GPUFLEET_AGENT_ADVERTISE_HOST is empty: the operator cannot find this agent");

  const timers: NodeJS.Timeout[] = [];
  let sim: SimulationRuntime | undefined;
  let engines: EngineServer | undefined;
  if (config.simulate) {
    const client = new WorkerClient(`unix:${config.workerSocketPath}`);
    const engineServer = (engines = new EngineServer(
      { port: config.enginePort, bindHost: config.engineBindHost, advertisedHost: config.engineAdvertisedHost },
      (uid) => sim?.instance(uid),
      log,
    ));
    const enginePort = await engineServer.start();
    log.info({ port: enginePort, example: engineServer.engineUrl("<pod uid>") }, "simulated engine API listening");
    sim = new SimulationRuntime(client, (n) => facts.get(n), config.simReportIntervalMs, log, Date.now, {
      engineUrlOf: (uid) => engineServer.engineUrl(uid),
      defaultRequestRatePerSec: config.simRequestRatePerSec,
      fabric: simFabric,
    });
    await watchFabricTopologies(kc, simFabric!, log);
    const nodeInformer = makeInformer<V1Node>(kc, "/api/v1/nodes", () => core.listNode());
    const onNode = (node: V1Node): void => {
      if (!isSimulatedNode(node) || !(node.metadata?.name ?? "").startsWith(config.simNodePrefix)) return;
      const f = simulatedNodeFacts(node);
      facts.set(f.nodeName, f);
      if (!hasTopologyLabels(node.metadata?.labels)) void applyLabels(f);
      else published.set(f.nodeName, factsToLabels(f));
      void advertiser?.ensure(node);
    };
    nodeInformer.on("add", onNode);
    nodeInformer.on("update", onNode);
    nodeInformer.on("delete", (node) => facts.delete(node.metadata?.name ?? ""));
    nodeInformer.on("error", (err) => {
      log.error({ err }, "node watch failed; restarting");
      setTimeout(() => void nodeInformer.start(), 2000);
    });
    await nodeInformer.start();
    const podInformer = makeInformer<V1Pod>(kc, "/api/v1/pods", () => core.listPodForAllNamespaces());
    const onPod = (pod: V1Pod, deleted = false): void => {
      void sim!
        .syncPod(pod, deleted)
        .then(() => metrics.simulatedWorkers.set({ kind: "all" }, sim!.count))
        .catch((err: unknown) => log.warn({ err }, "simulated worker sync failed"));
    };
    podInformer.on("add", (p) => onPod(p));
    podInformer.on("update", (p) => onPod(p));
    podInformer.on("delete", (p) => onPod(p, true));
    podInformer.on("error", (err) => {
      log.error({ err }, "pod watch failed; restarting");
      setTimeout(() => void podInformer.start(), 2000);
    });
    await podInformer.start();
  } else {
    const f = await discoverNode({
      nodeName: config.nodeName,
      nvidiaSmiPath: config.nvidiaSmiPath,
      sysfsRoot: config.sysfsRoot,
      commandTimeoutMs: 30_000,
      leaf: config.leaf,
      island: config.island,
      run: execRunner,
    });
    facts.set(f.nodeName, f);
    await applyLabels(f);
    await advertiser?.ensure({ metadata: { name: f.nodeName } });
    timers.push(
      setInterval(() => {
        rdma
          .sample()
          .then((rates) => {
            for (const r of rates) {
              const l = { node: config.nodeName, device: r.device, port: String(r.port) };
              metrics.rdmaTransmitBytesPerSecond.set(l, r.transmitBytesPerSec);
              metrics.rdmaReceiveBytesPerSecond.set(l, r.receiveBytesPerSec);
              metrics.rdmaTransmittedBytes.inc(l, (r.transmitBytesPerSec * r.intervalMs) / 1000);
              metrics.rdmaReceivedBytes.inc(l, (r.receiveBytesPerSec * r.intervalMs) / 1000);
              for (const [counter, d] of Object.entries(r.errorDeltas)) metrics.rdmaErrors.inc({ ...l, counter }, d);
              for (const [event, names] of [
                ["wrapped", r.wraps],
                ["reset", r.resets],
                ["saturated", r.saturated],
              ] as const)
                if (names.length) metrics.rdmaCounterEvents.inc({ ...l, event }, names.length);
            }
            if (rates.length) agent.publisher.rdma(config.nodeName, rates);
          })
          .catch((err: unknown) => log.warn({ err }, "RDMA sampling failed"));
      }, config.rdmaSampleIntervalMs),
    );
  }
  ready = true;

  const shutdown = async (signal: string): Promise<void> => {
    log.info({ signal }, "shutting down");
    ready = false;
    timers.forEach(clearInterval);
    renewNatsCertificate?.();
    sim?.stopAll();
    await engines?.stop();
    http.close();
    await agent.stop();
    await nc?.drain();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  console.error(
    JSON.stringify({
      level: 50,
      msg: "agent failed to start",
      err: err instanceof Error ? { message: err.message, cause: String(err.cause) } : String(err),
    }),
  );
  process.exit(1);
});
