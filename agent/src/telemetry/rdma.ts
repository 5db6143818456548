/**
 * RDMA port counters -> rates and error deltas (pure).
 *
 * sysfs exposes, per port, `counters/` (IB PortCounters / PortCountersExtended) and `hw_counters/` (driver
 * counters, e.g. mlx5 out_of_sequence, np_cnp_sent). port_xmit_data and port_rcv_data count 4-byte words (IBA
 * spec 16.1.3.5: "divided by 4"). Counters come back as decimal text up to 64 bits, so they are read as bigint.
 *
 * A counter that went down between two samples either wrapped (it was near the top of its width) or was reset
 * (driver reload, `perfquery -R`, device reset). Wrap: delta = 2^width - previous + current. Reset: the counter
 * restarted from zero, so delta = current. IB error counters (16/8-bit PortCounters fields) saturate at their
 * maximum instead of wrapping; a saturated counter is reported, and its delta is 0 while it stays there.
 */

export const CounterBehaviour = { wrap: "wrap", saturate: "saturate" } as const;
export type CounterBehaviour = (typeof CounterBehaviour)[keyof typeof CounterBehaviour];

export interface CounterSpec {
  widthBits: number;
  behaviour: CounterBehaviour;
  /** Multiply deltas by this to get the unit the name says (4 for data counters in words). */
  scale: number;
}

/** Counters the agent samples; any other file in counters/ or hw_counters/ is treated as a 64-bit error counter. */
export const PORT_COUNTERS = {
  port_xmit_data: { widthBits: 64, behaviour: CounterBehaviour.wrap, scale: 4 },
  port_rcv_data: { widthBits: 64, behaviour: CounterBehaviour.wrap, scale: 4 },
  port_xmit_packets: { widthBits: 64, behaviour: CounterBehaviour.wrap, scale: 1 },
  port_rcv_packets: { widthBits: 64, behaviour: CounterBehaviour.wrap, scale: 1 },
  symbol_error: { widthBits: 16, behaviour: CounterBehaviour.saturate, scale: 1 },
  port_rcv_errors: { widthBits: 16, behaviour: CounterBehaviour.saturate, scale: 1 },
  port_xmit_discards: { widthBits: 16, behaviour: CounterBehaviour.saturate, scale: 1 },
  link_error_recovery: { widthBits: 8, behaviour: CounterBehaviour.saturate, scale: 1 },
  link_downed: { widthBits: 8, behaviour: CounterBehaviour.saturate, scale: 1 },
} as const satisfies Record<string, CounterSpec>;

const DEFAULT_SPEC: CounterSpec = { widthBits: 64, behaviour: CounterBehaviour.wrap, scale: 1 };

/** Counters that are throughput, not errors. */
export const THROUGHPUT_COUNTERS: ReadonlySet<string> = new Set([
  "port_xmit_data",
  "port_rcv_data",
  "port_xmit_packets",
  "port_rcv_packets",
]);

export function counterSpec(name: string): CounterSpec {
  return (PORT_COUNTERS as Record<string, CounterSpec>)[name] ?? DEFAULT_SPEC;
}

export const DeltaKind = { normal: "normal", wrapped: "wrapped", reset: "reset", saturated: "saturated" } as const;
export type DeltaKind = (typeof DeltaKind)[keyof typeof DeltaKind];

export interface CounterDelta {
  /** In the counter's unit times spec.scale (bytes for data counters). */
  delta: number;
  kind: DeltaKind;
}

/**
 * Delta between two readings of one counter. A decrease counts as a wrap only when the previous reading was in the
 * top quarter of the range and the wrapped delta lands in the bottom quarter; otherwise it is a reset.
 */
export function counterDelta(previous: bigint, current: bigint, spec: CounterSpec): CounterDelta {
  const max = (1n << BigInt(spec.widthBits)) - 1n;
  const scale = (d: bigint): number => Number(d) * spec.scale;
  if (spec.behaviour === CounterBehaviour.saturate && current === max) {
    return { delta: current >= previous ? scale(current - previous) : 0, kind: DeltaKind.saturated };
  }
  if (current >= previous) return { delta: scale(current - previous), kind: DeltaKind.normal };
  const quarter = (max + 1n) >> 2n;
  if (spec.behaviour === CounterBehaviour.wrap && previous >= max - quarter && current < quarter) {
    return { delta: scale(max - previous + 1n + current), kind: DeltaKind.wrapped };
  }
  return { delta: scale(current), kind: DeltaKind.reset };
}

/** One reading of every counter of one port. */
export interface PortReading {
  device: string;
  port: number;
  /** counters/ and hw_counters/ files by their own names (the two folders do not share names). */
  counters: Record<string, bigint>;
}

export interface PortRates {
  device: string;
  port: number;
  intervalMs: number;
  transmitBytesPerSec: number;
  receiveBytesPerSec: number;
  transmitPacketsPerSec: number;
  receivePacketsPerSec: number;
  /** Deltas of error counters over the interval (only those that moved or saturated). */
  errorDeltas: Record<string, number>;
  /** Counters that reset during the interval. */
  resets: string[];
  wraps: string[];
  saturated: string[];
}

export function portRates(previous: PortReading, current: PortReading, intervalMs: number): PortRates {
  if (intervalMs <= 0) throw new RangeError(`interval must be positive, got ${intervalMs} ms`);
  const seconds = intervalMs / 1000;
  const rates: PortRates = {
    device: current.device,
    port: current.port,
    intervalMs,
    transmitBytesPerSec: 0,
    receiveBytesPerSec: 0,
    transmitPacketsPerSec: 0,
    receivePacketsPerSec: 0,
    errorDeltas: {},
    resets: [],
    wraps: [],
    saturated: [],
  };
  for (const [name, value] of Object.entries(current.counters)) {
    const before = previous.counters[name];
    if (before === undefined) continue; // counter appeared: no delta yet
    const { delta, kind } = counterDelta(before, value, counterSpec(name));
    if (kind === DeltaKind.reset) rates.resets.push(name);
    if (kind === DeltaKind.wrapped) rates.wraps.push(name);
    if (kind === DeltaKind.saturated) rates.saturated.push(name);
    switch (name) {
      case "port_xmit_data":
        rates.transmitBytesPerSec = delta / seconds;
        break;
      case "port_rcv_data":
        rates.receiveBytesPerSec = delta / seconds;
        break;
      case "port_xmit_packets":
        rates.transmitPacketsPerSec = delta / seconds;
        break;
      case "port_rcv_packets":
        rates.receivePacketsPerSec = delta / seconds;
        break;
      default:
        if (delta > 0 || kind === DeltaKind.saturated) rates.errorDeltas[name] = delta;
    }
  }
  return rates;
}
