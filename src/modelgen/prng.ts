/**
 * Seeded pseudo-random numbers for model weights.
 *
 * Contract: the same seed gives the same sequence on every platform and Node version. Only integer arithmetic
 * (`Math.imul`, shifts) and one division feed the output, so results never depend on the JS engine's `Math.random`,
 * `Math.sin` or the like. Generator: xoshiro128** (Blackman & Vigna), state seeded through splitmix32 so that nearby
 * seeds give unrelated streams.
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new TypeError(`expected a non-negative safe integer seed, got ${String(seed)}`);
    }
    // Fold the high bits in too, so seeds above 2^32 are not aliased to their low word.
    let x = (seed >>> 0) ^ Math.floor(seed / 0x1_0000_0000);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /**
   * Fills `out` with values uniform in [-bound, bound). A uniform of half-width `std * sqrt(3)` has standard
   * deviation `std`; PyTorch's default nn.Linear init is this kind of scaled uniform.
   */
  fillUniform(out: Float32Array, bound: number, offset = 0): Float32Array {
    const scale = (2 * bound) / 0x1_0000_0000;
    for (let i = 0; i < out.length; i++) out[i] = offset + this.nextUint32() * scale - bound;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Half-width of a uniform distribution with the given standard deviation. */
export function uniformBoundForStd(std: number): number {
  return std * Math.sqrt(3);
}
