/**
 * X.509 issuance for the operator → agent mTLS: a CA and leaf certificates, as PEM. Keys are RSA-2048 made by
 * node:crypto (off the event loop); node-forge builds and signs the certificates (node:crypto cannot issue X.509).
 */
import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";

const generateRsa = promisify(generateKeyPair);

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export const LeafUsage = { server: "server", client: "client" } as const;
export type LeafUsage = (typeof LeafUsage)[keyof typeof LeafUsage];

export interface CertificateRequest {
  commonName: string;
  notBefore: Date;
  lifetimeMs: number;
}

export interface LeafRequest extends CertificateRequest {
  usage: LeafUsage;
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
}

async function newKeys(): Promise<{
  keyPem: string;
  publicKey: forge.pki.PublicKey;
  privateKey: forge.pki.rsa.PrivateKey;
}> {
  const { privateKey, publicKey } = await generateRsa("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  return {
    keyPem,
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string),
    privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: "pkcs1", format: "pem" }) as string),
  };
}

function skeleton(publicKey: forge.pki.PublicKey, request: CertificateRequest): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive 128-bit serial (leading 0 nibble keeps the DER integer positive).
  cert.serialNumber = `0${randomBytes(16).toString("hex").slice(1)}`;
  cert.validity.notBefore = request.notBefore;
  cert.validity.notAfter = new Date(request.notBefore.getTime() + request.lifetimeMs);
  cert.setSubject([
    { name: "commonName", value: request.commonName },
    { name: "organizationName", value: "gpufleet" },
  ]);
  return cert;
}

export async function issueCa(request: CertificateRequest): Promise<IssuedCertificate> {
  const keys = await newKeys();
  const cert = skeleton(keys.publicKey, request);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

export async function issueLeaf(ca: IssuedCertificate, request: LeafRequest): Promise<IssuedCertificate> {
  const keys = await newKeys();
  return { certPem: signLeaf(ca, keys.publicKey, request), keyPem: keys.keyPem };
}

/**
 * A leaf for the public key of a PKCS#10 request (an agent's CertificateSigningRequest), with the subject and usage
 * of `request`, not of the PKCS#10: what is signed is what the caller decided (csr/decide.ts), never what was asked.
 */
export function signRequestedLeaf(ca: IssuedCertificate, requestPem: string, request: LeafRequest): string {
  const csr = forge.pki.certificationRequestFromPem(requestPem);
  if (!csr.publicKey) throw new Error("the certificate request carries no public key");
  return signLeaf(ca, csr.publicKey, request);
}

function signLeaf(ca: IssuedCertificate, publicKey: forge.pki.PublicKey, request: LeafRequest): string {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const cert = skeleton(publicKey, request);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...request.dnsNames.map((value) => ({ type: 2, value })),
    ...(request.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: "extKeyUsage",
      serverAuth: request.usage === LeafUsage.server,
      clientAuth: request.usage === LeafUsage.client,
    },
    ...(altNames.length > 0 ? [{ name: "subjectAltName", altNames }] : []),
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** What the rotation planner needs to know of a certificate already in a Secret. */
export interface CertificateFacts {
  notBeforeMs: number;
  notAfterMs: number;
  /** Verified against the CA's public key (false when the CA was replaced). */
  signedByCa: boolean;
  dnsNames: string[];
  keyMatches: boolean;
}

/** Reads PEMs into facts; throws on PEMs that do not parse (the planner then re-issues). */
export function certificateFacts(certPem: string, keyPem: string, caPem: string): CertificateFacts {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  return {
    notBeforeMs: Date.parse(cert.validFrom),
    notAfterMs: Date.parse(cert.validTo),
    signedByCa: cert.verify(ca.publicKey) && cert.checkIssued(ca),
    dnsNames: (cert.subjectAltName ?? "")
      .split(", ")
      .filter((s) => s.startsWith("DNS:"))
      .map((s) => s.slice(4)),
    keyMatches: cert.checkPrivateKey(createPrivateKey(keyPem)),
  };
}
