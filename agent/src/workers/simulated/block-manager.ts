/**
 * KV block bookkeeping of a simulated serving engine (pure, no tensors): vLLM's paged KV cache as nano-vllm's
 * block_manager.py keeps it. The cache is `totalBlocks` blocks of `blockSizeTokens` tokens; a sequence holds
 * ceil(tokens / blockSize) blocks, allocated when it is admitted (prefill, or a KV import on a decode worker) and
 * one more whenever a decode step crosses a block boundary; all are freed when it finishes, is cancelled or is
 * preempted. Prefix sharing (nano-vllm's hash-based reuse) is not modelled: every sequence owns its blocks.
 */

export class BlockAccountingError extends Error {
  override name = "BlockAccountingError";
}

export const blocksForTokens = (tokens: number, blockSizeTokens: number): number => Math.ceil(tokens / blockSizeTokens);

export class BlockManager {
  /** requestId -> blocks held. */
  private readonly held = new Map<string, number>();
  private used = 0;

  constructor(
    readonly totalBlocks: number,
    readonly blockSizeTokens: number,
  ) {
    if (!Number.isInteger(totalBlocks) || totalBlocks < 0)
      throw new RangeError(`totalBlocks must be a non-negative integer, got ${totalBlocks}`);
    if (!Number.isInteger(blockSizeTokens) || blockSizeTokens <= 0)
      throw new RangeError(`blockSizeTokens must be a positive integer, got ${blockSizeTokens}`);
  }

  get usedBlocks(): number {
    return this.used;
  }

  get freeBlocks(): number {
    return this.totalBlocks - this.used;
  }

  blocksOf(requestId: string): number {
    return this.held.get(requestId) ?? 0;
  }

  canAllocate(tokens: number): boolean {
    return blocksForTokens(tokens, this.blockSizeTokens) <= this.freeBlocks;
  }

  /** Blocks for a sequence's first `tokens` tokens (it must hold none yet). */
  allocate(requestId: string, tokens: number): number {
    if (this.held.has(requestId))
      throw new BlockAccountingError(`request ${requestId} already holds ${this.held.get(requestId)} blocks`);
    const blocks = blocksForTokens(tokens, this.blockSizeTokens);
    if (blocks > this.freeBlocks)
      throw new BlockAccountingError(`request ${requestId} needs ${blocks} blocks, ${this.freeBlocks} free`);
    this.held.set(requestId, blocks);
    this.used += blocks;
    return blocks;
  }

  /** Whether a sequence now at `tokens` tokens can take one more token (a new block only on a boundary). */
  canAppend(tokens: number): boolean {
    return tokens % this.blockSizeTokens !== 0 || this.freeBlocks > 0;
  }

  /** Room for token number tokens+1 of a sequence now at `tokens` tokens; returns the blocks added (0 or 1). */
  append(requestId: string, tokens: number): number {
    const blocks = this.held.get(requestId);
    if (blocks === undefined) throw new BlockAccountingError(`request ${requestId} holds no blocks`);
    const needed = blocksForTokens(tokens + 1, this.blockSizeTokens);
    if (needed <= blocks) return 0;
    if (this.freeBlocks === 0) throw new BlockAccountingError(`request ${requestId} needs a block, none free`);
    this.held.set(requestId, needed);
    this.used += needed - blocks;
    return needed - blocks;
  }

  /**
   * Raises a holding to the blocks of `tokens` tokens (a live migration's pre-allocation, grown stage by stage);
   * returns the blocks added (0 when it holds enough already).
   */
  grow(requestId: string, tokens: number): number {
    const blocks = this.held.get(requestId) ?? 0;
    const needed = blocksForTokens(tokens, this.blockSizeTokens);
    if (needed <= blocks) return 0;
    if (needed - blocks > this.freeBlocks)
      throw new BlockAccountingError(
        `request ${requestId} needs ${needed - blocks} more blocks, ${this.freeBlocks} free`,
      );
    this.held.set(requestId, needed);
    this.used += needed - blocks;
    return needed - blocks;
  }

  /** Frees every block of a sequence; returns how many (0 when it held none). */
  free(requestId: string): number {
    const blocks = this.held.get(requestId) ?? 0;
    this.held.delete(requestId);
    this.used -= blocks;
    return blocks;
  }
}
