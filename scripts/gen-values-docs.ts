/**
 * `npm run gen:values-docs`: writes docs/reference/values.md, every key of the chart's values.yaml with its default
 * and the comment above it (the chart's one description of a value), falling back to values.schema.json's
 * description where the YAML has no comment. scripts/gen-values-docs.test.ts fails when the page is stale.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isMap, isPair, isScalar, isSeq, parseDocument, type Node, type Pair } from "yaml";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const VALUES_PATH = path.join(ROOT, "charts", "gpufleet", "values.yaml");
export const SCHEMA_PATH = path.join(ROOT, "charts", "gpufleet", "values.schema.json");
export const VALUES_DOCS_PATH = path.join(ROOT, "docs", "reference", "values.md");

export interface ValueRow {
  key: string;
  /** The default as YAML flow text; empty for a map with keys of its own (they get rows). */
  defaultValue: string;
  description: string;
}

type SchemaNode = { description?: string; properties?: Record<string, SchemaNode> };

function schemaDescription(schema: SchemaNode | undefined, keyPath: readonly string[]): string {
  let node = schema;
  for (const k of keyPath) node = node?.properties?.[k];
  return node?.description ?? "";
}

/** A comment block as one line: `#` markers dropped, lines joined. */
const oneLine = (comment: string | null | undefined) =>
  (comment ?? "")
    .split("\n")
    .map((l) => l.replace(/^\s*#?\s?/, "").trim())
    .filter(Boolean)
    .join(" ");

function flow(node: unknown): string {
  if (isScalar(node)) return JSON.stringify(node.value);
  if (isSeq(node)) return node.items.length === 0 ? "[]" : JSON.stringify((node as { toJSON(): unknown }).toJSON());
  if (isMap(node)) return node.items.length === 0 ? "{}" : JSON.stringify((node as { toJSON(): unknown }).toJSON());
  return "";
}

export function valueRows(valuesYaml: string, schema?: SchemaNode): ValueRow[] {
  const doc = parseDocument(valuesYaml);
  const rows: ValueRow[] = [];
  const visit = (map: Node, at: string[]) => {
    if (!isMap(map)) return;
    map.items.forEach((pair: Pair, i) => {
      if (!isPair(pair) || !isScalar(pair.key)) return;
      const keyPath = [...at, String(pair.key.value)];
      // yaml puts the comment above the first key of a document (or of a map) on the map/document itself.
      const leading = i === 0 && at.length === 0 ? doc.commentBefore : i === 0 ? map.commentBefore : undefined;
      const own = oneLine(pair.key.commentBefore) || (i === 0 && at.length > 0 ? oneLine(leading) : "");
      const value = pair.value as Node | null;
      const nested = isMap(value) && value.items.length > 0;
      const trailing = isScalar(value) ? oneLine(value.comment) : "";
      rows.push({
        key: keyPath.join("."),
        defaultValue: nested ? "" : flow(value),
        description: [own, trailing].filter(Boolean).join(" ") || schemaDescription(schema, keyPath),
      });
      if (nested) visit(value, keyPath);
    });
  };
  if (doc.contents) visit(doc.contents as Node, []);
  return rows;
}

const cell = (text: string) => text.replace(/\|/g, "\\|");

export function renderValuesReference(
  valuesYaml = readFileSync(VALUES_PATH, "utf8"),
  schema: SchemaNode = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as SchemaNode,
): string {
  const lines = [
    "# Helm values reference",
    "",
    "<!-- Generated from charts/gpufleet/values.yaml by `npm run gen:values-docs`. Do not edit by hand; a test fails when it is stale. -->",
    "",
    "Every key of `charts/gpufleet/values.yaml` with its default and the comment above it there (or its",
    "`values.schema.json` description). The schema rejects unknown keys and wrong types at `helm install`.",
    "",
    "| Key | Default | Description |",
    "| --- | --- | --- |",
    ...valueRows(valuesYaml, schema).map(
      (r) => `| \`${r.key}\` | ${r.defaultValue ? `\`${cell(r.defaultValue)}\`` : ""} | ${cell(r.description)} |`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(VALUES_DOCS_PATH, renderValuesReference());
  console.log(`wrote ${path.relative(process.cwd(), VALUES_DOCS_PATH)}`);
}
