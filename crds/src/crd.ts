/**
 * Builds CustomResourceDefinition objects from the TypeBox schemas, converting the few places where TypeBox's JSON
 * Schema is not a Kubernetes structural schema.
 */
import { CloneType, type TSchema } from "@sinclair/typebox";
import { API_GROUP, API_VERSION, NAME_LENGTH_RULE } from "./common.js";
import {
  ServingDeploymentNames,
  ServingDeploymentSpecSchema,
  ServingDeploymentStatusSchema,
} from "./serving-deployment.js";
import {
  TrainingJobNames,
  TrainingJobRootRules,
  TrainingJobSpecSchema,
  TrainingJobStatusSchema,
} from "./training-job.js";
import type { CelRule } from "./schema-helpers.js";
import { FabricTopologyNames, FabricTopologySpecSchema, FabricTopologyStatusSchema } from "./fabric-topology.js";
import { GpuProfileNames, GpuProfileSpecSchema, GpuProfileStatusSchema } from "./gpu-profile.js";

type JsonSchema = { [key: string]: unknown };

/**
 * Returns a structural-schema copy in Kubernetes' OpenAPI v3.0 dialect: the JSON round trip drops TypeBox's symbol
 * keys; `additionalProperties` is removed beside `properties` (Kubernetes forbids both; unknown fields are pruned
 * anyway); a record's `patternProperties` becomes `additionalProperties`; draft-2019 numeric
 * `exclusiveMinimum: n` becomes `minimum: n, exclusiveMinimum: true`; `$id` goes. A property with a default is
 * dropped from `required`: the API server defaults it before validating objects, but checks a parent's own
 * `default: {}` without nested defaults. The TypeScript type keeps such fields required, as the controllers see
 * them only after defaulting.
 */
export function toStructuralSchema(schema: TSchema): JsonSchema {
  const plain = JSON.parse(JSON.stringify(schema)) as JsonSchema;
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== "object") return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(node as JsonSchema)) {
      if (key === "$id") continue;
      if (key === "additionalProperties" && "properties" in (node as JsonSchema)) continue;
      if (key === "required") {
        const properties = ((node as JsonSchema).properties ?? {}) as Record<string, JsonSchema>;
        const required = (value as string[]).filter((name) => properties[name]?.default === undefined);
        if (required.length > 0) out.required = required;
        continue;
      }
      if (key === "patternProperties") {
        const [valueSchema] = Object.values(value as JsonSchema);
        out.additionalProperties = visit(valueSchema);
        continue;
      }
      if ((key === "exclusiveMinimum" || key === "exclusiveMaximum") && typeof value === "number") {
        out[key === "exclusiveMinimum" ? "minimum" : "maximum"] = value;
        out[key] = true;
        continue;
      }
      // Defaults, enums and CEL rules are data, not schemas: copy them verbatim.
      out[key] = key === "default" || key === "enum" || key === "x-kubernetes-validations" ? value : visit(value);
    }
    return out;
  };
  return visit(plain) as JsonSchema;
}

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface CrdInput {
  names: { kind: string; listKind: string; plural: string; singular: string; shortNames: readonly string[] };
  spec: TSchema;
  status: TSchema;
  printerColumns: PrinterColumn[];
  /** Namespaced unless said otherwise. */
  scope?: "Namespaced" | "Cluster";
  /** CEL rules on the whole object, beside the name-length rule: transition rules that read status. */
  rootRules?: readonly CelRule[];
}

export function buildCrd(input: CrdInput): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${input.names.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      scope: input.scope ?? "Namespaced",
      names: { ...input.names, shortNames: [...input.names.shortNames], categories: ["gpufleet"] },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: input.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              required: ["spec"],
              "x-kubernetes-validations": [NAME_LENGTH_RULE, ...(input.rootRules ?? [])],
              properties: {
                apiVersion: {
                  type: "string",
                  description: `API group and version of the object: ${API_GROUP}/${API_VERSION}.`,
                },
                kind: { type: "string", description: `${input.names.kind}.` },
                // The API server forbids anything but type here (metadata is ObjectMeta; `kubectl explain` documents
                // it).
                metadata: { type: "object" },
                spec: toStructuralSchema(input.spec),
                status: toStructuralSchema(input.status),
              },
            },
          },
        },
      ],
    },
  };
}

const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

export const servingDeploymentCrd = buildCrd({
  names: ServingDeploymentNames,
  spec: CloneType(ServingDeploymentSpecSchema, {
    description: "What to serve, under which SLOs, for which traffic, on which GPUs.",
  }),
  status: CloneType(ServingDeploymentStatusSchema, { description: "What the operator planned and observed." }),
  printerColumns: [
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Ready", type: "string", jsonPath: ".status.ready", description: "Ready/desired serving instances" },
    { name: "Plan", type: "string", jsonPath: ".status.planSummary" },
    {
      name: "Goodput/GPU",
      type: "number",
      jsonPath: ".status.plan.goodputPerGpu",
      description: "Predicted requests/s per GPU within SLO",
    },
    { name: "Model", type: "string", jsonPath: ".spec.model.name", priority: 1 },
    age,
  ],
});

export const trainingJobCrd = buildCrd({
  names: TrainingJobNames,
  spec: CloneType(TrainingJobSpecSchema, {
    description: "The training container, the gang's size and parallelism, and its checkpoint and fault policies.",
  }),
  status: CloneType(TrainingJobStatusSchema, { description: "Placement, restarts, faults found and conditions." }),
  rootRules: TrainingJobRootRules,
  printerColumns: [
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Ready", type: "string", jsonPath: ".status.ready", description: "Running/total pods" },
    { name: "Plan", type: "string", jsonPath: ".status.planSummary" },
    { name: "Restarts", type: "integer", jsonPath: ".status.restarts" },
    { name: "Nodes", type: "integer", jsonPath: ".spec.nodes", description: "Nodes in the gang", priority: 1 },
    age,
  ],
});

export const fabricTopologyCrd = buildCrd({
  names: FabricTopologyNames,
  spec: CloneType(FabricTopologySpecSchema, {
    description: "The fabric's switches and cables: spines, leaves, and each leaf's ports to each spine.",
  }),
  status: CloneType(FabricTopologyStatusSchema, {
    description: "How the nodes labelled with this island match the fabric.",
  }),
  scope: "Cluster",
  printerColumns: [
    { name: "Island", type: "string", jsonPath: ".spec.island" },
    { name: "Nodes", type: "integer", jsonPath: ".status.nodes" },
    { name: "Failed ports", type: "integer", jsonPath: ".status.failedPorts" },
    { name: "InSync", type: "string", jsonPath: '.status.conditions[?(@.type=="InSync")].status' },
    age,
  ],
});

export const gpuProfileCrd = buildCrd({
  names: GpuProfileNames,
  spec: CloneType(GpuProfileSpecSchema, {
    description: "Measured latency coefficients of one engine on one GPU model, and how well they fit the sweep.",
  }),
  status: CloneType(GpuProfileStatusSchema, { description: "Conditions of the profile." }),
  scope: "Cluster",
  printerColumns: [
    { name: "GPU", type: "string", jsonPath: ".spec.gpuModel" },
    { name: "Engine", type: "string", jsonPath: ".spec.engine.name" },
    {
      name: "Max error %",
      type: "number",
      jsonPath: ".spec.calibration.maxErrorPercent",
      description: "Largest model-vs-measured error of the calibration",
    },
    age,
  ],
});

export const ALL_CRDS = [servingDeploymentCrd, trainingJobCrd, fabricTopologyCrd, gpuProfileCrd] as const;
