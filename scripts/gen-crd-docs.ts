/**
 * `npm run gen:crd-docs`: writes docs/reference/crds.md, the field reference of every gpufleet CRD, from the
 * generated CRD objects (crds/src, the one schema source), so the page and `kubectl explain` say the same thing.
 * scripts/gen-crd-docs.test.ts fails when a field has no description or the committed page is stale.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ALL_CRDS } from "../crds/src/crd.js";

type Schema = { [key: string]: unknown };

export const CRD_DOCS_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "docs",
  "reference",
  "crds.md",
);

/** One property of a CRD schema, at its path (arrays as `[]`, maps as `{}`). */
export interface SchemaField {
  path: string;
  schema: Schema;
  required: boolean;
}

/** Every property under the schema, depth first, parents before children. */
export function schemaFields(root: Schema, prefix = ""): SchemaField[] {
  const out: SchemaField[] = [];
  const visit = (node: Schema, at: string) => {
    const properties = (node.properties ?? {}) as Record<string, Schema>;
    const required = new Set((node.required ?? []) as string[]);
    for (const [name, child] of Object.entries(properties)) {
      const childPath = at ? `${at}.${name}` : name;
      out.push({ path: childPath, schema: child, required: required.has(name) });
      visit(child, childPath);
    }
    if (node.items && typeof node.items === "object") visit(node.items as Schema, `${at}[]`);
    if (node.additionalProperties && typeof node.additionalProperties === "object")
      visit(node.additionalProperties as Schema, `${at}{}`);
  };
  visit(root, prefix);
  return out;
}

/** The versions' root schema of a CRD object. */
export function crdRootSchema(crd: Schema): Schema {
  const versions = (crd.spec as Schema).versions as Schema[];
  return (versions[0]!.schema as Schema).openAPIV3Schema as Schema;
}

function typeOf(schema: Schema): string {
  const type = schema.type as string | undefined;
  if (type === "array") {
    const items = (schema.items ?? {}) as Schema;
    return `${typeOf(items)}[]`;
  }
  if (type === "object" && schema.additionalProperties && !schema.properties)
    return `map[string]${typeOf(schema.additionalProperties as Schema)}`;
  if (schema.format) return `${type} (${String(schema.format)})`;
  return type ?? "any";
}

/** Validation a reader needs to know before applying: enums, bounds, lengths, patterns. */
function constraints(schema: Schema): string[] {
  const out: string[] = [];
  if (Array.isArray(schema.enum)) out.push(`one of ${schema.enum.map((v) => `\`${String(v)}\``).join(", ")}`);
  if (schema.minimum !== undefined)
    out.push(`${schema.exclusiveMinimum === true ? ">" : "≥"} ${String(schema.minimum)}`);
  if (schema.maximum !== undefined)
    out.push(`${schema.exclusiveMaximum === true ? "<" : "≤"} ${String(schema.maximum)}`);
  if (schema.minLength !== undefined) out.push(`length ≥ ${String(schema.minLength)}`);
  if (schema.maxLength !== undefined) out.push(`length ≤ ${String(schema.maxLength)}`);
  if (schema.minItems !== undefined) out.push(`items ≥ ${String(schema.minItems)}`);
  if (schema.maxItems !== undefined) out.push(`items ≤ ${String(schema.maxItems)}`);
  if (schema.maxProperties !== undefined) out.push(`entries ≤ ${String(schema.maxProperties)}`);
  if (schema.pattern !== undefined) out.push(`pattern \`${String(schema.pattern)}\``);
  if (schema["x-kubernetes-list-type"] !== undefined) {
    const keys = schema["x-kubernetes-list-map-keys"] as string[] | undefined;
    out.push(`list-type ${String(schema["x-kubernetes-list-type"])}${keys ? ` keyed by ${keys.join(", ")}` : ""}`);
  }
  return out;
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

function fieldTable(fields: readonly SchemaField[]): string[] {
  const lines = [
    "| Field | Type | Required | Default | Validation | Description |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const f of fields) {
    const def = f.schema.default === undefined ? "" : `\`${JSON.stringify(f.schema.default)}\``;
    lines.push(
      `| \`${f.path}\` | ${cell(typeOf(f.schema))} | ${f.required ? "yes" : ""} | ${cell(def)} | ${cell(constraints(f.schema).join("; "))} | ${cell(String(f.schema.description ?? ""))} |`,
    );
  }
  return lines;
}

/** CEL rules with the path of the object they are attached to. */
function celRules(root: Schema): { at: string; rule: string; message: string }[] {
  const rules = (node: Schema, at: string) =>
    ((node["x-kubernetes-validations"] ?? []) as { rule: string; message: string }[]).map((r) => ({
      at,
      rule: r.rule,
      message: r.message,
    }));
  return [
    ...rules(root, "(root)"),
    ...schemaFields(root).flatMap((f) => rules(f.schema, f.path)),
    ...schemaFields(root).flatMap((f) => (f.schema.items ? rules(f.schema.items as Schema, `${f.path}[]`) : [])),
  ];
}

export function renderCrdReference(crds: readonly Schema[] = ALL_CRDS as unknown as Schema[]): string {
  const lines = [
    "# CRD reference",
    "",
    "<!-- Generated from crds/src by `npm run gen:crd-docs`. Do not edit by hand; a test fails when it is stale. -->",
    "",
    "Every field of every gpufleet custom resource, from the same schema the API server validates with (`kubectl explain` shows the same descriptions).",
    "Defaults are applied by the API server; validation rules are checked at `kubectl apply`.",
    "",
  ];
  for (const crd of crds) {
    const spec = crd.spec as Schema;
    const names = spec.names as Schema;
    lines.push(`- [${String(names.kind)}](#${String(names.kind).toLowerCase()})`);
  }
  for (const crd of crds) {
    const spec = crd.spec as Schema;
    const names = spec.names as Schema;
    const version = (spec.versions as Schema[])[0]!;
    const root = crdRootSchema(crd);
    const columns = (version.additionalPrinterColumns ?? []) as Schema[];
    lines.push(
      "",
      `## ${String(names.kind)}`,
      "",
      `\`${String(spec.group)}/${String(version.name)}\`, ${String(spec.scope)}; plural \`${String(names.plural)}\`, short names ${((names.shortNames ?? []) as string[]).map((n) => `\`${n}\``).join(", ") || "none"}.`,
      "",
      `\`kubectl get ${String(names.plural)}\` columns: ${columns.map((c) => `${String(c.name)} (\`${String(c.jsonPath)}\`)`).join(", ")}.`,
      "",
      ...fieldTable(schemaFields(root).filter((f) => !["apiVersion", "kind", "metadata"].includes(f.path))),
    );
    const rules = celRules(root);
    if (rules.length > 0) {
      lines.push(
        "",
        "Validation rules (CEL, checked by the API server):",
        "",
        "| On | Rule | Message |",
        "| --- | --- | --- |",
      );
      for (const r of rules) lines.push(`| \`${r.at}\` | \`${cell(r.rule)}\` | ${cell(r.message)} |`);
    }
  }
  return `${lines.join("\n")}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(CRD_DOCS_PATH, renderCrdReference());
  console.log(`wrote ${path.relative(process.cwd(), CRD_DOCS_PATH)}`);
}
