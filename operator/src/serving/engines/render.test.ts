import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { engineMigrates } from "./capabilities.js";
import {
  EngineRenderError,
  commandLine,
  renderEngine,
  sglangBootstrapPort,
  shellJoin,
  type EnginePodInput,
} from "./render.js";

/** Command lines from the engines' docs (sources inside the file). */
const documented = JSON.parse(
  readFileSync(new URL("./fixtures/documented-commands.json", import.meta.url), "utf8"),
) as {
  vllm: { examples: string[][]; usageFlags: string[]; env: string[]; kvRoles: string[] };
  sglang: {
    examples: string[][];
    usageFlags: string[];
    disaggregationModes: string[];
    transferBackends: string[];
    defaults: Record<string, number>;
  };
};

/** Flags (`--x`, or `--x=` of a `--x=v` word) of a list of argument vectors. */
const flagsOf = (argvs: readonly (readonly string[])[]): Set<string> =>
  new Set(argvs.flatMap((argv) => argv.filter((w) => w.startsWith("--")).map((w) => w.split("=")[0]!)));
/** Pairs of flag → value as written in argv (a flag followed by a non-flag word). */
const valueOf = (argv: readonly string[], flag: string): string | undefined => {
  const i = argv.indexOf(flag);
  return i >= 0 && i + 1 < argv.length && !argv[i + 1]!.startsWith("--") ? argv[i + 1] : undefined;
};

const base = (over: Partial<EnginePodInput>): EnginePodInput => ({
  kind: "vllm",
  model: "meta-llama/Llama-3.1-8B-Instruct",
  role: "colocated",
  tp: 1,
  pp: 1,
  port: 8000,
  worker: 0,
  instancePods: 1,
  leaderAddress: "sd-abc-p0.sd-pods.default.svc",
  nicType: "infiniband",
  nicCount: 2,
  userArgs: [],
  ...over,
});

describe("vLLM", () => {
  const vllmFlags = flagsOf([...documented.vllm.examples, documented.vllm.usageFlags]);

  describe.each([
    ["colocated TP2", base({ tp: 2 }), undefined],
    ["prefill TP1", base({ role: "prefill" }), "kv_producer"],
    ["decode TP2×PP2", base({ role: "decode", tp: 2, pp: 2 }), "kv_consumer"],
  ])("%s", (_name, input, kvRole) => {
    const r = renderEngine(input);
    const argv = [...r.command, ...r.args];

    it("uses only documented flags, vllm serve MODEL first", () => {
      expect(argv.slice(0, 3)).toEqual(["vllm", "serve", input.model]);
      for (const flag of flagsOf([argv])) expect(vllmFlags, flag).toContain(flag);
    });

    it("passes the pod's TP and PP", () => {
      expect(valueOf(argv, "--tensor-parallel-size")).toBe(String(input.tp));
      expect(valueOf(argv, "--pipeline-parallel-size")).toBe(String(input.pp));
      expect(valueOf(argv, "--port")).toBe("8000");
    });

    it("configures NixlConnector with the role's documented kv_role, only when disaggregated", () => {
      const kv = valueOf(argv, "--kv-transfer-config");
      if (!kvRole) return expect(kv).toBeUndefined();
      const config = JSON.parse(kv!) as { kv_connector: string; kv_role: string };
      expect(config).toEqual({ kv_connector: "NixlConnector", kv_role: kvRole });
      expect(documented.vllm.kvRoles).toContain(config.kv_role);
      const env = new Map(r.env.map((e) => [e.name, e]));
      for (const name of env.keys()) expect(documented.vllm.env).toContain(name);
      expect(env.get("VLLM_NIXL_SIDE_CHANNEL_PORT")?.value).toBe("5600");
      expect(env.get("VLLM_NIXL_SIDE_CHANNEL_HOST")?.valueFrom?.fieldRef?.fieldPath).toBe("status.podIP");
      expect(env.get("UCX_NET_DEVICES")?.value).toBe("mlx5_0:1,mlx5_1:1");
    });
  });

  it("appends spec.engine.args after the rendered flags", () => {
    const r = renderEngine(base({ userArgs: ["--max-model-len", "8192"] }));
    expect(r.args.slice(-2)).toEqual(["--max-model-len", "8192"]);
  });

  it("gives plain Ethernet nodes no UCX device list", () => {
    expect(renderEngine(base({ role: "decode", nicType: "ethernet" })).env.map((e) => e.name)).not.toContain(
      "UCX_NET_DEVICES",
    );
  });

  it("runs an instance over two pods on Ray: head + serve on the leader, join on the other", () => {
    const leader = renderEngine(base({ role: "prefill", tp: 8, pp: 2, instancePods: 2 }));
    const worker = renderEngine(base({ role: "prefill", tp: 8, pp: 2, instancePods: 2, worker: 1 }));
    expect(leader.command).toEqual(["/bin/sh", "-c"]);
    expect(leader.args[0]).toMatch(/^ray start --head --port=6379 && exec vllm serve /);
    expect(leader.args[0]).toContain("--distributed-executor-backend ray");
    expect(leader.args[0]).toContain(`--kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_producer"}'`);
    expect(worker.args[0]).toBe("exec ray start --address=sd-abc-p0.sd-pods.default.svc:6379 --block");
  });
});

describe("SGLang", () => {
  const sglangFlags = flagsOf([...documented.sglang.examples, documented.sglang.usageFlags]);

  describe.each([
    ["colocated TP2", base({ kind: "sglang", tp: 2 }), undefined],
    ["prefill TP1", base({ kind: "sglang", role: "prefill" }), "prefill"],
    [
      "decode TP4×PP2 over two pods, rank 1",
      base({ kind: "sglang", role: "decode", tp: 4, pp: 2, instancePods: 2, worker: 1 }),
      "decode",
    ],
  ])("%s", (_name, input, mode) => {
    const r = renderEngine(input);
    const argv = [...r.command, ...r.args];

    it("uses only documented flags, python3 -m sglang.launch_server first", () => {
      expect(argv.slice(0, 3)).toEqual(["python3", "-m", "sglang.launch_server"]);
      for (const flag of flagsOf([argv])) expect(sglangFlags, flag).toContain(flag);
      expect(valueOf(argv, "--model-path")).toBe(input.model);
      expect(argv).toContain("--enable-metrics");
    });

    it("passes TP and PP and, disaggregated, the documented mode and NIXL backend", () => {
      expect(valueOf(argv, "--tp-size")).toBe(String(input.tp));
      expect(valueOf(argv, "--pp-size")).toBe(String(input.pp));
      expect(valueOf(argv, "--disaggregation-mode")).toBe(mode);
      if (mode) {
        expect(documented.sglang.disaggregationModes).toContain(mode);
        expect(documented.sglang.transferBackends).toContain(valueOf(argv, "--disaggregation-transfer-backend"));
      }
    });

    it("launches several pods with --dist-init-addr, --nnodes and --node-rank", () => {
      if (input.instancePods === 1) return expect(argv).not.toContain("--nnodes");
      expect(valueOf(argv, "--dist-init-addr")).toBe("sd-abc-p0.sd-pods.default.svc:5000");
      expect(valueOf(argv, "--nnodes")).toBe("2");
      expect(valueOf(argv, "--node-rank")).toBe("1");
    });
  });
});

describe("SGLang bootstrap port (what the gateway sends as bootstrap_port)", () => {
  it("is SGLang's documented default unless spec.engine.args set the documented flag (last one wins)", () => {
    const flag = "--disaggregation-bootstrap-port";
    expect(documented.sglang.usageFlags).toContain(flag);
    expect(sglangBootstrapPort([])).toBe(documented.sglang.defaults[flag]);
    expect(sglangBootstrapPort(["--context-length", "8192", flag, "9100"])).toBe(9100);
    expect(sglangBootstrapPort([`${flag}=9100`, flag, "9200"])).toBe(9200);
    expect(() => sglangBootstrapPort([flag, "http"])).toThrow(/--disaggregation-bootstrap-port must be a port/);
  });
});

describe("errors and helpers", () => {
  it.each([
    ["tp 0", base({ tp: 0 }), /tp must be a positive integer, got 0/],
    ["worker past the pods", base({ worker: 2, instancePods: 2 }), /worker must be in \[0, 2\), got 2/],
    ["empty model", base({ model: " " }), /model must name/],
  ])("rejects %s", (_name, input, message) => {
    expect(() => renderEngine(input)).toThrow(EngineRenderError);
    expect(() => renderEngine(input)).toThrow(message);
  });

  it("quotes for /bin/sh", () => {
    expect(shellJoin(["echo", "a b", `it's`, '{"k":1}'])).toBe(`echo 'a b' 'it'\\''s' '{"k":1}'`);
    expect(commandLine({ command: ["vllm"], args: ["serve", "m"], env: [] })).toBe("vllm serve m");
  });

  it("lets only the reference engine be asked to migrate", () => {
    expect(engineMigrates("reference")).toBe(true);
    expect(engineMigrates(undefined)).toBe(true);
    expect(engineMigrates("vllm")).toBe(false);
    expect(engineMigrates("sglang")).toBe(false);
  });
});
