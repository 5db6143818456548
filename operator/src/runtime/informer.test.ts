/**
 * The informer's deadlines against a real socket: a tiny HTTP server that plays a half-started API server (accepts
 * the connection, never answers) or a healthy one, for lists and watches separately.
 */
import { CoreV1Api, KubeConfig, Watch, type V1Node } from "@kubernetes/client-node";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "./clock.js";
import {
  ApiRecovery,
  changesOf,
  DeadlineWatch,
  RequestDeadlineError,
  ResilientInformer,
  withDeadline,
} from "./informer.js";
import type { Logger } from "./logger.js";

/** "gone": a watch answered 410 (its resourceVersion is too old), which makes ListWatch list again at once. */
type Behaviour = "hang" | "answer" | "gone";

interface FakeApi {
  kubeConfig: KubeConfig;
  lists: number;
  watches: number;
  /** Requests whose connection the client closed. */
  closedByClient: number;
  close(): Promise<void>;
}

const servers: FakeApi[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const node = (name: string): V1Node => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name,
    resourceVersion: "5",
    managedFields: [{ manager: "kwok", operation: "Update", fieldsType: "FieldsV1", fieldsV1: { "f:status": {} } }],
  },
});

/** An API server whose list and watch either never answer or answer (the watch then streams one event, stays open). */
async function fakeApi(
  behaviour: { list: Behaviour; watch: Behaviour },
  listed: readonly string[] = ["n1"],
): Promise<FakeApi> {
  const held: ServerResponse[] = [];
  const state = { lists: 0, watches: 0, closedByClient: 0 };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    held.push(res);
    res.on("close", () => state.closedByClient++);
    const isWatch = new URL(req.url ?? "/", "http://x").searchParams.get("watch") === "true";
    if (isWatch) state.watches++;
    else state.lists++;
    if ((isWatch ? behaviour.watch : behaviour.list) === "hang") return; // accepted, never answered
    if (isWatch && behaviour.watch === "gone") {
      res.writeHead(410, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410 }));
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    if (isWatch) res.write(JSON.stringify({ type: "MODIFIED", object: node("n2") }) + "\n");
    else
      res.end(
        JSON.stringify({
          kind: "NodeList",
          apiVersion: "v1",
          metadata: { resourceVersion: "5" },
          items: listed.map(node),
        }),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const api: FakeApi = {
    kubeConfig,
    get lists() {
      return state.lists;
    },
    get watches() {
      return state.watches;
    },
    get closedByClient() {
      return state.closedByClient;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(api);
  return api;
}

const quietLogger = { warn: () => {}, info: () => {}, debug: () => {}, error: () => {} } as unknown as Logger;

function nodeInformer(
  api: FakeApi,
  extra: {
    logger?: Logger;
    maxWatchAgeMs?: number;
    onRestart?: () => void;
    recovery?: ApiRecovery;
    /** Runs before each list; throwing fails the list (an API server that refuses this informer's lists). */
    beforeList?: () => void;
    listTimeoutMs?: number;
    listTimeoutFloorMs?: number;
  } = {},
) {
  const core = api.kubeConfig.makeApiClient(CoreV1Api);
  const { beforeList, ...options } = extra;
  return new ResilientInformer<V1Node>({
    kubeConfig: api.kubeConfig,
    resource: "nodes",
    path: "/api/v1/nodes",
    list: () => {
      beforeList?.();
      return core.listNode();
    },
    logger: quietLogger,
    listTimeoutMs: 200,
    watchEstablishTimeoutMs: 200,
    ...options,
  });
}

describe("withDeadline", () => {
  it("rejects with a RequestDeadlineError naming the request when the promise outlives the deadline", async () => {
    await expect(withDeadline(new Promise(() => {}), 20, "list /api/v1/nodes", systemClock)).rejects.toThrow(
      "list /api/v1/nodes: no answer within 20 ms",
    );
    await expect(withDeadline(Promise.resolve(7), 1_000, "x", systemClock)).resolves.toBe(7);
  });
});

describe("DeadlineWatch", () => {
  it("fails a watch the server accepted but never answered, and reports no establishment", async () => {
    const api = await fakeApi({ list: "answer", watch: "hang" });
    let established = false;
    const watch = new DeadlineWatch(new Watch(api.kubeConfig), 150, systemClock, () => (established = true));
    const done = vi.fn();
    const controller = await watch.watch("/api/v1/nodes", {}, () => {}, done);
    expect(done).toHaveBeenCalledTimes(1);
    expect(done.mock.calls[0]![0]).toBeInstanceOf(RequestDeadlineError);
    expect(established).toBe(false);
    expect(controller.signal.aborted).toBe(true);
    expect(api.watches).toBe(1);
  });

  it("passes an answered watch through: establishment reported, events delivered, abort closes it quietly", async () => {
    const api = await fakeApi({ list: "answer", watch: "answer" });
    let established = false;
    const watch = new DeadlineWatch(new Watch(api.kubeConfig), 5_000, systemClock, () => (established = true));
    const events: string[] = [];
    const done = vi.fn();
    const controller = await watch.watch(
      "/api/v1/nodes",
      {},
      (type, obj: V1Node) => events.push(`${type} ${obj.metadata?.name}`),
      done,
    );
    expect(established).toBe(true);
    await vi.waitFor(() => expect(events).toEqual(["MODIFIED n2"]));
    controller.abort();
    await vi.waitFor(() => expect(api.closedByClient).toBe(1));
    expect(done).not.toHaveBeenCalled(); // the owner stopped it: its AbortError is no failure to report
  });
});

describe("ResilientInformer cache", () => {
  it("holds listed and watched objects without their managedFields", async () => {
    const api = await fakeApi({ list: "answer", watch: "answer" });
    const informer = nodeInformer(api, { listTimeoutMs: 5_000 });
    const seen: V1Node[] = [];
    informer.on((_event, n) => seen.push(n));
    await informer.start();
    await vi.waitFor(() => expect(informer.get("n2")).toBeDefined());
    for (const name of ["n1", "n2"]) {
      expect(informer.get(name)?.metadata?.name).toBe(name);
      expect(informer.get(name)?.metadata).not.toHaveProperty("managedFields");
    }
    expect(seen.map((n) => n.metadata).every((m) => !("managedFields" in m!))).toBe(true);
    await informer.stop();
  });
});

describe("ResilientInformer change count", () => {
  it("replays the cache after a recovery without growing the change count (the cache is unchanged)", async () => {
    const behaviour: { list: Behaviour; watch: Behaviour } = { list: "answer", watch: "hang" };
    const api = await fakeApi(behaviour, ["n1", "n3", "n4", "n5"]);
    const informer = nodeInformer(api);
    const countsAtResync: number[] = [];
    informer.on((event) => {
      if (event === "resync") countsAtResync.push(informer.changeCount);
    });
    await informer.start();
    await vi.waitFor(() => expect(informer.pendingRestartAttempts).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
    behaviour.watch = "answer";
    await vi.waitFor(() => expect(countsAtResync.length).toBe(4), { timeout: 15_000 });
    await informer.stop();
    // The replay's four objects all see one count: no event of the replay moved it.
    expect(new Set(countsAtResync).size).toBe(1);
  }, 20_000);
});

describe("ResilientInformer deadlines", () => {
  it("keeps retrying, with a growing backoff, while lists are accepted and never answered; stop() returns", async () => {
    const api = await fakeApi({ list: "hang", watch: "hang" });
    const informer = nodeInformer(api);
    await informer.start();
    expect(informer.hasSynced).toBe(false);
    // 200 ms deadline, then 500 ms, 1 s, 2 s backoff: a third failed attempt proves restarts neither hang nor reset.
    await vi.waitFor(() => expect(informer.pendingRestartAttempts).toBeGreaterThanOrEqual(3), { timeout: 15_000 });
    expect(api.lists).toBeGreaterThanOrEqual(3);
    await informer.stop();
  }, 20_000);

  it("does not count a restart whose watch went unanswered as a success (no backoff reset, no resync replay)", async () => {
    const api = await fakeApi({ list: "answer", watch: "hang" });
    const informer = nodeInformer(api);
    const resyncs: string[] = [];
    informer.on((event, n) => {
      if (event === "resync") resyncs.push(n.metadata!.name!);
    });
    await informer.start();
    expect(informer.hasSynced).toBe(true); // the list succeeded; the cache is usable
    expect(informer.get("n1")?.metadata?.name).toBe("n1");
    await vi.waitFor(() => expect(informer.pendingRestartAttempts).toBeGreaterThanOrEqual(3), { timeout: 15_000 });
    expect(api.watches).toBeGreaterThanOrEqual(3);
    expect(resyncs).toEqual([]);
    await informer.stop();
  }, 20_000);

  it("recovers once the API server answers again: backoff reset, cache replayed once as resync", async () => {
    const behaviour: { list: Behaviour; watch: Behaviour } = { list: "answer", watch: "hang" };
    const api = await fakeApi(behaviour);
    const informer = nodeInformer(api);
    const resyncs: string[] = [];
    informer.on((event, n) => {
      if (event === "resync") resyncs.push(n.metadata!.name!);
    });
    await informer.start();
    await vi.waitFor(() => expect(informer.pendingRestartAttempts).toBeGreaterThanOrEqual(2), { timeout: 15_000 });
    behaviour.watch = "answer";
    await vi.waitFor(() => expect(informer.pendingRestartAttempts).toBe(0), { timeout: 15_000 });
    expect(resyncs).toEqual(["n1"]);
    await vi.waitFor(() => expect(informer.get("n2")?.metadata?.name).toBe("n2")); // the watch's event landed
    await informer.stop();
  }, 20_000);

  it("a restart's own abort of the old watch is not a failure (no restart loop on a healthy server)", async () => {
    const api = await fakeApi({ list: "answer", watch: "answer" });
    const warnings: unknown[] = [];
    let restarts = 0;
    const logger = { ...quietLogger, warn: (fields: unknown) => warnings.push(fields) } as unknown as Logger;
    const informer = nodeInformer(api, { logger, maxWatchAgeMs: 400, onRestart: () => restarts++ });
    const resyncs: string[] = [];
    informer.on((event, n) => {
      if (event === "resync") resyncs.push(n.metadata!.name!);
    });
    await informer.start();
    await vi.waitFor(() => expect(restarts).toBeGreaterThanOrEqual(3), { timeout: 15_000 });
    // Before: every age restart aborted the old watch, its AbortError counted as a failure and scheduled another
    // restart 500 ms later, forever, each replaying the cache.
    expect(warnings).toEqual([]);
    // And a healthy watch's age restart replays nothing (a recovery does: "recovers once the API server answers
    // again").
    expect(resyncs).toEqual([]);
    expect(informer.pendingRestartAttempts).toBe(0);
    await informer.stop();
  }, 20_000);

  it("retries at once, not after its backoff, when another informer of the same API server recovers", async () => {
    const api = await fakeApi({ list: "answer", watch: "answer" });
    const recovery = new ApiRecovery();
    let refused = true;
    const lagging = nodeInformer(api, {
      recovery,
      beforeList: () => {
        if (refused) throw new Error("connection refused");
      },
    });
    await lagging.start();
    // Four failures in (0, 0.5, 1.5, 3.5 s): its next attempt is 8 s away.
    await vi.waitFor(() => expect(lagging.pendingRestartAttempts).toBeGreaterThanOrEqual(4), { timeout: 15_000 });
    refused = false;
    const other = nodeInformer(api, { recovery });
    const otherStartedMs = performance.now();
    await other.start();
    await vi.waitFor(() => expect(lagging.pendingRestartAttempts).toBe(0), { timeout: 2_000 });
    expect(lagging.hasSynced).toBe(true);
    expect(performance.now() - otherStartedMs).toBeLessThan(2_000);
    await other.stop();
    await lagging.stop();
  }, 30_000);

  it("gives a list a deadline from the last list's duration, not the API server's whole 60 s timeout", async () => {
    const behaviour: { list: Behaviour; watch: Behaviour } = { list: "answer", watch: "answer" };
    const api = await fakeApi(behaviour);
    const deadlines: string[] = [];
    const logger = {
      ...quietLogger,
      warn: (fields: { err?: unknown }) => {
        if (fields.err instanceof RequestDeadlineError) deadlines.push(fields.err.message);
      },
    } as unknown as Logger;
    // No fixed listTimeoutMs: the adaptive default, with a test-sized floor.
    const informer = nodeInformer(api, { logger, listTimeoutMs: undefined, listTimeoutFloorMs: 300 });
    await informer.start();
    expect(informer.hasSynced).toBe(true);
    // The server now holds every list, and expires the watch so that the informer must list again.
    behaviour.list = "hang";
    behaviour.watch = "gone";
    const fromMs = performance.now();
    await informer.stop();
    await informer.start();
    await vi.waitFor(() => expect(deadlines.length).toBeGreaterThan(0), { timeout: 5_000 });
    expect(deadlines[0]).toMatch(/list \/api\/v1\/nodes.*300 ms/);
    expect(performance.now() - fromMs).toBeLessThan(5_000);
    await informer.stop();
  }, 20_000);
});

describe("changesOf", () => {
  type N = { metadata: { name: string; resourceVersion: string }; ready: boolean };
  const node = (name: string, rv: string, ready = true): N => ({ metadata: { name, resourceVersion: rv }, ready });
  const source = () => {
    const handlers: ((e: "add" | "update" | "delete" | "resync", o: N) => void)[] = [];
    return {
      on: (h: (typeof handlers)[number]) => void handlers.push(h),
      emit: (e: "add" | "update" | "delete" | "resync", o: N) => handlers.forEach((h) => h(e, o)),
    };
  };

  it("passes adds, deletes and updates that change the facts; drops updates and replays that do not", () => {
    const informer = source();
    const seen: string[] = [];
    changesOf(informer, (n: N) => String(n.ready)).on((e, n) =>
      seen.push(`${e} ${n.metadata.name}@${n.metadata.resourceVersion}`),
    );
    informer.emit("add", node("a", "1"));
    informer.emit("update", node("a", "2")); // a heartbeat: new resourceVersion, same facts
    informer.emit("resync", node("a", "2"));
    informer.emit("update", node("a", "3", false)); // NotReady
    informer.emit("update", node("a", "4", false));
    informer.emit("delete", node("a", "4", false));
    informer.emit("add", node("a", "5", false)); // the same name again: new
    expect(seen).toEqual(["add a@1", "update a@3", "delete a@4", "add a@5"]);
  });
});
