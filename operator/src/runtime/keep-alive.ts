/**
 * Connection reuse for the operator's API clients. client-node 1.x builds a new https.Agent, hence a new TCP
 * connection and TLS handshake, for every request (KubeConfig.applySecurityAuthentication). Placing the 1,000-node
 * gang is 1,000 pod applies: with a handshake each, both the operator and the API server spend their CPU on TLS, and
 * on the 2-core bench machine the operator created about 17 pods a second (bench/results/training.md). This keeps
 * one keep-alive agent per distinct TLS identity (CA, client certificate and key, server name), so requests reuse
 * open connections; rotated credentials give a new identity, hence a new agent, and the old one is closed once
 * every request it may still carry has ended.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";

type AgentOptions = https.AgentOptions & Record<string, unknown>;

/** The options that make two agents' connections interchangeable (what the TLS session was set up with). */
const IDENTITY_OPTIONS = ["ca", "cert", "key", "pfx", "passphrase", "rejectUnauthorized", "servername"] as const;

function identity(agent: http.Agent): string {
  const options = (agent as http.Agent & { options: AgentOptions }).options;
  const hash = createHash("sha256");
  hash.update(agent instanceof https.Agent ? "https" : "http");
  for (const name of IDENTITY_OPTIONS) {
    const value = options[name];
    hash.update(`\0${name}=`);
    if (value === undefined) continue;
    for (const part of Array.isArray(value) ? value : [value])
      hash.update(Buffer.isBuffer(part) ? part : String(part as string | number | boolean));
  }
  return hash.digest("hex");
}

export class KeepAliveAgents {
  private readonly agents = new Map<string, http.Agent>();

  constructor(
    private readonly opts: {
      /** Distinct identities kept open; the least recently used beyond this is closed. */
      maxIdentities?: number;
      /** How long an evicted agent stays open for requests in flight (longer than any request may take). */
      closeEvictedAfterMs: number;
    },
  ) {}

  /**
   * The shared keep-alive agent for what `fresh` would connect with; `fresh` itself when it is not a plain http or
   * https agent (a proxy agent), which is then used once as client-node intended.
   */
  reuse(fresh: http.Agent): http.Agent {
    if (fresh.constructor !== https.Agent && fresh.constructor !== http.Agent) return fresh;
    const key = identity(fresh);
    const known = this.agents.get(key);
    if (known) {
      this.agents.delete(key); // re-inserted: Map order is the LRU order
      this.agents.set(key, known);
      return known;
    }
    const options = { ...(fresh as http.Agent & { options: AgentOptions }).options, keepAlive: true };
    const agent = fresh instanceof https.Agent ? new https.Agent(options) : new http.Agent(options);
    this.agents.set(key, agent);
    while (this.agents.size > (this.opts.maxIdentities ?? 4)) {
      const [oldestKey, oldest] = this.agents.entries().next().value as [string, http.Agent];
      this.agents.delete(oldestKey);
      setTimeout(() => oldest.destroy(), this.opts.closeEvictedAfterMs).unref();
    }
    return agent;
  }

  get size(): number {
    return this.agents.size;
  }

  /** Closes every agent and its connections (the operator is stopping). */
  destroy(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
