/**
 * Child processes of the harness, with teardown that holds even when a test run fails or is interrupted.
 *
 * Every server is spawned detached, as the leader of its own process group, so one signal to the group reaches any
 * helper it forks, and a Ctrl-C on the terminal does not race our own orderly shutdown. Three layers of cleanup:
 *   1. stop(): SIGTERM to the group, then SIGKILL after a grace period;
 *   2. process 'exit' / SIGINT / SIGTERM / SIGHUP handlers in this process SIGKILL every live group synchronously;
 *   3. a run directory claimed by this process (`owner.json`: pid and start time) with a pidfile per child under
 *      `<runDir>/pids/`, so that the next run's killStale() finds children of a runner that was itself SIGKILLed
 *      and kills them. Start times (field 22 of /proc/<pid>/stat) guard against pid reuse on both sides.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export class ProcessExitedError extends Error {
  override name = "ProcessExitedError";
  constructor(
    readonly processName: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly logTail: string,
  ) {
    super(
      `${processName} exited (code ${exitCode ?? "none"}, signal ${signal ?? "none"}); last log lines:\n${logTail}`,
    );
  }
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Set once the direct child has exited. */
  readonly exited: { code: number | null; signal: string | null } | undefined;
  /** Throws ProcessExitedError (with the log tail) if the process has exited; for readiness loops to fail fast. */
  assertRunning(): void;
  /** SIGTERM to the process group, SIGKILL after graceMs; resolves once no member of the group is left. */
  stop(graceMs?: number): Promise<void>;
}

interface PidFile {
  pid: number;
  startTime: string;
  name: string;
  argv: string[];
}

interface OwnerFile {
  pid: number;
  startTime: string;
}

const OWNER_FILE = "owner.json";

const live = new Set<number>();
let handlersInstalled = false;

function killGroupsNow(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killGroupsNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killGroupsNow();
      // Our listener replaced the default action (exit); restore it so the signal still ends this process.
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Start time of a process in clock ticks since boot, or undefined if it does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: fields after it follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Whether any process of the group still exists (zombies aside: Node reaps its own children). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether a process exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** Creates a run directory and records this process as its owner; killStale() leaves it alone while we live. */
export async function claimRunDir(runDir: string): Promise<void> {
  await mkdir(runDir, { recursive: true });
  const owner: OwnerFile = { pid: process.pid, startTime: processStartTime(process.pid) ?? "" };
  await writeFile(path.join(runDir, OWNER_FILE), JSON.stringify(owner));
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  /** Directory of this run: logs go to `<runDir>/logs/<name>.log`, the pidfile to `<runDir>/pids/<name>.pid`. */
  runDir: string;
  env?: NodeJS.ProcessEnv;
}

export async function spawnManaged(opts: SpawnOptions): Promise<ManagedProcess> {
  installHandlers();
  const logDir = path.join(opts.runDir, "logs");
  const pidDir = path.join(opts.runDir, "pids");
  await mkdir(logDir, { recursive: true });
  await mkdir(pidDir, { recursive: true });
  const logPath = path.join(logDir, `${opts.name}.log`);
  const pidPath = path.join(pidDir, `${opts.name}.pid`);
  const fd = openSync(logPath, "a");
  const child = (() => {
    try {
      return spawn(opts.command, opts.args, {
        detached: true,
        stdio: ["ignore", fd, fd],
        env: opts.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
  })();
  const pid = await new Promise<number>((resolve, reject) => {
    child.once("error", (err) => reject(new Error(`cannot start ${opts.name} (${opts.command})`, { cause: err })));
    child.once("spawn", () => resolve(child.pid as number));
  });
  live.add(pid);
  child.unref();

  let exited: ManagedProcess["exited"];
  child.once("exit", (code, signal) => {
    exited = { code, signal };
  });
  const pidFile: PidFile = {
    pid,
    startTime: processStartTime(pid) ?? "",
    name: opts.name,
    argv: [opts.command, ...opts.args],
  };
  await writeFile(pidPath, JSON.stringify(pidFile));

  let stopping: Promise<void> | undefined;
  return {
    name: opts.name,
    pid,
    logPath,
    get exited() {
      return exited;
    },
    assertRunning() {
      if (exited) throw new ProcessExitedError(opts.name, exited.code, exited.signal, tail(logPath));
    },
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        try {
          process.kill(-pid, "SIGTERM");
        } catch {
          // group already gone
        }
        if (!(await waitGroupGone(pid, graceMs))) {
          try {
            process.kill(-pid, "SIGKILL");
          } catch {
            // gone between the check and the kill
          }
          if (!(await waitGroupGone(pid, 5_000)))
            throw new Error(`${opts.name} (process group ${pid}) survived SIGKILL`);
        }
        live.delete(pid);
        rmSync(pidPath, { force: true });
      })();
      return stopping;
    },
  };
}

/**
 * Kills the leftovers of crashed runs under rootDir: for each claimed run directory `<rootDir>/<run>/` whose owner
 * process is gone, SIGKILLs each child's group whose pid still names the same process, then removes the directory.
 * Directories without an owner.json are not ours and are left alone. Returns what it killed, for a log line.
 */
export async function killStale(rootDir: string): Promise<string[]> {
  if (!existsSync(rootDir)) return [];
  const killed: string[] = [];
  for (const run of readdirSync(rootDir)) {
    const runDir = path.join(rootDir, run);
    let owner: OwnerFile;
    try {
      owner = JSON.parse(await readFile(path.join(runDir, OWNER_FILE), "utf8")) as OwnerFile;
    } catch {
      continue;
    }
    if (owner.startTime !== "" && processStartTime(owner.pid) === owner.startTime) continue;
    const pidDir = path.join(runDir, "pids");
    const files = existsSync(pidDir) ? readdirSync(pidDir).filter((f) => f.endsWith(".pid")) : [];
    for (const file of files) {
      let r: PidFile;
      try {
        r = JSON.parse(await readFile(path.join(pidDir, file), "utf8")) as PidFile;
      } catch {
        continue; // half-written by a run that crashed while starting this child
      }
      if (r.startTime === "" || processStartTime(r.pid) !== r.startTime) continue;
      try {
        process.kill(-r.pid, "SIGKILL");
        killed.push(`${r.name} (pid ${r.pid}, ${run})`);
      } catch {
        // gone
      }
      await waitGroupGone(r.pid, 5_000);
    }
    rmSync(runDir, { recursive: true, force: true });
  }
  return killed;
}
