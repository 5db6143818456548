/**
 * Certificates for a throwaway control plane, made with the openssl CLI (node:crypto cannot issue X.509).
 *
 * One CA signs: the kube-apiserver serving certificate (SANs 127.0.0.1, localhost and the in-cluster names), and
 * client certificates whose subject is the identity RBAC sees: an admin in group system:masters (tests, kubectl,
 * kwok), and system:kube-controller-manager / system:kube-scheduler, which the API server's bootstrap RBAC policy
 * already grants what those components need. A separate RSA keypair signs service-account tokens.
 * ECDSA P-256 keys: fast to generate, and accepted by every component.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface KeyPair {
  cert: string;
  key: string;
}

export interface ClusterCerts {
  dir: string;
  ca: KeyPair;
  apiserver: KeyPair;
  admin: KeyPair;
  controllerManager: KeyPair;
  scheduler: KeyPair;
  /** Service-account token signing key (private) and verification key (public). */
  serviceAccount: { key: string; pub: string };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, { cause: err });
  }
}

async function newKey(file: string): Promise<void> {
  await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file]);
}

async function issue(dir: string, ca: KeyPair, name: string, subject: string, extensions: string): Promise<KeyPair> {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  await newKey(key);
  await openssl(["req", "-new", "-key", key, "-subj", subject, "-out", csr]);
  await writeFile(
    ext,
    `[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n${extensions}\n`,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    // Random serials, not -CAcreateserial: the certificates are issued in parallel and would race on ca.srl.
    "-set_serial",
    `0x${randomBytes(8).toString("hex")}`,
    "-days",
    "7",
    "-sha256",
    "-extfile",
    ext,
    "-extensions",
    "v3",
    "-out",
    cert,
  ]);
  return { cert, key };
}

/** Generates all certificates and keys into dir (created if needed). */
export async function generateCerts(dir: string): Promise<ClusterCerts> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca: KeyPair = { cert: path.join(dir, "ca.crt"), key: path.join(dir, "ca.key") };
  await newKey(ca.key);
  await openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    ca.key,
    "-subj",
    "/CN=gpufleet-test-ca",
    "-days",
    "7",
    "-sha256",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    "-out",
    ca.cert,
  ]);
  const serverSans = [
    "IP:127.0.0.1",
    "DNS:localhost",
    "IP:10.96.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
  ].join(",");
  const client = "extendedKeyUsage=clientAuth";
  const [apiserver, admin, controllerManager, scheduler] = await Promise.all([
    issue(dir, ca, "apiserver", "/CN=kube-apiserver", `extendedKeyUsage=serverAuth\nsubjectAltName=${serverSans}`),
    issue(dir, ca, "admin", "/O=system:masters/CN=gpufleet-admin", client),
    issue(dir, ca, "controller-manager", "/CN=system:kube-controller-manager", client),
    issue(dir, ca, "scheduler", "/CN=system:kube-scheduler", client),
  ]);
  const serviceAccount = { key: path.join(dir, "sa.key"), pub: path.join(dir, "sa.pub") };
  await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", serviceAccount.key]);
  await openssl(["pkey", "-in", serviceAccount.key, "-pubout", "-out", serviceAccount.pub]);
  return { dir, ca, apiserver, admin, controllerManager, scheduler, serviceAccount };
}
