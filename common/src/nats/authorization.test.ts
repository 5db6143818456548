import { describe, expect, it } from "vitest";
import { STREAMS } from "../telemetry/streams.js";
import { Stream, subjectFor, subscriptionFor } from "../telemetry/subjects.js";
import {
  NATS_AUTHORIZATION_MAX_BYTES,
  NatsAuthorizationError,
  natsIdentity,
  natsPermissions,
  NatsRole,
  natsUsers,
  renderNatsAuthorization,
} from "./authorization.js";
import { natsCredentialOptions } from "./connect.js";

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const allowed = (patterns: readonly string[], subject: string): boolean => patterns.some((p) => matches(p, subject));

const STREAM_VALUES = Object.values(Stream);

describe("natsIdentity", () => {
  it("maps an agent to its node through the certificate's subject DN", () => {
    expect(natsIdentity(NatsRole.agent, "gpu-a1")).toEqual({
      role: "agent",
      node: "gpu-a1",
      commonName: "gpufleet-agent:gpu-a1",
      user: "CN=gpufleet-agent:gpu-a1,O=gpufleet",
      inboxPrefix: "_INBOX.agent.gpu-a1",
    });
    expect(natsIdentity(NatsRole.operator).user).toBe("CN=gpufleet-operator,O=gpufleet");
  });

  it("keeps a dotted node name in one subject token", () => {
    expect(natsIdentity(NatsRole.agent, "gpu-1.rack-2").inboxPrefix).toBe("_INBOX.agent.gpu-1_rack-2");
  });

  it.each([[""], ["Node-A"], ["a_b"], ["node*"], ["a..b"], ["x".repeat(254)]])(
    "refuses %j as an agent's node name",
    (node) => {
      expect(() => natsIdentity(NatsRole.agent, node)).toThrow(NatsAuthorizationError);
    },
  );
});

describe("natsPermissions", () => {
  const a = natsPermissions(natsIdentity(NatsRole.agent, "node-a"));

  it("lets an agent publish every stream of its own node and none of another's", () => {
    for (const s of STREAM_VALUES) {
      expect(allowed(a.publish, subjectFor(s, "node-a")), s).toBe(true);
      expect(allowed(a.publish, subjectFor(s, "node-b")), s).toBe(false);
      expect(allowed(a.publish, subjectFor(s, "node-a.x")), s).toBe(false);
    }
    expect(allowed(a.publish, "gpufleet.v1.load.node-a.x")).toBe(false);
    expect(allowed(a.publish, "gpufleet.v2.load.node-a")).toBe(false);
    expect(a.publish.some((p) => p.includes(">"))).toBe(false);
  });

  it("lets an agent check the streams but not create, change or read them, administer consumers or acknowledge", () => {
    for (const { name } of STREAMS) expect(allowed(a.publish, `$JS.API.STREAM.INFO.${name}`)).toBe(true);
    expect(allowed(a.publish, "$JS.API.INFO")).toBe(true);
    expect(allowed(a.publish, "$JS.API.STREAM.INFO.OTHER")).toBe(false);
    for (const denied of [
      ...STREAMS.flatMap(({ name }) => [`$JS.API.STREAM.CREATE.${name}`, `$JS.API.STREAM.UPDATE.${name}`]),
      "$JS.API.STREAM.DELETE.GPUFLEET_LOAD",
      "$JS.API.STREAM.PURGE.GPUFLEET_LOAD",
      "$JS.API.CONSUMER.CREATE.GPUFLEET_LOAD",
      "$JS.API.STREAM.MSG.GET.GPUFLEET_LOAD",
      "$JS.ACK.GPUFLEET_LOAD.x.1.1.1.1.1",
    ])
      expect(allowed(a.publish, denied), denied).toBe(false);
  });

  it("lets an agent subscribe to its own inbox only", () => {
    expect(a.subscribe).toEqual(["_INBOX.agent.node-a.>"]);
    expect(allowed(a.subscribe, "_INBOX.agent.node-b.x.y")).toBe(false);
    for (const s of STREAM_VALUES) expect(allowed(a.subscribe, subjectFor(s, "node-a"))).toBe(false);
  });

  it("lets the gateway consume the load stream and publish no telemetry", () => {
    const g = natsPermissions(natsIdentity(NatsRole.gateway));
    expect(allowed(g.publish, "$JS.API.CONSUMER.CREATE.GPUFLEET_LOAD.abc.gpufleet.v1.load.*")).toBe(true);
    expect(allowed(g.publish, "$JS.API.CONSUMER.MSG.NEXT.GPUFLEET_LOAD.abc")).toBe(true);
    expect(allowed(g.publish, "$JS.API.CONSUMER.CREATE.GPUFLEET_COLLECTIVES.abc.x")).toBe(false);
    for (const s of STREAM_VALUES) expect(allowed(g.publish, subjectFor(s, "node-a"))).toBe(false);
    expect(g.subscribe).toEqual(["_INBOX.gateway.>"]);
  });

  it("lets the operator administer JetStream and acknowledge, and publish no telemetry", () => {
    const o = natsPermissions(natsIdentity(NatsRole.operator));
    expect(allowed(o.publish, "$JS.API.CONSUMER.DURABLE.CREATE.GPUFLEET_LOAD.gpufleet-operator-load")).toBe(true);
    expect(allowed(o.publish, "$JS.ACK.GPUFLEET_LOAD.gpufleet-operator-load.1.2.3.4.5")).toBe(true);
    for (const s of STREAM_VALUES) expect(allowed(o.publish, subjectFor(s, "node-a"))).toBe(false);
    expect(allowed(o.subscribe, subscriptionFor(Stream.load))).toBe(false);
  });

  it("gives the simulation agent every node's telemetry subjects", () => {
    const sim = natsPermissions(natsIdentity(NatsRole.simulationAgent));
    for (const s of STREAM_VALUES) expect(allowed(sim.publish, subjectFor(s, "kwok-node-7"))).toBe(true);
  });
});

describe("natsUsers", () => {
  it("admits the operator, the gateway and one agent per node, sorted", () => {
    expect(natsUsers({ nodes: ["node-b", "node-a"] }).map((u) => u.user)).toEqual([
      "CN=gpufleet-operator,O=gpufleet",
      "CN=gpufleet-gateway,O=gpufleet",
      "CN=gpufleet-agent:node-a,O=gpufleet",
      "CN=gpufleet-agent:node-b,O=gpufleet",
    ]);
  });

  it("admits the simulation agent only when asked", () => {
    const users = (simulationAgent: boolean) => natsUsers({ nodes: [], simulationAgent }).map((u) => u.user);
    expect(users(false)).not.toContain("CN=gpufleet-simulation-agent,O=gpufleet");
    expect(users(true)).toContain("CN=gpufleet-simulation-agent,O=gpufleet");
  });

  it("refuses a node listed twice", () => {
    expect(() => natsUsers({ nodes: ["n", "n"] })).toThrow(/listed twice/);
  });
});

describe("renderNatsAuthorization", () => {
  const text = renderNatsAuthorization(
    { nodes: ["node-a"] },
    { certFile: "/etc/nats/tls/tls.crt", keyFile: "/etc/nats/tls/tls.key", caFile: "/etc/nats/tls/ca.crt" },
  );

  it("maps client certificates to users and lists each user's allow lists", () => {
    expect(text).toContain("verify_and_map: true");
    expect(text).toContain('ca_file: "/etc/nats/tls/ca.crt"');
    expect(text).toContain('user: "CN=gpufleet-agent:node-a,O=gpufleet"');
    expect(text).toContain('"gpufleet.v1.*.node-a"');
    expect(text).toContain('subscribe: {allow: ["_INBOX.agent.node-a.>"]}');
  });

  it("fits a ConfigMap for 2,000 nodes with long names", () => {
    const nodes = Array.from({ length: 2000 }, (_, i) => `gpu-node-${String(i).padStart(5, "0")}.cluster.example.com`);
    const files = {
      certFile: "/etc/nats-tls/tls.crt",
      keyFile: "/etc/nats-tls/tls.key",
      caFile: "/etc/nats-tls/ca.crt",
    };
    expect(Buffer.byteLength(renderNatsAuthorization({ nodes }, files))).toBeLessThan(NATS_AUTHORIZATION_MAX_BYTES);
  });

  it("is the same text for the same input", () => {
    expect(
      renderNatsAuthorization(
        { nodes: ["node-a"] },
        { certFile: "/etc/nats/tls/tls.crt", keyFile: "/etc/nats/tls/tls.key", caFile: "/etc/nats/tls/ca.crt" },
      ),
    ).toBe(text);
  });
});

describe("natsCredentialOptions", () => {
  it("adds nothing without a certificate folder", () => {
    expect(natsCredentialOptions("", natsIdentity(NatsRole.gateway))).toEqual({});
  });

  it("points nats.js at the folder's files and the identity's inbox prefix", () => {
    expect(natsCredentialOptions("/etc/gpufleet/nats-tls", natsIdentity(NatsRole.agent, "node-a"))).toEqual({
      tls: {
        caFile: "/etc/gpufleet/nats-tls/ca.crt",
        certFile: "/etc/gpufleet/nats-tls/tls.crt",
        keyFile: "/etc/gpufleet/nats-tls/tls.key",
      },
      inboxPrefix: "_INBOX.agent.node-a",
    });
  });
});
