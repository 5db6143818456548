#!/usr/bin/env python3
"""What grew between two V8 heap snapshots (the soak's SOAK_OPERATOR_HEAP_SNAPSHOTS): live objects grouped by
node type and name (for objects, the constructor), with counts and shallow sizes, largest growth first; then, for the
groups that grew most, which groups hold them (the retainers of a sample of the added objects, by edge name).

  python3 bench/soak/heap-diff.py BEFORE.heapsnapshot AFTER.heapsnapshot [--top 25] [--retainers 5]

Standard library only: a snapshot is one JSON document (nodes and edges as flat integer arrays, meta describing them).
"""

import argparse
import collections
import json


class Snapshot:
    def __init__(self, path):
        with open(path, "rb") as f:
            doc = json.load(f)
        meta = doc["snapshot"]["meta"]
        self.node_fields = meta["node_fields"]
        self.edge_fields = meta["edge_fields"]
        self.node_types = meta["node_types"][0]
        self.edge_types = meta["edge_types"][0]
        self.nodes = doc["nodes"]
        self.edges = doc["edges"]
        self.strings = doc["strings"]
        self.nf = len(self.node_fields)
        self.ef = len(self.edge_fields)
        self.count = len(self.nodes) // self.nf
        f = {name: i for i, name in enumerate(self.node_fields)}
        self.i_type, self.i_name, self.i_id, self.i_size, self.i_edges = (
            f["type"],
            f["name"],
            f["id"],
            f["self_size"],
            f["edge_count"],
        )
        e = {name: i for i, name in enumerate(self.edge_fields)}
        self.e_type, self.e_name, self.e_to = e["type"], e["name_or_index"], e["to_node"]

    def key(self, n):
        base = n * self.nf
        kind = self.node_types[self.nodes[base + self.i_type]]
        name = self.strings[self.nodes[base + self.i_name]]
        if kind in ("string", "concatenated string", "sliced string", "number", "hidden", "code"):
            name = ""  # values, not kinds: group them by type only
        elif len(name) > 60:
            name = name[:57] + "..."
        return f"{kind}:{name}"

    def groups(self):
        counts = collections.Counter()
        sizes = collections.Counter()
        for n in range(self.count):
            k = self.key(n)
            counts[k] += 1
            sizes[k] += self.nodes[n * self.nf + self.i_size]
        return counts, sizes

    def ids(self):
        return {self.nodes[n * self.nf + self.i_id]: n for n in range(self.count)}

    def retainers(self, wanted):
        """For nodes in `wanted` (a set of node indices): Counter of (holder group, edge name)."""
        held = collections.Counter()
        edge = 0
        for n in range(self.count):
            for _ in range(self.nodes[n * self.nf + self.i_edges]):
                base = edge * self.ef
                to = self.edges[base + self.e_to] // self.nf
                if to in wanted:
                    etype = self.edge_types[self.edges[base + self.e_type]]
                    raw = self.edges[base + self.e_name]
                    label = f"[{raw}]" if etype in ("element", "hidden") else str(self.strings[raw])[:40]
                    held[(self.key(n), f"{etype}:{label}")] += 1
                edge += 1
        return held


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--retainers", type=int, default=5, help="groups whose added objects' holders are listed")
    args = parser.parse_args()
    a, b = Snapshot(args.before), Snapshot(args.after)
    (ca, sa), (cb, sb) = a.groups(), b.groups()
    total_a, total_b = sum(sa.values()), sum(sb.values())
    print(f"shallow total {total_a / 2**20:.1f} MiB -> {total_b / 2**20:.1f} MiB; nodes {a.count} -> {b.count}")
    keys = set(sa) | set(sb)
    growth = sorted(keys, key=lambda k: sb[k] - sa[k], reverse=True)
    print(f"{'group':<70} {'count':>18} {'MiB':>16}")
    for k in growth[: args.top]:
        print(f"{k:<70} {ca[k]:>8} -> {cb[k]:<8} {sa[k] / 2**20:>6.2f} -> {sb[k] / 2**20:<6.2f}")

    before_ids = set(a.ids())
    added = [n for n in range(b.count) if b.nodes[n * b.nf + b.i_id] not in before_ids]
    print(f"\n{len(added)} objects in the second snapshot were not in the first")
    for k in growth[: args.retainers]:
        sample = {n for n in added if b.key(n) == k}
        if not sample:
            continue
        print(f"\nholders of {len(sample)} added {k}:")
        for (holder, edge), count in b.retainers(sample).most_common(8):
            print(f"  {count:>8}  {holder}  via {edge}")


if __name__ == "__main__":
    main()
