/**
 * The chart's PrometheusRule (charts/gpufleet/templates/prometheusrule.yaml, `alerts.enabled`) and the operator's
 * PodDisruptionBudget: rendered with `helm template`, the rules checked and unit-tested by Prometheus' own
 * `promtool` (each alert fires on series that should fire it, with its annotations rendered, and stays quiet on
 * healthy ones), every metric an alert reads declared in operator/src/metrics.ts or agent/src/metrics.ts, and
 * every alert linked to its page under docs/runbooks/.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { REPO_ROOT } from "../../support/paths.js";
import { CHART_DIR, helmBinary, run } from "./tools.js";

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

const RUNBOOKS = "https://github.com/gpufleet/gpufleet/blob/main/docs/runbooks";
let helm: string;
let dir: string;

beforeAll(async () => {
  helm = await helmBinary();
  dir = await mkdtemp(path.join(tmpdir(), "gpufleet-alerts-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function render(args: string[] = []): Promise<Manifest[]> {
  const result = await run(helm, ["template", "gpf", CHART_DIR, "--namespace", "gpufleet-system", ...args]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

async function rules(args: string[] = []): Promise<Rule[]> {
  const [rule] = (await render(["--set", "alerts.enabled=true", ...args])).filter((m) => m.kind === "PrometheusRule");
  expect(rule).toBeDefined();
  return (rule!.spec.groups as { rules: Rule[] }[]).flatMap((g) => g.rules);
}

async function promtool(args: string[]) {
  return run("promtool", args);
}

describe("PrometheusRule", () => {
  it("is not rendered unless alerts.enabled (it needs prometheus-operator's CRD)", async () => {
    expect((await render()).map((m) => m.kind)).not.toContain("PrometheusRule");
  });

  it("has the alerts the runbooks describe, each linked to its runbook page", async () => {
    const all = await rules();
    expect(all.map((r) => r.alert).sort()).toEqual([
      "GpufleetAgentTelemetryDropped",
      "GpufleetComponentIsolated",
      "GpufleetOperatorLeaderFlapping",
      "GpufleetOperatorNoLeader",
      "GpufleetServingSloAttainmentLow",
      "GpufleetTelemetryLag",
    ]);
    for (const r of all) {
      expect(r.annotations.runbook_url).toBe(`${RUNBOOKS}/${r.alert}.md`);
      expect(existsSync(path.join(REPO_ROOT, "docs/runbooks", `${r.alert}.md`)), `docs/runbooks/${r.alert}.md`).toBe(
        true,
      );
      expect(r.labels.severity).toMatch(/^(warning|critical)$/);
    }
  });

  it("reads only metrics the operator's or the agent's registry declares", async () => {
    const sources = await Promise.all(
      ["operator/src/metrics.ts", "agent/src/metrics.ts"].map((f) => readFile(path.join(REPO_ROOT, f), "utf8")),
    );
    for (const r of await rules()) {
      const names = [...new Set(r.expr.match(/gpufleet_[a-z0-9_]+/g) ?? [])];
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const name of names) {
        const base = name.replace(/_(bucket|sum|count)$/, "");
        expect(
          sources.some((s) => s.includes(`name: "${base}"`)),
          `${r.alert}: ${name}`,
        ).toBe(true);
      }
    }
  });

  it("takes thresholds, labels and the runbook base from values", async () => {
    const all = await rules([
      "--set",
      "alerts.telemetryLag.pendingMessages=500",
      "--set",
      "alerts.runbookBaseUrl=https://runbooks.example/gpufleet/",
      "--set",
      "alerts.alertLabels.team=ml-infra",
    ]);
    const lag = all.find((r) => r.alert === "GpufleetTelemetryLag")!;
    expect(lag.expr).toContain("> 500");
    expect(lag.annotations.runbook_url).toBe("https://runbooks.example/gpufleet/GpufleetTelemetryLag.md");
    for (const r of all) expect(r.labels.team).toBe("ml-infra");
  });

  it("passes promtool check rules", async () => {
    const file = path.join(dir, "check.yml");
    await writeFile(file, stringify({ groups: [{ name: "gpufleet", rules: await rules() }] }));
    const result = await promtool(["check", "rules", file]);
    expect(result.stdout + result.stderr).toMatch(/SUCCESS: 6 rules found/);
    expect(result.code).toBe(0);
  });

  // promtool evaluates the rules over synthetic series, 1-minute steps; an expected alert must match labels and
  // rendered annotations exactly, and `exp_alerts: []` means the alert must not fire.
  it("fires each alert on series that should fire it, and not on healthy ones (promtool test rules)", async () => {
    await writeFile(path.join(dir, "rules.yml"), stringify({ groups: [{ name: "gpufleet", rules: await rules() }] }));
    const url = (alert: string) => `${RUNBOOKS}/${alert}.md`;
    const slo = (ratio: string) =>
      `gpufleet_operator_serving_slo_attainment_ratio{namespace="llm",name="chat",role="${ratio}"`;
    const tests = {
      rule_files: ["rules.yml"],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          input_series: [
            { series: `${slo("decode")},slo="tpot"}`, values: "0.5x20" },
            { series: `${slo("prefill")},slo="ttft"}`, values: "0.95x20" },
            {
              series: 'gpufleet_operator_serving_slo_target_ratio{namespace="llm",name="chat",pod="operator-a"}',
              values: "0.9x20",
            },
            {
              series: 'gpufleet_operator_serving_slo_target_ratio{namespace="llm",name="chat",pod="operator-b"}',
              values: "0.9x20",
            },
          ],
          alert_rule_test: [
            { eval_time: "5m", alertname: "GpufleetServingSloAttainmentLow", exp_alerts: [] }, // pending, not yet for 10m
            {
              eval_time: "15m",
              alertname: "GpufleetServingSloAttainmentLow",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", namespace: "llm", name: "chat", role: "decode", slo: "tpot" },
                  exp_annotations: {
                    summary: "llm/chat: TPOT SLO met by 50% of decode reports",
                    description:
                      "ServingDeployment llm/chat's decode instances meet the TPOT target in 50% of recent busy load reports, below the SLO's attainment target.",
                    runbook_url: url("GpufleetServingSloAttainmentLow"),
                  },
                },
              ],
            },
          ],
        },
        {
          interval: "1m",
          input_series: [{ series: 'gpufleet_operator_training_isolations_total{target="node"}', values: "0x10 1x30" }],
          alert_rule_test: [
            { eval_time: "9m", alertname: "GpufleetComponentIsolated", exp_alerts: [] },
            {
              eval_time: "15m",
              alertname: "GpufleetComponentIsolated",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", target: "node" },
                  exp_annotations: {
                    summary: "Fault detection isolated 1 node(s) in the last 15m",
                    description:
                      "C4D blamed a component of a training gang and the operator isolated it: a node tainted gpufleet.io/isolated, or a NIC marked with the node condition NicDegraded-<nic>. The job's FaultDetected condition and Events say which and why.",
                    runbook_url: url("GpufleetComponentIsolated"),
                  },
                },
              ],
            },
            { eval_time: "39m", alertname: "GpufleetComponentIsolated", exp_alerts: [] }, // no isolation for 15m
          ],
        },
        {
          interval: "1m",
          input_series: [
            {
              series: 'gpufleet_operator_telemetry_consumer_pending_messages{stream="collectives",state="pending"}',
              values: "20000x20",
            },
            {
              series: 'gpufleet_operator_telemetry_consumer_pending_messages{stream="collectives",state="ack_pending"}',
              values: "900000x20",
            },
            {
              series: 'gpufleet_operator_telemetry_consumer_pending_messages{stream="load",state="pending"}',
              values: "10x20",
            },
          ],
          alert_rule_test: [
            {
              eval_time: "15m",
              alertname: "GpufleetTelemetryLag",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", stream: "collectives" },
                  exp_annotations: {
                    summary: "Operator is 20k messages behind telemetry stream collectives",
                    description:
                      "The operator's JetStream consumer has not been delivered this many messages of the stream: fault detection and scheduling work from old telemetry.",
                    runbook_url: url("GpufleetTelemetryLag"),
                  },
                },
              ],
            },
          ],
        },
        {
          interval: "1m",
          input_series: [
            {
              series: 'gpufleet_agent_telemetry_dropped_total{node="n1",stream="collectives",reason="buffer_full"}',
              values: "0x5 40x20",
            },
            {
              series: 'gpufleet_agent_telemetry_dropped_total{node="n2",stream="collectives",reason="shutdown"}',
              values: "3x25",
            },
          ],
          alert_rule_test: [
            {
              eval_time: "12m",
              alertname: "GpufleetAgentTelemetryDropped",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", reason: "buffer_full" },
                  exp_annotations: {
                    summary: "Agents dropped 40 telemetry items (buffer_full) in the last 15m",
                    description:
                      "Node agents dropped telemetry before JetStream stored it; C4D and the scheduler miss those records.",
                    runbook_url: url("GpufleetAgentTelemetryDropped"),
                  },
                },
              ],
            },
          ],
        },
        {
          interval: "1m",
          input_series: [
            // Two replicas trading the Lease every 4 minutes, then settling.
            {
              series: 'gpufleet_operator_leader{pod="operator-a"}',
              values: "1 1 1 1 0 0 0 0 1 1 1 1 0 0 0 0 1 1 1 1 0 0 0 0 1x60",
            },
            {
              series: 'gpufleet_operator_leader{pod="operator-b"}',
              values: "0 0 0 0 1 1 1 1 0 0 0 0 1 1 1 1 0 0 0 0 1 1 1 1 0x60",
            },
          ],
          alert_rule_test: [
            {
              eval_time: "25m",
              alertname: "GpufleetOperatorLeaderFlapping",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning" },
                  exp_annotations: {
                    summary: "Operator leadership changed 12 times in 30m",
                    description:
                      "gpufleet_operator_leader flipped this often across the operator replicas: replicas lose the Lease (API server latency, restarts, renewDeadlineMs too tight).",
                    runbook_url: url("GpufleetOperatorLeaderFlapping"),
                  },
                },
              ],
            },
            { eval_time: "70m", alertname: "GpufleetOperatorLeaderFlapping", exp_alerts: [] },
            { eval_time: "25m", alertname: "GpufleetOperatorNoLeader", exp_alerts: [] },
          ],
        },
        {
          interval: "1m",
          input_series: [
            { series: 'gpufleet_operator_leader{pod="operator-a"}', values: "1x5 0x20" },
            { series: 'gpufleet_operator_leader{pod="operator-b"}', values: "0x25" },
          ],
          alert_rule_test: [
            { eval_time: "8m", alertname: "GpufleetOperatorNoLeader", exp_alerts: [] },
            {
              eval_time: "15m",
              alertname: "GpufleetOperatorNoLeader",
              exp_alerts: [
                {
                  exp_labels: { severity: "critical" },
                  exp_annotations: {
                    summary: "No gpufleet operator replica is leading",
                    description:
                      "No scraped operator replica reports gpufleet_operator_leader 1: no controller reconciles, no fault is acted on.",
                    runbook_url: url("GpufleetOperatorNoLeader"),
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    const file = path.join(dir, "tests.yml");
    await writeFile(file, stringify(tests));
    const result = await promtool(["test", "rules", file]);
    expect(result.stdout + result.stderr).toMatch(/SUCCESS/);
    expect(result.code).toBe(0);
  });
});

describe("operator PodDisruptionBudget", () => {
  it("keeps one of the two default replicas through voluntary disruptions, selecting exactly the operator's pods", async () => {
    const manifests = await render();
    const pdbs = manifests.filter((m) => m.kind === "PodDisruptionBudget");
    expect(pdbs.map((p) => p.metadata.name)).toEqual(["gpf-gpufleet-operator"]);
    const operator = manifests.find((m) => m.kind === "Deployment" && m.metadata.name === "gpf-gpufleet-operator")!;
    expect(pdbs[0]!.spec).toEqual({
      minAvailable: 1,
      selector: { matchLabels: (operator.spec.selector as { matchLabels: Record<string, string> }).matchLabels },
    });
  });

  it("is not rendered for a single replica (it would block every drain of its node) or when disabled", async () => {
    const single = await render(["--set", "operator.leaderElection.enabled=false", "--set", "operator.replicas=1"]);
    expect(single.map((m) => m.kind)).not.toContain("PodDisruptionBudget");
    const off = await render(["--set", "operator.podDisruptionBudget.enabled=false"]);
    expect(off.map((m) => m.kind)).not.toContain("PodDisruptionBudget");
  });
});
