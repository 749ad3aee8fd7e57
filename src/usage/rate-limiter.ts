/**
 * Per-key requests-per-minute and tokens-per-minute limits over an exact sliding window.
 *
 * Admission is synchronous (check both limits, then reserve), so in a single Node process concurrent requests can
 * never interleave between check and reserve: the limits hold exactly under any concurrency. A request reserves its
 * maximum (prompt + maxNewTokens) at admission; `settle()` replaces the reservation with the tokens actually used,
 * which gives back the unused part (or, if the engine overran, charges the overrun).
 *
 * Performance notes: each key keeps a log of (time, tokens) entries pruned from the head; admission and settlement
 * are O(1) amortized, retryAfter is O(entries) only on refusal.
 */
import { RateLimitError } from './errors.js';

export interface RateLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

interface Entry {
  t: number;
  n: number;
  live: boolean;
}

class KeyWindow {
  tok: Entry[] = [];
  tokHead = 0;
  tokSum = 0;
  req: number[] = [];
  reqHead = 0;

  prune(cutoff: number): void {
    while (this.tokHead < this.tok.length && this.tok[this.tokHead]!.t <= cutoff) {
      const e = this.tok[this.tokHead++]!;
      e.live = false;
      this.tokSum -= e.n;
    }
    while (this.reqHead < this.req.length && this.req[this.reqHead]! <= cutoff) this.reqHead++;
    if (this.tokHead > 1024 && this.tokHead * 2 > this.tok.length) {
      this.tok = this.tok.slice(this.tokHead);
      this.tokHead = 0;
    }
    if (this.reqHead > 1024 && this.reqHead * 2 > this.req.length) {
      this.req = this.req.slice(this.reqHead);
      this.reqHead = 0;
    }
  }

  get reqCount(): number {
    return this.req.length - this.reqHead;
  }

  empty(): boolean {
    return this.reqCount === 0 && this.tokHead === this.tok.length;
  }
}

export class TokenReservation {
  private settled = false;
  constructor(
    private readonly win: KeyWindow | undefined,
    private readonly entry: Entry | undefined,
    readonly reserved: number,
  ) {}

  /** Replace the reservation with the tokens actually used. Idempotent (the first call wins). */
  settle(actualTokens: number): void {
    if (this.settled) return;
    this.settled = true;
    if (!this.win || !this.entry) return;
    const delta = actualTokens - this.entry.n;
    this.entry.n = actualTokens;
    if (this.entry.live) this.win.tokSum += delta;
  }
}

export class RateLimiter {
  private readonly windows = new Map<string, KeyWindow>();

  constructor(
    private readonly limitsFor: (key: string) => RateLimits,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Admit one request of at most `tokens` tokens for `key`, or throw RateLimitError. Synchronous by design.
   * `tokens` = 0 (e.g. a response-cache hit) still counts as a request.
   */
  admit(key: string, tokens: number): TokenReservation {
    const limits = this.limitsFor(key);
    const rpm = limits.requestsPerMinute;
    const tpm = limits.tokensPerMinute;
    if (rpm === undefined && tpm === undefined) return new TokenReservation(undefined, undefined, tokens);
    const now = this.now();
    let w = this.windows.get(key);
    if (!w) {
      w = new KeyWindow();
      this.windows.set(key, w);
    }
    w.prune(now - this.windowMs);
    if (rpm !== undefined && w.reqCount + 1 > rpm) {
      const oldest = w.req[w.reqHead + (w.reqCount - rpm)]!;
      const retry = rpm === 0 ? Infinity : Math.max(1, oldest + this.windowMs - now);
      throw new RateLimitError(
        key,
        'rpm',
        retry,
        `key '${key}' is over its limit of ${rpm} requests per minute; retry in ${retry} ms`,
        { requested: 1, limit: rpm },
      );
    }
    if (tpm !== undefined && w.tokSum + tokens > tpm) {
      let retry = Infinity;
      if (tokens <= tpm) {
        let freed = 0;
        for (let i = w.tokHead; i < w.tok.length; i++) {
          const e = w.tok[i]!;
          freed += e.n;
          if (w.tokSum - freed + tokens <= tpm) {
            retry = Math.max(1, e.t + this.windowMs - now);
            break;
          }
        }
      }
      throw new RateLimitError(
        key,
        'tpm',
        retry,
        retry === Infinity
          ? `request may use ${tokens} tokens, more than key '${key}' may use in a minute (${tpm}); lower maxNewTokens`
          : `key '${key}' is over its limit of ${tpm} tokens per minute (${w.tokSum} in use, ${tokens} requested); retry in ${retry} ms`,
        { requested: tokens, limit: tpm },
      );
    }
    if (rpm !== undefined) w.req.push(now);
    if (tpm === undefined) return new TokenReservation(undefined, undefined, tokens);
    const entry: Entry = { t: now, n: tokens, live: true };
    w.tok.push(entry);
    w.tokSum += tokens;
    return new TokenReservation(w, entry, tokens);
  }

  /** Tokens currently counted against `key` in the window (reservations plus settled usage). */
  tokensInWindow(key: string): number {
    const w = this.windows.get(key);
    if (!w) return 0;
    w.prune(this.now() - this.windowMs);
    return w.tokSum;
  }

  /** Requests counted against `key` in the window (kept only for keys with a requests-per-minute limit). */
  requestsInWindow(key: string): number {
    const w = this.windows.get(key);
    if (!w) return 0;
    w.prune(this.now() - this.windowMs);
    return w.reqCount;
  }

  /** Drop idle keys (call periodically on servers with many keys). */
  sweep(): void {
    const cutoff = this.now() - this.windowMs;
    for (const [k, w] of this.windows) {
      w.prune(cutoff);
      if (w.empty()) this.windows.delete(k);
    }
  }
}
