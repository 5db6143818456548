import { describe, expect, it } from "vitest";
import { countedLength, overlongLines } from "./check-line-width.js";

describe("line width check", () => {
  it("counts strings, regexes and URLs as two characters, code and comments in full", () => {
    expect(countedLength(`const m = "${"x".repeat(200)}";`)).toBe('const m = "";'.length);
    expect(countedLength(`const r = /${"a".repeat(50)}/g;`)).toBe('const r = "";'.length);
    expect(countedLength(`// see https://example.com/${"p".repeat(100)}`)).toBe('// see ""'.length);
    expect(countedLength(`// ${"word ".repeat(30)}`)).toBe(3 + 150);
    expect(countedLength('  `a ${xs.map((x) => `${x}`).join(", ")} ' + "b".repeat(150) + "`,")).toBe('  "",'.length);
    expect(countedLength(` * the agent's and the operator's ${"x".repeat(100)}`)).toBe(
      ` * the agent's and the operator's ${"x".repeat(100)}`.length,
    );
  });

  it("reports only lines over the width outside literals", () => {
    const text = [`x(); // ${"w".repeat(130)}`, `throw new Error("${"m".repeat(130)}");`, "short();"].join("\n");
    expect(overlongLines(text, 120)).toEqual([{ line: 1, length: 8 + 130 }]);
  });
});
