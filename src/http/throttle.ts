/**
 * Throttling of wrong secrets (the dashboard's admin key, the metrics key): each client address may fail a fixed
 * number of times per window, then it is refused until its window ends, without the key being checked. A global
 * budget, far above what one address may use, bounds guessing from many addresses at once.
 *
 * Per address, not per process: one client sending wrong keys locks out only itself, and the right key from
 * anywhere else still works (a single shared counter let anyone lock everyone out). IPv6 clients count by their
 * /64 prefix (one host usually holds a whole /64), IPv4-mapped IPv6 addresses as the IPv4 address. Behind a
 * reverse proxy every client has the proxy's address and shares its budget unless fastify trusts the proxy's
 * X-Forwarded-For (`trustProxy`).
 *
 * Memory is bounded: at most `maxClients` addresses are tracked; beyond that the expired ones are dropped, then
 * the oldest.
 */
import { TokmeterTypeError } from '../errors.js';

export interface ThrottleOptions {
  /** Wrong keys one client address may send per window before it is refused (default 30). */
  perClient?: number;
  /** Wrong keys all addresses together may send per window (default 100 × perClient). */
  global?: number;
  /** Window length in ms (default 60,000). */
  windowMs?: number;
  /** Addresses tracked at most (default 10,000). */
  maxClients?: number;
  now?: () => number;
}

interface Window {
  start: number;
  fails: number;
}

function positive(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new TokmeterTypeError(`expected an integer >= 1 for ${name}, got ${v}`);
  return v;
}

/** The address a client is counted under: IPv4 as is, IPv6 by its /64 prefix. */
export function clientKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  let a = address.toLowerCase();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (!a.includes(':')) return a;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? h : [...h, ...new Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class FailureThrottle {
  readonly perClient: number;
  readonly global: number;
  readonly windowMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;
  private readonly clients = new Map<string, Window>();
  private readonly all: Window = { start: 0, fails: 0 };

  constructor(o: ThrottleOptions = {}) {
    this.perClient = positive(o.perClient, 'perClient', 30);
    this.global = positive(o.global, 'global', 100 * this.perClient);
    this.windowMs = positive(o.windowMs, 'windowMs', 60_000);
    this.maxClients = positive(o.maxClients, 'maxClients', 10_000);
    this.now = o.now ?? Date.now;
  }

  /** Milliseconds until `address` may present a key again; 0 = now. */
  retryAfterMs(address: string | undefined): number {
    const t = this.now();
    const w = this.clients.get(clientKey(address));
    const mine = w && w.fails >= this.perClient ? w.start + this.windowMs - t : 0;
    const everyone = this.all.fails >= this.global ? this.all.start + this.windowMs - t : 0;
    return Math.max(0, mine, everyone);
  }

  /** Counts one wrong key from `address`. */
  fail(address: string | undefined): void {
    const t = this.now();
    if (t - this.all.start >= this.windowMs) {
      this.all.start = t;
      this.all.fails = 0;
    }
    this.all.fails++;
    const key = clientKey(address);
    let w = this.clients.get(key);
    if (w === undefined || t - w.start >= this.windowMs) {
      this.clients.delete(key); // re-inserted last: the map stays ordered by window start
      w = { start: t, fails: 0 };
      if (this.clients.size >= this.maxClients) this.evict(t);
      this.clients.set(key, w);
    }
    w.fails++;
  }

  private evict(t: number): void {
    for (const [k, w] of this.clients) {
      if (t - w.start < this.windowMs) break; // ordered by start: the rest are younger
      this.clients.delete(k);
    }
    while (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value!);
  }
}
