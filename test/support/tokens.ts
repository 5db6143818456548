/** Service-account tokens as a pod on a node would hold them, for tests of what such a token may do. */
import { stringify } from "yaml";
import { waitFor } from "../harness/wait.js";
import { kubectl } from "./kubectl.js";

/**
 * Creates a pod of `serviceAccount` bound to `node` (nothing needs to run it) and returns a token bound to that pod:
 * kube-apiserver puts the node's name into the token's user info (`authentication.kubernetes.io/node-name`).
 */
export async function podBoundToken(
  kubeconfigPath: string,
  o: { namespace: string; serviceAccount: string; pod: string; node: string },
): Promise<string> {
  const manifest = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: o.pod, namespace: o.namespace },
    spec: {
      serviceAccountName: o.serviceAccount,
      nodeName: o.node,
      automountServiceAccountToken: false,
      containers: [{ name: "agent", image: "gpufleet:dev" }],
    },
  };
  const applied = await kubectl(kubeconfigPath, ["apply", "-f", "-"], stringify(manifest));
  if (applied.code !== 0) throw new Error(`creating pod ${o.namespace}/${o.pod}: ${applied.stderr}`);
  const uid = await waitFor(
    async () =>
      (await kubectl(kubeconfigPath, ["get", "pod", o.pod, "-n", o.namespace, "-o", "jsonpath={.metadata.uid}"]))
        .stdout || undefined,
    { description: `pod ${o.pod} created` },
  );
  const token = await kubectl(kubeconfigPath, [
    "create",
    "token",
    o.serviceAccount,
    "-n",
    o.namespace,
    "--bound-object-kind=Pod",
    `--bound-object-name=${o.pod}`,
    `--bound-object-uid=${uid}`,
  ]);
  if (token.code !== 0 || token.stderr !== "")
    throw new Error(`a token bound to pod ${o.namespace}/${o.pod}: ${token.stderr}`);
  return token.stdout.trim();
}
