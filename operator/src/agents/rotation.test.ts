import { describe, expect, it } from "vitest";
import type { CertificateFacts } from "./pki.js";
import { wantedLeaves } from "./certificates.js";
import { nextCheckAtMs, planCertificates, type Observed } from "./rotation.js";

const DAY = 86_400_000;
const policy = {
  renewAtFraction: 2 / 3,
  leaves: wantedLeaves({ agentDnsNames: ["gpufleet-agent"], natsServerDnsNames: [] }),
};
const withNats = {
  renewAtFraction: 2 / 3,
  leaves: wantedLeaves({ agentDnsNames: ["gpufleet-agent"], natsServerDnsNames: ["gpufleet-nats"] }),
};
const valid = (patch: Partial<CertificateFacts> = {}): CertificateFacts => ({
  notBeforeMs: 0,
  notAfterMs: 30 * DAY,
  signedByCa: true,
  dnsNames: [],
  keyMatches: true,
  ...patch,
});
const healthy = (): Record<"ca" | "agent" | "operator", Observed> => ({
  ca: valid({ notAfterMs: 3650 * DAY }),
  agent: valid({ dnsNames: ["gpufleet-agent"] }),
  operator: valid({ notBeforeMs: 3 * DAY, notAfterMs: 33 * DAY }), // issued later: due later
});

describe("planCertificates", () => {
  it("issues everything on a fresh install", () => {
    expect(planCertificates({ ca: undefined, agent: undefined, operator: undefined }, 0, policy)).toEqual([
      { role: "ca", reason: "missing" },
      { role: "agent", reason: "missing" },
      { role: "operator", reason: "missing" },
    ]);
  });

  it("leaves valid certificates alone before 2/3 of their lifetime", () => {
    expect(planCertificates(healthy(), 20 * DAY - 1, policy)).toEqual([]);
  });

  it.each([
    {
      name: "past 2/3 of its lifetime",
      patch: { agent: valid({ dnsNames: ["gpufleet-agent"] }) },
      nowMs: 20 * DAY,
      reason: /past 67%/,
    },
    {
      name: "expired",
      patch: { agent: valid({ dnsNames: ["gpufleet-agent"], notAfterMs: DAY }) },
      nowMs: 2 * DAY,
      reason: /expired/,
    },
    {
      name: "signed by another CA",
      patch: { agent: valid({ dnsNames: ["gpufleet-agent"], signedByCa: false }) },
      nowMs: DAY,
      reason: /current CA/,
    },
    { name: "with the wrong names", patch: { agent: valid({ dnsNames: ["old-name"] }) }, nowMs: DAY, reason: /differ/ },
    {
      name: "with a key of another certificate",
      patch: { agent: valid({ dnsNames: ["gpufleet-agent"], keyMatches: false }) },
      nowMs: DAY,
      reason: /key/,
    },
    { name: "unreadable", patch: { agent: new Error("bad PEM") }, nowMs: DAY, reason: /unreadable: bad PEM/ },
  ])("re-issues only the agent certificate when it is $name", ({ patch, nowMs, reason }) => {
    const decisions = planCertificates({ ...healthy(), ...patch }, nowMs, policy);
    expect(decisions).toHaveLength(1);
    expect(decisions[0]).toMatchObject({ role: "agent", reason: expect.stringMatching(reason) });
  });

  it("re-issues the CA and every leaf when the CA is due", () => {
    const decisions = planCertificates({ ...healthy(), ca: valid({ notAfterMs: 3 * DAY }) }, 2 * DAY + 1, policy);
    expect(decisions).toEqual([
      { role: "ca", reason: "past 67% of its lifetime" },
      { role: "agent", reason: "the CA is re-issued" },
      { role: "operator", reason: "the CA is re-issued" },
    ]);
  });

  it("keeps the nats-server and gateway certificates only with NATS authorization, under the same rules", () => {
    const fresh = { ca: undefined, agent: undefined, operator: undefined };
    expect(planCertificates(fresh, 0, withNats).map((d) => d.role)).toEqual([
      "ca",
      "agent",
      "operator",
      "nats-server",
      "gateway",
    ]);
    const nats = { ...healthy(), "nats-server": valid({ dnsNames: ["gpufleet-nats"] }), gateway: valid() };
    expect(planCertificates(nats, DAY, withNats)).toEqual([]);
    expect(planCertificates(healthy(), DAY, withNats)).toEqual([
      { role: "nats-server", reason: "missing" },
      { role: "gateway", reason: "missing" },
    ]);
    expect(planCertificates({ ...nats, "nats-server": valid({ dnsNames: ["old"] }) }, DAY, withNats)[0]).toMatchObject({
      role: "nats-server",
      reason: expect.stringMatching(/differ/),
    });
    // Without it, their Secrets are not looked at.
    expect(planCertificates(healthy(), DAY, policy)).toEqual([]);
  });

  it("names the client certificates as their NATS identities", () => {
    const names = Object.fromEntries(withNats.leaves.map((l) => [l.role, [l.commonName, l.usage, l.dnsNames]]));
    expect(names).toEqual({
      agent: ["gpufleet-agent", "server", ["gpufleet-agent"]],
      operator: ["gpufleet-operator", "client", []],
      "nats-server": ["gpufleet-nats", "server", ["gpufleet-nats"]],
      gateway: ["gpufleet-gateway", "client", []],
    });
  });

  it("schedules the next check at the earliest renewal, bounded by the maximum interval", () => {
    // the agent certificate, before the operator one (23 days)
    expect(nextCheckAtMs(healthy(), DAY, policy, 100 * DAY)).toBe(20 * DAY);
    expect(nextCheckAtMs(healthy(), DAY, policy, 3600_000)).toBe(DAY + 3600_000);
  });
});
