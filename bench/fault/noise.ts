/**
 * Realistic jitter for fault-free behaviour, fixed before any detector result was looked at (not tuned to it):
 * - compute: every rank's compute slice varies lognormally (sigma 2 %) per collective; 3 % of ranks are mild
 *   stragglers, persistently 2-5 % slower ("stragglers of a few percent");
 * - network: every connection has a persistent quality factor (1 to 1.10 x the nominal time), each transfer varies
 *   lognormally (sigma 5 %) around it, and 1 % of transfers hit congestion that makes them 1.5-3 x slower
 *   ("noisy links").
 */
import { seededRandom } from "../../common/src/random.js";
import type { StepNoise } from "../../agent/src/workers/simulated/training.js";

export const NOISE = {
  computeSigma: 0.02,
  mildStragglerShare: 0.03,
  mildStragglerSlowdown: [1.02, 1.05],
  linkQualitySpread: 0.1,
  transferSigma: 0.05,
  congestionShare: 0.01,
  congestionSlowdown: [1.5, 3],
} as const;

export function realisticNoise(seed: number, ranks: number): StepNoise {
  const random = seededRandom(seed);
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * random();
  const gaussian = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const rankOffset = Float64Array.from({ length: ranks }, () =>
    random() < NOISE.mildStragglerShare ? uniform(...NOISE.mildStragglerSlowdown) : 1,
  );
  const linkQuality = new Map<number, number>();
  return {
    computeFactor: (rank) => rankOffset[rank]! * Math.exp(NOISE.computeSigma * gaussian()),
    transferFactor: (sender, receiver) => {
      const key = sender * ranks + receiver;
      let q = linkQuality.get(key);
      if (q === undefined) linkQuality.set(key, (q = 1 + NOISE.linkQualitySpread * random()));
      const congestion = random() < NOISE.congestionShare ? uniform(...NOISE.congestionSlowdown) : 1;
      return q * Math.exp(NOISE.transferSigma * gaussian()) * congestion;
    },
  };
}
