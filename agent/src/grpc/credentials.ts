/**
 * Optional mTLS for the operator -> agent port. Certificates come from a Kubernetes Secret mounted as files
 * (ca.crt, tls.crt, tls.key, the kubernetes.io/tls layout plus the CA). The worker socket is node-local (a Unix
 * socket guarded by file permissions) and stays plaintext.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";

export interface TlsFiles {
  caCert: Buffer;
  cert: Buffer;
  key: Buffer;
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

export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  // Third argument: require and verify client certificates (mutual TLS).
  return grpc.ServerCredentials.createSsl(tls.caCert, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

export function clientCredentials(tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.caCert, tls.key, tls.cert);
}
