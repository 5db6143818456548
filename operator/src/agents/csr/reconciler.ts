/**
 * The signer of agents' NATS client certificates (leader only): reads one CertificateSigningRequest, asks decide.ts,
 * and writes the answer through the subresources: Approved or Denied through /approval, the certificate or a Failed
 * condition through /status. Each write replaces the object at the resourceVersion just read, so a retry after a
 * conflict reads again and decides again; a settled request (issued, denied, failed) is left alone.
 */
import type { CertificatesV1Api, CoreV1Api, V1CertificateSigningRequest } from "@kubernetes/client-node";
import { agentCertificateSubject, MIN_EXPIRATION_SECONDS } from "../../../../common/src/nats/agent-certificate.js";
import type { OperatorMetrics } from "../../metrics.js";
import type { Clock } from "../../runtime/clock.js";
import type { ReconcileResult, Reconciler } from "../../runtime/controller.js";
import { isNotFound } from "../../runtime/errors.js";
import { parseKey } from "../../runtime/informer.js";
import type { EventSink } from "../../runtime/events.js";
import type { Logger } from "../../runtime/logger.js";
import { readSecret, secretNames } from "../certificates.js";
import { LeafUsage, signRequestedLeaf } from "../pki.js";
import { CsrReason, decideAgentCsr, type CsrDecision } from "./decide.js";
import { csrFacts, requestPemOf } from "./parse.js";

export interface AgentCsrSettings {
  /** The agent DaemonSet's ServiceAccount as the API server names it: system:serviceaccount:<namespace>:<name>. */
  agentUsername: string;
  /** Where the CA Secret (<prefix>-ca) lives. */
  namespace: string;
  secretPrefix: string;
  /** The longest certificate signed (a request's expirationSeconds may only shorten it). */
  maxLifetimeMs: number;
}

/** Clock skew the certificate tolerates: it is valid from a minute before it was signed. */
const BACKDATE_MS = 60_000;

export class AgentCsrReconciler implements Reconciler {
  readonly name = "agent-csr";

  constructor(
    private readonly deps: {
      certificates: CertificatesV1Api;
      core: CoreV1Api;
      events: EventSink;
      clock: Clock;
      logger: Logger;
      metrics: OperatorMetrics;
      settings: AgentCsrSettings;
    },
  ) {}

  /** `key` is the informer's "/<name>" (CertificateSigningRequests are cluster-scoped). */
  async reconcile(key: string): Promise<ReconcileResult> {
    const { name } = parseKey(key);
    let csr: V1CertificateSigningRequest;
    try {
      csr = await this.deps.certificates.readCertificateSigningRequest({ name });
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
    const decision = decideAgentCsr(csrFacts(csr), this.deps.settings.agentUsername);
    if (decision.action === "none") return {};
    if (decision.action === "sign") await this.sign(csr, decision);
    else await this.refuse(csr, decision);
    return {};
  }

  private condition(type: string, reason: string, message: string) {
    const now = new Date(this.deps.clock.now());
    return { type, status: "True", reason, message, lastUpdateTime: now, lastTransitionTime: now };
  }

  private async sign(csr: V1CertificateSigningRequest, decision: Extract<CsrDecision, { action: "sign" }>) {
    const name = csr.metadata!.name!;
    const { certificates, settings, clock } = this.deps;
    let current = csr;
    if (decision.approve) {
      current = await certificates.replaceCertificateSigningRequestApproval({
        name,
        body: {
          ...csr,
          status: {
            ...csr.status,
            conditions: [
              ...(csr.status?.conditions ?? []),
              this.condition(
                "Approved",
                CsrReason.approved,
                `the requester's token is bound to a pod on node ${decision.node}, the node the subject names`,
              ),
            ],
          },
        },
      });
    }
    const caSecret = await readSecret(this.deps.core, settings.namespace, secretNames(settings.secretPrefix).ca);
    const caCert = caSecret?.data?.["ca.crt"];
    const caKey = caSecret?.data?.["ca.key"];
    if (!caCert || !caKey)
      // The certificate manager writes the CA when this replica starts leading; until then, retry (with backoff).
      throw new Error(
        `CertificateSigningRequest ${name}: the CA Secret ${settings.namespace}/${settings.secretPrefix}-ca is not there yet`,
      );
    const requested = csr.spec.expirationSeconds;
    const lifetimeMs = Math.min(
      settings.maxLifetimeMs,
      Math.max(MIN_EXPIRATION_SECONDS, requested ?? Number.POSITIVE_INFINITY) * 1000,
    );
    const nowMs = clock.now();
    const certPem = signRequestedLeaf(
      { certPem: Buffer.from(caCert, "base64").toString(), keyPem: Buffer.from(caKey, "base64").toString() },
      requestPemOf(csr),
      {
        commonName: agentCertificateSubject(decision.node).commonName,
        usage: LeafUsage.client,
        dnsNames: [],
        notBefore: new Date(nowMs - BACKDATE_MS),
        lifetimeMs: lifetimeMs + BACKDATE_MS,
      },
    );
    await certificates.replaceCertificateSigningRequestStatus({
      name,
      body: { ...current, status: { ...current.status, certificate: Buffer.from(certPem).toString("base64") } },
    });
    this.deps.metrics.agentCertificateRequestsTotal.inc({ outcome: "signed" });
    this.deps.logger.info(
      { csr: name, node: decision.node, lifetimeMs },
      "signed an agent's NATS client certificate for its own node",
    );
  }

  private async refuse(csr: V1CertificateSigningRequest, decision: Extract<CsrDecision, { action: "deny" | "fail" }>) {
    const name = csr.metadata!.name!;
    const body = {
      ...csr,
      status: {
        ...csr.status,
        conditions: [
          ...(csr.status?.conditions ?? []),
          this.condition(decision.action === "deny" ? "Denied" : "Failed", decision.reason, decision.message),
        ],
      },
    };
    if (decision.action === "deny")
      await this.deps.certificates.replaceCertificateSigningRequestApproval({ name, body });
    else await this.deps.certificates.replaceCertificateSigningRequestStatus({ name, body });
    const outcome = decision.action === "deny" ? "denied" : "failed";
    this.deps.metrics.agentCertificateRequestsTotal.inc({ outcome });
    this.deps.logger.warn(
      { csr: name, reason: decision.reason, message: decision.message },
      `agent certificate request ${outcome}`,
    );
    await this.deps.events.record(
      csr as Parameters<EventSink["record"]>[0],
      "Warning",
      decision.reason,
      `${outcome === "denied" ? "denied" : "not signed"}: ${decision.message}`,
    );
  }
}
