/**
 * The gpufleet CLI against the real local cluster (kwok nodes of the default profile) and the operator running in
 * this process: `gpufleet plan` on the default profile and on the live cluster, for the sample resources in
 * examples/, agrees with what the operator then writes to their status; `explain` tells their story from status,
 * conditions and Events; `top` reads the operator's /metrics. The CLI runs as a user runs it: its bin, a child
 * process, KUBECONFIG in the environment.
 *
 * The CLI plans in seconds to tens of seconds (the planner simulates thousands of requests), so the tests are given
 * minutes; they assert what is planned, never how fast.
 *
 * Profile and live plans are compared with status only when the cluster is as the profile describes it (no other
 * test's pods holding GPUs of the model); the live plan always (it sees what the operator sees).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { ServingDeployment } from "../../../crds/src/serving-deployment.js";
import type { TrainingJob } from "../../../crds/src/training-job.js";
import { summarizeCapacity } from "../../../operator/src/cluster/capacity.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl, run, type RunResult } from "../../support/kubectl.js";
import { startInProcessOperator } from "../../support/operator.js";
import { REPO_ROOT } from "../../support/paths.js";

let cluster: TestCluster;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let operator: OperatorHandle | undefined;
const work = mkdtempSync(path.join(tmpdir(), "gpufleet-cli-"));

beforeAll(async () => {
  cluster = testCluster();
  ({ core, customObjects: custom } = cluster);
  operator = await startInProcessOperator(cluster, "cli-it");
});

afterAll(async () => {
  await operator?.stop();
});

const BIN = path.join(REPO_ROOT, "cli", "bin", "gpufleet.mjs");
/** Set to a folder to keep the CLI's output of this run (docs/cli.md quotes one). */
const TRANSCRIPTS = process.env["GPUFLEET_CLI_TRANSCRIPT_DIR"];
const keep = (name: string, text: string) => TRANSCRIPTS && writeFileSync(path.join(TRANSCRIPTS, name), text);
const gpufleet = (args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN, ...args], { env: { KUBECONFIG: cluster.kubeconfigPath } });

async function gpufleetJson<T>(args: string[]): Promise<T> {
  const r = await gpufleet([...args, "-o", "json"]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** The examples/ file's documents, moved to `namespace`, written to a file of their own. */
function sampleIn(file: string, namespace: string): { path: string; objects: Record<string, unknown>[] } {
  const objects = parseAllDocuments(readFileSync(path.join(REPO_ROOT, "examples", file), "utf8")).map(
    (d) => d.toJS() as Record<string, unknown>,
  );
  for (const o of objects) (o.metadata as Record<string, unknown>).namespace = namespace;
  const out = path.join(work, `${namespace}-${file}`);
  writeFileSync(out, objects.map((o) => stringify(o)).join("---\n"));
  return { path: out, objects };
}

/**
 * The free GPUs of every `gpuModel` node, leaving out `exceptNamespace`'s pods: other test files run beside this one,
 * so the live plan and the operator's placement are compared only when this fingerprint did not change between them.
 */
async function occupancy(gpuModel: string, exceptNamespace: string): Promise<string> {
  const [nodes, pods] = await Promise.all([core.listNode(), core.listPodForAllNamespaces()]);
  const others = pods.items.filter((p) => p.metadata?.namespace !== exceptNamespace);
  return summarizeCapacity(nodes.items, others)
    .nodes.filter((n) => n.gpuModel === gpuModel)
    .map((n) => `${n.nodeName}:${n.schedulable ? n.gpusFree : "x"}`)
    .sort()
    .join(",");
}

/** Whether every schedulable node of `gpuModel` has all its GPUs free, as a fresh profile cluster does. */
async function clusterIsPristine(gpuModel: string): Promise<boolean> {
  const [nodes, pods] = await Promise.all([core.listNode(), core.listPodForAllNamespaces()]);
  return summarizeCapacity(nodes.items, pods.items)
    .nodes.filter((n) => n.gpuModel === gpuModel)
    .every((n) => n.schedulable && n.gpusFree === n.gpusAllocatable);
}

const get = async <T>(plural: string, namespace: string, name: string): Promise<T> =>
  (await custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural, namespace, name })) as T;

interface ServingPreviewJson {
  name: string;
  plan?: NonNullable<ServingDeployment["status"]>["plan"];
  planSummary?: string;
  alternatives: { kind: string }[];
  bounds: { limit: string }[];
  gpuProfile?: { gpuModel: string };
}
interface TrainingPreviewJson {
  name: string;
  placement?: NonNullable<TrainingJob["status"]>["placement"];
  planSummary?: string;
  ncclGroups: { nodes: string[]; env: Record<string, string> }[];
}

describe("gpufleet plan / explain / top on the samples", () => {
  it("plans the sample TrainingJob as the operator places it, and explains it", async () => {
    const ns = await cluster.freshNamespace("cli-tj");
    const sample = sampleIn("gpt-7b-holmes.yaml", ns);
    const pristine = await clusterIsPristine("H100-80GB");
    const occupancyAtPlan = await occupancy("H100-80GB", ns);
    const [fromProfile, live] = await Promise.all([
      gpufleetJson<TrainingPreviewJson>(["plan", "-f", sample.path]),
      gpufleetJson<TrainingPreviewJson>(["plan", "-f", sample.path, "--live"]),
    ]);
    expect(fromProfile.placement?.islands).toEqual(["ib-a"]);

    const applied = await kubectl(cluster.kubeconfigPath, ["apply", "-f", sample.path]);
    expect(applied.code, applied.stderr).toBe(0);
    const job = await waitFor(
      async () => {
        const j = await get<TrainingJob>("trainingjobs", ns, "gpt-7b");
        return j.status?.placement ? j : undefined;
      },
      { description: "status.placement of the sample TrainingJob", timeoutMs: 120_000 },
    );
    if ((await occupancy("H100-80GB", ns)) === occupancyAtPlan) {
      expect(job.status!.placement).toEqual(live.placement);
      expect(job.status!.planSummary).toBe(live.planSummary);
    } else console.warn("other tests' pods moved between the live plan and the placement: the two are not compared");
    if (pristine) expect(job.status!.placement).toEqual(fromProfile.placement);
    else console.warn("other pods hold H100 GPUs: the profile placement is not compared with the operator's");

    const explained = await waitFor(
      async () => {
        const r = await gpufleet(["explain", "tj/gpt-7b", "-n", ns]);
        return r.code === 0 && /Placed/.test(r.stdout) && /EVENTS \(oldest first\)/.test(r.stdout)
          ? r.stdout
          : undefined;
      },
      { description: "explain tj/gpt-7b with its Placed Event", timeoutMs: 60_000 },
    );
    keep("explain-tj.txt", explained);
    expect(explained).toContain(`TrainingJob ${ns}/gpt-7b:`);
    expect(explained).toContain(`WHY THIS PLACEMENT  ${job.status!.planSummary}`);
    // The island is the operator's choice on the live cluster (ib-a unless other tests' pods hold its GPUs).
    const island = job.status!.placement!.islands!.join(", ");
    expect(explained).toMatch(new RegExp(`Normal\\s+Placed\\s+placed 4 pods on 1 island\\(s\\) \\(${island}\\)`));

    const top = await waitFor(
      async () => {
        const v = await gpufleetJson<{ training: { namespace: string; name: string; predictedStepMs?: number }[] }>([
          "top",
          "--metrics-url",
          `http://127.0.0.1:${operator!.httpPort}/metrics`,
        ]);
        return v.training.find((t) => t.namespace === ns && t.name === "gpt-7b" && t.predictedStepMs !== undefined);
      },
      { description: "gpt-7b in gpufleet top", timeoutMs: 30_000 },
    );
    expect(top.predictedStepMs).toBeCloseTo(job.status!.placement!.predictedStepMs, 0);

    // Free the GPUs for the serving samples.
    await custom.deleteNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: "trainingjobs",
      namespace: ns,
      name: "gpt-7b",
    });
    await waitFor(
      async () => ((await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined),
      { description: "the gang's pods gone", timeoutMs: 120_000 },
    );
  }, 600_000);

  it("plans the sample ServingDeployments as the operator plans them, and explains them", async () => {
    const ns = await cluster.freshNamespace("cli-sd");
    const chat = sampleIn("llama3-8b-chatbot.yaml", ns);
    const disagg = sampleIn("llama31-8b-disaggregated.yaml", ns);
    const both = path.join(work, `${ns}-samples.yaml`);
    writeFileSync(both, [...chat.objects, ...disagg.objects].map((o) => stringify(o)).join("---\n"));
    const pristine = await clusterIsPristine("H100-80GB");
    const [fromProfile, live] = await Promise.all([
      gpufleetJson<ServingPreviewJson[]>(["plan", "-f", both]),
      gpufleetJson<ServingPreviewJson[]>(["plan", "-f", both, "--live"]),
    ]);
    expect(fromProfile.map((p) => p.name)).toEqual(["llama3-8b-chat", "llama31-8b-disagg"]);
    for (const p of fromProfile) {
      expect(p.alternatives.map((a) => a.kind)).toEqual(["disaggregated", "vllm", "chunked"]);
      expect(p.bounds.map((b) => b.limit)).toEqual(["SLO", "memory", "capacity"]);
      expect(p.gpuProfile?.gpuModel).toBe("H100-80GB");
    }

    // One at a time, so each is planned on the cluster the CLI saw (the first one's pods would change the second's).
    for (const [i, sample] of [chat, disagg].entries()) {
      const name = (sample.objects[0]!.metadata as { name: string }).name;
      const livePlan =
        i === 0 ? live[0]! : await gpufleetJson<ServingPreviewJson>(["plan", "-f", sample.path, "--live"]);
      const applied = await kubectl(cluster.kubeconfigPath, ["apply", "-f", sample.path]);
      expect(applied.code, applied.stderr).toBe(0);
      const sd = await waitFor(
        async () => {
          const s = await get<ServingDeployment>("servingdeployments", ns, name);
          return s.status?.plan && s.status.conditions?.some((c) => c.type === "Planned" && c.status === "True")
            ? s
            : undefined;
        },
        { description: `status.plan of ${name}`, timeoutMs: 180_000 },
      );
      expect(sd.status!.plan).toEqual(livePlan.plan);
      expect(sd.status!.planSummary).toBe(livePlan.planSummary);
      if (pristine && i === 0) expect(sd.status!.plan).toEqual(fromProfile[0]!.plan);
      if (!pristine) console.warn("other pods hold H100 GPUs: the profile plans are not compared with the operator's");

      const explained = await gpufleet(["explain", `sd/${name}`, "-n", ns]);
      expect(explained.code, explained.stderr).toBe(0);
      keep(`explain-${name}.txt`, explained.stdout);
      expect(explained.stdout).toContain(`WHY THIS PLAN  ${sd.status!.planSummary}`);
      expect(explained.stdout).toMatch(/Planned\s+True/);
      for (const part of sd.status!.plan!.explanation!.split("; ")) expect(explained.stdout).toContain(`  - ${part}`);
    }
    // The disaggregated sample on the profile: the operator's plan for it, given the chatbot's pods beside it, is
    // the profile plan whenever the chatbot's GPUs do not change what it can use (64 H100s, a few taken).
    const disaggSd = await get<ServingDeployment>("servingdeployments", ns, "llama31-8b-disagg");
    if (pristine) expect(disaggSd.status!.plan).toEqual(fromProfile[1]!.plan);

    const top = await waitFor(
      async () => {
        const v = await gpufleetJson<{ serving: { namespace: string; name: string; goodputPerGpu?: number }[] }>([
          "top",
          "--metrics-url",
          `http://127.0.0.1:${operator!.httpPort}/metrics`,
        ]);
        const rows = v.serving.filter((s) => s.namespace === ns);
        return rows.length === 2 ? rows : undefined;
      },
      { description: "both samples in gpufleet top", timeoutMs: 30_000 },
    );
    expect(top.find((r) => r.name === "llama31-8b-disagg")?.goodputPerGpu).toBeCloseTo(
      disaggSd.status!.plan!.goodputPerGpu,
      6,
    );
    if (TRANSCRIPTS)
      keep(
        "top.txt",
        (await gpufleet(["top", "--metrics-url", `http://127.0.0.1:${operator!.httpPort}/metrics`])).stdout,
      );
  }, 900_000);

  it("refuses a bad file naming the field, and a missing resource, with exit code 2", async () => {
    const bad = path.join(work, "bad.yaml");
    writeFileSync(
      bad,
      readFileSync(path.join(REPO_ROOT, "examples", "llama3-8b-chatbot.yaml"), "utf8").replace(
        "ttftMs: 250",
        "ttftMs: fast",
      ),
    );
    const r = await gpufleet(["plan", "-f", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml: spec\.slo\.ttftMs expected number \(got "fast"\)/);
    const missing = await gpufleet(["explain", "sd/nope", "-n", "default"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("ServingDeployment default/nope: not found");
  }, 300_000);
});
