/**
 * One way for every component to read its configuration: environment variables named per field, converted and
 * defaulted by a TypeBox schema, and rejected at start-up with the variable's name, the rule and the value, rather
 * than at first use. Empty variables count as unset.
 */
import type { Static, TObject } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/**
 * The configuration `schema` describes, from `env` through `variables` (field → variable name). `fallbacks` fill
 * fields whose variable is unset (e.g. the downward API's POD_NAME); undefined fallbacks are ignored.
 * Throws `makeError(message)` listing every invalid field.
 */
export function configFromEnv<S extends TObject>(
  schema: S,
  variables: Readonly<Record<keyof Static<S> & string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  options: { fallbacks?: Readonly<Record<string, unknown>>; what: string; makeError: (message: string) => Error },
): Static<S> {
  const raw: Record<string, unknown> = {};
  for (const [field, variable] of Object.entries(variables) as [string, string][])
    if (env[variable] !== undefined && env[variable] !== "") raw[field] = env[variable];
  for (const [field, value] of Object.entries(options.fallbacks ?? {}))
    if (raw[field] === undefined && value !== undefined) raw[field] = value;
  const converted = Value.Convert(schema, Value.Default(schema, raw));
  const errors = [...Value.Errors(schema, converted)];
  if (errors.length > 0) {
    const details = errors.map(
      (e) =>
        `${(variables as Record<string, string>)[e.path.slice(1)] ?? e.path}: ${e.message} (got ${JSON.stringify(e.value)})`,
    );
    throw options.makeError(`invalid ${options.what} configuration: ${[...new Set(details)].join("; ")}`);
  }
  return converted as Static<S>;
}
