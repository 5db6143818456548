/**
 * Keeps the NATS server's authorization in step with the cluster's nodes: the leader renders who may connect and
 * publish what (common/src/nats/authorization.ts, a pure function of the node names) and writes it into the
 * ConfigMap the in-chart nats-server includes; the server's config reloader signals it when the mounted file
 * changes (charts/gpufleet/templates/nats-statefulset.yaml). A new node's agent is admitted once its name is in the
 * file, a deleted node's is not any more.
 *
 * Each pass reads the ConfigMap, renders, and writes only when the text differs (replace at the read
 * resourceVersion, or create), so a pass is idempotent and two leaders in a handover cannot both win. Node events
 * are coalesced (`debounceMs`): a thousand nodes joining at once are one write.
 */
import type { CoreV1Api, V1ConfigMap } from "@kubernetes/client-node";
import {
  NATS_AUTHORIZATION_MAX_BYTES,
  natsIdentity,
  NatsRole,
  renderNatsAuthorization,
  type NatsServerTlsFiles,
} from "../../../common/src/nats/authorization.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Clock } from "../runtime/clock.js";
import { isConflict, isNotFound } from "../runtime/errors.js";
import type { Logger } from "../runtime/logger.js";

/** The ConfigMap's key: the file nats.conf includes. */
export const NATS_AUTHORIZATION_KEY = "authorization.conf";

export type AuthorizationOutcome = "written" | "unchanged" | "too_large";

export class NatsAuthorizationError extends Error {
  override name = "NatsAuthorizationPublishError";
}

export interface NatsAuthorizationSettings {
  namespace: string;
  configMapName: string;
  /** Where the nats-server finds its own certificate and the CA (the chart's mount of <prefix>-nats-tls). */
  tls: NatsServerTlsFiles;
  debounceMs: number;
}

/** Node names that can be NATS identities (all real Kubernetes node names can); the rest are reported, not fatal. */
export function authorizableNodes(names: readonly string[]): { nodes: string[]; refused: string[] } {
  const nodes: string[] = [];
  const refused: string[] = [];
  for (const name of new Set(names)) {
    try {
      natsIdentity(NatsRole.agent, name);
      nodes.push(name);
    } catch {
      refused.push(name);
    }
  }
  return { nodes: nodes.sort(), refused };
}

export class NatsAuthorizationPublisher {
  private leading = false;
  private timer: unknown;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly deps: {
      core: CoreV1Api;
      clock: Clock;
      logger: Logger;
      metrics: OperatorMetrics;
      settings: NatsAuthorizationSettings;
      nodeNames: () => readonly string[];
    },
  ) {}

  /** On becoming leader: write the current view at once. */
  start(): void {
    this.leading = true;
    this.schedule(0);
  }

  stop(): void {
    this.leading = false;
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** A node was added or deleted: write within `debounceMs`. */
  nodesChanged(): void {
    if (this.leading && this.timer === undefined) this.schedule(this.deps.settings.debounceMs);
  }

  private schedule(delayMs: number): void {
    this.deps.clock.clearTimeout(this.timer);
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      void this.pass();
    }, delayMs);
  }

  private async pass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reconcile().then(
      () => undefined,
      (err: unknown) => {
        this.deps.metrics.natsAuthorizationWrites.inc({ outcome: "error" });
        this.deps.logger.error({ err }, "writing the NATS authorization failed; retrying in 5 s");
        if (this.leading) this.schedule(5000);
      },
    );
    await this.running;
    this.running = undefined;
    if (this.again && this.leading) {
      this.again = false;
      this.schedule(0);
    }
  }

  /** One pass: render from the nodes, write when it differs. */
  async reconcile(): Promise<AuthorizationOutcome> {
    const { core, settings, logger, metrics } = this.deps;
    const { nodes, refused } = authorizableNodes(this.deps.nodeNames());
    if (refused.length > 0)
      logger.warn({ nodes: refused.slice(0, 10), count: refused.length }, "nodes whose names cannot be NATS users");
    const text = renderNatsAuthorization({ nodes }, settings.tls);
    const bytes = Buffer.byteLength(text);
    const where = `ConfigMap ${settings.namespace}/${settings.configMapName}`;
    if (bytes > NATS_AUTHORIZATION_MAX_BYTES) {
      // Writing part of the nodes would lock the rest out silently; keep the last file and say why.
      metrics.natsAuthorizationWrites.inc({ outcome: "too_large" });
      logger.error(
        { nodes: nodes.length, bytes, limitBytes: NATS_AUTHORIZATION_MAX_BYTES },
        `the NATS authorization for ${nodes.length} nodes exceeds a ConfigMap's size; ${where} keeps its last version`,
      );
      return "too_large";
    }
    let current: V1ConfigMap | undefined;
    try {
      current = await core.readNamespacedConfigMap({ name: settings.configMapName, namespace: settings.namespace });
    } catch (err) {
      if (!isNotFound(err)) throw new NatsAuthorizationError(`reading ${where}`, { cause: err });
    }
    metrics.natsAuthorizedNodes.set(nodes.length);
    if (current?.data?.[NATS_AUTHORIZATION_KEY] === text) {
      metrics.natsAuthorizationWrites.inc({ outcome: "unchanged" });
      return "unchanged";
    }
    const body: V1ConfigMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: settings.configMapName,
        namespace: settings.namespace,
        labels: { "app.kubernetes.io/managed-by": "gpufleet-operator", "gpufleet.io/nats-authorization": "true" },
        resourceVersion: current?.metadata?.resourceVersion,
      },
      data: { [NATS_AUTHORIZATION_KEY]: text },
    };
    try {
      if (current)
        await core.replaceNamespacedConfigMap({ name: settings.configMapName, namespace: settings.namespace, body });
      else await core.createNamespacedConfigMap({ namespace: settings.namespace, body });
    } catch (err) {
      const why = isConflict(err) ? "it changed meanwhile" : "the write failed";
      throw new NatsAuthorizationError(`writing ${where} (${why})`, { cause: err });
    }
    metrics.natsAuthorizationWrites.inc({ outcome: "written" });
    logger.info({ nodes: nodes.length, bytes }, `wrote the NATS authorization to ${where}`);
    return "written";
  }
}
