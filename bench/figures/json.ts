/** Small readers for results JSON of unknown shape: a figure names the field it needs and gets a clear error. */
export type Json = unknown;

export class FigureDataError extends Error {
  override name = "FigureDataError";
  constructor(
    readonly figure: string,
    message: string,
  ) {
    super(`figure ${figure}: ${message}`);
  }
}

export function field(figure: string, value: Json, key: string): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new FigureDataError(figure, `expected an object holding "${key}"`);
  return (value as Record<string, Json>)[key];
}

export function array(figure: string, value: Json, key: string): Json[] {
  const v = field(figure, value, key);
  if (!Array.isArray(v)) throw new FigureDataError(figure, `"${key}" is not an array`);
  return v;
}

/** A finite number, or null for null/absent (the benches write null for "not measured"). */
export function num(figure: string, value: Json, key: string): number | null {
  const v = field(figure, value, key);
  if (v === null || v === undefined) return null;
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new FigureDataError(figure, `"${key}" is not a number: ${JSON.stringify(v)}`);
  return v;
}

export function str(figure: string, value: Json, key: string): string {
  const v = field(figure, value, key);
  if (typeof v !== "string") throw new FigureDataError(figure, `"${key}" is not a string: ${JSON.stringify(v)}`);
  return v;
}
