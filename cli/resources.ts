/**
 * Reading a gpufleet resource file for the CLI: YAML (or JSON) of one ServingDeployment or TrainingJob, checked
 * against the same TypeBox schemas the CRDs are generated from (crds/src), with the API server's defaults filled
 * in. An error names the file, the document and the field (`spec.slo.ttftMs: expected a number > 0`), as
 * `kubectl apply` would; unknown fields are refused as kubectl's strict field validation refuses them.
 *
 * The CRDs' CEL rules (x-kubernetes-validations) are the API server's to evaluate and are not re-implemented here;
 * what they guard (e.g. tp × pp × dp = nodes × gpusPerNode) the planners check again and report by field.
 */
import { readFileSync } from "node:fs";
import { TypeRegistry, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { parseAllDocuments } from "yaml";
import { API_GROUP_VERSION, MAX_RESOURCE_NAME_LENGTH } from "../crds/src/common.js";
import {
  ServingDeploymentNames,
  ServingDeploymentSpecSchema,
  type ServingDeployment,
} from "../crds/src/serving-deployment.js";
import { TrainingJobNames, TrainingJobSpecSchema, type TrainingJob } from "../crds/src/training-job.js";
import { usageError } from "./errors.js";

export type GpufleetResource =
  { kind: "ServingDeployment"; object: ServingDeployment } | { kind: "TrainingJob"; object: TrainingJob };

// crds/src StringEnum is TypeBox's Unsafe kind (Kubernetes wants {type: string, enum}); teach the checker it.
if (!TypeRegistry.Has("Unsafe")) {
  TypeRegistry.Set(
    "Unsafe",
    (schema: { type?: string; enum?: unknown[] }, value) =>
      (schema.type !== "string" || typeof value === "string") && (!schema.enum || schema.enum.includes(value)),
  );
}

const SPEC_SCHEMAS = { ServingDeployment: ServingDeploymentSpecSchema, TrainingJob: TrainingJobSpecSchema } as const;

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads and validates every gpufleet document of a file (other kinds are refused by name). */
export function loadResourceFile(path: string): GpufleetResource[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw usageError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
      cause: error,
    });
  }
  return parseResources(text, path);
}

export function parseResources(text: string, source: string): GpufleetResource[] {
  const docs = parseAllDocuments(text);
  const resources: GpufleetResource[] = [];
  docs.forEach((doc, i) => {
    const where = docs.length > 1 ? `${source} (document ${i + 1})` : source;
    if (doc.errors.length > 0) throw usageError(`${where}: not valid YAML: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    resources.push(validateResource(value, where));
  });
  if (resources.length === 0) throw usageError(`${source}: holds no resource`);
  return resources;
}

export function validateResource(value: unknown, where: string): GpufleetResource {
  const fail = (field: string, detail: string): never => {
    throw usageError(`${where}: ${field} ${detail}`);
  };
  if (!isRecord(value)) return fail("(document)", "must be a mapping with apiVersion, kind, metadata and spec");
  if (value.apiVersion !== API_GROUP_VERSION)
    fail("apiVersion", `must be ${API_GROUP_VERSION}, got ${JSON.stringify(value.apiVersion)}`);
  const kind = value.kind;
  if (kind !== ServingDeploymentNames.kind && kind !== TrainingJobNames.kind) {
    return fail("kind", `must be ServingDeployment or TrainingJob, got ${JSON.stringify(kind)}`);
  }
  const metadata = value.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== "string" || metadata.name === "")
    return fail("metadata.name", "is required");
  if (metadata.name.length > MAX_RESOURCE_NAME_LENGTH)
    fail(
      "metadata.name",
      `must be at most ${MAX_RESOURCE_NAME_LENGTH} characters (pod and service names are derived from it)`,
    );
  if (metadata.namespace !== undefined && typeof metadata.namespace !== "string")
    fail("metadata.namespace", "must be a string");
  if (!isRecord(value.spec)) return fail("spec", "is required and must be a mapping");
  const schema = SPEC_SCHEMAS[kind];
  unknownField(schema, value.spec, "spec", fail);
  const spec: unknown = Value.Default(schema, structuredClone(value.spec));
  const first = Value.Errors(schema, spec).First();
  if (first) {
    const allowed = (first.schema as { enum?: unknown[] }).enum;
    fail(
      fieldPath(first.path),
      allowed
        ? `must be one of ${allowed.join(", ")} (got ${JSON.stringify(first.value)})`
        : describeError(first.message, first.value),
    );
  }
  const object = { ...value, metadata: { namespace: "default", ...metadata }, spec } as never;
  return kind === ServingDeploymentNames.kind ? { kind, object } : { kind, object };
}

/** "/slo/ttftMs" → "spec.slo.ttftMs"; "/engine/args/2" → "spec.engine.args[2]". */
export function fieldPath(pointer: string): string {
  return pointer
    .split("/")
    .slice(1)
    .reduce(
      (out, part) =>
        /^\d+$/.test(part) ? `${out}[${part}]` : `${out}.${part.replace(/~1/g, "/").replace(/~0/g, "~")}`,
      "spec",
    );
}

function describeError(message: string, value: unknown): string {
  const got = value === undefined ? "it is missing" : `got ${JSON.stringify(value)}`;
  return `${message.charAt(0).toLowerCase()}${message.slice(1)} (${got})`;
}

/** The first field the schema does not know, as `kubectl apply --validate=strict` would refuse it. */
function unknownField(
  schema: TSchema,
  value: unknown,
  at: string,
  fail: (field: string, detail: string) => never,
): void {
  const s = schema as {
    type?: string;
    properties?: Record<string, TSchema>;
    items?: TSchema;
    patternProperties?: Record<string, TSchema>;
  };
  if (Array.isArray(value) && s.items) {
    value.forEach((item, i) => unknownField(s.items!, item, `${at}[${i}]`, fail));
    return;
  }
  if (!isRecord(value)) return;
  if (s.patternProperties) {
    const [inner] = Object.values(s.patternProperties);
    for (const [k, v] of Object.entries(value)) unknownField(inner!, v, `${at}.${k}`, fail);
    return;
  }
  if (!s.properties) return;
  for (const [k, v] of Object.entries(value)) {
    const child = s.properties[k];
    if (!child) fail(`${at}.${k}`, `is not a known field (known: ${Object.keys(s.properties).join(", ")})`);
    unknownField(child!, v, `${at}.${k}`, fail);
  }
}
