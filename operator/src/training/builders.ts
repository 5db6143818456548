/**
 * Fluent builders of candidate clusters and job shapes for the training planner's tests and benchmark
 * (`cluster().island("ib-a", "infiniband", 8).isolate("ib-a-n03").build()`). Test-only helpers that live beside
 * the planner until test/builders/ has a training section to move them to.
 */
import type { NicType } from "../../../crds/src/topology.js";
import type { CandidateNode, TrainingJobShape, TrainingModelShape } from "./types.js";

export interface IslandOptions {
  gpuModel?: string;
  gpuCount?: number;
  nicCount?: number;
  nicBandwidthGbps?: number;
  /** Nodes per leaf switch; default 16. */
  nodesPerLeaf?: number;
  /** Node name prefix; default the island name. */
  prefix?: string;
}

export class ClusterBuilder {
  private readonly list: CandidateNode[] = [];

  /** Adds `count` nodes named `${prefix}-n000…` on one island. */
  island(name: string, nicType: NicType, count: number, opts: IslandOptions = {}): this {
    const gpuCount = opts.gpuCount ?? 8;
    const perLeaf = opts.nodesPerLeaf ?? 16;
    for (let i = 0; i < count; i++) {
      this.list.push({
        nodeName: `${opts.prefix ?? name}-n${String(i).padStart(3, "0")}`,
        gpuModel: opts.gpuModel ?? "H100-80GB",
        gpuCount,
        nicType,
        nicCount: opts.nicCount ?? 8,
        nicBandwidthGbps: opts.nicBandwidthGbps ?? (nicType === "infiniband" ? 400 : nicType === "roce" ? 200 : 100),
        leaf: `${name}-leaf${Math.floor(i / perLeaf)}`,
        island: name,
        gpusFree: gpuCount,
        isolated: false,
        schedulable: true,
      });
    }
    return this;
  }

  isolate(...names: string[]): this {
    return this.patch(names, { isolated: true });
  }

  cordon(...names: string[]): this {
    return this.patch(names, { schedulable: false });
  }

  gpusFree(gpus: number, ...names: string[]): this {
    return this.patch(names, { gpusFree: gpus });
  }

  build(): CandidateNode[] {
    return this.list.map((n) => ({ ...n }));
  }

  private patch(names: readonly string[], change: Partial<CandidateNode>): this {
    for (const name of names) {
      const i = this.list.findIndex((n) => n.nodeName === name);
      if (i < 0) throw new Error(`ClusterBuilder: no node ${name}`);
      this.list[i] = { ...this.list[i]!, ...change };
    }
    return this;
  }
}

export function cluster(): ClusterBuilder {
  return new ClusterBuilder();
}

/** GPT shapes used by the tests and benchmark (layers × hidden as in Megatron-LM's GPT configurations). */
export const GptShape = {
  "gpt-1.3b": { paramsBillions: 1.3, layers: 24, hiddenSize: 2048 },
  "gpt-7.5b": { paramsBillions: 7.5, layers: 36, hiddenSize: 4096 },
  "gpt-39b": { paramsBillions: 39.1, layers: 48, hiddenSize: 8192 },
  "gpt-175b": { paramsBillions: 175, layers: 96, hiddenSize: 12288 },
} as const satisfies Record<string, TrainingModelShape>;

export class JobBuilder {
  private job: TrainingJobShape;

  constructor(name: string) {
    this.job = {
      name,
      nodes: 1,
      gpusPerNode: 8,
      tp: 8,
      pp: 1,
      dp: 1,
      model: { ...GptShape["gpt-7.5b"] },
      nicAware: true,
    };
  }

  /** Sets tp, pp, dp and derives nodes = tp·pp·dp ÷ gpusPerNode (rounded down; validation catches the rest). */
  parallel(tp: number, pp: number, dp: number): this {
    this.job = { ...this.job, tp, pp, dp, nodes: Math.floor((tp * pp * dp) / this.job.gpusPerNode) };
    return this;
  }

  gpusPerNode(gpus: number): this {
    this.job = { ...this.job, gpusPerNode: gpus, nodes: Math.floor((this.job.tp * this.job.pp * this.job.dp) / gpus) };
    return this;
  }

  model(model: TrainingModelShape): this {
    this.job = { ...this.job, model: { ...model } };
    return this;
  }

  nicAware(on: boolean): this {
    this.job = { ...this.job, nicAware: on };
    return this;
  }

  with(change: Partial<TrainingJobShape>): this {
    this.job = { ...this.job, ...change };
    return this;
  }

  obj(): TrainingJobShape {
    return { ...this.job, model: { ...this.job.model } };
  }
}

export function makeTrainingJob(name: string): JobBuilder {
  return new JobBuilder(name);
}
