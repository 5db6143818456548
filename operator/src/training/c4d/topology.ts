/**
 * Where each rank's transfers go through, as endpoint numbers for the connection matrix. An inter-node connection
 * runs from the sender's NIC to the receiver's NIC, so its endpoints are (node, NIC) pairs: every rank that shares
 * a NIC shares a row and a column, and a slow NIC shows as a slow row or column even when each rank has only one
 * network peer. An intra-node connection (NVLink, PCIe) belongs to the GPUs themselves: its endpoints are ranks.
 */
export interface Endpoint {
  node: string;
  /** Set for an inter-node endpoint whose NIC is known. */
  nic?: string;
  /** Set for an intra-node (per-GPU) endpoint. */
  rank?: number;
}

export class Topology {
  /** Endpoint of rank r's inter-node transfers. */
  readonly interEndpoint: Int32Array;
  readonly endpoints: Endpoint[] = [];
  private readonly firstIntra: number;
  private readonly nodeIds: Int32Array;

  constructor(
    readonly rankNodes: readonly string[],
    readonly rankNics: readonly (string | undefined)[] | undefined,
  ) {
    const n = rankNodes.length;
    this.interEndpoint = new Int32Array(n);
    const ids = new Map<string, number>();
    const nodeIds = new Map<string, number>();
    this.nodeIds = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      const node = rankNodes[r]!;
      let nodeId = nodeIds.get(node);
      if (nodeId === undefined) nodeIds.set(node, (nodeId = nodeIds.size));
      this.nodeIds[r] = nodeId;
      const nic = rankNics?.[r];
      const key = `${node}\u0000${nic ?? ""}`;
      let id = ids.get(key);
      if (id === undefined) {
        id = this.endpoints.length;
        ids.set(key, id);
        this.endpoints.push(nic === undefined ? { node } : { node, nic });
      }
      this.interEndpoint[r] = id;
    }
    this.firstIntra = this.endpoints.length;
    for (let r = 0; r < n; r++) this.endpoints.push({ node: rankNodes[r]!, rank: r });
  }

  /** Whether this topology describes the same placement as the given rank maps. */
  matches(rankNodes: readonly string[], rankNics: readonly (string | undefined)[] | undefined): boolean {
    if (rankNodes === this.rankNodes && rankNics === this.rankNics) return true;
    if (rankNodes.length !== this.rankNodes.length || (rankNics === undefined) !== (this.rankNics === undefined))
      return false;
    for (let r = 0; r < rankNodes.length; r++)
      if (rankNodes[r] !== this.rankNodes[r] || rankNics?.[r] !== this.rankNics?.[r]) return false;
    return true;
  }

  get ranks(): number {
    return this.rankNodes.length;
  }

  get endpointCount(): number {
    return this.endpoints.length;
  }

  has(rank: number): boolean {
    return Number.isInteger(rank) && rank >= 0 && rank < this.rankNodes.length;
  }

  sameNode(a: number, b: number): boolean {
    return this.nodeIds[a] === this.nodeIds[b];
  }

  /** Sender and receiver endpoints of the connection a -> b. */
  senderEndpoint(a: number, b: number): number {
    return this.sameNode(a, b) ? this.firstIntra + a : this.interEndpoint[a]!;
  }

  receiverEndpoint(a: number, b: number): number {
    return this.sameNode(a, b) ? this.firstIntra + b : this.interEndpoint[b]!;
  }

  isIntra(endpoint: number): boolean {
    return endpoint >= this.firstIntra;
  }

  /** Ranks whose transfers go through an endpoint. */
  ranksOf(endpoint: number): number[] {
    if (this.isIntra(endpoint)) return [endpoint - this.firstIntra];
    const out: number[] = [];
    for (let r = 0; r < this.interEndpoint.length; r++) if (this.interEndpoint[r] === endpoint) out.push(r);
    return out;
  }

  label(endpoint: number): string {
    const e = this.endpoints[endpoint]!;
    return e.rank !== undefined
      ? `rank ${e.rank} on ${e.node}`
      : e.nic !== undefined
        ? `NIC ${e.nic} of ${e.node}`
        : `the NIC of ${e.node}`;
  }
}
