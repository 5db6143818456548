/**
 * A write fence for the leader's API clients. The Lease protects nothing by itself: a leader whose event loop was
 * frozen (SIGSTOP, a VM pause, a long GC or CPU starvation) past its renew deadline wakes up with reconciles in
 * flight, and their continuations issue writes before the elector's next tick notices the lease is gone, while
 * another replica already leads. client-go has the same gap; the fence closes it on the client side: every mutating
 * request is checked, synchronously and just before it is sent, against the elector's monotonic renew deadline, and
 * refused locally when the lease may have passed to someone else.
 *
 * What is left: a request that passed the check and is frozen between the check and the socket write (microseconds
 * of synchronous code) can still land late; only a server-side fence (a precondition on the Lease) would close that.
 */
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class LeaseLostError extends Error {
  override name = "LeaseLostError";
}

/**
 * A KubeConfig whose API clients refuse mutating calls while `writeBlockedReason()` returns a reason. Every client
 * made with makeApiClient (and KubernetesObjectApi.makeApiClient) authenticates each request through
 * applySecurityAuthentication, so the check sees every write; reads and watches pass.
 */
export class FencedKubeConfig extends KubeConfig {
  constructor(source: KubeConfig, private readonly writeBlockedReason: () => string | undefined) {
    super();
    // The same clusters, users and contexts (certificates by path, token files, exec plugins), not a re-serialization.
    this.loadFromOptions({ clusters: source.clusters, users: source.users, contexts: source.contexts, currentContext: source.currentContext });
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // After the await: this is the last step before the request is sent, so the check is as late as it can be.
    const method = String(context.getHttpMethod()).toUpperCase();
    if (!MUTATING.has(method)) return;
    const reason = this.writeBlockedReason();
    if (reason !== undefined) throw new LeaseLostError(`refused ${method} ${new URL(context.getUrl()).pathname}: ${reason}`);
  }
}
