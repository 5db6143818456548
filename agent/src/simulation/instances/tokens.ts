/**
 * Placeholder text of simulated instances: token i (0-based) of every completion is WORDS[i mod 32] followed by a
 * space, whatever the prompt. Deterministic, so a test can check a whole completion, and the prefill instance's
 * first token and the decode instance's tokens 2.. join into the same text a colocated instance gives.
 */
export const PLACEHOLDER_WORDS = [
  "the",
  "quick",
  "brown",
  "fox",
  "jumps",
  "over",
  "a",
  "lazy",
  "dog",
  "while",
  "seven",
  "wizards",
  "quietly",
  "hex",
  "every",
  "jolly",
  "vexed",
  "zebra",
  "and",
  "five",
  "boxing",
  "kings",
  "juggle",
  "many",
  "bright",
  "prize",
  "jugs",
  "of",
  "liquid",
  "amber",
  "for",
  "fun",
] as const;

export function placeholderToken(index: number): string {
  if (!Number.isInteger(index) || index < 0)
    throw new RangeError(`token index must be a non-negative integer, got ${index}`);
  return `${PLACEHOLDER_WORDS[index % PLACEHOLDER_WORDS.length]} `;
}

/** Tokens from..to−1 joined. */
export function placeholderText(from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += placeholderToken(i);
  return text;
}
