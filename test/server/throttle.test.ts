/** FailureThrottle: wrong keys per client address and in all, per window; the address a client is counted under. */
import { describe, expect, it } from 'vitest';
import { clientKey, FailureThrottle } from '../../src/server/index.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('FailureThrottle', () => {
  it('locks out one address after its budget until its window ends; others are not affected', () => {
    const c = clock();
    const th = new FailureThrottle({ perClient: 3, windowMs: 60_000, now: c.now });
    for (let i = 0; i < 3; i++) {
      expect(th.retryAfterMs('10.0.0.1')).toBe(0);
      th.fail('10.0.0.1');
      c.advance(1000);
    }
    expect(th.retryAfterMs('10.0.0.1')).toBe(57_000); // the window started at the first failure
    expect(th.retryAfterMs('10.0.0.2')).toBe(0);
    c.advance(56_999);
    expect(th.retryAfterMs('10.0.0.1')).toBe(1);
    c.advance(1);
    expect(th.retryAfterMs('10.0.0.1')).toBe(0);
    th.fail('10.0.0.1'); // a new window: one failure so far
    expect(th.retryAfterMs('10.0.0.1')).toBe(0);
  });

  it('a global budget stops every address once all of them together used it', () => {
    const c = clock();
    const th = new FailureThrottle({ perClient: 5, global: 4, now: c.now });
    for (let i = 0; i < 4; i++) th.fail(`192.0.2.${i}`);
    expect(th.retryAfterMs('198.51.100.1')).toBe(60_000);
    c.advance(60_000);
    expect(th.retryAfterMs('198.51.100.1')).toBe(0);
  });

  it('defaults to 30 per address and 100 times that in all; refuses nonsense budgets', () => {
    const th = new FailureThrottle();
    expect([th.perClient, th.global, th.windowMs]).toEqual([30, 3000, 60_000]);
    expect(() => new FailureThrottle({ perClient: 0 })).toThrow(/perClient/);
    expect(() => new FailureThrottle({ windowMs: 1.5 })).toThrow(/windowMs/);
  });

  it('tracks at most maxClients addresses (expired ones go first, then the oldest)', () => {
    const c = clock();
    const th = new FailureThrottle({ perClient: 1, maxClients: 2, now: c.now });
    th.fail('10.0.0.1');
    c.advance(10);
    th.fail('10.0.0.2');
    c.advance(10);
    th.fail('10.0.0.3'); // evicts 10.0.0.1, the oldest
    expect(th.retryAfterMs('10.0.0.1')).toBe(0);
    expect(th.retryAfterMs('10.0.0.2')).toBeGreaterThan(0);
    expect(th.retryAfterMs('10.0.0.3')).toBeGreaterThan(0);
  });
});

describe('clientKey', () => {
  it('counts IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:ffff:0:0:9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:DB8:1:2:3:4:5:6%eth0')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey(undefined)).toBe('unknown');
  });
});
