/** The usage event schema (docs/EVENTS.md): CloudEvents envelope, exact cost, strict parsing. */
import { describe, expect, it } from 'vitest';
import { decodeUsageEvent, encodeUsageEvent, toUsageEvent, USAGE_EVENT_TYPE } from '../../src/scale/events.js';
import { record } from './helpers.js';

describe('usage events', () => {
  it('wraps a record in a CloudEvents 1.0 envelope whose id is the idempotency id', () => {
    const r = record(1, { cost: 12_345_678_901_234_567_890n, custom: { audio_ms: 1200 } });
    const e = toUsageEvent(r, 'tokmeter://test/a');
    expect(e).toEqual({
      specversion: '1.0',
      id: r.id,
      source: 'tokmeter://test/a',
      type: 'dev.tokmeter.usage.v1',
      time: new Date(r.timestamp).toISOString(),
      subject: r.key,
      datacontenttype: 'application/json',
      data: { ...r, cost: '12345678901234567890' },
    });
    const back = decodeUsageEvent(encodeUsageEvent(r, 'tokmeter://test/a'));
    expect(back.record).toEqual(r); // exact bigint cost survives JSON
    expect(back.event.type).toBe(USAGE_EVENT_TYPE);
  });

  it('refuses what it does not understand, naming the problem', () => {
    const good = JSON.parse(encodeUsageEvent(record(2), 's')) as Record<string, unknown>;
    const bad = (patch: Record<string, unknown>) => JSON.stringify({ ...good, ...patch });
    expect(() => decodeUsageEvent('{')).toThrow(/not JSON/);
    expect(() => decodeUsageEvent(bad({ type: 'dev.tokmeter.usage.v2' }))).toThrow(/unsupported type/);
    expect(() => decodeUsageEvent(bad({ specversion: '0.3' }))).toThrow(/specversion/);
    expect(() => decodeUsageEvent(bad({ extra: 1 }))).toThrow(/unknown field 'extra'/);
    expect(() => decodeUsageEvent(bad({ id: 'other' }))).toThrow(/differs from data.id/);
    expect(() => decodeUsageEvent(bad({ subject: 'other' }))).toThrow(/subject/);
    expect(() => decodeUsageEvent(bad({ data: { ...(good.data as object), cost: '1.5' } }))).toThrow(/cost/);
    expect(() => decodeUsageEvent(bad({ data: { ...(good.data as object), totalTokens: 1 } }))).toThrow(/totalTokens/);
    try {
      decodeUsageEvent(bad({ source: '' }));
      expect.unreachable();
    } catch (err) {
      expect((err as { code: string }).code).toBe('ERR_INVALID_EVENT');
    }
  });
});
