/**
 * Reads a CertificateSigningRequest object into the facts decide.ts judges. The PKCS#10 parse is node-forge's (RSA
 * keys only: an EC key is reported as a parse error, and denied); nothing here talks to the API.
 */
import type { V1CertificateSigningRequest } from "@kubernetes/client-node";
import forge from "node-forge";
import type { CsrFacts, ParsedRequest } from "./decide.js";

export function parseRequestPem(pem: string): ParsedRequest {
  try {
    const csr = forge.pki.certificationRequestFromPem(pem);
    const extensions =
      (csr.getAttribute({ name: "extensionRequest" }) as { extensions?: { name?: string; altNames?: unknown[] }[] })
        ?.extensions ?? [];
    const sans = extensions.find((e) => e.name === "subjectAltName")?.altNames?.length ?? 0;
    return {
      ok: true,
      subject: csr.subject.attributes.map((a) => [a.shortName ?? a.name ?? a.type ?? "?", String(a.value)]),
      subjectAltNames: sans,
      signatureValid: csr.verify(),
    };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const hasCondition = (csr: V1CertificateSigningRequest, type: string): boolean =>
  (csr.status?.conditions ?? []).some((c) => c.type === type && c.status !== "False");

/** The PKCS#10 PEM of the request (spec.request is its base64: the API's []byte field). */
export function requestPemOf(csr: V1CertificateSigningRequest): string {
  return Buffer.from(String(csr.spec.request ?? ""), "base64").toString("utf8");
}

export function csrFacts(csr: V1CertificateSigningRequest): CsrFacts {
  const pem = requestPemOf(csr);
  return {
    signerName: csr.spec.signerName,
    username: csr.spec.username ?? "",
    extra: csr.spec.extra ?? {},
    usages: csr.spec.usages ?? [],
    approved: hasCondition(csr, "Approved"),
    denied: hasCondition(csr, "Denied"),
    failed: hasCondition(csr, "Failed"),
    issued: Boolean(csr.status?.certificate),
    request: parseRequestPem(pem),
  };
}
