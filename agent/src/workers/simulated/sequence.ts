/**
 * Request state of a simulated serving engine (nano-vllm's sequence.py): what a request asked for, how far it got,
 * and where it is (waiting, running, holding its KV for a hand-off, finished).
 */

/** What a client submits (the gateway of issue 10, or the synthetic Poisson client). */
export interface ServingRequest {
  requestId: string;
  promptTokens: number;
  maxOutputTokens: number;
  /** Higher runs first among waiting requests; equal priorities in arrival order. Default 0. */
  priority?: number;
}

export const RequestStatus = {
  waiting: "waiting",
  running: "running",
  /** Prefill-role worker: prefill done, KV blocks held until the decode side has taken them. */
  holdingKv: "holding-kv",
  /** Live migration's stop-and-copy: stays in the batch's slot with its blocks but decodes no token (migration.ts). */
  migrating: "migrating",
  finished: "finished",
} as const;
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];

export const Outcome = {
  completed: "completed",
  /** Prefill-role worker: the prompt is prefilled and its first token sampled; the KV waits for export. */
  prefilled: "prefilled",
  cancelled: "cancelled",
  aborted: "aborted",
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Block-level description of a request's KV, from a prefill worker's export to a decode worker's import. */
export interface KvHandoff {
  requestId: string;
  promptTokens: number;
  /** Tokens sampled so far (1 after a prefill); the KV covers promptTokens + outputTokens − 1 positions. */
  outputTokens: number;
  maxOutputTokens: number;
  priority: number;
  blocks: number;
  blockSizeTokens: number;
  kvBytes: number;
  /** The model the KV belongs to: an import from another model is refused. */
  model: string;
}

export interface RequestResult {
  requestId: string;
  outcome: Outcome;
  outputTokens: number;
  /** Engine time of the first token (undefined when none came). */
  firstTokenAtMs: number | undefined;
  finishedAtMs: number;
  reason?: string;
}

/** Where a live-migrated request went: the destination owns it and produces token `nextTokenIndex` next. */
export interface MigratedTo {
  /** The destination instance (an engine's id in a simulation, a worker id in the agent). */
  destination: string;
  nextTokenIndex: number;
  atMs: number;
  /** The destination's engine URL, where the request's stream resumes (engine API migrations). */
  engineUrl?: string;
}

/**
 * Receives a request's tokens at the modelled step times and, once, its result: finish(), or migrated() when a
 * live migration moved the request away (the source then sends nothing more; the destination's sink continues).
 */
export interface RequestSink {
  token(requestId: string, index: number, atMs: number): void;
  finish(result: RequestResult): void;
  migrated?(requestId: string, to: MigratedTo): void;
}

export class Sequence {
  status: RequestStatus = RequestStatus.waiting;
  outputTokens = 0;
  firstTokenAtMs: number | undefined;
  preemptions = 0;
  /** A live migration out of this engine is in progress for this request (its source side). */
  migratingOut = false;

  constructor(
    readonly request: Required<ServingRequest>,
    readonly sink: RequestSink,
    readonly arrivalMs: number,
    /** Tokens already generated elsewhere (an imported hand-off): admission needs no prefill. */
    readonly importedOutputTokens = 0,
  ) {
    this.outputTokens = importedOutputTokens;
  }

  get id(): string {
    return this.request.requestId;
  }

  /** Positions in the KV cache: the prompt and every sampled token but the newest (its KV is written next step). */
  get kvTokens(): number {
    return this.request.promptTokens + Math.max(0, this.outputTokens - 1);
  }

  /** Tokens a (re-)prefill runs over: after a preemption the generated tokens are recomputed too (vLLM recompute). */
  get prefillTokens(): number {
    return this.request.promptTokens + this.outputTokens;
  }

  get needsPrefill(): boolean {
    return this.importedOutputTokens === 0 || this.preemptions > 0;
  }

  get done(): boolean {
    return this.outputTokens >= this.request.maxOutputTokens;
  }
}
