/**
 * Applies a cluster profile's fabrics (common/src/cluster-profile/fabric.ts expands them) to a cluster with kubectl.
 */
import type { ClusterProfile } from "../../common/src/cluster-profile/profile.js";
import { expandFabrics } from "../../common/src/cluster-profile/fabric.js";
import { kubectl } from "../support/kubectl.js";

/** Applies the profile's fabrics with kubectl (server-side), after the CRDs are installed. */
export async function applyProfileFabrics(kubeconfigPath: string, profile: ClusterProfile): Promise<number> {
  const fabrics = expandFabrics(profile);
  if (fabrics.length === 0) return 0;
  const list = JSON.stringify({ apiVersion: "v1", kind: "List", items: fabrics });
  const applied = await kubectl(
    kubeconfigPath,
    ["apply", "--server-side", "--field-manager=gpufleet-install", "-f", "-"],
    list,
  );
  if (applied.code !== 0) throw new Error(`applying the ${profile.name} profile's fabrics failed: ${applied.stderr}`);
  return fabrics.length;
}
