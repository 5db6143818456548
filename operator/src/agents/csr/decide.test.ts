import { generateKeyPairSync } from "node:crypto";
import forge from "node-forge";
import { describe, expect, it } from "vitest";
import { agentCertificateRequestPem } from "../../../../agent/src/nats-certificate.js";
import {
  AGENT_NATS_SIGNER,
  AGENT_NATS_USAGES,
  NODE_NAME_EXTRA,
} from "../../../../common/src/nats/agent-certificate.js";
import { CsrReason, decideAgentCsr, type CsrFacts } from "./decide.js";
import { parseRequestPem } from "./parse.js";

const AGENT = "system:serviceaccount:gpufleet:gpufleet-agent";
const keyPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
  type: "pkcs1",
  format: "pem",
}) as string;
const requestFor = (node: string) => parseRequestPem(agentCertificateRequestPem(node, keyPem));

/** A PKCS#10 request with any subject and SANs (what a hostile requester could send). */
function customRequest(subject: forge.pki.CertificateField[], dnsNames: string[] = []): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject(subject);
  if (dnsNames.length > 0)
    csr.setAttributes([
      {
        name: "extensionRequest",
        extensions: [{ name: "subjectAltName", altNames: dnsNames.map((value) => ({ type: 2, value })) }],
      },
    ]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

const facts = (patch: Partial<CsrFacts> = {}): CsrFacts => ({
  signerName: AGENT_NATS_SIGNER,
  username: AGENT,
  extra: { [NODE_NAME_EXTRA]: ["node-a"] },
  usages: [...AGENT_NATS_USAGES],
  approved: false,
  denied: false,
  failed: false,
  issued: false,
  request: requestFor("node-a"),
  ...patch,
});

describe("decideAgentCsr", () => {
  it("approves and signs the agent's request for the node its token is bound to", () => {
    expect(decideAgentCsr(facts(), AGENT)).toEqual({ action: "sign", node: "node-a", approve: true });
    // Already approved (by us on an earlier try, or an admin): sign without approving again.
    expect(decideAgentCsr(facts({ approved: true }), AGENT)).toEqual({
      action: "sign",
      node: "node-a",
      approve: false,
    });
  });

  it("leaves other signers' and settled requests alone", () => {
    expect(decideAgentCsr(facts({ signerName: "kubernetes.io/kube-apiserver-client" }), AGENT).action).toBe("none");
    for (const settled of [{ issued: true }, { denied: true }, { failed: true }])
      expect(decideAgentCsr(facts(settled), AGENT).action).toBe("none");
  });

  it("denies a subject naming another node than the token's", () => {
    const d = decideAgentCsr(facts({ request: requestFor("node-b") }), AGENT);
    expect(d).toMatchObject({ action: "deny", reason: CsrReason.wrongSubject });
    expect(d.action === "deny" && d.message).toContain(
      "CN=gpufleet-agent:node-b,O=gpufleet is not CN=gpufleet-agent:node-a",
    );
  });

  it("denies requesters that are not the agent, and tokens bound to no node", () => {
    expect(decideAgentCsr(facts({ username: "system:serviceaccount:default:default" }), AGENT)).toMatchObject({
      action: "deny",
      reason: CsrReason.notTheAgent,
    });
    expect(decideAgentCsr(facts({ extra: {} }), AGENT)).toMatchObject({ action: "deny", reason: CsrReason.noNode });
    expect(decideAgentCsr(facts({ extra: { [NODE_NAME_EXTRA]: ["a", "b"] } }), AGENT)).toMatchObject({
      reason: CsrReason.noNode,
    });
  });

  it("denies extra usages, SANs, extra subject attributes and a request that does not parse", () => {
    expect(decideAgentCsr(facts({ usages: [...AGENT_NATS_USAGES, "server auth"] }), AGENT)).toMatchObject({
      reason: CsrReason.badUsages,
    });
    expect(decideAgentCsr(facts({ usages: ["digital signature"] }), AGENT)).toMatchObject({
      reason: CsrReason.badUsages,
    });
    const subject = [
      { name: "commonName", value: "gpufleet-agent:node-a" },
      { name: "organizationName", value: "gpufleet" },
    ];
    expect(
      decideAgentCsr(facts({ request: parseRequestPem(customRequest(subject, ["gpufleet-operator"])) }), AGENT),
    ).toMatchObject({ reason: CsrReason.badRequest });
    expect(
      decideAgentCsr(
        facts({
          request: parseRequestPem(customRequest([...subject, { name: "organizationalUnitName", value: "x" }])),
        }),
        AGENT,
      ),
    ).toMatchObject({ reason: CsrReason.wrongSubject });
    expect(decideAgentCsr(facts({ request: parseRequestPem("not a PEM") }), AGENT)).toMatchObject({
      reason: CsrReason.badRequest,
    });
  });

  it("marks an approved request against the rule Failed instead of signing it", () => {
    expect(decideAgentCsr(facts({ approved: true, request: requestFor("node-b") }), AGENT)).toMatchObject({
      action: "fail",
      reason: CsrReason.wrongSubject,
    });
  });
});
