/**
 * A JSON writer straight into UTF-8 bytes, for the collectives message (subjects.ts): integers are written digit
 * by digit, strings go through JSON.stringify (escaping) once per distinct value and are copied as bytes. What it
 * writes equals JSON.stringify's output for the same values (subjects.test.ts compares them).
 */
const encoder = new TextEncoder();

/** The longest number JSON.stringify writes ("-1.2345678901234567e-308" and the like). */
export const MAX_NUMBER_BYTES = 25;

export class JsonBytesWriter {
  private buf: Uint8Array;
  private pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** ASCII text known not to need escaping (punctuation, keys). Callers reserve. */
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }

  /** Bytes already in JSON form (see jsonBytes). */
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    // A loop beats set() (a native call) for the short strings of a record.
    if (b.length < 64) for (let i = 0; i < b.length; i++) this.buf[this.pos++] = b[i]!;
    else {
      this.buf.set(b, this.pos);
      this.pos += b.length;
    }
  }

  byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  /** A number as JSON.stringify writes it; the caller reserved MAX_NUMBER_BYTES for it. */
  number(n: number): void {
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) {
      if (n < 0) {
        this.buf[this.pos++] = 0x2d;
        n = -n;
      }
      this.digits(n);
      return;
    }
    this.ascii(Number.isFinite(n) ? `${n}` : "null");
  }

  /** A non-negative safe integer: above 1e8 as its high part and eight zero-padded low digits (int arithmetic). */
  private digits(n: number): void {
    if (n < 1e8) {
      this.small(n);
      return;
    }
    const high = Math.floor(n / 1e8);
    this.digits(high);
    let low = n - high * 1e8;
    const end = this.pos + 8;
    for (let at = end - 1; at >= this.pos; at--) {
      const q = (low / 10) | 0;
      this.buf[at] = 0x30 + (low - q * 10);
      low = q;
    }
    this.pos = end;
  }

  /** 0 <= n < 1e8. */
  private small(n: number): void {
    if (n < 10) {
      this.buf[this.pos++] = 0x30 + n;
      return;
    }
    const length = n < 100 ? 2 : n < 1000 ? 3 : n < 1e4 ? 4 : n < 1e5 ? 5 : n < 1e6 ? 6 : n < 1e7 ? 7 : 8;
    const end = this.pos + length;
    for (let at = end - 1; at >= this.pos; at--) {
      const q = (n / 10) | 0;
      this.buf[at] = 0x30 + (n - q * 10);
      n = q;
    }
    this.pos = end;
  }

  /** A copy of what was written (the scratch buffer is reused), and the writer reset. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }
}

/** UTF-8 of a string's JSON form (quoted, escaped). */
export function jsonBytes(s: string): Uint8Array {
  return encoder.encode(JSON.stringify(s));
}
