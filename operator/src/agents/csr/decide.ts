/**
 * Whether the operator signs an agent's NATS client-certificate request: a pure function of what the API server
 * recorded about the requester and what the PKCS#10 request asks for (no I/O; reconciler.ts acts on the answer).
 *
 * The rule: the requester is the agent's ServiceAccount with a token bound to a pod on node N (kube-apiserver puts N
 * in the request's `extra`), and the request asks for exactly the subject CN=gpufleet-agent:N, O=gpufleet, no
 * subject alternative names (nats-server would map a certificate by its SANs before its subject), a valid
 * self-signature, and only the agent usages. Anything else is denied with the reason, so a compromised agent can
 * get a certificate for its own node and no other.
 */
import {
  AGENT_NATS_SIGNER,
  AGENT_NATS_USAGES,
  agentCertificateSubject,
  NODE_NAME_EXTRA,
} from "../../../../common/src/nats/agent-certificate.js";
import { NatsAuthorizationError } from "../../../../common/src/nats/authorization.js";

/** What the reconciler read off the PKCS#10 request (parse.ts), or why it could not. */
export type ParsedRequest =
  | {
      ok: true;
      /** Subject attributes in order, as [short name, value] (CN, O, OU, ...). */
      subject: [string, string][];
      subjectAltNames: number;
      signatureValid: boolean;
    }
  | { ok: false; error: string };

export interface CsrFacts {
  signerName: string;
  /** spec.username, spec.extra: set by the API server from the requester's credentials, not by the requester. */
  username: string;
  extra: Record<string, readonly string[]>;
  usages: readonly string[];
  /** Conditions already on the request. */
  approved: boolean;
  denied: boolean;
  failed: boolean;
  /** status.certificate is set. */
  issued: boolean;
  request: ParsedRequest;
}

export const CsrReason = {
  approved: "GpufleetAgentOwnNode",
  notTheAgent: "NotTheAgentServiceAccount",
  noNode: "TokenNotBoundToANode",
  wrongSubject: "SubjectIsNotTheRequestersNode",
  badRequest: "InvalidCertificateRequest",
  badUsages: "UsagesNotAllowed",
} as const;

export type CsrDecision =
  /** Not ours, or already settled: nothing to do. */
  | { action: "none"; why: string }
  /** Approve (when not yet approved) and sign a certificate for `node`. */
  | { action: "sign"; node: string; approve: boolean }
  /** Not yet approved: deny. Approved by someone else but against the rule: mark it Failed, never sign. */
  | { action: "deny" | "fail"; reason: (typeof CsrReason)[keyof typeof CsrReason]; message: string };

export function decideAgentCsr(facts: CsrFacts, agentUsername: string): CsrDecision {
  if (facts.signerName !== AGENT_NATS_SIGNER) return { action: "none", why: `signer ${facts.signerName}` };
  if (facts.issued) return { action: "none", why: "certificate already issued" };
  if (facts.denied || facts.failed) return { action: "none", why: facts.denied ? "denied" : "failed" };
  const refuse = (reason: (typeof CsrReason)[keyof typeof CsrReason], message: string): CsrDecision => ({
    action: facts.approved ? "fail" : "deny",
    reason,
    message,
  });

  if (facts.username !== agentUsername)
    return refuse(CsrReason.notTheAgent, `requested by ${facts.username}, not the agent (${agentUsername})`);
  const nodes = facts.extra[NODE_NAME_EXTRA] ?? [];
  if (nodes.length !== 1)
    return refuse(
      CsrReason.noNode,
      `the requester's token is bound to no pod on a node (user info has ${nodes.length} ${NODE_NAME_EXTRA} values); ` +
        "use the pod's projected service-account token",
    );
  const node = nodes[0]!;
  let wanted: ReturnType<typeof agentCertificateSubject>;
  try {
    wanted = agentCertificateSubject(node);
  } catch (err) {
    if (err instanceof NatsAuthorizationError) return refuse(CsrReason.noNode, err.message);
    throw err;
  }

  const unexpected = facts.usages.filter((u) => !(AGENT_NATS_USAGES as readonly string[]).includes(u));
  if (unexpected.length > 0 || !facts.usages.includes("client auth"))
    return refuse(
      CsrReason.badUsages,
      `usages ${JSON.stringify(facts.usages)}: only ${JSON.stringify(AGENT_NATS_USAGES)} are signed, client auth among them`,
    );

  const request = facts.request;
  if (!request.ok) return refuse(CsrReason.badRequest, `the PKCS#10 request does not parse: ${request.error}`);
  if (!request.signatureValid)
    return refuse(CsrReason.badRequest, "the PKCS#10 request's signature does not verify with its own public key");
  if (request.subjectAltNames > 0)
    return refuse(
      CsrReason.badRequest,
      `the request asks for ${request.subjectAltNames} subject alternative name(s); NATS maps a certificate by its ` +
        "SANs before its subject, so none are signed",
    );
  const subject = request.subject.map(([k, v]) => `${k}=${v}`).join(",");
  const expected = `CN=${wanted.commonName},O=${wanted.organization}`;
  if (subject !== expected)
    return refuse(
      CsrReason.wrongSubject,
      `subject ${subject} is not ${expected} (the requester's token is bound to a pod on node ${node})`,
    );
  return { action: "sign", node, approve: !facts.approved };
}
