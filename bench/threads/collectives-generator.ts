/**
 * The telemetry benchmark's load generator in a process of its own, as a worker is on a node: `loops` concurrent
 * ReportCollectives calls of `recordsPerCall` records over the agent's socket, through WorkerClient (the client
 * simulated workers use), until `durationMs` passed since "start". Each loop reports its own communicator, 8 ranks
 * per sequence, so every record is distinct. Messages (IPC): → {ready} once connected, ← "start", → {sent} at the end.
 */
import { WorkerClient } from "../../agent/src/grpc/client.js";
import type { CollectiveRecord } from "../../common/src/telemetry/records.js";

export interface GeneratorArgs {
  socketPath: string;
  workerId: string;
  durationMs: number;
  loops: number;
  recordsPerCall: number;
  /** Distinct communicator per loop and sequences that advance (end to end), or one fixed batch (agent alone). */
  distinct: boolean;
}

export function record(i: number): CollectiveRecord {
  const t = 1_700_000_000_000_000 + i * 1000;
  return {
    communicator: "9f1c2a7d",
    rank: i % 8,
    nRanks: 8,
    collective: "AllReduce",
    sequence: i,
    bytes: 268_435_456,
    startUnixUs: t,
    endUnixUs: t + 900,
    peers: [{ peerRank: (i + 1) % 8, bytes: 469_762_048, startUnixUs: t + 10, endUnixUs: t + 880 }],
  };
}

async function generate(worker: WorkerClient, args: GeneratorArgs): Promise<number> {
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: args.loops }, async (_, loop) => {
      const batch = Array.from({ length: args.recordsPerCall }, (_, i) => ({
        ...record(i),
        communicator: args.distinct ? `comm-${loop}` : "9f1c2a7d",
      }));
      for (let call = 0; performance.now() - started < args.durationMs; call++) {
        if (args.distinct)
          for (let i = 0; i < batch.length; i++) batch[i]!.sequence = Math.floor((call * args.recordsPerCall + i) / 8);
        const { accepted } = await worker.reportCollectives({ workerId: args.workerId, records: batch });
        sent += accepted;
      }
    }),
  );
  worker.close();
  return sent;
}

if (process.send && process.argv[2]) {
  const args = JSON.parse(process.argv[2]) as GeneratorArgs;
  const worker = new WorkerClient(`unix:${args.socketPath}`, 10_000);
  process.on("message", (m: unknown) => {
    if (m !== "start") return;
    void generate(worker, args).then(
      (sent) => process.send!({ sent }, () => process.exit(0)),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  // Connected (and the worker known to the agent) before the clock starts.
  void worker.heartbeat(args.workerId).then(
    () => process.send!({ ready: true }),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
