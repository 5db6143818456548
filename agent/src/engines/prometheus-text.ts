/**
 * A reader of the Prometheus text exposition format (version 0.0.4), enough for engine /metrics pages: samples
 * with labels and values; `# HELP`/`# TYPE` lines and timestamps are skipped. Pure; throws PrometheusTextError
 * naming the line of anything it cannot read, so a broken page is reported, never half-read.
 */

export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

export class PrometheusTextError extends Error {
  override name = "PrometheusTextError";
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(`metrics line ${line}: ${detail}`);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    samples.push(parseLine(line, i + 1));
  }
  return samples;
}

function parseLine(line: string, lineNo: number): Sample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new PrometheusTextError(lineNo, `no metric name in ${JSON.stringify(line.slice(0, 80))}`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    const end = labelsEnd(rest, lineNo);
    parseLabels(rest.slice(1, end), labels, lineNo);
    rest = rest.slice(end + 1);
  }
  const [valueText] = rest.trim().split(/\s+/);
  const value = parseValue(valueText ?? "");
  if (value === undefined)
    throw new PrometheusTextError(lineNo, `${name} has no numeric value (got ${JSON.stringify(valueText)})`);
  return { name, labels, value };
}

/** Index of the `}` closing the label set, skipping quoted values (which may hold `}`). */
function labelsEnd(text: string, lineNo: number): number {
  let quoted = false;
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === "}") return i;
  }
  throw new PrometheusTextError(lineNo, "unclosed label set");
}

function parseLabels(body: string, into: Record<string, string>, lineNo: number): void {
  const pair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < body.length) {
    pair.lastIndex = at;
    const m = pair.exec(body);
    if (!m) throw new PrometheusTextError(lineNo, `bad label near ${JSON.stringify(body.slice(at, at + 40))}`);
    into[m[1]!] = m[2]!.replace(/\\(.)/g, (_s, c: string) => (c === "n" ? "\n" : c));
    at = pair.lastIndex;
  }
}

function parseValue(text: string): number | undefined {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const v = Number(text);
  return text !== "" && !Number.isNaN(v) ? v : undefined;
}
