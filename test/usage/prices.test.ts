import { describe, expect, it } from 'vitest';
import { PriceTable, PriceError, formatPico, parsePico } from '../../src/usage/index.js';
import { parseDecimal } from '../../src/usage/money.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_PRICES } from './fixtures/fake-model.js';

describe('money', () => {
  it('parses decimals exactly, without floats', () => {
    expect(parseDecimal('0.5', 6, 'x')).toBe(500_000n);
    expect(parseDecimal(0.1, 6, 'x')).toBe(100_000n);
    expect(parseDecimal('12.000001', 6, 'x')).toBe(12_000_001n);
    expect(parseDecimal('1.2300000', 6, 'x')).toBe(1_230_000n); // trailing zeros beyond the scale are fine
    expect(() => parseDecimal('0.0000001', 6, 'x')).toThrow(PriceError);
    expect(() => parseDecimal('1e-7', 6, 'x')).toThrow(/plain non-negative decimal/);
    expect(() => parseDecimal(-1, 6, 'x')).toThrow(PriceError);
    expect(() => parseDecimal('abc', 6, 'x')).toThrow(PriceError);
  });
  it('formats pico-units', () => {
    expect(formatPico(1_500_000n)).toBe('0.0000015');
    expect(formatPico(12n * 10n ** 12n)).toBe('12');
    expect(formatPico(0n)).toBe('0');
    expect(parsePico('10.50', 'b')).toBe(10_500_000_000_000n);
  });
});

describe('PriceTable', () => {
  const t = PriceTable.fromJSON(DEMO_PRICES);
  it('computes exact integer costs', () => {
    // 1000 prompt (200 cached) + 500 completion at 0.50 / 0.25 / 1.50 per 1M
    // = 800*0.5e-6 + 200*0.25e-6 + 500*1.5e-6 = 0.0004 + 0.00005 + 0.00075 = 0.0012 USD
    const c = t.cost('demo', { promptTokens: 1000, cachedTokens: 200, completionTokens: 500 });
    expect(c).toBe(1_200_000_000n);
    expect(formatPico(c)).toBe('0.0012');
    // a sum that is inexact in floating point stays exact: 0.1 + 0.2 style
    const t2 = PriceTable.fromJSON({ models: { m: { inputPer1M: '0.1', outputPer1M: '0.2' } } });
    expect(formatPico(t2.cost('m', { promptTokens: 1_000_000, cachedTokens: 0, completionTokens: 1_000_000 }))).toBe(
      '0.3',
    );
  });
  it('prices custom meters from the same table', () => {
    expect(
      t.cost('demo', { promptTokens: 0, cachedTokens: 0, completionTokens: 0, custom: { audio_ms: 60_000 } }),
    ).toBe(6_000_000_000n); // $0.006
    expect(() =>
      t.cost('demo', { promptTokens: 0, cachedTokens: 0, completionTokens: 0, custom: { video_s: 1 } }),
    ).toThrow(/custom meter 'video_s'/);
  });
  it('bills cache hits as the table says', () => {
    const u = { promptTokens: 100, cachedTokens: 0, completionTokens: 10, cacheHit: true };
    expect(t.cost('demo', u)).toBe(0n);
    const cached = PriceTable.fromJSON({ ...DEMO_PRICES, cacheHitBilling: 'cached-input' });
    expect(cached.cost('demo', u)).toBe(100n * 250_000n + 10n * 1_500_000n);
    const full = PriceTable.fromJSON({ ...DEMO_PRICES, cacheHitBilling: 'full' });
    expect(full.cost('demo', u)).toBe(100n * 500_000n + 10n * 1_500_000n);
  });
  it('is versioned: explicit, or a content hash', () => {
    expect(t.version).toBe('test-1');
    const a = PriceTable.fromJSON({ models: { m: { inputPer1M: 1, outputPer1M: 2 } } });
    const b = PriceTable.fromJSON({ models: { m: { outputPer1M: 2, inputPer1M: 1 } } });
    const c = PriceTable.fromJSON({ models: { m: { inputPer1M: 1, outputPer1M: 3 } } });
    expect(a.version).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
  });
  it('rejects unknown fields, unknown models and bad values with precise messages', () => {
    expect(() =>
      PriceTable.fromJSON({ models: { m: { inputPer1M: 1, outputPer1M: 1, outputPer1m: 2 } as never } }),
    ).toThrow(/unknown field 'outputPer1m'/);
    expect(() => t.cost('gpt-x', { promptTokens: 1, cachedTokens: 0, completionTokens: 0 })).toThrow(
      /no price for model 'gpt-x'/,
    );
    expect(() => PriceTable.fromJSON({ cacheHitBilling: 'half' as never, models: {} })).toThrow(/cacheHitBilling/);
    expect(() => t.cost('demo', { promptTokens: 1, cachedTokens: 2, completionTokens: 0 })).toThrow(/cachedTokens/);
  });
  it('loads from a JSON file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-prices-'));
    writeFileSync(join(dir, 'p.json'), JSON.stringify(DEMO_PRICES));
    expect(
      PriceTable.fromFile(join(dir, 'p.json')).cost('demo', { promptTokens: 2, cachedTokens: 0, completionTokens: 0 }),
    ).toBe(1_000_000n);
    writeFileSync(join(dir, 'bad.json'), '{');
    expect(() => PriceTable.fromFile(join(dir, 'bad.json'))).toThrow(PriceError);
  });
});
