/**
 * A write fence for the leader's API clients. The Lease protects nothing by itself: a leader whose event loop was
 * frozen (SIGSTOP, a VM pause, a long GC or CPU starvation) past its renew deadline wakes up with reconciles in
 * flight, and their continuations issue writes before the elector's next tick notices the lease is gone, while
 * another replica already leads. client-go has the same gap; the fence closes it on the client side: every mutating
 * request is checked, synchronously and just before it is sent, against the elector's monotonic renew deadline, and
 * refused locally when the lease may have passed to someone else.
 *
 * client-node makes a new HTTP agent, hence a new connection, for every request, so a write that passed the check can
 * still be connecting when the process freezes: the 1,024-GPU SIGSTOP benchmark saw two such writes land after the
 * takeover. The fence therefore checks a second time when the connection is established, before the request bytes,
 * which Node queues until then, are written; a refused write's socket is destroyed unsent.
 *
 * What is left: a write frozen between that second check and the kernel accepting its bytes (synchronous code, no
 * I/O wait) can still land late; only a server-side fence (a precondition on the Lease) would close that.
 */
import type { KubeConfig, RequestContext } from "@kubernetes/client-node";
import type { Agent, ClientRequest } from "node:http";
import type { Socket } from "node:net";
import { BoundedKubeConfig } from "./request-timeout.js";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class LeaseLostError extends Error {
  override name = "LeaseLostError";
}

/**
 * A KubeConfig whose API clients refuse mutating calls while `writeBlockedReason()` returns a reason. Every client
 * made with makeApiClient (and KubernetesObjectApi.makeApiClient) authenticates each request through
 * applySecurityAuthentication, so the check sees every write; reads and watches pass.
 */
export class FencedKubeConfig extends BoundedKubeConfig {
  constructor(
    source: KubeConfig,
    private readonly writeBlockedReason: () => string | undefined,
    /** Also bound every request (request-timeout.ts); undefined: no timeout. */
    requestTimeoutMs?: number,
  ) {
    super(source, requestTimeoutMs);
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // After the await: this is the last step before the request is sent, so the check is as late as it can be.
    const method = String(context.getHttpMethod()).toUpperCase();
    if (!MUTATING.has(method)) return;
    const what = `${method} ${new URL(context.getUrl()).pathname}`;
    const reason = this.writeBlockedReason();
    if (reason !== undefined) throw new LeaseLostError(`refused ${what}: ${reason}`);
    const agent = context.getAgent();
    if (agent) checkAgainOnConnect(agent, this.writeBlockedReason);
  }
}

/** Agents already hooked: the agent is shared by every request of its TLS identity (keep-alive.ts), the hook is not. */
const hookedAgents = new WeakSet<Agent>();

/**
 * Hooks the agent's requests once: a mutating request whose socket is still connecting asks the fence again first
 * thing on 'connect' (prepended: before Node's own listener that writes the queued request), and the socket is
 * destroyed if it refuses. A request on a reused keep-alive connection is written at once, right after the check in
 * applySecurityAuthentication.
 */
function checkAgainOnConnect(agent: Agent, writeBlockedReason: () => string | undefined): void {
  if (hookedAgents.has(agent)) return;
  hookedAgents.add(agent);
  const hooked = agent as Agent & { addRequest(req: ClientRequest, options: unknown): void };
  const addRequest = hooked.addRequest.bind(agent);
  hooked.addRequest = (req, options) => {
    if (MUTATING.has(req.method.toUpperCase()))
      req.once("socket", (socket: Socket) => {
        if (!socket.connecting) return;
        socket.prependOnceListener("connect", () => {
          const reason = writeBlockedReason();
          if (reason !== undefined)
            socket.destroy(new LeaseLostError(`refused ${req.method} ${req.path} while connecting: ${reason}`));
        });
      });
    addRequest(req, options);
  };
}
