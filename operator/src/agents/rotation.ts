/**
 * When to issue a certificate: pure, from what the Secrets hold now. A certificate is (re-)issued when it is
 * missing or unreadable, when its key does not match, when another CA signed it, when its names differ from the
 * wanted ones, or once `renewAtFraction` (default 2/3) of its lifetime has passed, so a leaf is replaced well before
 * it expires and agents (re-reading every few seconds) and the operator's client pick it up without restarts.
 * Replacing the CA re-issues every leaf. CA rotation by expiry uses the same rule; trust overlap (old and new CA
 * side by side) is not implemented: a CA replacement is a short outage until agents reload (docs/security.md).
 */
import type { CertificateFacts, LeafUsage } from "./pki.js";

export const CertificateRole = {
  ca: "ca",
  /** The agents' gRPC server certificate (one for every node, named by AGENT_SERVER_NAME). */
  agent: "agent",
  /** The operator's client certificate: to the agents' gRPC and, as gpufleet-operator, to NATS. */
  operator: "operator",
  /** The in-chart nats-server's certificate, when NATS authorization is on. */
  natsServer: "nats-server",
  /** The gateway's NATS client certificate (gpufleet-gateway), when NATS authorization is on. */
  gateway: "gateway",
} as const;
export type CertificateRole = (typeof CertificateRole)[keyof typeof CertificateRole];
export type LeafRole = Exclude<CertificateRole, "ca">;

/** A leaf the operator keeps: who it names and what it may be used for. */
export interface LeafSpec {
  role: LeafRole;
  commonName: string;
  usage: LeafUsage;
  dnsNames: readonly string[];
}

export interface RotationPolicy {
  renewAtFraction: number;
  /** The leaves to keep, in issue order; a role not listed is neither issued nor looked at. */
  leaves: readonly LeafSpec[];
}

/** undefined: absent; an Error: present but unreadable. */
export type Observed = CertificateFacts | Error | undefined;

export interface IssueDecision {
  role: CertificateRole;
  reason: string;
}

function leafReason(
  facts: Observed,
  nowMs: number,
  policy: RotationPolicy,
  wantedDns: readonly string[],
): string | undefined {
  if (facts === undefined) return "missing";
  if (facts instanceof Error) return `unreadable: ${facts.message}`;
  if (!facts.keyMatches) return "key does not match certificate";
  if (!facts.signedByCa) return "not signed by the current CA";
  if ([...wantedDns].sort().join(",") !== [...facts.dnsNames].sort().join(","))
    return `names ${facts.dnsNames.join(",") || "none"} differ from ${wantedDns.join(",") || "none"}`;
  return renewalReason(facts, nowMs, policy);
}

function renewalReason(facts: CertificateFacts, nowMs: number, policy: RotationPolicy): string | undefined {
  const renewAtMs = renewAtOf(facts, policy);
  if (nowMs >= facts.notAfterMs) return "expired";
  if (nowMs >= renewAtMs) return `past ${Math.round(policy.renewAtFraction * 100)}% of its lifetime`;
  return undefined;
}

export function renewAtOf(
  facts: Pick<CertificateFacts, "notBeforeMs" | "notAfterMs">,
  policy: Pick<RotationPolicy, "renewAtFraction">,
): number {
  return facts.notBeforeMs + (facts.notAfterMs - facts.notBeforeMs) * policy.renewAtFraction;
}

export function planCertificates(
  observed: Partial<Record<CertificateRole, Observed>>,
  nowMs: number,
  policy: RotationPolicy,
): IssueDecision[] {
  const ca = observed.ca;
  let caReason: string | undefined;
  if (ca === undefined) caReason = "missing";
  else if (ca instanceof Error) caReason = `unreadable: ${ca.message}`;
  else if (!ca.keyMatches) caReason = "key does not match certificate";
  else caReason = renewalReason(ca, nowMs, policy);
  if (caReason) {
    const leaves = policy.leaves.map(({ role }) => ({
      role,
      reason: observed[role] === undefined ? "missing" : "the CA is re-issued",
    }));
    return [{ role: CertificateRole.ca, reason: caReason }, ...leaves];
  }
  const decisions: IssueDecision[] = [];
  for (const leaf of policy.leaves) {
    const reason = leafReason(observed[leaf.role], nowMs, policy, leaf.dnsNames);
    if (reason) decisions.push({ role: leaf.role, reason });
  }
  return decisions;
}

/** When to look again: the earliest renewal time among readable certificates, never later than `maxMs` from now. */
export function nextCheckAtMs(
  observed: Partial<Record<CertificateRole, Observed>>,
  nowMs: number,
  policy: RotationPolicy,
  maxMs: number,
): number {
  let at = nowMs + maxMs;
  for (const facts of Object.values(observed)) {
    if (facts && !(facts instanceof Error)) at = Math.min(at, Math.max(nowMs, renewAtOf(facts, policy)));
  }
  return at;
}
