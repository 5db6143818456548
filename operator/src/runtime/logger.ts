/** Structured JSON logs (pino). Components get child loggers with their name bound. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? "gpufleet",
    level: options.level ?? "info",
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** A logger that drops everything, for unit tests. */
export const silentLogger: Logger = pino({ level: "silent" });
