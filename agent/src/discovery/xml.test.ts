import { describe, expect, it } from "vitest";
import { childText, parseXml, XmlParseError } from "./xml.js";

describe("parseXml", () => {
  it("reads nested elements, attributes, entities and skips declarations", () => {
    const doc = parseXml(
      `<?xml version="1.0" ?>\n<!DOCTYPE log SYSTEM "x.dtd">\n<!-- c --><log><gpu id="0000:18:00.0"><name>A &amp; B</name><e/></gpu></log>`,
    );
    const gpu = doc.children[0]!.children[0]!;
    expect(gpu.attributes).toEqual({ id: "0000:18:00.0" });
    expect(childText(gpu, "name")).toBe("A & B");
    expect(gpu.children.map((c) => c.name)).toEqual(["name", "e"]);
  });

  it.each([
    ["mismatched close", "<a><b></a>"],
    ["unclosed element", "<a><b></b>"],
    ["stray markup", "<a>1 < 2</a>"],
  ])("rejects %s", (_name, source) => {
    expect(() => parseXml(source)).toThrow(XmlParseError);
  });
});
