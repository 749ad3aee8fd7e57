import { describe, expect, it } from 'vitest';
import { fromHalfBits, toHalfBits } from '../../src/modelgen/half.js';

describe('float16 conversion', () => {
  it('rounds to nearest even and handles the edges', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff); // max finite
    expect(toHalfBits(65520)).toBe(0x7c00); // rounds up to +Infinity
    expect(toHalfBits(Infinity)).toBe(0x7c00);
    expect(toHalfBits(-0)).toBe(0x8000);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(toHalfBits(NaN) & 0x3ff).not.toBe(0);
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalfBits(2 ** -25)).toBe(0x0000); // tie with 0 → even
    expect(toHalfBits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(toHalfBits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up from subnormal to the smallest normal
  });

  it('round-trips every finite half value', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN payloads
      expect(toHalfBits(fromHalfBits(h))).toBe(h);
    }
  });
});
