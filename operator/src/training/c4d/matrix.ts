/**
 * C4's connection matrix (§3.2, "communication slow"): rows are sending endpoints, columns receiving ones, a cell
 * is every connection between two endpoints. Given which connections misbehaved in one collective (slow, or never
 * finished), a row whose cells are (nearly) all bad blames the sender, a column the receiver, and a bad cell whose
 * row and column are otherwise fine blames the path between. A bad cell in a row or column too small to compare
 * (a ring gives each endpoint few peers) cannot be told apart from a bad endpoint: it is unattributable.
 */
import type { Topology } from "./topology.js";

export interface MatrixRules {
  rowSlowFraction: number;
  minCellsPerRow: number;
}

export interface Attribution {
  /** Endpoints whose row (what they send) is bad. */
  rows: number[];
  /** Endpoints whose column (what they receive) is bad. */
  cols: number[];
  /** Bad cells with fine rows and columns around them: the path. Cell key = sender * endpointCount + receiver. */
  links: number[];
  /** Bad cells not explained by a bad row or column, in a row or column too small to tell. */
  unattributable: number[];
  /** Cells observed (distinct sender/receiver endpoint pairs). */
  cells: number;
  /** Bad cells. */
  badCells: number;
}

/** Accumulates one collective's connections and attributes the bad ones. */
export class ConnectionMatrix {
  private readonly total = new Map<number, number>();
  private readonly bad = new Map<number, number>();

  constructor(private readonly topology: Topology) {}

  add(sender: number, receiver: number, isBad: boolean): void {
    const t = this.topology;
    const key = t.senderEndpoint(sender, receiver) * t.endpointCount + t.receiverEndpoint(sender, receiver);
    this.total.set(key, (this.total.get(key) ?? 0) + 1);
    if (isBad) this.bad.set(key, (this.bad.get(key) ?? 0) + 1);
  }

  attribute(rules: MatrixRules): Attribution {
    const e = this.topology.endpointCount;
    const outCells = new Map<number, number>();
    const inCells = new Map<number, number>();
    for (const key of this.total.keys()) {
      const s = Math.floor(key / e);
      const d = key - s * e;
      outCells.set(s, (outCells.get(s) ?? 0) + 1);
      inCells.set(d, (inCells.get(d) ?? 0) + 1);
    }
    // A cell is bad when most of its connections are (one connection in a ring; several with many channels).
    const badCells: number[] = [];
    for (const [key, count] of this.bad) if (count * 2 > this.total.get(key)!) badCells.push(key);
    const outBad = new Map<number, number>();
    const inBad = new Map<number, number>();
    for (const key of badCells) {
      const s = Math.floor(key / e);
      const d = key - s * e;
      outBad.set(s, (outBad.get(s) ?? 0) + 1);
      inBad.set(d, (inBad.get(d) ?? 0) + 1);
    }
    const isBadLine = (badCount: number | undefined, cells: number | undefined): boolean =>
      (cells ?? 0) >= rules.minCellsPerRow && (badCount ?? 0) >= rules.rowSlowFraction * cells!;
    const rows = [...outBad.keys()].filter((s) => isBadLine(outBad.get(s), outCells.get(s)));
    const cols = [...inBad.keys()].filter((d) => isBadLine(inBad.get(d), inCells.get(d)));
    const rowSet = new Set(rows);
    const colSet = new Set(cols);
    const links: number[] = [];
    const unattributable: number[] = [];
    for (const key of badCells) {
      const s = Math.floor(key / e);
      const d = key - s * e;
      if (rowSet.has(s) || colSet.has(d)) continue;
      if ((outCells.get(s) ?? 0) >= rules.minCellsPerRow && (inCells.get(d) ?? 0) >= rules.minCellsPerRow)
        links.push(key);
      else unattributable.push(key);
    }
    return { rows, cols, links, unattributable, cells: this.total.size, badCells: badCells.length };
  }
}

export function cellEnds(key: number, topology: Topology): { sender: number; receiver: number } {
  const s = Math.floor(key / topology.endpointCount);
  return { sender: s, receiver: key - s * topology.endpointCount };
}
