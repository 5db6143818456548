/**
 * Command-line parsing (pure): `gpufleet <command> [flags]`, as the usage text below says. Flags follow kubectl's
 * spelling where kubectl has one (-f, -n, -o, --kubeconfig, --context).
 */
import { parseArgs } from "node:util";
import { usageError } from "./errors.js";
import { parseOutputFormat, type OutputFormat } from "./format.js";

export const USAGE = `gpufleet: plan, explain and watch gpufleet workloads (also: kubectl gpufleet …)

Usage:
  gpufleet plan -f FILE [--profile NAME|PATH | --kubeconfig PATH [--context NAME]] [--trace CSV] [-o table|json|yaml]
      What the operator would deploy for the ServingDeployment or TrainingJob in FILE, computed offline with the
      operator's own planners: against a cluster profile (clusters/NAME.yaml or a path; default "default") or, with
      --kubeconfig/--context/--live, the nodes and pods of that cluster. --trace plans a ServingDeployment on your
      own request trace (Azure LLM trace CSV: ContextTokens,GeneratedTokens[,TIMESTAMP]).
  gpufleet explain sd/NAME | tj/NAME [-n NAMESPACE] [--kubeconfig PATH] [--context NAME]
      The story of a live resource: its plan or placement and why, conditions, faults, pods and Events.
  gpufleet top [--metrics-url URL] [-o table|json|yaml]
      Live deployments and jobs from the operator's /metrics (default $GPUFLEET_METRICS_URL or
      http://127.0.0.1:8080/metrics; port-forward the operator's Service to reach it).

Exit codes: 0 ok, 1 failure (cluster unreachable, no plan), 2 bad input (file, field or flag).`;

export type Command =
  | { command: "help" }
  | {
      command: "plan";
      file: string;
      profile?: string;
      live: boolean;
      trace?: string;
      output: OutputFormat;
      kubeconfig?: string;
      context?: string;
    }
  | {
      command: "explain";
      kind: "ServingDeployment" | "TrainingJob";
      name: string;
      namespace: string;
      kubeconfig?: string;
      context?: string;
    }
  | { command: "top"; metricsUrl: string; output: OutputFormat };

const KIND_ALIASES: Record<string, "ServingDeployment" | "TrainingJob"> = {
  sd: "ServingDeployment",
  servingdeployment: "ServingDeployment",
  servingdeployments: "ServingDeployment",
  tj: "TrainingJob",
  trainingjob: "TrainingJob",
  trainingjobs: "TrainingJob",
};

export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Command {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h")
    return { command: "help" };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      allowPositionals: true,
      strict: true,
      options: {
        filename: { type: "string", short: "f" },
        profile: { type: "string" },
        live: { type: "boolean", default: false },
        trace: { type: "string" },
        output: { type: "string", short: "o" },
        namespace: { type: "string", short: "n" },
        kubeconfig: { type: "string" },
        context: { type: "string" },
        "metrics-url": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw usageError(`${(error as Error).message}\n\n${USAGE}`, { cause: error });
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: "help" };
  const kube = {
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context ? { context: values.context } : {}),
  };
  switch (command) {
    case "plan": {
      const file = values.filename ?? positionals[0];
      if (!file) throw usageError("plan needs a file: gpufleet plan -f sd.yaml");
      const live = values.live || values.kubeconfig !== undefined || values.context !== undefined;
      if (live && values.profile)
        throw usageError(
          "plan takes a cluster profile (--profile) or a live cluster (--live, --kubeconfig, --context), not both",
        );
      return {
        command: "plan",
        file,
        ...(live ? {} : { profile: values.profile ?? "default" }),
        live,
        ...(values.trace ? { trace: values.trace } : {}),
        output: parseOutputFormat(values.output),
        ...kube,
      };
    }
    case "explain": {
      const target = positionals[0];
      const m = target ? /^([a-z]+)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(target) : null;
      const kind = m ? KIND_ALIASES[m[1]!] : undefined;
      if (!m || !kind) throw usageError(`explain needs sd/NAME or tj/NAME, got ${JSON.stringify(target ?? "")}`);
      return { command: "explain", kind, name: m[2]!, namespace: values.namespace ?? "default", ...kube };
    }
    case "top":
      return {
        command: "top",
        metricsUrl: values["metrics-url"] ?? env["GPUFLEET_METRICS_URL"] ?? "http://127.0.0.1:8080/metrics",
        output: parseOutputFormat(values.output),
      };
    default:
      throw usageError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}
