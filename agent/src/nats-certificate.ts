/**
 * The agent's NATS client certificate, asked of the operator through the Kubernetes API (common/src/nats/
 * agent-certificate.ts): a fresh RSA key made here, a PKCS#10 request for CN=gpufleet-agent:<node>, a
 * CertificateSigningRequest created with the pod's own service-account token (kube-apiserver records the node the
 * token is bound to), then the signed certificate, written beside the key into the agent's NATS certificate folder.
 * The key never leaves the pod and no per-node Secret exists. kube-controller-manager's CSR cleaner removes the
 * request objects later (issued or denied after an hour), so the agent deletes nothing.
 */
import { generateKeyPair, randomBytes, X509Certificate } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { CertificatesV1Api, V1CertificateSigningRequest } from "@kubernetes/client-node";
import forge from "node-forge";
import {
  AGENT_NATS_SIGNER,
  AGENT_NATS_USAGES,
  agentCertificateSubject,
  MIN_EXPIRATION_SECONDS,
} from "../../common/src/nats/agent-certificate.js";

const generateRsa = promisify(generateKeyPair);

export class NatsCertificateError extends Error {
  override name = "NatsCertificateError";
}

export interface NatsCertificateRequest {
  certificates: Pick<CertificatesV1Api, "createCertificateSigningRequest" | "readCertificateSigningRequest">;
  node: string;
  /** Written: tls.key, tls.crt, ca.crt (the layout natsCredentialOptions reads). */
  dir: string;
  /** The CA that signed the NATS server's certificate (the operator's CA), written as ca.crt. */
  caPem: string;
  expirationSeconds: number;
  /** How long to wait for the operator to sign (default 60 s), polling every `pollMs` (default 500 ms). */
  timeoutMs?: number;
  pollMs?: number;
}

export interface ObtainedCertificate {
  csrName: string;
  notBeforeMs: number;
  notAfterMs: number;
}

/** The PKCS#10 request (PEM) for `node`'s subject, signed with `keyPem`'s key. */
export function agentCertificateRequestPem(node: string, keyPem: string): string {
  const subject = agentCertificateSubject(node);
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([
    { name: "commonName", value: subject.commonName },
    { name: "organizationName", value: subject.organization },
  ]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

const conditionOf = (csr: V1CertificateSigningRequest, type: string) =>
  (csr.status?.conditions ?? []).find((c) => c.type === type && c.status !== "False");

/** Writes `content` to `dir/name` by rename, so a reader never sees half a file. */
function writeAtomically(dir: string, name: string, content: string, mode: number): void {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, join(dir, name));
}

export async function obtainNatsCertificate(request: NatsCertificateRequest): Promise<ObtainedCertificate> {
  const { certificates, node, dir } = request;
  const { privateKey } = await generateRsa("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }) as string;
  const pem = agentCertificateRequestPem(node, keyPem);
  // Node names are DNS subdomains of at most 253 characters; the request's name keeps a random suffix within that.
  const csrName = `gpufleet-agent-nats-${node.slice(0, 200)}-${randomBytes(4).toString("hex")}`;
  await certificates.createCertificateSigningRequest({
    body: {
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { name: csrName, labels: { "app.kubernetes.io/name": "gpufleet-agent" } },
      spec: {
        signerName: AGENT_NATS_SIGNER,
        request: Buffer.from(pem).toString("base64"),
        usages: [...AGENT_NATS_USAGES],
        expirationSeconds: Math.max(MIN_EXPIRATION_SECONDS, Math.round(request.expirationSeconds)),
      },
    },
  });

  const deadline = Date.now() + (request.timeoutMs ?? 60_000);
  for (;;) {
    const csr = await certificates.readCertificateSigningRequest({ name: csrName });
    const refused = conditionOf(csr, "Denied") ?? conditionOf(csr, "Failed");
    if (refused)
      throw new NatsCertificateError(
        `CertificateSigningRequest ${csrName} ${refused.type === "Denied" ? "denied" : "failed"}: ${refused.reason}: ${refused.message}`,
      );
    if (csr.status?.certificate) {
      const certPem = Buffer.from(csr.status.certificate, "base64").toString();
      const cert = new X509Certificate(certPem);
      if (!cert.checkPrivateKey(privateKey))
        throw new NatsCertificateError(`CertificateSigningRequest ${csrName}: the certificate is not for our key`);
      mkdirSync(dir, { recursive: true });
      // Key first: a reader that sees the new certificate then finds its key.
      writeAtomically(dir, "tls.key", keyPem, 0o600);
      writeAtomically(dir, "tls.crt", certPem, 0o644);
      writeAtomically(dir, "ca.crt", request.caPem, 0o644);
      return { csrName, notBeforeMs: Date.parse(cert.validFrom), notAfterMs: Date.parse(cert.validTo) };
    }
    if (Date.now() >= deadline)
      throw new NatsCertificateError(
        `CertificateSigningRequest ${csrName} not signed within ${request.timeoutMs ?? 60_000} ms (is the operator's ` +
          "agent-certificate signer on: GPUFLEET_AGENT_SERVICE_ACCOUNT?)",
      );
    await new Promise((resolve) => setTimeout(resolve, request.pollMs ?? 500));
  }
}
