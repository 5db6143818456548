import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ApiKeys, AuthFailure, parseKeyFile, presentedKey } from "./api-keys.js";

const dirs: string[] = [];
function keyFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "gw-keys-"));
  dirs.push(dir);
  const path = join(dir, "keys");
  writeFileSync(path, text);
  return path;
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("API keys", () => {
  it("parses one key per line, skipping blanks and comments", () => {
    expect(parseKeyFile("# team a\nsk-one\n\n  sk-two  \r\n#sk-off\n")).toEqual(["sk-one", "sk-two"]);
  });

  it.each([
    ["a Bearer token", { authorization: "Bearer sk-one" }, "sk-one"],
    ["bearer in lower case", { authorization: "bearer sk-one" }, "sk-one"],
    ["x-api-key", { "x-api-key": " sk-one " }, "sk-one"],
    ["Basic credentials", { authorization: "Basic c2stb25l" }, undefined],
    ["nothing", {}, undefined],
  ])("reads %s", (_name, headers, key) => expect(presentedKey(headers)).toBe(key));

  it("passes everyone when no key file is configured", () => {
    const keys = new ApiKeys(undefined);
    expect(keys.enabled).toBe(false);
    expect(keys.check({})).toBeUndefined();
  });

  it("admits a listed key and refuses a missing or unknown one", () => {
    const keys = new ApiKeys(keyFile("sk-one\nsk-two\n"));
    expect(keys.check({ authorization: "Bearer sk-two" })).toBeUndefined();
    expect(keys.check({})).toBe(AuthFailure.missing);
    expect(keys.check({ authorization: "Bearer sk-three" })).toBe(AuthFailure.invalid);
    expect(keys.check({ authorization: "Bearer sk-on" })).toBe(AuthFailure.invalid);
  });

  it("picks up a rotated file without a restart, and keeps the old keys when the file is emptied", () => {
    const path = keyFile("sk-old\n");
    const keys = new ApiKeys(path);
    writeFileSync(path, "sk-new-and-longer\n");
    expect(keys.reload()).toBe(true);
    expect(keys.check({ authorization: "Bearer sk-old" })).toBe(AuthFailure.invalid);
    expect(keys.check({ authorization: "Bearer sk-new-and-longer" })).toBeUndefined();
    writeFileSync(path, "\n");
    expect(keys.reload()).toBe(false);
    expect(keys.check({ authorization: "Bearer sk-new-and-longer" })).toBeUndefined();
  });

  it("refuses to start with keys configured but no readable key", () => {
    expect(() => new ApiKeys("/nonexistent/keys")).toThrow(/cannot read the API key file \/nonexistent\/keys/);
    expect(() => new ApiKeys(keyFile("# none\n"))).toThrow(/holds no key/);
  });
});
