/**
 * The NATS connection options that carry a component's identity (authorization.ts): its client certificate and its
 * inbox prefix. Without a certificate folder nothing is added, so a component connects as before (no auth).
 */
import { join } from "node:path";
import type { ConnectionOptions } from "nats";
import type { NatsIdentity } from "./authorization.js";

export type NatsCredentialOptions = Pick<ConnectionOptions, "tls" | "inboxPrefix">;

/**
 * `tlsDir` holds `ca.crt` (the CA that signed the server's certificate), `tls.crt` and `tls.key` (this component's
 * client certificate), the layout of a kubernetes.io/tls Secret. nats.js reads the files when it connects, so a
 * missing file fails the connect with its path.
 */
export function natsCredentialOptions(tlsDir: string, who: NatsIdentity): NatsCredentialOptions {
  if (tlsDir === "") return {};
  return {
    tls: { caFile: join(tlsDir, "ca.crt"), certFile: join(tlsDir, "tls.crt"), keyFile: join(tlsDir, "tls.key") },
    inboxPrefix: who.inboxPrefix,
  };
}
