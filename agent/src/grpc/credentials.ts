/**
 * mTLS for the operator -> agent port. Certificates come from a Kubernetes Secret mounted as files (ca.crt,
 * tls.crt, tls.key: the kubernetes.io/tls layout plus the CA), issued and rotated by the operator.
 *
 * The server re-reads the folder every `refreshIntervalMs` and hands a new, consistent set (the key matches the
 * certificate) to gRPC, which uses it for new connections: a rotated Secret is picked up without a restart. kubelet
 * swaps all files of a Secret volume at once (the `..data` symlink), so a read sees either the old or the new set; a
 * torn set (key of one, certificate of another) is skipped until the next read. The worker socket is node-local (a
 * Unix socket guarded by file permissions) and stays plaintext.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";

export interface TlsFiles {
  caCert: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** Where the agent's server credentials live and how often they are re-read. */
export interface ServerTls {
  dir: string;
  refreshIntervalMs: number;
}

export class TlsConfigError extends Error {
  override name = "TlsConfigError";
}

export function readTlsDir(dir: string): TlsFiles {
  const read = (name: string): Buffer => {
    try {
      return readFileSync(join(dir, name));
    } catch (err) {
      throw new TlsConfigError(`reading ${join(dir, name)} for mTLS`, { cause: err });
    }
  };
  return { caCert: read("ca.crt"), cert: read("tls.crt"), key: read("tls.key") };
}

/** Throws TlsConfigError unless the key belongs to the certificate and the CA parses. */
export function checkTlsFiles(files: TlsFiles, where: string): void {
  try {
    new X509Certificate(files.caCert);
    const cert = new X509Certificate(files.cert);
    if (!cert.checkPrivateKey(createPrivateKey(files.key))) throw new Error("tls.key does not belong to tls.crt");
  } catch (err) {
    throw new TlsConfigError(`the certificates in ${where} are not usable`, { cause: err });
  }
}

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * A grpc-js CertificateProvider over a Secret folder. Unlike grpc-js's FileWatcherCertificateProvider it emits only
 * consistent sets, and only when the content changed, and it reports each reload (for logs and metrics).
 */
export class ReloadingCertificateProvider implements grpc.experimental.CertificateProvider {
  private current: TlsFiles | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tls: ServerTls,
    private readonly onReload: (event: { ok: boolean; error?: Error; notAfter?: string }) => void = () => {},
  ) {}

  /** First read, synchronous and strict: an agent with unusable certificates must not start. */
  load(): void {
    const files = readTlsDir(this.tls.dir);
    checkTlsFiles(files, this.tls.dir);
    this.current = files;
    this.timer = setInterval(() => void this.refresh(), this.tls.refreshIntervalMs);
    this.timer.unref();
  }

  /** Re-reads the folder; returns whether a new set was taken. */
  async refresh(): Promise<boolean> {
    let files: TlsFiles;
    try {
      const [caCert, cert, key] = await Promise.all(
        ["ca.crt", "tls.crt", "tls.key"].map((n) => readFile(join(this.tls.dir, n))),
      );
      files = { caCert: caCert!, cert: cert!, key: key! };
      if (
        this.current &&
        files.caCert.equals(this.current.caCert) &&
        files.cert.equals(this.current.cert) &&
        files.key.equals(this.current.key)
      )
        return false;
      checkTlsFiles(files, this.tls.dir);
    } catch (err) {
      this.onReload({ ok: false, error: err as Error }); // keep serving with the set we have
      return false;
    }
    this.current = files;
    for (const l of this.identityListeners) l({ certificate: files.cert, privateKey: files.key });
    for (const l of this.caListeners) l({ caCertificate: files.caCert });
    this.onReload({ ok: true, notAfter: new X509Certificate(files.cert).validTo });
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  // grpc-js registers its own watcher only after adding these listeners: a synchronous first update would reach
  // nobody and leave the port dropping every connection ("unloaded credentials"). Hence the queued first update.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      if (this.current && this.caListeners.has(listener)) listener({ caCertificate: this.current.caCert });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.current && this.identityListeners.has(listener))
        listener({ certificate: this.current.cert, privateKey: this.current.key });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/** Server credentials that require and verify client certificates (mutual TLS), reloaded from the provider. */
export function reloadingServerCredentials(provider: ReloadingCertificateProvider): grpc.ServerCredentials {
  // The same provider serves the CA and the identity, so the argument order (which differs between grpc-js's
  // function and its class) does not matter.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
}

/**
 * Client credentials for the operator. The agent's certificate names AGENT_SERVER_NAME, not its pod IP (one
 * certificate serves every agent): dial with the channel option `grpc.ssl_target_name_override` set to that name.
 */
export function clientCredentials(tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.caCert, tls.key, tls.cert);
}
