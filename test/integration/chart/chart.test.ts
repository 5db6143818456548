/**
 * The Helm chart (charts/gpufleet) as a user meets it: `helm lint`, `helm template` with default values, the
 * rendered manifests accepted by the real API server, the RBAC it grants (and what it does not), values rejected by
 * values.schema.json with a message naming the key, and every PromQL expression of the Grafana dashboards run by a
 * real Prometheus scraping a running operator and a running gateway that served traffic from simulated instances.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { KubernetesObjectApi } from "@kubernetes/client-node";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import { REPO_ROOT, installCrds, startOperatorProcess, type OperatorProcess } from "../../support/operator.js";
import { validServingDeployment, validTrainingJob, withField } from "../operator/fixtures.js";
import { startNatsServer, type NatsServer } from "../agent/nats-server.js";
import { startGatewayProcess, type GatewayProcess } from "../../support/gateway.js";
import { startSimulatedInstances, type SimulatedInstances } from "../../support/simulated-instances.js";
import { CHART_DIR, helmBinary, run, startPrometheus, type PrometheusProcess } from "./tools.js";
import { NATS_SERVER_TLS_DIR } from "../../../common/src/nats/authorization.js";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

let cluster: TestCluster;
let helm: string;

beforeAll(async () => {
  cluster = testCluster();
  helm = await helmBinary();
  await installCrds(cluster.kubeconfigPath);
});

async function template(release: string, namespace: string, args: string[] = []) {
  return run(helm, ["template", release, CHART_DIR, "--namespace", namespace, ...args]);
}

async function render(release: string, namespace: string, args: string[] = []): Promise<Manifest[]> {
  const result = await template(release, namespace, args);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

const find = (manifests: Manifest[], kind: string, nameSuffix = "") => {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name.endsWith(nameSuffix));
  expect(found, `${kind} *${nameSuffix}`).toHaveLength(1);
  return found[0]!;
};

type Container = {
  name: string;
  image?: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  livenessProbe?: { httpGet: { path: string } };
  readinessProbe?: { httpGet: { path: string } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
  resources?: Record<string, unknown>;
};
type PodSpec = {
  hostNetwork?: boolean;
  nodeSelector?: Record<string, string>;
  serviceAccountName: string;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string }; [source: string]: unknown }[];
};
const podSpec = (m: Manifest) => (m.spec as { template: { spec: PodSpec } }).template.spec;

describe("helm", () => {
  it("lints the chart cleanly (--strict)", async () => {
    const result = await run(helm, ["lint", "--strict", CHART_DIR]);
    expect(result.stdout + result.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(result.code).toBe(0);
  });

  it("ships CRDs identical to the generated crds/*.yaml", async () => {
    const generated = (await readdir(path.join(REPO_ROOT, "crds"))).filter((f) => f.endsWith(".yaml")).sort();
    const shipped = (await readdir(path.join(CHART_DIR, "crds"))).sort();
    expect(shipped).toEqual(generated);
    for (const file of generated) {
      const [a, b] = await Promise.all([
        readFile(path.join(REPO_ROOT, "crds", file), "utf8"),
        readFile(path.join(CHART_DIR, "crds", file), "utf8"),
      ]);
      expect(b, `charts/gpufleet/crds/${file} is stale: cp crds/*.yaml charts/gpufleet/crds/`).toBe(a);
    }
  });

  it("renders the default values into the expected objects", async () => {
    const manifests = await render("gpf", "gpufleet-system");
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "ClusterRoleBinding",
      "ConfigMap",
      "ConfigMap",
      "ConfigMap",
      "ConfigMap",
      "DaemonSet",
      "Deployment",
      "Deployment",
      "NetworkPolicy",
      "NetworkPolicy",
      "NetworkPolicy",
      "NetworkPolicy",
      "PodDisruptionBudget",
      "Role",
      "Role",
      "RoleBinding",
      "RoleBinding",
      "Service",
      "Service",
      "Service",
      "Service",
      "ServiceAccount",
      "ServiceAccount",
      "StatefulSet",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
    ]);

    const deployment = find(manifests, "Deployment", "-operator");
    expect(deployment.spec?.replicas).toBe(2);
    const operator = podSpec(deployment).containers[0]!;
    expect(operator.args).toEqual(["operator"]);
    const env = Object.fromEntries(
      (operator.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(env).toMatchObject({
      POD_NAME: "metadata.name",
      POD_NAMESPACE: "metadata.namespace",
      GPUFLEET_IDENTITY: "$(POD_NAME)",
      GPUFLEET_LEADER_ELECTION: "true",
      GPUFLEET_LEASE_NAME: "gpufleet-operator",
      GPUFLEET_HTTP_PORT: "8080",
    });
    // natsUrl empty: the in-chart NATS.
    expect(env.GPUFLEET_NATS_URL).toBe("nats://gpf-gpufleet-nats.gpufleet-system.svc:4222");
    // vLLM/SGLang pods' load-report adapter runs from the operator's own image.
    expect(operator.image).toMatch(/^gpufleet:/);
    expect(env.GPUFLEET_ENGINE_ADAPTER_IMAGE).toBe(operator.image);
    expect(operator.livenessProbe?.httpGet.path).toBe("/healthz");
    expect(operator.readinessProbe?.httpGet.path).toBe("/readyz");
    expect(operator.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(operator.resources).toMatchObject({ requests: { cpu: "100m", memory: "128Mi" } });

    const daemonSet = find(manifests, "DaemonSet", "-agent");
    const agentPod = podSpec(daemonSet);
    expect(agentPod.hostNetwork).toBe(false);
    expect(agentPod.nodeSelector).toEqual({ "nvidia.com/gpu.present": "true" });
    expect(agentPod.containers[0]?.args).toEqual(["agent"]);
    expect(agentPod.containers[0]?.volumeMounts).toContainEqual({
      name: "sys",
      mountPath: "/host/sys",
      readOnly: true,
    });
    expect(agentPod.volumes).toContainEqual({ name: "sys", hostPath: { path: "/sys", type: "Directory" } });
    expect(agentPod.serviceAccountName).not.toBe(podSpec(deployment).serviceAccountName);
    // mTLS on by default: the agent mounts the operator-issued Secret and advertises its pod IP; the operator knows
    // the Secrets' prefix and the worker socket directory it mounts into worker pods.
    const agentEnv = Object.fromEntries(
      (agentPod.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(agentEnv).toMatchObject({
      GPUFLEET_AGENT_TLS_DIR: "/etc/gpufleet/tls",
      POD_IP: "status.podIP",
      GPUFLEET_AGENT_ADVERTISE_HOST: "$(POD_IP)",
    });
    expect(agentEnv).not.toHaveProperty("GPUFLEET_AGENT_INSECURE");
    expect(agentPod.containers[0]?.volumeMounts).toContainEqual({
      name: "tls",
      mountPath: "/etc/gpufleet/tls",
      readOnly: true,
    });
    expect(agentPod.volumes).toContainEqual({
      name: "tls",
      secret: { secretName: "gpf-gpufleet-agent-tls", defaultMode: 0o440 },
    });
    expect(env).toMatchObject({
      GPUFLEET_CERT_SECRET_PREFIX: "gpf-gpufleet",
      GPUFLEET_AGENT_INSECURE: "false",
      GPUFLEET_WORKER_SOCKET_DIR: "/var/run/gpufleet",
    });

    const dashboards = manifests.filter((m) => m.kind === "ConfigMap");
    expect(
      dashboards
        .map((d) => Object.keys(d.data ?? {}))
        .flat()
        .sort(),
    ).toEqual(["fleet.json", "operator.json", "serving.json", "training.json"]);
    for (const d of dashboards) {
      expect(d.metadata.labels?.grafana_dashboard).toBe("1");
      const json = JSON.parse(Object.values(d.data ?? {})[0]!) as { title: string; panels: unknown[] };
      expect(json.panels.length).toBeGreaterThan(5);
    }
  });

  it("runs NATS with JetStream in the chart by default: one StatefulSet with its store on a PVC, a headless Service", async () => {
    const manifests = await render("gpf", "gpufleet-system");
    const statefulSet = find(manifests, "StatefulSet", "-nats");
    const spec = statefulSet.spec as {
      replicas: number;
      serviceName: string;
      volumeClaimTemplates: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[];
    };
    expect(spec.replicas).toBe(1);
    expect(spec.serviceName).toBe("gpf-gpufleet-nats");
    const nats = podSpec(statefulSet).containers[0]!;
    expect(nats.args).toEqual(["--jetstream", "--store_dir=/data", "--port=4222", "--http_port=8222"]);
    expect(nats.volumeMounts).toContainEqual({ name: "data", mountPath: "/data" });
    expect(nats.readinessProbe?.httpGet.path).toBe("/healthz?js-enabled-only=true");
    expect(nats.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    expect(spec.volumeClaimTemplates.map((t) => [t.metadata.name, t.spec.resources.requests.storage])).toEqual([
      ["data", "4Gi"],
    ]);
    const service = find(manifests, "Service", "-nats");
    expect(service.spec).toMatchObject({
      clusterIP: "None",
      ports: [
        { name: "client", port: 4222 },
        { name: "monitor", port: 8222 },
      ],
    });
    const agent = podSpec(find(manifests, "DaemonSet")).containers[0]!;
    expect(agent.env).toContainEqual({
      name: "GPUFLEET_NATS_URL",
      value: "nats://gpf-gpufleet-nats.gpufleet-system.svc:4222",
    });
  });

  it("runs without NATS (telemetry off) when nats.enabled=false and natsUrl is empty", async () => {
    // The gateway needs NATS, so it is turned off with it.
    const manifests = await render("gpf", "gpufleet-system", [
      "--set",
      "nats.enabled=false",
      "--set",
      "gateway.enabled=false",
    ]);
    expect(manifests.some((m) => m.kind === "StatefulSet")).toBe(false);
    const operator = podSpec(find(manifests, "Deployment", "-operator")).containers[0]!;
    expect(operator.env?.map((e) => e.name)).not.toContain("GPUFLEET_NATS_URL");
  });

  it("renders the optional parts when asked: NATS URL, ServiceMonitors, no agent", async () => {
    const manifests = await render("gpf", "gpufleet-system", [
      "--set",
      "natsUrl=nats://nats.gpufleet-system:4222",
      "--set",
      "nats.enabled=false",
      "--set",
      "metrics.serviceMonitor.enabled=true",
      "--set",
      "agent.enabled=false",
    ]);
    const operator = podSpec(find(manifests, "Deployment", "-operator")).containers[0]!;
    expect(operator.env).toContainEqual({ name: "GPUFLEET_NATS_URL", value: "nats://nats.gpufleet-system:4222" });
    expect(manifests.some((m) => m.kind === "StatefulSet")).toBe(false);
    expect(manifests.filter((m) => m.kind === "ServiceMonitor").map((m) => m.metadata.name)).toEqual([
      "gpf-gpufleet-operator",
    ]);
    expect(manifests.some((m) => m.kind === "DaemonSet")).toBe(false);
  });

  it("renders the gateway when enabled: Deployment running `gateway` with NATS, probes, no API token; Service", async () => {
    const manifests = await render("gpf", "gpufleet-system", [
      "--set",
      "gateway.enabled=true",
      "--set",
      "natsUrl=nats://nats:4222",
    ]);
    const deployment = find(manifests, "Deployment", "-gateway");
    expect(deployment.spec?.replicas).toBe(2);
    const pod = podSpec(deployment) as ReturnType<typeof podSpec> & {
      automountServiceAccountToken?: boolean;
      terminationGracePeriodSeconds?: number;
    };
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.terminationGracePeriodSeconds).toBe(30); // the 25 s stream grace plus 5 s
    const gateway = pod.containers[0]!;
    expect(gateway.args).toEqual(["gateway"]);
    const env = Object.fromEntries(
      (gateway.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(env).toMatchObject({
      POD_NAME: "metadata.name",
      GPUFLEET_GATEWAY_NATS_URL: "nats://nats:4222",
      GPUFLEET_GATEWAY_PORT: "8000",
      GPUFLEET_GATEWAY_DISPATCH_POLICY: "freeness",
      GPUFLEET_GATEWAY_SHUTDOWN_GRACE_MS: "25000",
    });
    expect(gateway.readinessProbe?.httpGet.path).toBe("/readyz");
    expect(gateway.livenessProbe?.httpGet.path).toBe("/healthz");
    expect(gateway.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    const service = find(manifests, "Service", "-gateway");
    expect(service.spec).toMatchObject({ type: "ClusterIP", ports: [{ name: "http", port: 80, targetPort: "http" }] });
  });

  it("refuses the gateway without any NATS (no natsUrl, in-chart NATS off), saying why", async () => {
    const result = await template("gpf", "gpufleet-system", [
      "--set",
      "gateway.enabled=true",
      "--set",
      "nats.enabled=false",
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/gateway.enabled needs NATS/);
  });

  it("refuses a Kubernetes older than the chart's kubeVersion", async () => {
    const result = await template("gpf", "gpufleet-system", ["--kube-version", "1.29.0"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(
      /chart requires kubeVersion: >=1\.30\.0-0 which is incompatible with Kubernetes v1\.29\.0/,
    );
  });
});

describe("values.schema.json rejects bad values with the key's path", () => {
  it.each([
    ["replicas as a word", "operator.replicas=two", /at '\/operator\/replicas': got string, want integer/],
    ["a misspelt key", "operator.replica=2", /at '\/operator': additional properties 'replica' not allowed/],
    ["a port out of range", "agent.httpPort=70000", /at '\/agent\/httpPort': maximum: got 70,000, want 65,535/],
    [
      "a NATS URL with another scheme",
      "natsUrl=http://nats:4222",
      /at '\/natsUrl': 'http:\/\/nats:4222' does not match pattern/,
    ],
    [
      "an unknown pull policy",
      "image.pullPolicy=Sometimes",
      /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/,
    ],
    [
      "two replicas without leader election",
      "operator.leaderElection.enabled=false",
      /at '\/operator\/replicas': value must be 1/,
    ],
    [
      "an unknown dispatch policy",
      "gateway.dispatchPolicy=random",
      /at '\/gateway\/dispatchPolicy': value must be one of 'freeness', 'round-robin'/,
    ],
    [
      "a malformed memory quantity",
      "operator.resources.limits.memory=lots",
      /at '\/operator\/resources\/limits\/memory': 'lots' does not match pattern/,
    ],
    [
      "a malformed NATS store size",
      "nats.storage.size=big",
      /at '\/nats\/storage\/size': 'big' does not match pattern/,
    ],
  ])("%s", async (_name, setting, message) => {
    const result = await template("gpf", "gpufleet-system", ["--set", setting]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(result.stderr).toMatch(message);
  });

  it("accepts one replica without leader election", async () => {
    const manifests = await render("gpf", "gpufleet-system", [
      "--set",
      "operator.leaderElection.enabled=false",
      "--set",
      "operator.replicas=1",
    ]);
    expect(manifests.filter((m) => m.kind === "Role").map((m) => m.metadata.name)).toEqual([
      "gpf-gpufleet-operator-certificates",
    ]);
  });

  it("in development mode issues no certificates and runs the agent in plaintext, by explicit flag", async () => {
    const manifests = await render("gpf", "gpufleet-system", ["--set", "tls.insecureDevelopmentMode=true"]);
    expect(manifests.filter((m) => m.kind === "Role").map((m) => m.metadata.name)).toEqual([
      "gpf-gpufleet-operator-leader-election",
    ]);
    const agentPod = podSpec(find(manifests, "DaemonSet", "-agent"));
    expect(agentPod.containers[0]?.env).toContainEqual({ name: "GPUFLEET_AGENT_INSECURE", value: "true" });
    expect(agentPod.volumes?.map((v) => v.name)).not.toContain("tls");
    // Without the CA the agent's NATS certificate cannot be signed, so the operator's signer is off too.
    const operatorEnv = podSpec(find(manifests, "Deployment", "-operator")).containers[0]?.env ?? [];
    expect(operatorEnv.map((e) => e.name)).not.toContain("GPUFLEET_AGENT_SERVICE_ACCOUNT");
  });

  it("asks for the agents' NATS certificates when agent.natsClientCertificate is on; refuses it in development mode", async () => {
    const byDefault = await render("gpf", "gpufleet-system");
    const operatorEnv = podSpec(find(byDefault, "Deployment", "-operator")).containers[0]?.env ?? [];
    expect(operatorEnv).toContainEqual({ name: "GPUFLEET_AGENT_SERVICE_ACCOUNT", value: "gpf-gpufleet-agent" });
    expect(podSpec(find(byDefault, "DaemonSet", "-agent")).containers[0]?.env?.map((e) => e.name)).not.toContain(
      "GPUFLEET_AGENT_NATS_CSR",
    );
    const agentRules = (m: Manifest[]) =>
      (find(m, "ClusterRole", "-agent") as Manifest & { rules: { resources: string[] }[] }).rules.flatMap(
        (r) => r.resources,
      );
    expect(agentRules(byDefault)).not.toContain("certificatesigningrequests");

    const on = await render("gpf", "gpufleet-system", ["--set", "agent.natsClientCertificate=true"]);
    const agentPod = podSpec(find(on, "DaemonSet", "-agent"));
    expect(agentPod.containers[0]?.env).toEqual(
      expect.arrayContaining([
        { name: "GPUFLEET_AGENT_NATS_CSR", value: "true" },
        { name: "GPUFLEET_AGENT_NATS_TLS_DIR", value: "/run/gpufleet-nats" },
      ]),
    );
    expect(agentPod.containers[0]?.volumeMounts).toContainEqual({
      name: "nats-client-certificate",
      mountPath: "/run/gpufleet-nats",
    });
    expect(agentPod.volumes).toContainEqual({
      name: "nats-client-certificate",
      emptyDir: { medium: "Memory", sizeLimit: "1Mi" },
    });
    expect(agentRules(on)).toContain("certificatesigningrequests");

    const refused = await template("gpf", "gpufleet-system", [
      "--set",
      "agent.natsClientCertificate=true",
      "--set",
      "tls.insecureDevelopmentMode=true",
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/agent.natsClientCertificate needs the operator's CA/);
  });
});

describe("NATS with TLS and per-component authorization (nats.authorization.enabled)", () => {
  it("runs the chart's NATS on the operator's certificates and user list, with a reloader; clients use tls://", async () => {
    const on = await render("gpf", "gpufleet-system", ["--set", "nats.authorization.enabled=true"]);
    const url = "tls://gpf-gpufleet-nats.gpufleet-system.svc:4222";
    const nats = podSpec(find(on, "StatefulSet", "-nats")) as PodSpec & { shareProcessNamespace?: boolean };
    expect(nats.shareProcessNamespace).toBe(true);
    expect(nats.containers.map((c) => c.name)).toEqual(["nats", "reloader"]);
    expect(nats.containers[0]?.args).toEqual(["--config", "/etc/nats-config/nats.conf"]);
    // The user list names the server's files under NATS_SERVER_TLS_DIR: the chart mounts its Secret there.
    expect(nats.containers[0]?.volumeMounts).toContainEqual({
      name: "tls",
      mountPath: NATS_SERVER_TLS_DIR,
      readOnly: true,
    });
    expect(nats.volumes).toEqual(
      expect.arrayContaining([
        { name: "authorization", configMap: { name: "gpf-gpufleet-nats-authorization" } },
        { name: "tls", secret: { secretName: "gpf-gpufleet-nats-tls", defaultMode: 288 } },
      ]),
    );
    expect(find(on, "ConfigMap", "-nats-config").data?.["nats.conf"]).toContain(
      'include "../nats-auth/authorization.conf"',
    );

    const env = (kind: string, suffix: string) =>
      new Map((podSpec(find(on, kind, suffix)).containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    const operatorEnv = env("Deployment", "-operator");
    expect(operatorEnv.get("GPUFLEET_NATS_URL")).toBe(url);
    expect(operatorEnv.get("GPUFLEET_NATS_TLS_DIR")).toBe("/etc/gpufleet/nats-tls");
    expect(operatorEnv.get("GPUFLEET_NATS_SERVER_DNS_NAMES")?.split(",")).toContain(
      "gpf-gpufleet-nats.gpufleet-system.svc",
    );
    expect(podSpec(find(on, "Deployment", "-operator")).volumes).toContainEqual({
      name: "nats-tls",
      secret: { secretName: "gpf-gpufleet-operator-tls", optional: true, defaultMode: 288 },
    });
    expect(env("Deployment", "-gateway").get("GPUFLEET_GATEWAY_NATS_URL")).toBe(url);
    expect(env("Deployment", "-gateway").get("GPUFLEET_GATEWAY_NATS_TLS_DIR")).toBe("/etc/gpufleet/nats-tls");
    expect(podSpec(find(on, "Deployment", "-gateway")).volumes).toContainEqual({
      name: "nats-tls",
      secret: { secretName: "gpf-gpufleet-gateway-tls", defaultMode: 288 },
    });
    // Each agent asks for its node's certificate, without agent.natsClientCertificate.
    expect(env("DaemonSet", "-agent").get("GPUFLEET_AGENT_NATS_CSR")).toBe("true");
    expect(env("DaemonSet", "-agent").get("GPUFLEET_NATS_URL")).toBe(url);
  });

  it.each([
    [["tls.insecureDevelopmentMode=true"], /needs the operator's CA/],
    [["natsUrl=nats://elsewhere:4222"], /leave natsUrl empty/],
    [["nats.enabled=false"], /needs nats.enabled/],
  ])("refuses it with %j, saying why", async (values, message) => {
    const refused = await template("gpf", "gpufleet-system", [
      "--set",
      "nats.authorization.enabled=true",
      ...values.flatMap((v) => ["--set", v]),
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(message);
  });
});

describe("on the API server", () => {
  let namespace: string;
  let release: string;

  beforeAll(async () => {
    namespace = await cluster.freshNamespace("chart");
    release = namespace;
  });

  afterAll(async () => {
    // Cluster-scoped objects outlive the namespace: remove them by the release label.
    if (release)
      await kubectl(cluster.kubeconfigPath, [
        "delete",
        "clusterrole,clusterrolebinding",
        "-l",
        `app.kubernetes.io/instance=${release}`,
        "--ignore-not-found",
      ]);
  });

  it("accepts every rendered manifest (kubectl apply --dry-run=server)", async () => {
    // The defaults: in-chart NATS, gateway on.
    // With the opt-in NATS certificate on, so its volume and RBAC rule are validated too.
    const rendered = await template(release, namespace, ["--set", "agent.natsClientCertificate=true"]);
    expect(rendered.code).toBe(0);
    const applied = await kubectl(
      cluster.kubeconfigPath,
      ["apply", "--dry-run=server", "-n", namespace, "-f", "-"],
      rendered.stdout,
    );
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const lines = applied.stdout.trim().split("\n");
    expect(lines).toHaveLength(29);
    expect(lines).toContain(`poddisruptionbudget.policy/${release}-gpufleet-operator created (server dry run)`);
    expect(lines).toContain(`configmap/${release}-gpufleet-dashboard-serving created (server dry run)`);
    expect(lines).toContain(`configmap/${release}-gpufleet-dashboard-training created (server dry run)`);
    for (const line of lines) expect(line).toMatch(/ created \(server dry run\)$/);
    expect(lines).toContain(`deployment.apps/${release}-gpufleet-operator created (server dry run)`);
    expect(lines).toContain(`daemonset.apps/${release}-gpufleet-agent created (server dry run)`);
    expect(lines).toContain(`statefulset.apps/${release}-gpufleet-nats created (server dry run)`);
    expect(lines).toContain(`deployment.apps/${release}-gpufleet-gateway created (server dry run)`);
    expect(lines).toContain(`service/${release}-gpufleet-gateway created (server dry run)`);
  });

  it("accepts the manifests of NATS authorization too (kubectl apply --dry-run=server)", async () => {
    const rendered = await template(release, namespace, ["--set", "nats.authorization.enabled=true"]);
    expect(rendered.code).toBe(0);
    const applied = await kubectl(
      cluster.kubeconfigPath,
      ["apply", "--dry-run=server", "-n", namespace, "-f", "-"],
      rendered.stdout,
    );
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain(`configmap/${release}-gpufleet-nats-config created (server dry run)`);
    expect(applied.stdout).toContain(`statefulset.apps/${release}-gpufleet-nats created (server dry run)`);
  });

  describe("grants least privilege", () => {
    beforeAll(async () => {
      const manifests = await render(release, namespace);
      const rbac = manifests.filter((m) =>
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].includes(m.kind),
      );
      const applied = await kubectl(
        cluster.kubeconfigPath,
        ["apply", "-n", namespace, "-f", "-"],
        rbac.map((m) => stringify(m)).join("---\n"),
      );
      expect(applied.stderr).toBe("");
      expect(applied.code).toBe(0);
    });

    const operatorSa = () => `system:serviceaccount:${namespace}:${release}-gpufleet-operator`;
    const agentSa = () => `system:serviceaccount:${namespace}:${release}-gpufleet-agent`;
    // [case, who, verb, resource (and kubectl flags), namespace ("": cluster-wide, "own": the release's), allowed]
    const cases: [string, "operator" | "agent", string, string, string, boolean][] = [
      ["operator watches its CRs", "operator", "watch", "servingdeployments.gpufleet.io", "", true],
      ["operator server-side applies its CRs", "operator", "patch", "trainingjobs.gpufleet.io", "", true],
      [
        "operator writes CR status",
        "operator",
        "patch",
        "servingdeployments.gpufleet.io --subresource=status",
        "",
        true,
      ],
      ["operator cannot delete its CRs", "operator", "delete", "trainingjobs.gpufleet.io", "", false],
      ["operator creates pods anywhere", "operator", "create", "pods", "default", true],
      ["operator deletes services", "operator", "delete", "services", "default", true],
      ["operator taints nodes", "operator", "patch", "nodes", "", true],
      ["operator cannot delete nodes", "operator", "delete", "nodes", "", false],
      ["operator marks a degraded NIC (node condition)", "operator", "patch", "nodes --subresource=status", "", true],
      ["operator cannot update node status wholesale", "operator", "update", "nodes --subresource=status", "", false],
      ["operator records Events", "operator", "create", "events", "default", true],
      ["operator cannot read Secrets", "operator", "get", "secrets", "default", false],
      [
        "operator reads the agent certificate Secret",
        "operator",
        "get",
        "secrets/{release}-gpufleet-agent-tls",
        "own",
        true,
      ],
      ["operator rotates the CA Secret", "operator", "update", "secrets/{release}-gpufleet-ca", "own", true],
      ["operator creates its certificate Secrets", "operator", "create", "secrets", "own", true],
      ["operator cannot read other Secrets of its namespace", "operator", "get", "secrets/db-password", "own", false],
      ["operator cannot list Secrets", "operator", "list", "secrets", "own", false],
      [
        "operator cannot delete its certificate Secrets",
        "operator",
        "delete",
        "secrets/{release}-gpufleet-ca",
        "own",
        false,
      ],
      ["operator cannot create Secrets elsewhere", "operator", "create", "secrets", "default", false],
      // workload.traceRef: the plan step reads one named ConfigMap (get), never lists, watches or writes them.
      ["operator reads a ConfigMap (traceRef)", "operator", "get", "configmaps", "default", true],
      ["operator cannot list ConfigMaps", "operator", "list", "configmaps", "default", false],
      ["operator cannot watch ConfigMaps", "operator", "watch", "configmaps", "default", false],
      ["operator cannot write ConfigMaps", "operator", "update", "configmaps", "default", false],
      [
        "operator cannot grant itself more",
        "operator",
        "create",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "",
        false,
      ],
      ["operator creates its Lease", "operator", "create", "leases.coordination.k8s.io", "own", true],
      ["operator updates its Lease", "operator", "update", "leases.coordination.k8s.io/gpufleet-operator", "own", true],
      [
        "operator cannot update another Lease",
        "operator",
        "update",
        "leases.coordination.k8s.io/kube-scheduler",
        "own",
        false,
      ],
      [
        "operator cannot create Leases elsewhere",
        "operator",
        "create",
        "leases.coordination.k8s.io",
        "kube-system",
        false,
      ],
      ["agent labels its node", "agent", "patch", "nodes", "", true],
      ["agent cannot list nodes", "agent", "list", "nodes", "", false],
      ["agent cannot watch pods (it learns workers over its socket)", "agent", "watch", "pods", "", false],
      ["agent cannot delete pods", "agent", "delete", "pods", "default", false],
      ["agent cannot read Secrets", "agent", "get", "secrets", "default", false],
    ];
    it.each(cases)("%s", async (_name, who, verb, resource, ns, allowed) => {
      const scope = ns === "" ? [] : ["-n", ns === "own" ? namespace : ns];
      const result = await kubectl(cluster.kubeconfigPath, [
        "auth",
        "can-i",
        verb,
        ...resource.replaceAll("{release}", release).split(" "),
        ...scope,
        `--as=${who === "operator" ? operatorSa() : agentSa()}`,
      ]);
      expect(result.stdout.trim()).toBe(allowed ? "yes" : "no");
    });
  });
});

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating: {
    list: { name: string; type: string; definition?: string; allValue?: string; current?: { value?: string } }[];
  };
}

/** What a Grafana variable stands for in a query run straight against Prometheus: a custom variable's default, a
 * query variable's "All" (allValue, else .*). Longest names first, so no name is replaced inside a longer one. */
function variableValues(dashboard: Dashboard): [string, string][] {
  return dashboard.templating.list
    .filter((v) => v.type !== "datasource")
    .map((v): [string, string] => [`$${v.name}`, v.type === "custom" ? (v.current?.value ?? "") : (v.allValue ?? ".*")])
    .sort((a, b) => b[0].length - a[0].length);
}

/** Every panel query of the chart's dashboards, with Grafana variables replaced by what Prometheus accepts. */
async function dashboardQueries(): Promise<{ dashboard: string; panel: string; expr: string }[]> {
  const dir = path.join(CHART_DIR, "dashboards");
  const queries: { dashboard: string; panel: string; expr: string }[] = [];
  for (const file of (await readdir(dir)).sort()) {
    const dashboard = JSON.parse(await readFile(path.join(dir, file), "utf8")) as Dashboard;
    const variables = variableValues(dashboard);
    const substitute = (expr: string) =>
      variables.reduce((e, [name, value]) => e.replaceAll(name, value), expr.replaceAll("$__rate_interval", "1m"));
    const walk = (panels: Panel[]) => {
      for (const panel of panels) {
        for (const target of panel.targets ?? [])
          queries.push({ dashboard: file, panel: panel.title, expr: substitute(target.expr) });
        walk(panel.panels ?? []);
      }
    };
    walk(dashboard.panels);
  }
  return queries;
}

const metricNames = (expr: string) => [...new Set(expr.match(/gpufleet_[a-z0-9_]+/g) ?? [])];

describe("Grafana dashboards against Prometheus, a running operator and a running gateway", async () => {
  const queries = await dashboardQueries();
  const operatorQueries = queries.filter((q) => q.dashboard === "operator.json");
  const servingQueries = queries.filter((q) => q.dashboard === "serving.json");
  const trainingQueries = queries.filter((q) => q.dashboard === "training.json");
  const agentMetricsSource = await readFile(path.join(REPO_ROOT, "agent/src/metrics.ts"), "utf8");
  let prometheus: PrometheusProcess | undefined;
  let operator: OperatorProcess | undefined;
  let nats: NatsServer | undefined;
  let instances: SimulatedInstances | undefined;
  let gateway: GatewayProcess | undefined;

  beforeAll(async () => {
    const namespace = await cluster.freshNamespace("chart-prom");
    operator = await startOperatorProcess({
      kubeconfigPath: cluster.kubeconfigPath,
      namespace,
      identity: "chart-prom-op",
      env: { GPUFLEET_LEASE_NAME: `op-${namespace}` },
    });
    // Work for both controllers, and a Warning Event (too many nodes asked for).
    const objects = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
    await objects.create(validServingDeployment("chat", namespace) as never);
    await objects.create(
      withField(withField(validTrainingJob("too-big", namespace), "spec.nodes", 64), "spec.parallelism", {
        tp: 8,
        pp: 1,
        dp: 64,
      }) as never,
    );
    // The serving panels read the gateway: two simulated colocated instances (the agent's own simulation runtime and
    // engine API, in this process) whose load reports reach a gateway process over a nats-server of this file's own.
    nats = await startNatsServer();
    instances = await startSimulatedInstances({
      natsUrl: nats.url,
      namespace,
      pods: [{ name: "chat-0" }, { name: "chat-1" }],
    });
    gateway = await startGatewayProcess({
      GPUFLEET_GATEWAY_NATS_URL: nats.url,
      GPUFLEET_GATEWAY_IDENTITY: "chart-prom-gw",
    });
    const gatewayPort = new URL(gateway.url).port;
    prometheus = await startPrometheus([`127.0.0.1:${await operator.httpPort()}`, `127.0.0.1:${gatewayPort}`]);
    await waitFor(
      async () => {
        const h = await prometheus!.targetHealth();
        return (h.length === 2 && h.every((x) => x === "up")) || undefined;
      },
      { description: "operator and gateway targets up", timeoutMs: 30_000 },
    );
    await sendTraffic(gateway.url, instances.model);
  });

  afterAll(async () => {
    await prometheus?.stop();
    await gateway?.stop();
    await instances?.stop();
    await nats?.close();
    await operator?.stop();
  });

  it("finds the panels it checks", () => {
    expect(operatorQueries.length).toBeGreaterThanOrEqual(8);
    expect(servingQueries.length).toBeGreaterThanOrEqual(14);
    expect(trainingQueries.length).toBeGreaterThanOrEqual(12);
    expect(queries.length - operatorQueries.length).toBeGreaterThanOrEqual(10);
  });

  it.each(queries.map((q) => [`${q.dashboard}: ${q.panel}: ${q.expr}`, q.expr]))("%s parses", async (_name, expr) => {
    const result = await prometheus!.query(expr);
    expect(result.error ?? "").toBe("");
    expect(result.status).toBe("success");
  });

  it("reads only metrics the operator or the gateway serves, or the agent declares", async () => {
    const served = await operator!.metrics();
    const gatewayServed = await (await fetch(`${gateway!.url}/metrics`)).text();
    for (const q of queries) {
      for (const name of metricNames(q.expr)) {
        const base = name.replace(/_(bucket|sum|count)$/, "");
        if (name.startsWith("gpufleet_operator_"))
          expect(served, `${q.panel}: ${name}`).toMatch(new RegExp(`^# TYPE ${base} `, "m"));
        else if (name.startsWith("gpufleet_gateway_"))
          expect(gatewayServed, `${q.panel}: ${name}`).toMatch(new RegExp(`^# TYPE ${base} `, "m"));
        else expect(agentMetricsSource, `${q.panel}: ${name}`).toContain(`name: "${base}"`);
      }
    }
  });

  it("has data for the reconcile, latency, queue depth and leader panels", async () => {
    for (const name of [
      "gpufleet_operator_reconcile_total",
      "gpufleet_operator_reconcile_duration_seconds_bucket",
      "gpufleet_operator_workqueue_depth",
      "gpufleet_operator_leader",
    ]) {
      const q = operatorQueries.find((query) => metricNames(query.expr).includes(name));
      expect(q, name).toBeDefined();
      await waitFor(async () => ((await prometheus!.query(q!.expr)).data?.result.length ?? 0) > 0, {
        description: `data for "${q!.expr}"`,
        timeoutMs: 60_000,
      });
    }
    // The one replica running leads: the "Leaders" stat reads exactly 1.
    await waitFor(
      async () => {
        const result = (await prometheus!.query("sum(gpufleet_operator_leader)")).data?.result as
          { value: [number, string] }[] | undefined;
        return result?.length === 1 && result[0]!.value[1] === "1";
      },
      { description: "sum(gpufleet_operator_leader) == 1", timeoutMs: 30_000 },
    );
  });

  it("has data for every operator panel whose metrics have samples", async () => {
    const served = await operator!.metrics();
    const hasSamples = (name: string) => new RegExp(`^${name}(\\{|\\s)`, "m").test(served);
    const withSamples = operatorQueries.filter((q) => metricNames(q.expr).every(hasSamples));
    // Only errors and watch restarts may lack series (none has happened); every other panel must have data.
    const withoutSamples = new Set(operatorQueries.flatMap((q) => metricNames(q.expr)).filter((n) => !hasSamples(n)));
    expect(
      [...withoutSamples].filter(
        (n) => !["gpufleet_operator_reconcile_errors_total", "gpufleet_operator_informer_restarts_total"].includes(n),
      ),
    ).toEqual([]);
    for (const q of withSamples) {
      await waitFor(async () => ((await prometheus!.query(q.expr)).data?.result.length ?? 0) > 0, {
        description: `data for ${q.panel}: "${q.expr}"`,
        timeoutMs: 30_000,
      });
    }
  });

  it("has data for every training panel except those that need a running job or a fault", async () => {
    // The per-rank heatmaps need a running job with telemetry and the latency histogram a fault acted on; the e2e
    // test (test/e2e/fault-isolation.test.ts) checks those series on a running operator. Every other training
    // panel reads counters that start at 0 or the per-job gauges of the job created above.
    const needRun = [
      "gpufleet_operator_training_rank_collective_seconds",
      "gpufleet_operator_training_rank_send_seconds",
      "gpufleet_operator_training_fault_detection_seconds_bucket",
      "gpufleet_operator_training_last_checkpoint_step",
    ];
    const checked = trainingQueries.filter((q) => !metricNames(q.expr).some((n) => needRun.includes(n)));
    expect(trainingQueries.length - checked.length).toBe(6);
    for (const q of checked) {
      await waitFor(async () => ((await prometheus!.query(q.expr)).data?.result.length ?? 0) > 0, {
        description: `data for ${q.panel}: "${q.expr}"`,
        timeoutMs: 60_000,
      });
    }
  });

  it("has data for every serving panel after traffic through the gateway", async () => {
    // No instance failed, so nothing was retried: the retries panel has no series (it parses, above).
    const withoutTraffic = ["gpufleet_gateway_upstream_retries_total"];
    const checked = servingQueries.filter((q) => !metricNames(q.expr).some((n) => withoutTraffic.includes(n)));
    expect(checked.length).toBe(servingQueries.length - 1);
    for (const q of checked) {
      await waitFor(async () => ((await prometheus!.query(q.expr)).data?.result.length ?? 0) > 0, {
        description: `data for ${q.panel}: "${q.expr}"`,
        timeoutMs: 60_000,
      });
    }
    // The instances panel counts what the gateway learnt from the agent's reports: both simulated instances.
    const instancesSeen = (await prometheus!.query(`max(gpufleet_gateway_instances{role="colocated"})`)).data
      ?.result as { value: [number, string] }[];
    expect(instancesSeen[0]?.value[1]).toBe("2");
  });
});

/** Streamed and whole completions through the gateway, and two failures (an unknown model, a bad body). */
async function sendTraffic(gatewayUrl: string, model: string): Promise<void> {
  await waitFor(
    async () => {
      const body = (await (await fetch(`${gatewayUrl}/v1/models`)).json()) as {
        data: { id: string; gpufleet: { instances: { colocated: number } } }[];
      };
      return body.data.some((m) => m.id === model && m.gpufleet.instances.colocated === 2) || undefined;
    },
    { description: `the gateway lists ${model} with 2 instances`, timeoutMs: 30_000 },
  );
  const post = (body: unknown) =>
    fetch(`${gatewayUrl}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  for (let i = 0; i < 6; i++) {
    const response = await post({ model, prompt: `dashboard check ${i}`, max_tokens: 8, stream: i % 2 === 0 });
    expect(response.status).toBe(200);
    await response.text();
  }
  expect((await post({ model: "no-such-model", prompt: "x", max_tokens: 4 })).status).toBe(404);
  expect((await post({ model, prompt: "x", max_tokens: -1 })).status).toBe(400);
}
