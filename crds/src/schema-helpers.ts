/**
 * Small TypeBox helpers for Kubernetes structural schemas. TypeBox gives us a JSON Schema and its TypeScript type
 * from one definition; these helpers only add what Kubernetes needs and TypeBox spells differently.
 */
import { Type, type TSchema, type TUnsafe, type SchemaOptions } from "@sinclair/typebox";

/** A CEL rule checked by the API server (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  /** Field path the error is reported at, e.g. ".parallelism.tp". */
  fieldPath?: string;
}

/** String enum as `{type: string, enum}`: Kubernetes rejects TypeBox's `anyOf` of `const`s. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

/** Attaches CEL rules to a schema's options. */
export function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

/** Values of an `as const` object, typed as a tuple-ish array for StringEnum. */
export function valuesOf<const T extends Record<string, string>>(object: T): T[keyof T][] {
  return Object.values(object) as T[keyof T][];
}

export type { TSchema };
