/**
 * The contract between an agent that asks for its NATS client certificate and the operator that signs it: a
 * Kubernetes CertificateSigningRequest for this signer, with these usages, whose subject is the agent's NATS identity
 * (authorization.ts). The operator approves only a request made with a service-account token bound to a pod on the
 * node the subject names (kube-apiserver records that node in the request's `extra`), so no per-node Secret exists:
 * each agent's key never leaves its pod.
 */
import { natsIdentity, NatsRole, ORGANIZATION, type NatsIdentity } from "./authorization.js";

/** The CertificateSigningRequest signerName the operator signs (custom: kube-controller-manager ignores it). */
export const AGENT_NATS_SIGNER = "gpufleet.io/agent-nats-client";

/** The key usages the request asks for; the operator refuses any other. */
export const AGENT_NATS_USAGES = ["digital signature", "key encipherment", "client auth"] as const;

/** The user-info extra key kube-apiserver fills from a pod-bound service-account token (GA in Kubernetes 1.32). */
export const NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name";

/** The subject an agent of `node` must request: its NATS identity (CN=gpufleet-agent:<node>, O=gpufleet). */
export function agentCertificateSubject(node: string): Pick<NatsIdentity, "commonName" | "user"> & {
  organization: string;
} {
  const who = natsIdentity(NatsRole.agent, node);
  return { commonName: who.commonName, user: who.user, organization: ORGANIZATION };
}

/** Kubernetes accepts expirationSeconds of at least 600; the agent asks for this much and renews at 2/3 of it. */
export const MIN_EXPIRATION_SECONDS = 600;
