/**
 * Fails when a TypeScript/JavaScript line is longer than .prettierrc's printWidth. Prettier wraps code but not
 * comments, and it never splits a string, regex or URL: those are exempt here too (a user-facing message split
 * over lines is one a reader can no longer grep for), everything else must fit.
 *
 *   tsx scripts/check-line-width.ts            # all tracked files prettier formats
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const REGEX_LITERAL = /\/(?![/*])(?:[^/\\\n[]|\\.|\[(?:[^\]\\]|\\.)*\])+\/[dgimsuyv]*/g;
const URL = /https?:\/\/\S+/g;

/**
 * The line as it counts against the width: each string (quotes or a template, with whatever its `${}` holds),
 * regex and URL shortened to two characters. A comment line counts in full but for its URLs (an apostrophe in
 * prose is not a string).
 */
export function countedLength(line: string): number {
  const withoutUrls = line.replace(URL, '""');
  if (/^\s*(\/\/|\/\*|\*)/.test(line)) return withoutUrls.length;
  return withoutStrings(withoutUrls).replace(REGEX_LITERAL, '""').length;
}

/** The code of one line with each outermost string literal replaced by "" (templates nest through `${}`). */
function withoutStrings(line: string): string {
  let out = "";
  // Open templates and, inside each `${`, the depth of plain braces; empty: top-level code.
  const stack: { braces: number }[] = [];
  let inTemplate = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (inTemplate) {
      if (c === "\\") i++;
      else if (c === "`") {
        inTemplate = false;
        if (stack.length === 0) out += '""';
      } else if (c === "$" && line[i + 1] === "{") {
        stack.push({ braces: 0 });
        inTemplate = false;
        i++;
      }
      continue;
    }
    const nested = stack.length > 0;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < line.length && line[j] !== c) j += line[j] === "\\" ? 2 : 1;
      i = j;
      if (!nested) out += '""';
    } else if (c === "`") inTemplate = true;
    else if (nested && c === "{") stack[stack.length - 1]!.braces++;
    else if (nested && c === "}") {
      const top = stack[stack.length - 1]!;
      if (top.braces > 0) top.braces--;
      else {
        stack.pop();
        inTemplate = true;
      }
    } else if (!nested) out += c;
  }
  return out;
}

export function overlongLines(text: string, width: number): { line: number; length: number }[] {
  return text
    .split("\n")
    .map((l, i) => ({ line: i + 1, length: l.length, counted: countedLength(l) }))
    .filter((l) => l.length > width && l.counted > width)
    .map(({ line, length }) => ({ line, length }));
}

function main(): void {
  const width = (JSON.parse(readFileSync(".prettierrc", "utf8")) as { printWidth: number }).printWidth;
  const files = execFileSync(
    "git",
    ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts", "*.mts", "*.js", "*.mjs"],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter((f) => f && !f.includes("/generated/"));
  let bad = 0;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue; // listed but deleted in the working tree
    }
    for (const { line, length } of overlongLines(text, width)) {
      bad++;
      console.error(`${file}:${line}: ${length} characters (printWidth ${width})`);
    }
  }
  if (bad > 0) {
    console.error(`${bad} line(s) longer than ${width} characters outside strings, regexes and URLs`);
    process.exit(1);
  }
  console.log(`line width: every code and comment line fits in ${width} characters (${files.length} files)`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
