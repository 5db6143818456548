/**
 * Optional API keys: a file of keys (a mounted Secret, one key per line) and the check of a request's
 * `Authorization: Bearer <key>` (OpenAI's scheme) or `x-api-key` header. Keys are compared as SHA-256 digests with
 * timingSafeEqual, so neither the comparison time nor a log line reveals a key; only digests are kept in memory.
 * The file is re-read when its modification time or size changes (kubelet swaps a Secret volume's files when the
 * Secret changes), so keys rotate without a restart. A file that cannot be read keeps the keys last read; a
 * gateway that starts with keys configured but no readable file refuses to start.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

export const AuthFailure = { missing: "missing", invalid: "invalid" } as const;
export type AuthFailure = (typeof AuthFailure)[keyof typeof AuthFailure];

const digest = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest();

/** Keys of a key file's text: one per line, blank lines and '#' comments skipped, surrounding whitespace trimmed. */
export function parseKeyFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** The key a request presents, if any. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === "string") {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers["x-api-key"];
  return typeof apiKey === "string" && apiKey.trim() !== "" ? apiKey.trim() : undefined;
}

export class ApiKeys {
  private digests: Buffer[] = [];
  private stamp = "";

  /** `path` undefined: keys off, every request passes. */
  constructor(private readonly path: string | undefined) {
    if (path === undefined) return;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      throw new Error(`cannot read the API key file ${path}`, { cause: error });
    }
    if (parseKeyFile(text).length === 0) throw new Error(`the API key file ${path} holds no key`);
    this.reload();
  }

  get enabled(): boolean {
    return this.path !== undefined;
  }

  get count(): number {
    return this.digests.length;
  }

  /** Re-reads the file when it changed; true when it could be read. A file emptied by mistake keeps the old keys. */
  reload(): boolean {
    if (this.path === undefined) return true;
    try {
      const stats = statSync(this.path);
      const stamp = `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
      if (stamp === this.stamp) return true;
      const keys = parseKeyFile(readFileSync(this.path, "utf8"));
      if (keys.length === 0) return false;
      this.digests = keys.map(digest);
      this.stamp = stamp;
      return true;
    } catch {
      return false;
    }
  }

  /** undefined when the request may pass, else why not. */
  check(headers: Record<string, string | string[] | undefined>): AuthFailure | undefined {
    if (this.path === undefined) return undefined;
    const key = presentedKey(headers);
    if (key === undefined) return AuthFailure.missing;
    const presented = digest(key);
    let ok = false;
    // Every digest is compared (no early exit), so the time does not depend on which key matched.
    for (const d of this.digests) ok = timingSafeEqual(d, presented) || ok;
    return ok ? undefined : AuthFailure.invalid;
  }
}
