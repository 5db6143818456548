/**
 * An optional memo a caller keeps per job between detectFaults calls, purely to save CPU: a completed collective
 * is analysed once and its result reused while its record count is unchanged (the read model only ever adds
 * records). With or without it detectFaults returns the same report; it holds no detector state (no clock, no
 * verdict history), and it resets itself when the job's placement or the configuration changes.
 */
import type { C4dConfig } from "./config.js";
import type { AnalysisCache } from "./slow.js";
import { Topology } from "./topology.js";

export class C4dMemo {
  private topology: Topology | undefined;
  private configKey = "";
  private readonly perCommunicator = new Map<string, AnalysisCache>();

  /** The topology for these rank maps, reusing the last one (and the cached analyses) when they are the same. */
  topologyFor(
    rankNodes: readonly string[],
    rankNics: readonly (string | undefined)[] | undefined,
    config: C4dConfig,
  ): Topology {
    const configKey = JSON.stringify(config);
    if (!this.topology || !this.topology.matches(rankNodes, rankNics) || configKey !== this.configKey) {
      this.topology = new Topology(rankNodes, rankNics);
      this.configKey = configKey;
      this.perCommunicator.clear();
    }
    return this.topology;
  }

  analysesOf(communicator: string): AnalysisCache {
    let cache = this.perCommunicator.get(communicator);
    if (!cache) this.perCommunicator.set(communicator, (cache = new Map()));
    return cache;
  }

  /** Forgets communicators the job no longer has. */
  retain(communicators: ReadonlySet<string>): void {
    for (const c of this.perCommunicator.keys()) if (!communicators.has(c)) this.perCommunicator.delete(c);
  }
}
