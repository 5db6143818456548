import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GPU_CATALOG } from "../../common/src/hardware/catalog.js";
import { toStructuralSchema } from "./crd.js";
import { renderCrdFiles } from "./render.js";
import { Type } from "@sinclair/typebox";
import { GpuModels } from "./topology.js";

describe("generated CRD YAML", () => {
  it.each(renderCrdFiles().map((f) => [f.fileName, f.yaml] as const))(
    "%s is up to date (run `npm run gen:crds`)",
    (fileName, yaml) => {
      const committed = readFileSync(fileURLToPath(new URL(`../${fileName}`, import.meta.url)), "utf8");
      expect(committed).toBe(yaml);
    },
  );
});

describe("toStructuralSchema", () => {
  it("turns TypeBox's JSON Schema into Kubernetes' OpenAPI v3.0 dialect", () => {
    const schema = Type.Object(
      {
        rate: Type.Number({ exclusiveMinimum: 0 }),
        withDefault: Type.Integer({ default: 3 }),
        labels: Type.Record(Type.String(), Type.Integer()),
      },
      { additionalProperties: false, $id: "x" },
    );
    expect(toStructuralSchema(schema)).toEqual({
      type: "object",
      required: ["rate", "labels"],
      properties: {
        rate: { type: "number", minimum: 0, exclusiveMinimum: true },
        withDefault: { type: "integer", default: 3 },
        labels: { type: "object", additionalProperties: { type: "integer" } },
      },
    });
  });
});

describe("API GPU models", () => {
  it("are exactly the hardware catalog's models", () => {
    expect([...GpuModels].sort()).toEqual(Object.keys(GPU_CATALOG).sort());
  });
});
