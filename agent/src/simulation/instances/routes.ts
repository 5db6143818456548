/**
 * Routing of the agent's one engine port (pure): every simulated instance has the base URL
 * `http://<advertised host>:<port>/instances/<pod uid>` and below it the contract's paths
 * (common/src/engine-api.ts EnginePath). Which routes an instance serves depends on its role, as DistServe splits
 * them: colocated /v1/completions; prefill /gpufleet/v1/prefill and the KV it holds; decode /gpufleet/v1/decode;
 * every role /health.
 */
import { EnginePath, InstanceRole } from "../../../../common/src/engine-api.js";
import { ErrorCode, httpError, type HttpError } from "./errors.js";

export const INSTANCES_PREFIX = "/instances/";

export function instanceBaseUrl(origin: string, podUid: string): string {
  return `${origin}${INSTANCES_PREFIX}${encodeURIComponent(podUid)}`;
}

export type Route =
  | { name: "health" }
  | { name: "completions" }
  | { name: "prefill" }
  | { name: "decode" }
  | { name: "kv-get"; requestId: string }
  | { name: "kv-delete"; requestId: string }
  | { name: "migration-reserve" }
  | { name: "migration-stage"; requestId: string }
  | { name: "migration-commit"; requestId: string }
  | { name: "migration-release"; requestId: string }
  | { name: "migration-stream"; requestId: string };

export type Matched = { instanceKey: string; route: Route } | { error: HttpError };

const ROLES_OF: Readonly<Record<Route["name"], readonly InstanceRole[]>> = {
  health: [InstanceRole.colocated, InstanceRole.prefill, InstanceRole.decode],
  completions: [InstanceRole.colocated],
  prefill: [InstanceRole.prefill],
  decode: [InstanceRole.decode],
  "kv-get": [InstanceRole.prefill],
  "kv-delete": [InstanceRole.prefill],
  // Decoding requests migrate (colocated and decode instances); prefill requests leave by the KV hand-off.
  "migration-reserve": [InstanceRole.colocated, InstanceRole.decode],
  "migration-stage": [InstanceRole.colocated, InstanceRole.decode],
  "migration-commit": [InstanceRole.colocated, InstanceRole.decode],
  "migration-release": [InstanceRole.colocated, InstanceRole.decode],
  "migration-stream": [InstanceRole.colocated, InstanceRole.decode],
};

/** Which instance and route a request is for; an error for anything the engine API does not have. */
export function matchRoute(method: string, pathname: string): Matched {
  if (!pathname.startsWith(INSTANCES_PREFIX))
    return {
      error: httpError(
        404,
        ErrorCode.notFound,
        `no route ${pathname}: instances live under ${INSTANCES_PREFIX}<pod uid>`,
      ),
    };
  const rest = pathname.slice(INSTANCES_PREFIX.length);
  const slash = rest.indexOf("/");
  const instanceKey = safeDecode(slash === -1 ? rest : rest.slice(0, slash));
  const path = slash === -1 ? "" : rest.slice(slash);
  if (!instanceKey) return { error: httpError(404, ErrorCode.notFound, `no route ${pathname}`) };
  const expect = (wanted: string, route: Route): Matched =>
    method === wanted
      ? { instanceKey, route }
      : { error: httpError(405, ErrorCode.methodNotAllowed, `${method} ${path}: use ${wanted}`) };
  if (path === EnginePath.health) return expect("GET", { name: "health" });
  if (path === EnginePath.completions) return expect("POST", { name: "completions" });
  if (path === EnginePath.prefill) return expect("POST", { name: "prefill" });
  if (path === EnginePath.decode) return expect("POST", { name: "decode" });
  if (path.startsWith(EnginePath.kvPrefix)) {
    const requestId = safeDecode(path.slice(EnginePath.kvPrefix.length));
    if (!requestId) return { error: httpError(404, ErrorCode.kvNotFound, `no request id in ${path}`) };
    if (method === "GET") return { instanceKey, route: { name: "kv-get", requestId } };
    if (method === "DELETE") return { instanceKey, route: { name: "kv-delete", requestId } };
    return { error: httpError(405, ErrorCode.methodNotAllowed, `${method} ${path}: use GET or DELETE`) };
  }
  if (path === EnginePath.migrations) return expect("POST", { name: "migration-reserve" });
  if (path.startsWith(`${EnginePath.migrations}/`)) return matchMigration(path, instanceKey, method);
  return { error: httpError(404, ErrorCode.notFound, `no route ${path || "/"} on an instance`) };
}

/** `/gpufleet/v1/migrations/<id>` (DELETE) and `/<id>/stages|commit` (POST), `/<id>/stream` (GET). */
function matchMigration(path: string, instanceKey: string, method: string): Matched {
  const [encodedId = "", step, ...more] = path.slice(EnginePath.migrations.length + 1).split("/");
  const requestId = safeDecode(encodedId);
  if (!requestId || more.length > 0)
    return { error: httpError(404, ErrorCode.notFound, `no route ${path} on an instance`) };
  const routes: Record<string, [string, Route]> = {
    "": ["DELETE", { name: "migration-release", requestId }],
    stages: ["POST", { name: "migration-stage", requestId }],
    commit: ["POST", { name: "migration-commit", requestId }],
    stream: ["GET", { name: "migration-stream", requestId }],
  };
  const found = routes[step ?? ""];
  if (!found) return { error: httpError(404, ErrorCode.notFound, `no route ${path} on an instance`) };
  const [wanted, route] = found;
  return method === wanted
    ? { instanceKey, route }
    : { error: httpError(405, ErrorCode.methodNotAllowed, `${method} ${path}: use ${wanted}`) };
}

/** undefined when the role does not serve the route (its 404 names both). */
export function roleServes(role: InstanceRole, route: Route): HttpError | undefined {
  if (ROLES_OF[route.name].includes(role)) return undefined;
  return httpError(
    404,
    ErrorCode.notFound,
    `a ${role} instance does not serve ${route.name}; ${ROLES_OF[route.name].join(" or ")} instances do`,
  );
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return "";
  }
}
