import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { RdmaSampler } from "./rdma-sampler.js";
import { counterDelta, counterSpec, DeltaKind, portRates, type PortReading } from "./rdma.js";

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = (1n << 32n) - 1n;

describe("counterDelta", () => {
  it.each([
    { name: "increase", spec: "port_xmit_data", prev: 100n, cur: 350n, delta: 1000, kind: DeltaKind.normal },
    { name: "no change", spec: "port_rcv_packets", prev: 7n, cur: 7n, delta: 0, kind: DeltaKind.normal },
    {
      name: "64-bit wrap of data words",
      spec: "port_xmit_data",
      prev: U64_MAX - 9n,
      cur: 5n,
      delta: 15 * 4,
      kind: DeltaKind.wrapped,
    },
    {
      name: "32-bit wrap of a driver counter",
      spec: { widthBits: 32, behaviour: "wrap", scale: 1 },
      prev: U32_MAX - 1n,
      cur: 3n,
      delta: 5,
      kind: DeltaKind.wrapped,
    },
    {
      name: "reset to a small value",
      spec: "port_rcv_data",
      prev: 5_000_000n,
      cur: 1_000n,
      delta: 4_000,
      kind: DeltaKind.reset,
    },
    {
      name: "reset of a mid-range counter is not a wrap",
      spec: { widthBits: 32, behaviour: "wrap", scale: 1 },
      prev: 1n << 30n,
      cur: 10n,
      delta: 10,
      kind: DeltaKind.reset,
    },
    {
      name: "error counter reaches saturation",
      spec: "symbol_error",
      prev: 65_530n,
      cur: 65_535n,
      delta: 5,
      kind: DeltaKind.saturated,
    },
    {
      name: "error counter stays saturated",
      spec: "symbol_error",
      prev: 65_535n,
      cur: 65_535n,
      delta: 0,
      kind: DeltaKind.saturated,
    },
    { name: "saturating counter cleared", spec: "link_downed", prev: 255n, cur: 1n, delta: 1, kind: DeltaKind.reset },
  ])("$name", ({ spec, prev, cur, delta, kind }) => {
    const s = typeof spec === "string" ? counterSpec(spec) : (spec as Parameters<typeof counterDelta>[2]);
    expect(counterDelta(prev, cur, s)).toEqual({ delta, kind });
  });
});

describe("portRates", () => {
  const reading = (counters: Record<string, bigint>): PortReading => ({ device: "mlx5_0", port: 1, counters });

  it("turns 4-byte words into bytes per second and reports error deltas, wraps and resets", () => {
    const before = reading({
      port_xmit_data: U64_MAX - 249_999n,
      port_rcv_data: 1_000n,
      port_xmit_packets: 10n,
      symbol_error: 3n,
      out_of_sequence: 4n,
      np_cnp_sent: 9n,
      link_downed: 255n,
    });
    const after = reading({
      port_xmit_data: 250_000n,
      port_rcv_data: 501_000n,
      port_xmit_packets: 2n,
      symbol_error: 5n,
      out_of_sequence: 4n,
      np_cnp_sent: 19n,
      link_downed: 255n,
      new_counter: 1n,
    });
    const rates = portRates(before, after, 500);
    expect(rates.transmitBytesPerSec).toBe((500_000 * 4) / 0.5);
    expect(rates.receiveBytesPerSec).toBe((500_000 * 4) / 0.5);
    expect(rates.transmitPacketsPerSec).toBe(2 / 0.5);
    expect(rates.errorDeltas).toEqual({ symbol_error: 2, np_cnp_sent: 10, link_downed: 0 });
    expect(rates.wraps).toEqual(["port_xmit_data"]);
    expect(rates.resets).toEqual(["port_xmit_packets"]);
    expect(rates.saturated).toEqual(["link_downed"]);
  });

  it("rejects a non-positive interval", () => {
    expect(() => portRates(reading({}), reading({}), 0)).toThrow(RangeError);
  });
});

describe("RdmaSampler on a sysfs tree", () => {
  it("reads counters/ and hw_counters/ and reports rates between samples", async () => {
    const root = await mkdtemp(join(tmpdir(), "sysfs-"));
    try {
      await cp(join(dirname(fileURLToPath(import.meta.url)), "../discovery/fixtures/sysfs-roce"), root, {
        recursive: true,
      });
      let now = 10_000;
      const sampler = new RdmaSampler(root, () => now);
      expect(await sampler.sample()).toEqual([]); // first sample has no baseline
      const port = join(root, "class/infiniband/mlx5_0/ports/1");
      await writeFile(join(port, "counters/port_xmit_data"), `${1000 + 2_500_000}\n`); // fixture starts at 1000 words
      await writeFile(join(port, "hw_counters/np_cnp_sent"), "50\n"); // fixture: 42
      now += 1000;
      const rates = await sampler.sample();
      expect(rates.map((r) => r.device)).toEqual(["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"]);
      expect(rates[0]).toMatchObject({
        transmitBytesPerSec: 10_000_000,
        receiveBytesPerSec: 0,
        errorDeltas: { np_cnp_sent: 8 },
      });
      expect(rates[1]).toMatchObject({ transmitBytesPerSec: 0, errorDeltas: {} });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
