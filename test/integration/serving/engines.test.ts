/**
 * A ServingDeployment with spec.engine.kind vllm or sglang on the local cluster (kwok nodes, the operator in this
 * process): the API server takes the field and refuses an unknown kind at apply; the operator's pods carry the
 * engine's rendered serve command per role and the load adapter beside each leader, and the API server accepts
 * those pods (downward-API env, shell command). The command of every pod is the one `gpufleet plan --live` showed
 * before the apply. No engine runs: kwok pods have no containers.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { commandLine } from "../../../operator/src/serving/engines/render.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl, run } from "../../support/kubectl.js";
import { startInProcessOperator } from "../../support/operator.js";
import { REPO_ROOT } from "../../support/paths.js";

let cluster: TestCluster;
let core: CoreV1Api;
let operator: OperatorHandle | undefined;
const work = mkdtempSync(path.join(tmpdir(), "gpufleet-engines-"));

beforeAll(async () => {
  cluster = testCluster();
  core = cluster.core;
  operator = await startInProcessOperator(cluster, "engines-it");
});

afterAll(async () => {
  await operator?.stop();
});

/** The disaggregated sample in `namespace` with the given engine kind (and image), written to a file. */
function sample(namespace: string, kind: string, image: string): string {
  const doc = parse(readFileSync(path.join(REPO_ROOT, "examples", "llama31-8b-disaggregated.yaml"), "utf8")) as {
    metadata: Record<string, unknown>;
    spec: { engine: Record<string, unknown> };
  };
  doc.metadata.namespace = namespace;
  doc.spec.engine = { ...doc.spec.engine, kind, image };
  const file = path.join(work, `${namespace}-${kind}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

const containerNames = (p: V1Pod) => p.spec!.containers.map((c) => c.name);

describe("ServingDeployment with a real engine kind", () => {
  it("refuses an unknown engine kind at apply", async () => {
    const namespace = await cluster.freshNamespace("eng-bad");
    const applied = await kubectl(cluster.kubeconfigPath, [
      "apply",
      "-f",
      sample(namespace, "tgi", "ghcr.io/huggingface/text-generation-inference:3"),
    ]);
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toMatch(
      /spec\.engine\.kind: Unsupported value: "tgi": supported values: "reference", "vllm", "sglang"/,
    );
  });

  it.each([
    ["vllm", "vllm/vllm-openai:v0.11.0", "vllm", /--kv-transfer-config/],
    ["sglang", "lmsysorg/sglang:v0.5.3", "python3", /--disaggregation-mode (prefill|decode)/],
  ])(
    "runs %s pods with the rendered command and the load adapter, as gpufleet plan showed",
    async (kind, image, program, disaggFlag) => {
      const namespace = await cluster.freshNamespace(`eng-${kind}`);
      const file = sample(namespace, kind, image);
      const planned = await run(
        process.execPath,
        [path.join(REPO_ROOT, "cli/bin/gpufleet.mjs"), "plan", "-f", file, "--live", "-o", "json"],
        { env: { KUBECONFIG: cluster.kubeconfigPath } },
      );
      expect(planned.code, planned.stderr).toBe(0);
      const preview = JSON.parse(planned.stdout) as { engineCommands: { role: string; command: string }[] };
      expect(preview.engineCommands.map((c) => c.role).sort()).toEqual(["decode", "prefill"]);

      const applied = await kubectl(cluster.kubeconfigPath, ["apply", "-f", file]);
      expect(applied.code, applied.stderr).toBe(0);
      const pods = await waitFor(
        async () => {
          const list = (
            await core.listNamespacedPod({
              namespace,
              labelSelector: "gpufleet.io/serving-deployment=llama31-8b-disagg",
            })
          ).items;
          return list.length === 2 ? list : undefined;
        },
        { description: `the ${kind} deployment's pods`, timeoutMs: 180_000 },
      );

      for (const pod of pods) {
        const role = pod.metadata!.labels!["gpufleet.io/role"]!;
        const [engine, adapter] = pod.spec!.containers;
        expect(containerNames(pod)).toEqual(["engine", "engine-adapter"]);
        expect(engine!.image).toBe(image);
        expect(engine!.command).toEqual([program]);
        expect(engine!.args!.join(" ")).toMatch(disaggFlag);
        expect(commandLine({ command: engine!.command!, args: engine!.args!, env: [] })).toBe(
          preview.engineCommands.find((c) => c.role === role)!.command,
        );
        const adapterEnv = Object.fromEntries(
          adapter!.env!.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
        );
        expect(adapterEnv).toMatchObject({
          GPUFLEET_ENGINE_KIND: kind,
          GPUFLEET_ROLE: role,
          GPUFLEET_ENGINE_METRICS_URL: "http://127.0.0.1:8000/metrics",
          POD_UID: "metadata.uid",
          NODE_NAME: "spec.nodeName",
        });
      }
    },
    600_000,
  );
});
