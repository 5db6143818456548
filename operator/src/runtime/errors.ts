/**
 * The error taxonomy the controller runner acts on: a thrown error retries with backoff; a conflict is a quiet
 * requeue (someone else wrote first: re-read and try again); an invalid spec is not thrown at all but reported as
 * a False condition by the reconciler, since retrying cannot fix it.
 */

/** HTTP status of a Kubernetes API error, whatever shape client-node gave it. */
export function apiStatusCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  for (const candidate of [e.code, e.statusCode, e.response?.statusCode])
    if (typeof candidate === "number") return candidate;
  return undefined;
}

export const isConflict = (error: unknown): boolean => apiStatusCode(error) === 409;
export const isNotFound = (error: unknown): boolean => apiStatusCode(error) === 404;

/** Wraps an API error with what we were doing, keeping the status code reachable for the taxonomy above. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly code: number | undefined;
  constructor(action: string, cause: unknown) {
    const body = (cause as { body?: unknown })?.body;
    const detail =
      typeof body === "string" ? body : body ? JSON.stringify(body) : String((cause as Error)?.message ?? cause);
    super(`${action}: ${detail}`, { cause });
    this.code = apiStatusCode(cause);
  }
}

/** Runs an API call, wrapping failures with context. */
export async function kubeCall<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new KubeApiError(action, error);
  }
}
