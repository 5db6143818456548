/**
 * Which sequences run in the next step (pure; nano-vllm's scheduler.py, vLLM's default policy without chunked
 * prefill): waiting sequences are prefilled first, as many as fit the token budget, the sequence limit and the
 * free KV blocks, in queue order (higher priority first, then arrival); when none can be admitted, every running
 * sequence decodes one token. A decode that needs a new block when none is free preempts the newest running
 * sequence (the tail): its blocks are freed and it goes back to the head of the queue, to be recomputed by a
 * later prefill (vLLM's recompute preemption).
 *
 * Sequences that arrive with their KV (a decode worker's import) are admitted by allocating blocks alone: no
 * prefill runs for them.
 *
 * Live migration (migration.ts): a sequence in its stop-and-copy (status `migrating`) keeps its batch slot and
 * blocks but decodes nothing; an incoming migration holds a batch slot (`reservedSlots`) from its pre-allocation
 * until it commits (adopt()) or is released, so the destination never admits past max_num_seqs.
 */
import { blocksForTokens, type BlockManager } from "./block-manager.js";
import { RequestStatus, type Sequence } from "./sequence.js";

export interface SchedulerLimits {
  /** vLLM max_num_seqs: sequences in one step. */
  maxNumSeqs: number;
  /** vLLM max_num_batched_tokens: prompt tokens in one prefill step. */
  maxBatchedTokens: number;
}

export type ScheduledStep =
  | { kind: "prefill"; sequences: Sequence[]; preempted: Sequence[] }
  | { kind: "decode"; sequences: Sequence[]; preempted: Sequence[] };

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  preemptions = 0;
  /** Batch slots held for incoming live migrations. */
  reservedSlots = 0;

  constructor(
    readonly blocks: BlockManager,
    readonly limits: SchedulerLimits,
  ) {}

  /** Queues a sequence behind every waiting one of equal or higher priority. */
  add(seq: Sequence): void {
    const at = this.waiting.findIndex((w) => w.request.priority < seq.request.priority);
    if (at === -1) this.waiting.push(seq);
    else this.waiting.splice(at, 0, seq);
    seq.status = RequestStatus.waiting;
  }

  /** Takes a sequence out of the queue or the batch and frees its blocks; false when it was in neither. */
  remove(seq: Sequence): boolean {
    const inWaiting = this.waiting.indexOf(seq);
    if (inWaiting !== -1) this.waiting.splice(inWaiting, 1);
    const inRunning = this.running.indexOf(seq);
    if (inRunning !== -1) this.running.splice(inRunning, 1);
    this.blocks.free(seq.id);
    return inWaiting !== -1 || inRunning !== -1;
  }

  /** Leaves the batch but keeps its blocks (a prefill worker holding KV for the hand-off). */
  detachKeepingBlocks(seq: Sequence): void {
    const i = this.running.indexOf(seq);
    if (i !== -1) this.running.splice(i, 1);
  }

  /** Joins the batch with the blocks it already holds (a committed incoming migration). */
  adopt(seq: Sequence): void {
    seq.status = RequestStatus.running;
    this.running.push(seq);
  }

  private get slotsFree(): number {
    return this.limits.maxNumSeqs - this.running.length - this.reservedSlots;
  }

  /** KV blocks the waiting queue needs to be admitted (Llumnix counts queued demand in full). */
  waitingDemandBlocks(): number {
    return this.waiting.reduce(
      (sum, s) => sum + blocksForTokens(s.needsPrefill ? s.prefillTokens : s.kvTokens, this.blocks.blockSizeTokens),
      0,
    );
  }

  headOfLineDemandBlocks(): number {
    const head = this.waiting[0];
    return head
      ? blocksForTokens(head.needsPrefill ? head.prefillTokens : head.kvTokens, this.blocks.blockSizeTokens)
      : 0;
  }

  schedule(): ScheduledStep | undefined {
    this.admitImported();
    const prefill = this.schedulePrefill();
    if (prefill.length > 0) return { kind: "prefill", sequences: prefill, preempted: [] };
    return this.scheduleDecode();
  }

  private admitImported(): void {
    for (let i = 0; i < this.waiting.length && this.slotsFree > 0;) {
      const seq = this.waiting[i]!;
      if (seq.needsPrefill) {
        i++;
        continue;
      }
      if (!this.blocks.canAllocate(seq.kvTokens)) break; // keep queue order: later imports wait behind this one
      this.blocks.allocate(seq.id, seq.kvTokens);
      this.waiting.splice(i, 1);
      seq.status = RequestStatus.running;
      this.running.push(seq);
    }
  }

  private schedulePrefill(): Sequence[] {
    const scheduled: Sequence[] = [];
    let tokens = 0;
    while (this.waiting.length > 0 && this.slotsFree > 0) {
      const seq = this.waiting[0]!;
      if (!seq.needsPrefill) break; // an import waiting for blocks holds its place in the queue
      if (tokens + seq.prefillTokens > this.limits.maxBatchedTokens || !this.blocks.canAllocate(seq.prefillTokens))
        break;
      this.blocks.allocate(seq.id, seq.prefillTokens);
      tokens += seq.prefillTokens;
      this.waiting.shift();
      seq.status = RequestStatus.running;
      this.running.push(seq);
      scheduled.push(seq);
    }
    return scheduled;
  }

  private scheduleDecode(): ScheduledStep | undefined {
    const scheduled: Sequence[] = [];
    const preempted: Sequence[] = [];
    const paused: Sequence[] = [];
    while (this.running.length > 0 && scheduled.length < this.limits.maxNumSeqs) {
      const seq = this.running.shift()!;
      if (seq.status === RequestStatus.migrating) {
        paused.push(seq);
        continue;
      }
      let fits = this.blocks.canAppend(seq.kvTokens);
      while (!fits && this.running.length > 0) {
        preempted.push(this.preempt(this.running.pop()!));
        fits = this.blocks.canAppend(seq.kvTokens);
      }
      if (!fits) {
        preempted.push(this.preempt(seq));
        break;
      }
      this.blocks.append(seq.id, seq.kvTokens);
      scheduled.push(seq);
    }
    this.running.unshift(...scheduled, ...paused);
    return scheduled.length > 0 ? { kind: "decode", sequences: scheduled, preempted } : undefined;
  }

  private preempt(seq: Sequence): Sequence {
    this.blocks.free(seq.id);
    seq.status = RequestStatus.waiting;
    seq.preemptions++;
    this.preemptions++;
    this.waiting.unshift(seq);
    return seq;
  }
}
