/**
 * Cluster profiles: the simulated GPU fleet a local cluster starts with, as YAML in clusters/.
 *
 * A profile lists node groups; each group expands to `count` identical nodes named `<namePrefix>-<index>`, spread
 * over leaf switches `<leafPrefix>-<index>` of `nodesPerLeaf` nodes each, inside one island. The expansion is pure
 * (no client, no clock) so it is tested on its own and shared by the CLI's `plan --profile`, the local cluster of
 * `npm start` and the tests (test/harness), and the benchmarks that need the same fleet.
 *
 * Nodes carry the kwok management annotation, the `type=kwok` label and the gpufleet.io topology labels, and have
 * `nvidia.com/gpu` in capacity and allocatable so kube-scheduler counts GPUs as an extended resource. They carry no
 * kwok taint: pods of the operator's workloads should schedule there without tolerations, as on a real fleet.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Node } from "@kubernetes/client-node";
import { parse } from "yaml";
import { GpuResource, NicType, TopologyLabel } from "../../../crds/src/topology.js";
import { GPU_CATALOG } from "../hardware/catalog.js";
import { validateProfileFabric, type ProfileFabric } from "./fabric.js";

/** Annotation kwok is told to select the nodes it manages by (`--manage-nodes-with-annotation-selector`). */
export const KwokNodeAnnotation = { key: "kwok.x-k8s.io/node", value: "fake" } as const;

/**
 * The folder holding package.json above `fromFile`: the repository root when this runs from source, the same root
 * from the compiled dist/common/src/…, and node_modules/gpufleet in an installed package. The profiles ship there
 * (package.json "files"), so they are found from wherever the code runs, never relative to the working directory.
 */
function packageRoot(fromFile: string): string {
  for (let dir = path.dirname(fromFile); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json in any folder above ${fromFile}`);
  }
}

/** Directory of the profiles shipped with gpufleet (clusters/ of the repository and of the package). */
export const PROFILES_DIR = path.join(packageRoot(fileURLToPath(import.meta.url)), "clusters");

export interface NodeGroup {
  /** Node names are `<namePrefix>-<index>`, index zero-padded to the width of count - 1. */
  namePrefix: string;
  count: number;
  /** A key of the hardware catalog (common/src/hardware/catalog.ts). */
  gpuModel: string;
  gpusPerNode: number;
  nicType: NicType;
  nicCount: number;
  nicBandwidthGbps: number;
  island: string;
  /** Leaf switches are `<leafPrefix>-<index>`, each holding nodesPerLeaf consecutive nodes of the group. */
  leafPrefix: string;
  nodesPerLeaf: number;
  /** Kubernetes quantities. */
  cpu: string;
  memory: string;
  /** Pod capacity; 110 (the kubelet default) when absent. */
  pods: number;
}

export interface ClusterProfile {
  name: string;
  description: string;
  groups: NodeGroup[];
  /** Leaf-spine fabrics of some islands (fabric.ts); none when absent. */
  fabrics?: ProfileFabric[];
}

export class ProfileError extends Error {
  override name = "ProfileError";
  constructor(
    /** Where the profile came from (file path or "<inline>"). */
    readonly source: string,
    /** Path of the offending field, e.g. `groups[1].nicType`. */
    readonly field: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`cluster profile ${source}: ${field} ${detail}`, options);
  }
}

const GROUP_FIELDS = [
  "namePrefix",
  "count",
  "gpuModel",
  "gpusPerNode",
  "nicType",
  "nicCount",
  "nicBandwidthGbps",
  "island",
  "leafPrefix",
  "nodesPerLeaf",
  "cpu",
  "memory",
  "pods",
] as const;
const PROFILE_FIELDS = ["name", "description", "groups", "fabrics"] as const;

// DNS-1123 label, short enough that `<prefix>-<index>` stays a valid node name and label value.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,46}[a-z0-9])?$/;
// Kubernetes quantity: a number with an optional binary or decimal suffix (no exponent forms needed here).
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates a parsed profile document; throws ProfileError naming the first bad field. */
export function validateProfile(doc: unknown, source = "<inline>"): ClusterProfile {
  const fail = (field: string, detail: string): never => {
    throw new ProfileError(source, field, detail);
  };
  if (!isRecord(doc)) return fail("(document)", "must be a mapping with name and groups");
  for (const key of Object.keys(doc)) {
    if (!(PROFILE_FIELDS as readonly string[]).includes(key))
      fail(key, `is not a known field (known: ${PROFILE_FIELDS.join(", ")})`);
  }
  const name = doc["name"];
  if (typeof name !== "string" || !DNS_LABEL.test(name))
    fail("name", `must be a DNS label, got ${JSON.stringify(name)}`);
  const description = doc["description"] ?? "";
  if (typeof description !== "string") fail("description", "must be a string");
  const groups = doc["groups"];
  if (!Array.isArray(groups) || groups.length === 0) return fail("groups", "must be a non-empty list");

  const seenPrefixes = new Map<string, number>();
  const parsed = groups.map((raw: unknown, i): NodeGroup => {
    const at = (field: string): string => `groups[${i}].${field}`;
    if (!isRecord(raw)) return fail(`groups[${i}]`, "must be a mapping");
    for (const key of Object.keys(raw)) {
      if (!(GROUP_FIELDS as readonly string[]).includes(key))
        fail(at(key), `is not a known field (known: ${GROUP_FIELDS.join(", ")})`);
    }
    const label = (field: string): string => {
      const value = raw[field];
      if (typeof value !== "string" || !DNS_LABEL.test(value)) {
        fail(at(field), `must be a lowercase DNS label of at most 48 characters, got ${JSON.stringify(value)}`);
      }
      return value as string;
    };
    const positiveInt = (field: string, fallback?: number): number => {
      const value = raw[field] ?? fallback;
      if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
        fail(at(field), `must be a positive integer, got ${JSON.stringify(value)}`);
      }
      return value as number;
    };
    const quantity = (field: string): string => {
      // YAML reads `cpu: 192` as a number; accept it as the same quantity.
      const value = typeof raw[field] === "number" ? String(raw[field]) : raw[field];
      if (typeof value !== "string" || !QUANTITY.test(value))
        fail(at(field), `must be a Kubernetes quantity such as "192" or "2Ti", got ${JSON.stringify(raw[field])}`);
      return value as string;
    };

    const namePrefix = label("namePrefix");
    const previous = seenPrefixes.get(namePrefix);
    if (previous !== undefined) fail(at("namePrefix"), `"${namePrefix}" is already used by groups[${previous}]`);
    seenPrefixes.set(namePrefix, i);

    const gpuModel = raw["gpuModel"];
    if (typeof gpuModel !== "string" || !Object.hasOwn(GPU_CATALOG, gpuModel)) {
      fail(at("gpuModel"), `must be one of ${Object.keys(GPU_CATALOG).join(", ")}, got ${JSON.stringify(gpuModel)}`);
    }
    const nicType = raw["nicType"];
    if (typeof nicType !== "string" || !(Object.values(NicType) as string[]).includes(nicType)) {
      fail(at("nicType"), `must be one of ${Object.values(NicType).join(", ")}, got ${JSON.stringify(nicType)}`);
    }
    return {
      namePrefix,
      count: positiveInt("count"),
      gpuModel: gpuModel as string,
      gpusPerNode: positiveInt("gpusPerNode"),
      nicType: nicType as NicType,
      nicCount: positiveInt("nicCount"),
      nicBandwidthGbps: positiveInt("nicBandwidthGbps"),
      island: label("island"),
      leafPrefix: label("leafPrefix"),
      nodesPerLeaf: positiveInt("nodesPerLeaf"),
      cpu: quantity("cpu"),
      memory: quantity("memory"),
      pods: positiveInt("pods", 110),
    };
  });
  const fabrics = doc["fabrics"] ?? [];
  if (!Array.isArray(fabrics)) return fail("fabrics", "must be a list");
  const islands = new Set(parsed.map((g) => g.island));
  const seenIslands = new Set<string>();
  const parsedFabrics = fabrics.map((raw: unknown, i) => {
    const fabric = validateProfileFabric(raw, `fabrics[${i}]`, islands, fail);
    if (seenIslands.has(fabric.island)) fail(`fabrics[${i}].island`, `"${fabric.island}" has a fabric already`);
    seenIslands.add(fabric.island);
    return fabric;
  });
  return {
    name: name as string,
    description: description as string,
    groups: parsed,
    ...(parsedFabrics.length > 0 ? { fabrics: parsedFabrics } : {}),
  };
}

/** Parses and validates profile YAML text. */
export function parseProfile(text: string, source = "<inline>"): ClusterProfile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ProfileError(source, "(document)", "is not valid YAML", { cause: err });
  }
  return validateProfile(doc, source);
}

/** Resolves a profile argument: a path to a YAML file, or a name of a profile in clusters/ ("default", "large"). */
export function resolveProfilePath(profile: string): string {
  if (profile.includes("/") || profile.endsWith(".yaml") || profile.endsWith(".yml")) return path.resolve(profile);
  return path.join(PROFILES_DIR, `${profile}.yaml`);
}

/** Reads and validates a profile by name or path. */
export async function loadProfile(profile = "default"): Promise<ClusterProfile> {
  const file = resolveProfilePath(profile);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ProfileError(file, "(file)", "cannot be read", { cause: err });
  }
  return parseProfile(text, file);
}

function padded(index: number, count: number): string {
  return String(index).padStart(String(Math.max(count - 1, 0)).length, "0");
}

/** Expands a profile into the Node objects to create (status included: the API server keeps it on create). */
export function expandProfile(profile: ClusterProfile): V1Node[] {
  const nodes: V1Node[] = [];
  for (const group of profile.groups) {
    const leaves = Math.ceil(group.count / group.nodesPerLeaf);
    for (let i = 0; i < group.count; i++) {
      const name = `${group.namePrefix}-${padded(i, group.count)}`;
      const resources = {
        cpu: group.cpu,
        memory: group.memory,
        pods: String(group.pods),
        [GpuResource]: String(group.gpusPerNode),
      };
      nodes.push({
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name,
          annotations: { [KwokNodeAnnotation.key]: KwokNodeAnnotation.value },
          labels: {
            type: "kwok",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            [TopologyLabel.gpuModel]: group.gpuModel,
            [TopologyLabel.gpuCount]: String(group.gpusPerNode),
            [TopologyLabel.nicType]: group.nicType,
            [TopologyLabel.nicCount]: String(group.nicCount),
            [TopologyLabel.nicBandwidthGbps]: String(group.nicBandwidthGbps),
            [TopologyLabel.leaf]: `${group.leafPrefix}-${padded(Math.floor(i / group.nodesPerLeaf), leaves)}`,
            [TopologyLabel.island]: group.island,
          },
        },
        spec: {},
        status: { capacity: { ...resources }, allocatable: { ...resources } },
      });
    }
  }
  return nodes;
}
