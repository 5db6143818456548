/**
 * Fault injection for simulated training workers, set by pod annotation or by the SendWorkerCommand gRPC call.
 *
 * Annotation `gpufleet.io/inject-fault` on any pod of the job; a `;`-separated list of:
 *   hang-rank=<rank>                 the rank stops inside the next collective: it never reports it, peers never end
 *   slow-rank=<rank>:x<factor>       the rank's compute takes factor (>= 1) times longer; peers wait in collectives
 *   slow-link=<rankA>-<rankB>:x<f>   the ring link between two ranks runs at f (0 < f <= 1) of its bandwidth
 *   slow-nic=<rank>:x<f>             the NIC of the rank's node runs at f (0 < f <= 1) of its bandwidth, both ways
 *   down-link=<rankA>-<rankB>        the link stops: transfers over it never finish (every rank entered, none ends)
 * e.g. `kubectl annotate pod train-0 gpufleet.io/inject-fault='slow-rank=3:x2;slow-link=4-5:x0.25'`.
 * Removing the annotation (or the command kind "clear") clears the faults.
 */

export const FAULT_ANNOTATION = "gpufleet.io/inject-fault";

export interface Faults {
  hungRanks: ReadonlySet<number>;
  /** rank -> compute time multiplier (>= 1). */
  slowRanks: ReadonlyMap<number, number>;
  /** "a-b" with a < b -> bandwidth multiplier in (0, 1]. */
  slowLinks: ReadonlyMap<string, number>;
  /** rank -> bandwidth multiplier in (0, 1] of its node's NIC (all inter-node links of that node). */
  slowNics?: ReadonlyMap<number, number>;
  /** "a-b" with a < b: links that stopped. */
  downLinks?: ReadonlySet<string>;
}

export const NO_FAULTS: Faults = { hungRanks: new Set(), slowRanks: new Map(), slowLinks: new Map() };

export class FaultSpecError extends Error {
  override name = "FaultSpecError";
}

export const linkKey = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`);

const rankOf = (text: string, item: string): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || text.trim() === "")
    throw new FaultSpecError(`"${item}": "${text}" is not a rank`);
  return n;
};

const factorOf = (text: string | undefined, item: string): number => {
  const m = /^x(\d+(?:\.\d+)?)$/.exec(text ?? "");
  if (!m) throw new FaultSpecError(`"${item}": factor must look like x2 or x0.5`);
  return Number(m[1]);
};

export function parseFaultAnnotation(value: string | undefined): Faults {
  if (!value || value.trim() === "") return NO_FAULTS;
  const hungRanks = new Set<number>();
  const slowRanks = new Map<number, number>();
  const slowLinks = new Map<string, number>();
  const slowNics = new Map<number, number>();
  const downLinks = new Set<string>();
  for (const raw of value.split(";")) {
    const item = raw.trim();
    if (item === "") continue;
    const [kind, arg = ""] = item.split("=", 2).map((s) => s.trim()) as [string, string?];
    const [target = "", factorText] = arg.split(":", 2);
    switch (kind) {
      case "hang-rank":
        hungRanks.add(rankOf(target, item));
        break;
      case "slow-rank": {
        const f = factorOf(factorText, item);
        if (f < 1) throw new FaultSpecError(`"${item}": a slow rank's factor must be >= 1`);
        slowRanks.set(rankOf(target, item), f);
        break;
      }
      case "slow-link": {
        const [a = "", b = ""] = target.split("-", 2);
        const f = factorOf(factorText, item);
        if (!(f > 0 && f <= 1)) throw new FaultSpecError(`"${item}": a slow link's factor must be in (0, 1]`);
        slowLinks.set(linkKey(rankOf(a, item), rankOf(b, item)), f);
        break;
      }
      case "slow-nic": {
        const f = factorOf(factorText, item);
        if (!(f > 0 && f <= 1)) throw new FaultSpecError(`"${item}": a slow NIC's factor must be in (0, 1]`);
        slowNics.set(rankOf(target, item), f);
        break;
      }
      case "down-link": {
        const [a = "", b = ""] = target.split("-", 2);
        downLinks.add(linkKey(rankOf(a, item), rankOf(b, item)));
        break;
      }
      default:
        throw new FaultSpecError(
          `"${item}": unknown fault "${kind}" (hang-rank, slow-rank, slow-link, slow-nic, down-link)`,
        );
    }
  }
  const faults: Faults = { hungRanks, slowRanks, slowLinks };
  if (slowNics.size > 0) faults.slowNics = slowNics;
  if (downLinks.size > 0) faults.downLinks = downLinks;
  return faults;
}

/** Applies an InjectFault command (kind, rank, peerRank, factor) to the current faults. */
export function applyFaultCommand(
  current: Faults,
  cmd: { kind: string; rank: number; peerRank: number; factor: number },
): Faults {
  const next = {
    hungRanks: new Set(current.hungRanks),
    slowRanks: new Map(current.slowRanks),
    slowLinks: new Map(current.slowLinks),
    slowNics: new Map(current.slowNics),
    downLinks: new Set(current.downLinks),
  };
  switch (cmd.kind) {
    case "clear":
      return NO_FAULTS;
    case "hang-rank":
      next.hungRanks.add(cmd.rank);
      break;
    case "slow-rank":
      next.slowRanks.set(cmd.rank, cmd.factor);
      break;
    case "slow-link":
      next.slowLinks.set(linkKey(cmd.rank, cmd.peerRank), cmd.factor);
      break;
    case "slow-nic":
      next.slowNics.set(cmd.rank, cmd.factor);
      break;
    case "down-link":
      next.downLinks.add(linkKey(cmd.rank, cmd.peerRank));
      break;
    default:
      throw new FaultSpecError(`unknown fault kind "${cmd.kind}"`);
  }
  const { slowNics, downLinks, ...rest } = next;
  const out: Faults = rest;
  if (slowNics.size > 0) out.slowNics = slowNics;
  if (downLinks.size > 0) out.downLinks = downLinks;
  return out;
}
