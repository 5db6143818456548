/**
 * Least privilege, proven against the real API server with the chart's rendered RBAC and admission policy:
 * - every verb the operator's ClusterRole grants is one the operator's code uses (an evidence pattern per verb,
 *   searched in operator/src), and `kubectl auth can-i` says no to the verbs it does not use;
 * - the agent's ServiceAccount, with a token bound to a pod on node A (kube-apiserver puts the node's name into the
 *   token's user info), may label node A but not node B, and may not change node A's spec: the
 *   ValidatingAdmissionPolicy of templates/agent-node-policy.yaml. RBAC alone (can-i) allows both, which is why
 *   the policy exists;
 * - the NetworkPolicies render and are accepted by the API server.
 * Reads of pods are not narrowed to the agent's node: RBAC has no field selectors, and admission policies do not see
 * reads (stated in docs/security.md).
 */
import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { helmBinary, CHART_DIR, run } from "../chart/tools.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import { REPO_ROOT } from "../../support/paths.js";
import { podBoundToken } from "../../support/tokens.js";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
}

let cluster: TestCluster;
let namespace: string;
let release: string;
let manifests: Manifest[];
let tmp: string;

beforeAll(async () => {
  cluster = testCluster();
  namespace = await cluster.freshNamespace("rbac");
  release = namespace;
  tmp = mkdtempSync(path.join(tmpdir(), "gpufleet-rbac-"));
  // With every opt-in grant on (the agent's NATS certificate request, NATS authorization's Secrets and ConfigMap),
  // so each is tied to a call below.
  const rendered = await run(await helmBinary(), [
    "template",
    release,
    CHART_DIR,
    "--namespace",
    namespace,
    "--set",
    "agent.natsClientCertificate=true",
    "--set",
    "nats.authorization.enabled=true",
  ]);
  expect(rendered.code).toBe(0);
  manifests = parseAllDocuments(rendered.stdout)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
  const wanted = [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "NetworkPolicy",
  ];
  const applied = await kubectl(
    cluster.kubeconfigPath,
    ["apply", "-n", namespace, "-f", "-"],
    manifests
      .filter((m) => wanted.includes(m.kind))
      .map((m) => stringify(m))
      .join("---\n"),
  );
  expect(applied.stderr).toBe("");
  expect(applied.code).toBe(0);
}, 300_000);

afterAll(async () => {
  if (release) {
    await kubectl(cluster.kubeconfigPath, [
      "delete",
      "clusterrole,clusterrolebinding,validatingadmissionpolicy,validatingadmissionpolicybinding",
      "-l",
      `app.kubernetes.io/instance=${release}`,
      "--ignore-not-found",
    ]);
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Non-test sources under `dir`, concatenated (skipping `skip` folders): where each granted verb must be seen used. */
function sourcesOf(dir: string, skip: readonly string[] = []): string {
  const out: string[] = [];
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const full = path.join(at, name);
      if (statSync(full).isDirectory()) {
        if (!skip.includes(name)) walk(full);
      } else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) out.push(readFileSync(full, "utf8"));
    }
  };
  walk(path.join(REPO_ROOT, dir));
  return out.join("\n");
}

/**
 * Every (verb, resource) a component's rendered (Cluster)Roles grant without an evidence pattern found in `sources`.
 */
function unusedGrants(prefix: string, evidence: Record<string, Record<string, RegExp>>, sources: string): string[] {
  const roles = manifests.filter(
    (m) => (m.kind === "ClusterRole" || m.kind === "Role") && m.metadata.name.startsWith(prefix),
  );
  expect(roles.length).toBeGreaterThan(0);
  const unused: string[] = [];
  for (const role of roles) {
    for (const rule of role.rules ?? []) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs) {
            const pattern = evidence[`${group}/${resource}`]?.[verb];
            if (!pattern || !pattern.test(sources))
              unused.push(`${verb} ${group}/${resource} (${role.kind} ${role.metadata.name})`);
          }
        }
      }
    }
  }
  return unused;
}

/**
 * Why the operator needs each verb on each resource: a pattern of the call that uses it. Server-side apply
 * (`PatchStrategy.ServerSideApply`) is a patch, and a create when the object is new; informers list and watch.
 */
const EVIDENCE: Record<string, Record<string, RegExp>> = {
  "gpufleet.io/servingdeployments": {
    get: /getNamespacedCustomObject|readJob/,
    list: /new ResilientInformer|createInformer|ListWatch/,
    watch: /ListWatch/,
    patch: /ServerSideApply/,
  },
  "gpufleet.io/trainingjobs": {
    get: /getNamespacedCustomObject/,
    list: /ListWatch/,
    watch: /ListWatch/,
    patch: /ServerSideApply/,
  },
  "gpufleet.io/fabrictopologies": {
    get: /getClusterCustomObject|listClusterCustomObject/,
    list: /listClusterCustomObject|ListWatch/,
    watch: /ListWatch/,
    patch: /ServerSideApply/,
  },
  "gpufleet.io/gpuprofiles": {
    list: /GpuProfileNames\.plural/,
    watch: /GpuProfileNames\.plural/,
  },
  "gpufleet.io/servingdeployments/status": {
    get: /patchNamespacedCustomObjectStatus/,
    patch: /patchNamespacedCustomObjectStatus/,
  },
  "gpufleet.io/trainingjobs/status": {
    get: /patchNamespacedCustomObjectStatus/,
    patch: /patchNamespacedCustomObjectStatus/,
  },
  "gpufleet.io/fabrictopologies/status": {
    get: /patchClusterCustomObjectStatus/,
    patch: /patchClusterCustomObjectStatus/,
  },
  "gpufleet.io/servingdeployments/finalizers": { update: /blockOwnerDeletion: true/ },
  "gpufleet.io/trainingjobs/finalizers": { update: /blockOwnerDeletion: true/ },
  "/pods": {
    get: /readNamespacedPod/,
    list: /\/api\/v1\/pods/,
    watch: /\/api\/v1\/pods/,
    create: /ServerSideApply/,
    patch: /ServerSideApply/,
    delete: /objects\.delete\(/,
  },
  "/services": {
    get: /listNamespacedService/,
    list: /listNamespacedService/,
    watch: /\/api\/v1\/services|ListWatch/,
    create: /ServerSideApply/,
    patch: /ServerSideApply/,
    delete: /objects\.delete\(/,
  },
  "/nodes": { get: /readNode\(/, list: /\/api\/v1\/nodes/, watch: /\/api\/v1\/nodes/, patch: /patchNode\(/ },
  "/nodes/status": { patch: /patchNodeStatus\(/ },
  "/configmaps": {
    get: /readNamespacedConfigMap\(/,
    create: /createNamespacedConfigMap\(/,
    update: /replaceNamespacedConfigMap\(/,
  },
  "/events": { create: /createNamespacedEvent\(/, patch: /patchNamespacedEvent\(/ },
  "/secrets": {
    create: /createNamespacedSecret\(/,
    get: /readNamespacedSecret\(/,
    update: /replaceNamespacedSecret\(/,
  },
  "certificates.k8s.io/certificatesigningrequests": {
    get: /readCertificateSigningRequest\(/,
    list: /listCertificateSigningRequest\(/,
    watch: /\/apis\/certificates\.k8s\.io\/v1\/certificatesigningrequests/,
  },
  "certificates.k8s.io/certificatesigningrequests/approval": { update: /replaceCertificateSigningRequestApproval\(/ },
  "certificates.k8s.io/certificatesigningrequests/status": { update: /replaceCertificateSigningRequestStatus\(/ },
  "certificates.k8s.io/signers": {
    approve: /replaceCertificateSigningRequestApproval\(/,
    sign: /replaceCertificateSigningRequestStatus\(/,
  },
  "coordination.k8s.io/leases": {
    create: /createNamespacedLease\(/,
    get: /readNamespacedLease\(/,
    update: /replaceNamespacedLease\(/,
  },
};

describe("operator RBAC: no verb the code does not use", () => {
  it("every granted verb has a call in operator/src that needs it", () => {
    expect(
      manifests.filter((m) => m.kind === "Role" && m.metadata.name.startsWith(`${release}-gpufleet-operator`)).length,
    ).toBe(2);
    expect(
      unusedGrants(`${release}-gpufleet-operator`, EVIDENCE, sourcesOf("operator/src")),
      "verbs granted without a use in operator/src",
    ).toEqual([]);
  });

  it("every verb the agent's ClusterRole grants has a call in agent/src outside the simulation", () => {
    // The chart runs the real agent; agent/src/simulation (and main.ts's simulation branch, which lists pods and
    // nodes) runs only outside the chart with its own credentials, so no pattern below can match there.
    const agentEvidence = {
      "/nodes": { patch: /patchNode\(/ },
      "certificates.k8s.io/certificatesigningrequests": {
        create: /createCertificateSigningRequest\(/,
        get: /readCertificateSigningRequest\(/,
      },
    };
    expect(
      unusedGrants(`${release}-gpufleet-agent`, agentEvidence, sourcesOf("agent/src", ["simulation"])),
      "verbs granted without a use in agent/src",
    ).toEqual([]);
  });

  const operatorSa = () => `system:serviceaccount:${namespace}:${release}-gpufleet-operator`;
  it.each([
    ["update", "pods", "default"],
    ["update", "services", "default"],
    ["deletecollection", "pods", "default"],
    ["delete", "certificatesigningrequests.certificates.k8s.io", ""],
    ["create", "certificatesigningrequests.certificates.k8s.io", ""],
    ["delete", "nodes", ""],
    ["update", "nodes", ""],
    ["delete", "servingdeployments.gpufleet.io", "default"],
    ["create", "trainingjobs.gpufleet.io", "default"],
    ["update", "trainingjobs.gpufleet.io/status", "default"],
    ["list", "secrets", ""],
    ["update", "configmaps", "default"],
    ["delete", "configmaps", ""],
    ["get", "pods/log", "default"],
    ["create", "pods/exec", "default"],
    ["escalate", "clusterroles.rbac.authorization.k8s.io", ""],
    ["create", "validatingadmissionpolicybindings.admissionregistration.k8s.io", ""],
  ])("operator may not %s %s", async (verb, resource, ns) => {
    const scope = ns === "" ? [] : ["-n", ns];
    const [kind, sub] = resource.split("/");
    const args = [
      "auth",
      "can-i",
      verb,
      kind!,
      ...(sub ? [`--subresource=${sub}`] : []),
      ...scope,
      `--as=${operatorSa()}`,
    ];
    expect((await kubectl(cluster.kubeconfigPath, args)).stdout.trim()).toBe("no");
  });
  // CSR approval and signing are authorized per signer name (a virtual "signers" resource): the operator's grant
  // names its own signer only, so it can neither approve nor sign requests for the cluster's client certificates.
  it.each([
    ["approve", "gpufleet.io/agent-nats-client", "yes"],
    ["sign", "gpufleet.io/agent-nats-client", "yes"],
    ["approve", "kubernetes.io/kube-apiserver-client", "no"],
    ["sign", "kubernetes.io/kube-apiserver-client", "no"],
    ["approve", "kubernetes.io/kube-apiserver-client-kubelet", "no"],
  ])("operator %s for signer %s: %s", async (verb, signer, answer) => {
    // A SubjectAccessReview names the signer exactly (kubectl auth can-i would split the name at its '/').
    const review = {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: operatorSa(),
        groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
        resourceAttributes: { group: "certificates.k8s.io", resource: "signers", name: signer, verb },
      },
    };
    const result = await kubectl(cluster.kubeconfigPath, ["create", "-o", "json", "-f", "-"], JSON.stringify(review));
    expect(result.code, result.stderr).toBe(0);
    const allowed = (JSON.parse(result.stdout) as { status?: { allowed?: boolean } }).status?.allowed === true;
    expect(allowed ? "yes" : "no").toBe(answer);
  });
});

const APPLY = "application/apply-patch+yaml";

describe("agent: only its own node", () => {
  const agentSa = () => `${release}-gpufleet-agent`;
  let nodeA: string;
  let nodeB: string;
  let tokenA: string;
  let unbound: string;

  /** kubectl as the agent, with nothing but the server, its CA and a bearer token. */
  async function asAgent(token: string, args: string[]) {
    return kubectl("/dev/null", [
      "--server",
      cluster.kubeConfig.getCurrentCluster()!.server,
      "--certificate-authority",
      caFile(),
      "--token",
      token,
      ...args,
    ]);
  }

  function caFile(): string {
    const current = cluster.kubeConfig.getCurrentCluster()!;
    if (current.caFile) return current.caFile;
    const file = path.join(tmp, "ca.crt");
    writeFileSync(file, Buffer.from(current.caData!, "base64"));
    return file;
  }

  /**
   * A PATCH of a node as the agent makes it (no GET first: kubectl label/patch read the node, which the agent may
   * not), answered with the status and the API server's message.
   */
  function patchNodeAs(
    token: string,
    node: string,
    body: object,
    contentType: string,
  ): Promise<{ status: number; message: string }> {
    const server = new URL(cluster.kubeConfig.getCurrentCluster()!.server);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: server.hostname,
          port: server.port,
          method: "PATCH",
          path: `/api/v1/nodes/${node}?fieldManager=gpufleet-agent${contentType === APPLY ? "&force=true" : ""}`,
          ca: readFileSync(caFile()),
          headers: { authorization: `Bearer ${token}`, "content-type": contentType },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              message: (() => {
                try {
                  return (JSON.parse(text) as { message?: string }).message ?? text;
                } catch {
                  return text;
                }
              })(),
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
  }
  const label = (node: string) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: node, labels: { "gpufleet.io/rbac-test": namespace } },
  });

  beforeAll(async () => {
    const nodes = JSON.parse((await kubectl(cluster.kubeconfigPath, ["get", "nodes", "-o", "json"])).stdout).items as {
      metadata: { name: string };
    }[];
    [nodeA, nodeB] = [nodes[0]!.metadata.name, nodes[1]!.metadata.name];
    tokenA = await podBoundToken(cluster.kubeconfigPath, {
      namespace,
      serviceAccount: agentSa(),
      pod: "agent-a",
      node: nodeA,
    });
    unbound = (await kubectl(cluster.kubeconfigPath, ["create", "token", agentSa(), "-n", namespace])).stdout.trim();
    expect((await asAgent(tokenA, ["auth", "whoami", "-o", "json"])).stdout).toContain(nodeA);
  }, 120_000);

  afterAll(async () => {
    for (const node of [nodeA, nodeB])
      if (node) await kubectl(cluster.kubeconfigPath, ["label", "node", node, "gpufleet.io/rbac-test-", "--overwrite"]);
  });

  it("RBAC alone lets the agent patch any node (can-i), so the policy is what narrows it", async () => {
    expect(
      (
        await kubectl(cluster.kubeconfigPath, [
          "auth",
          "can-i",
          "patch",
          `nodes/${nodeB}`,
          `--as=system:serviceaccount:${namespace}:${agentSa()}`,
        ])
      ).stdout.trim(),
    ).toBe("yes");
  });

  it("labels its own node (server-side apply, as the agent does)", async () => {
    const result = await patchNodeAs(tokenA, nodeA, label(nodeA), APPLY);
    expect(result.message.slice(0, 300)).not.toMatch(/forbidden|denied/i);
    expect(result.status).toBe(200);
  });

  it("may not label another node", async () => {
    const result = await patchNodeAs(tokenA, nodeB, label(nodeB), APPLY);
    expect(result.status).toBe(403);
    expect(result.message).toContain(
      `the gpufleet agent may change only the node its pod runs on (${nodeA}), not ${nodeB}`,
    );
  });

  it("may not change its own node's spec (cordon, taints)", async () => {
    const result = await patchNodeAs(tokenA, nodeA, { spec: { unschedulable: true } }, "application/merge-patch+json");
    expect(result.message).toContain("may change only labels and annotations of its node");
    expect(result.status).toBe(403);
  });

  it("a token bound to no pod may change no node", async () => {
    const result = await patchNodeAs(unbound, nodeA, label(nodeA), APPLY);
    expect(result.status).toBe(403);
    expect(result.message).toContain("(no node bound to its token)");
  });

  it("may not read nodes or pods (kubectl get)", async () => {
    for (const args of [
      ["get", "node", nodeA],
      ["get", "pods", "-n", namespace],
    ]) {
      const result = await asAgent(tokenA, args);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/forbidden/);
    }
  });
});
