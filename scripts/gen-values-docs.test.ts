import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderValuesReference, valueRows, VALUES_DOCS_PATH } from "./gen-values-docs.js";

describe("docs/reference/values.md", () => {
  it("is up to date (run `npm run gen:values-docs`)", () => {
    expect(readFileSync(VALUES_DOCS_PATH, "utf8")).toBe(renderValuesReference());
  });
});

describe("valueRows", () => {
  const yaml = [
    "# File header, not about the first key.",
    "",
    "top: 1",
    "# A group.",
    "group:",
    "  # The first child.",
    '  first: "a"',
    "  second: [x]  # trailing note",
    "  empty: {}",
    "undocumented: true",
    "",
  ].join("\n");
  it("takes the comment above each key, keeps defaults of leaves, and falls back to the schema", () => {
    const schema = { properties: { undocumented: { description: "From the schema." } } };
    expect(valueRows(yaml, schema)).toEqual([
      { key: "top", defaultValue: "1", description: "" },
      { key: "group", defaultValue: "", description: "A group." },
      { key: "group.first", defaultValue: '"a"', description: "The first child." },
      { key: "group.second", defaultValue: '["x"]', description: "" },
      { key: "group.empty", defaultValue: "{}", description: "" },
      { key: "undocumented", defaultValue: "true", description: "From the schema." },
    ]);
  });
});
