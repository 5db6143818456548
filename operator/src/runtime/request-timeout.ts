/**
 * A KubeConfig whose API clients give up on a request after `requestTimeoutMs`. client-node 1.x sets no timeout on
 * requests made through makeApiClient, so a request that an API server accepted and never answers (half started
 * after a restart, etcd not back) waits forever, and with it the reconcile that made it: one worker per controller
 * means one such request stalls that controller entirely (docs/reliability.md, control-plane restart). Watches do
 * not pass through here (Watch uses applyToFetchOptions); the informer bounds their establishment itself.
 */
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";
import type http from "node:http";
import { KeepAliveAgents } from "./keep-alive.js";

export class BoundedKubeConfig extends KubeConfig {
  /** Called once per request its API clients send (watches aside), with the HTTP method: the request-rate metric. */
  onRequest: ((method: string) => void) | undefined;
  /** One keep-alive agent per TLS identity instead of client-node's new agent (and connection) per request. */
  readonly keepAlive: KeepAliveAgents;

  constructor(
    source: KubeConfig,
    private readonly requestTimeoutMs: number | undefined,
  ) {
    super();
    this.keepAlive = new KeepAliveAgents({ closeEvictedAfterMs: 2 * (requestTimeoutMs ?? 60_000) });
    // The same clusters, users and contexts (certificates by path, token files, exec plugins), not a re-serialization.
    this.loadFromOptions({
      clusters: source.clusters,
      users: source.users,
      contexts: source.contexts,
      currentContext: source.currentContext,
    });
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const agent = context.getAgent();
    if (agent) context.setAgent(this.keepAlive.reuse(agent as http.Agent));
    // A signal a caller set itself (leader.ts bounds its lease calls by middleware, which runs after this) wins.
    if (this.requestTimeoutMs !== undefined && context.getSignal() === undefined)
      context.setSignal(AbortSignal.timeout(this.requestTimeoutMs));
    this.onRequest?.(String(context.getHttpMethod()).toUpperCase());
  }
}
