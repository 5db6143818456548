/** Structured JSON logs (pino), the same shape as the operator's and the agent's. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(options: { level: string; name: string }): Logger {
  return pino({
    name: options.name,
    level: options.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
