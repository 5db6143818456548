import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ALL_CRDS } from "../crds/src/crd.js";
import { FabricCondition } from "../crds/src/fabric-topology.js";
import { ServingCondition, TrainingCondition } from "../crds/src/reasons.js";
import { CRD_DOCS_PATH, crdRootSchema, renderCrdReference, schemaFields } from "./gen-crd-docs.js";

type Schema = { [key: string]: unknown };
const crds = ALL_CRDS as unknown as Schema[];
const kindOf = (crd: Schema) => String(((crd.spec as Schema).names as Schema).kind);

describe("CRD field descriptions", () => {
  // `kubectl explain` prints a field's description and nothing else: an undescribed field is a blank page there.
  it.each(crds.map((crd) => [kindOf(crd), crd] as const))("every field of %s has a description", (_kind, crd) => {
    const undescribed = schemaFields(crdRootSchema(crd))
      // metadata is ObjectMeta: the API server refuses a description there and `kubectl explain` has its own.
      .filter((f) => f.path !== "metadata")
      .filter((f) => typeof f.schema.description !== "string" || (f.schema.description as string).trim() === "")
      .map((f) => f.path);
    expect(undescribed).toEqual([]);
  });

  it("walks nested objects, array items and maps", () => {
    const root = {
      properties: {
        a: { type: "array", items: { type: "object", properties: { b: { type: "string" } } } },
        m: { type: "object", additionalProperties: { type: "object", properties: { c: { type: "integer" } } } },
      },
      required: ["a"],
    };
    expect(schemaFields(root).map((f) => [f.path, f.required])).toEqual([
      ["a", true],
      ["a[].b", false],
      ["m", false],
      ["m{}.c", false],
    ]);
  });
});

describe("docs/reference/crds.md", () => {
  it("is up to date (run `npm run gen:crd-docs`)", () => {
    expect(readFileSync(CRD_DOCS_PATH, "utf8")).toBe(renderCrdReference());
  });

  it("has a row per field with its description", () => {
    const page = renderCrdReference();
    for (const crd of crds) {
      expect(page).toContain(`## ${kindOf(crd)}`);
      for (const f of schemaFields(crdRootSchema(crd)).filter(
        (x) => !["apiVersion", "kind", "metadata"].includes(x.path),
      )) {
        expect(page).toContain(`| \`${f.path}\` |`);
      }
    }
    expect(page).toContain(
      "| `spec.slo.attainmentPercent` | number |  | `90` | > 0; ≤ 100 | Share of requests that must meet both targets. |",
    );
  });
});

describe("docs/runbooks", () => {
  const dir = path.join(path.dirname(CRD_DOCS_PATH), "..", "runbooks");
  const conditions = [
    ...Object.values(ServingCondition).map((t) => `ServingDeployment-${t}`),
    ...Object.values(TrainingCondition).map((t) => `TrainingJob-${t}`),
    ...Object.values(FabricCondition).map((t) => `FabricTopology-${t}`),
    "Node-NicDegraded", // the node condition NicDegraded-<nic> that fault detection sets
  ];
  it.each(conditions)("has a page for the %s condition", (page) => {
    expect(existsSync(path.join(dir, `${page}.md`))).toBe(true);
  });

  it("links only to files that exist", () => {
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".md"))) {
      const text = readFileSync(path.join(dir, file), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        expect(existsSync(path.join(dir, target!)), `${file} → ${target}`).toBe(true);
      }
    }
  });

  it("lists every page in its README", () => {
    const readme = readFileSync(path.join(dir, "README.md"), "utf8");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".md") && f !== "README.md"))
      expect(readme).toContain(`(${file})`);
  });
});

describe("docs/architecture.md", () => {
  it("links only to files that exist, and to every docs/*.md page", () => {
    const docs = path.join(path.dirname(CRD_DOCS_PATH), "..");
    const text = readFileSync(path.join(docs, "architecture.md"), "utf8");
    const targets = [...text.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)].map((m) => m[1]!);
    for (const target of targets) expect(existsSync(path.join(docs, target)), target).toBe(true);
    for (const page of readdirSync(docs).filter((f) => f.endsWith(".md") && f !== "architecture.md"))
      expect(targets, page).toContain(page);
  });
});
