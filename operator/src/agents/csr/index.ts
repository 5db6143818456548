/**
 * The agent-certificate signer, wired: an informer on CertificateSigningRequests (warm on every replica, like the
 * others) and a controller that runs on the leader only. Requests for other signers are read and left alone.
 */
import {
  CertificatesV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import { AGENT_NATS_SIGNER } from "../../../../common/src/nats/agent-certificate.js";
import type { OperatorMetrics } from "../../metrics.js";
import type { Clock } from "../../runtime/clock.js";
import { Controller } from "../../runtime/controller.js";
import type { EventSink } from "../../runtime/events.js";
import { ResilientInformer, objectKey, type ApiRecovery } from "../../runtime/informer.js";
import type { Logger } from "../../runtime/logger.js";
import { AgentCsrReconciler, type AgentCsrSettings } from "./reconciler.js";

export function agentCsrSigner(deps: {
  kubeConfig: KubeConfig;
  events: EventSink;
  clock: Clock;
  logger: Logger;
  metrics: OperatorMetrics;
  recovery: ApiRecovery;
  settings: AgentCsrSettings;
}): { informer: ResilientInformer<V1CertificateSigningRequest>; controller: Controller } {
  const { kubeConfig, metrics, logger } = deps;
  const certificates = kubeConfig.makeApiClient(CertificatesV1Api);
  const informer = new ResilientInformer<V1CertificateSigningRequest>({
    kubeConfig,
    resource: "certificatesigningrequests",
    path: "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    list: () => certificates.listCertificateSigningRequest(),
    logger,
    recovery: deps.recovery,
    onRestart: () => metrics.informerRestartsTotal.inc({ resource: "certificatesigningrequests" }),
  });
  const controller = new Controller({
    reconciler: new AgentCsrReconciler({
      certificates,
      core: kubeConfig.makeApiClient(CoreV1Api),
      events: deps.events,
      clock: deps.clock,
      logger: logger.child({ controller: "agent-csr" }),
      metrics,
      settings: deps.settings,
    }),
    metrics,
    logger,
  });
  controller.watch(informer, (csr) => (csr.spec.signerName === AGENT_NATS_SIGNER ? [objectKey(csr)] : []));
  return { informer, controller };
}
