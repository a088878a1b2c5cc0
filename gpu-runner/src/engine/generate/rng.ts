// Deterministic pseudo-random numbers for sampling and training (xoshiro128**, seeded by splitmix32).
// The state is four uint32 words so a training checkpoint can snapshot and restore it exactly.

/** Uniform random source in [0, 1); `state()` snapshots it for checkpoints. */
export type Rng = { next(): number; state(): RngState };

/** A snapshot of an Rng: the four 32-bit words of xoshiro128**. */
export type RngState = [number, number, number, number];

const TWO_POW_32 = 4294967296;

/** splitmix32 step: spreads a small integer seed over all 32 bits (Vigna's seeding advice). */
function splitmix32(x: number): [number, number] {
  const next = (x + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

/** Creates an Rng for an integer seed; the same seed always gives the same sequence. */
export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new Error(`createRng: seed ${seed} must be a safe integer`);
  // Fold the high bits in so seeds that differ above bit 31 still differ.
  let x = (seed | 0) ^ Math.floor(seed / TWO_POW_32);
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [nx, out] = splitmix32(x);
    x = nx;
    words.push(out);
  }
  // xoshiro must not start from all zeros (it would stay there).
  if (!words.some((w) => w !== 0)) words[0] = 1;
  return rngFromState(words as RngState);
}

/** Rebuilds an Rng from a snapshot taken with `rng.state()`; it continues the same sequence. */
export function rngFromState(state: RngState): Rng {
  if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)) {
    throw new Error(`rngFromState: state must be four uint32 words, got ${JSON.stringify(state)}`);
  }
  if (state.every((w) => w === 0)) throw new Error("rngFromState: an all-zero state is invalid for xoshiro128**");
  let s0 = state[0] | 0;
  let s1 = state[1] | 0;
  let s2 = state[2] | 0;
  let s3 = state[3] | 0;
  return {
    next(): number {
      // xoshiro128** 1.1 (Blackman & Vigna): result = rotl(s1 * 5, 7) * 9.
      const m = Math.imul(s1, 5);
      const result = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      return (result >>> 0) / TWO_POW_32;
    },
    state(): RngState {
      return [s0 >>> 0, s1 >>> 0, s2 >>> 0, s3 >>> 0];
    },
  };
}

/** One standard normal draw (Box–Muller); uses two uniforms, discards the second normal for simplicity. */
export function normal(rng: Rng): number {
  let u = rng.next();
  while (u === 0) u = rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
