import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GENERATED_DIR, generate } from "./gen-proto.js";

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(root, path));
    }
  };
  walk(root);
  return out.sort();
}

describe("generated gRPC types", () => {
  const fresh = mkdtempSync(join(tmpdir(), "gpufleet-proto-"));
  afterAll(() => rmSync(fresh, { recursive: true, force: true }));

  it("are up to date with agent/proto (run `npm run gen:proto` if this fails)", () => {
    generate(fresh);
    const expected = listFiles(fresh);
    expect(expected.length).toBeGreaterThan(10);
    expect(listFiles(GENERATED_DIR)).toEqual(expected);
    for (const file of expected) {
      expect(readFileSync(join(GENERATED_DIR, file), "utf8"), file).toBe(readFileSync(join(fresh, file), "utf8"));
    }
  }, 30_000);
});
