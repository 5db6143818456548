/**
 * The leader's certificate executor: reads the Secrets (CA, agent server certificate, operator client certificate,
 * and with NATS authorization the nats-server's and the gateway's), asks the pure planner (rotation.ts) what to
 * issue, issues it (pki.ts) and writes the Secrets back (create, or replace at the read resourceVersion, so two
 * writers cannot both win). Runs at start and then at the
 * earliest renewal time, at least every `maxCheckIntervalMs`.
 *
 * Secret layout (what the chart mounts into agents: ca.crt, tls.crt, tls.key, the kubernetes.io/tls keys plus the
 * CA): `<prefix>-ca` holds ca.crt and ca.key and is never mounted anywhere.
 */
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import type { TlsFiles } from "../../../agent/src/grpc/credentials.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Clock } from "../runtime/clock.js";
import { isConflict, isNotFound } from "../runtime/errors.js";
import type { Logger } from "../runtime/logger.js";
import { natsIdentity, NatsRole } from "../../../common/src/nats/authorization.js";
import { certificateFacts, issueCa, issueLeaf, LeafUsage, type IssuedCertificate } from "./pki.js";
import {
  CertificateRole,
  nextCheckAtMs,
  planCertificates,
  type LeafSpec,
  type Observed,
  type RotationPolicy,
} from "./rotation.js";

export interface CertificateSettings {
  namespace: string;
  secretPrefix: string;
  caLifetimeMs: number;
  leafLifetimeMs: number;
  renewAtFraction: number;
  agentDnsNames: readonly string[];
  /** The in-chart NATS server's names; empty: NATS authorization is off, no nats-server or gateway certificate. */
  natsServerDnsNames: readonly string[];
  maxCheckIntervalMs: number;
}

export function secretNames(prefix: string): Record<CertificateRole, string> {
  return {
    ca: `${prefix}-ca`,
    agent: `${prefix}-agent-tls`,
    operator: `${prefix}-operator-tls`,
    "nats-server": `${prefix}-nats-tls`,
    gateway: `${prefix}-gateway-tls`,
  };
}

/**
 * The leaves to keep. The client certificates' common names are the NATS identities (authorization.ts), so the
 * operator's certificate is also its NATS credential and the gateway's is its own.
 */
export function wantedLeaves(settings: Pick<CertificateSettings, "agentDnsNames" | "natsServerDnsNames">): LeafSpec[] {
  const leaves: LeafSpec[] = [
    {
      role: CertificateRole.agent,
      commonName: "gpufleet-agent",
      usage: LeafUsage.server,
      dnsNames: settings.agentDnsNames,
    },
    {
      role: CertificateRole.operator,
      commonName: natsIdentity(NatsRole.operator).commonName,
      usage: LeafUsage.client,
      dnsNames: [],
    },
  ];
  if (settings.natsServerDnsNames.length === 0) return leaves;
  return [
    ...leaves,
    {
      role: CertificateRole.natsServer,
      commonName: "gpufleet-nats",
      usage: LeafUsage.server,
      dnsNames: settings.natsServerDnsNames,
    },
    {
      role: CertificateRole.gateway,
      commonName: natsIdentity(NatsRole.gateway).commonName,
      usage: LeafUsage.client,
      dnsNames: [],
    },
  ];
}

export class CertificateError extends Error {
  override name = "CertificateError";
}

interface ReadSecret {
  secret: V1Secret | undefined;
  cert: IssuedCertificate | undefined;
  caPem: string | undefined;
}

const decode = (secret: V1Secret | undefined, key: string): string | undefined => {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
};

/** The operator's client certificate as the pool wants it, from the Secret's data. */
export function tlsFilesOf(secret: V1Secret | undefined): TlsFiles | undefined {
  const [ca, cert, key] = ["ca.crt", "tls.crt", "tls.key"].map((k) => secret?.data?.[k]);
  if (!ca || !cert || !key) return undefined;
  return { caCert: Buffer.from(ca, "base64"), cert: Buffer.from(cert, "base64"), key: Buffer.from(key, "base64") };
}

export async function readSecret(core: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new CertificateError(`reading Secret ${namespace}/${name}`, { cause: err });
  }
}

export class CertificateManager {
  private timer: unknown;
  private stopped = true;
  private readonly names: Record<CertificateRole, string>;

  constructor(
    private readonly deps: {
      core: CoreV1Api;
      clock: Clock;
      logger: Logger;
      metrics: OperatorMetrics;
      settings: CertificateSettings;
      onIssued?: (role: CertificateRole) => void;
    },
  ) {
    this.names = secretNames(deps.settings.secretPrefix);
  }

  start(): void {
    this.stopped = false;
    const loop = async (): Promise<void> => {
      let delayMs = 10_000; // after an error: try again soon
      try {
        delayMs = Math.max(1000, (await this.reconcile()) - this.deps.clock.now());
      } catch (err) {
        this.deps.logger.error({ err }, "certificate reconcile failed; retrying");
      }
      if (!this.stopped) this.timer = this.deps.clock.setTimeout(() => void loop(), delayMs);
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    this.deps.clock.clearTimeout(this.timer);
  }

  /** One pass; returns when to look again (epoch ms). */
  async reconcile(): Promise<number> {
    const { core, settings, clock } = this.deps;
    const nowMs = clock.now();
    const leaves = wantedLeaves(settings);
    const policy: RotationPolicy = { renewAtFraction: settings.renewAtFraction, leaves };
    const read = async (role: CertificateRole): Promise<ReadSecret> => {
      const secret = await readSecret(core, settings.namespace, this.names[role]);
      const certPem = decode(secret, role === CertificateRole.ca ? "ca.crt" : "tls.crt");
      const keyPem = decode(secret, role === CertificateRole.ca ? "ca.key" : "tls.key");
      return { secret, cert: certPem && keyPem ? { certPem, keyPem } : undefined, caPem: decode(secret, "ca.crt") };
    };
    const roles: CertificateRole[] = [CertificateRole.ca, ...leaves.map((l) => l.role)];
    const secrets = new Map(await Promise.all(roles.map(async (role) => [role, await read(role)] as const)));
    const ca = secrets.get(CertificateRole.ca)!;
    const observe = (s: ReadSecret): Observed => {
      if (!s.cert) return s.secret ? new Error("certificate or key missing") : undefined;
      try {
        // A leaf counts as signed by the CA only if it verifies against the CA Secret's certificate, and carries
        // that CA in its own ca.crt (which is what the agents trust).
        const facts = certificateFacts(s.cert.certPem, s.cert.keyPem, ca.cert?.certPem ?? s.cert.certPem);
        if (s !== ca && (s.caPem !== ca.cert?.certPem || !ca.cert)) facts.signedByCa = false;
        return facts;
      } catch (err) {
        return err as Error;
      }
    };
    const observed = Object.fromEntries(roles.map((role) => [role, observe(secrets.get(role)!)])) as Partial<
      Record<CertificateRole, Observed>
    >;
    for (const role of roles) {
      const facts = observed[role];
      if (facts && !(facts instanceof Error))
        this.deps.metrics.certificateExpiry.set({ secret: this.names[role] }, facts.notAfterMs / 1000);
    }
    const decisions = planCertificates(observed, nowMs, policy);
    if (decisions.length === 0) return nextCheckAtMs(observed, nowMs, policy, settings.maxCheckIntervalMs);

    let caCert = ca.cert;
    const notBefore = new Date(nowMs - 60_000); // tolerate a minute of clock skew between nodes
    for (const { role, reason } of decisions) {
      let data: Record<string, string>;
      if (role === CertificateRole.ca) {
        const issued = await issueCa({ commonName: "gpufleet-ca", notBefore, lifetimeMs: settings.caLifetimeMs });
        caCert = issued;
        data = { "ca.crt": issued.certPem, "ca.key": issued.keyPem };
      } else {
        if (!caCert) throw new CertificateError("no CA to sign with");
        const leaf = leaves.find((l) => l.role === role)!;
        const issued = await issueLeaf(caCert, {
          commonName: leaf.commonName,
          usage: leaf.usage,
          dnsNames: leaf.dnsNames,
          notBefore,
          lifetimeMs: settings.leafLifetimeMs,
        });
        data = { "ca.crt": caCert.certPem, "tls.crt": issued.certPem, "tls.key": issued.keyPem };
      }
      await this.write(role, secrets.get(role)!.secret, data);
      this.deps.metrics.certificatesIssued.inc({ secret: this.names[role] });
      this.deps.logger.info({ secret: this.names[role], reason }, "issued certificate");
      this.deps.onIssued?.(role);
    }
    // Look again soon: the next pass reads back what was written and schedules the renewal from it.
    return nowMs + 1000;
  }

  private async write(
    role: CertificateRole,
    previous: V1Secret | undefined,
    data: Record<string, string>,
  ): Promise<void> {
    const { core, settings } = this.deps;
    const name = this.names[role];
    const body: V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace: settings.namespace,
        labels: { "app.kubernetes.io/managed-by": "gpufleet-operator", "gpufleet.io/certificate": role },
        resourceVersion: previous?.metadata?.resourceVersion,
      },
      type: role === CertificateRole.ca ? "Opaque" : "kubernetes.io/tls",
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
    };
    try {
      if (previous) await core.replaceNamespacedSecret({ name, namespace: settings.namespace, body });
      else await core.createNamespacedSecret({ namespace: settings.namespace, body });
    } catch (err) {
      if (isConflict(err))
        throw new CertificateError(
          `Secret ${settings.namespace}/${name} changed while it was being rotated; retrying`,
          { cause: err },
        );
      throw new CertificateError(`writing Secret ${settings.namespace}/${name}`, { cause: err });
    }
  }
}
