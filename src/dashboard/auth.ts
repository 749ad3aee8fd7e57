/**
 * Dashboard authentication: one admin key (configured on the server), two ways to present it.
 *
 * - Browsers log in once (POST /dashboard/login with the key) and get a random session token in an HttpOnly,
 *   SameSite=Strict cookie scoped to /dashboard. Sessions live in memory (a restart logs everyone out), expire after
 *   `sessionTtlMs`, and are revoked by logging out.
 * - Scripts send `Authorization: Bearer <admin key>` to the data API.
 *
 * Secrets are compared as sha256 digests with `timingSafeEqual` (equal length, constant time); the session map is
 * keyed by the token's digest, so a memory dump does not hold usable tokens. Wrong keys, at sign-in or as a bearer
 * token, are throttled per client address (src/http/throttle.ts) so the key cannot be guessed at network speed,
 * and one client's failures do not lock anyone else out. Session cookies are not throttled: a token cannot be
 * guessed, and a browser polling with an expired cookie must not lock its own address out.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { TokmeterTypeError } from '../errors.js';
import { FailureThrottle } from '../http/throttle.js';

export const SESSION_COOKIE = 'tokmeter_dashboard';
export const MIN_ADMIN_KEY_LENGTH = 16;

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function checkAdminKey(key: unknown): string {
  if (typeof key !== 'string' || key.length < MIN_ADMIN_KEY_LENGTH || /\s/.test(key)) {
    throw new TokmeterTypeError(
      `expected an admin key of at least ${MIN_ADMIN_KEY_LENGTH} characters without spaces for the dashboard, got ` +
        (typeof key === 'string' ? `${key.length} characters` : String(key)),
    );
  }
  return key;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export interface AuthOptions {
  sessionTtlMs?: number;
  /** Wrong keys one client address may send per minute before 429 (default 30). */
  maxFailedLoginsPerMinute?: number;
  /** Wrong keys all addresses together may send per minute before 429 (default 100 × the per-address budget). */
  maxFailedLoginsPerMinuteTotal?: number;
  /** A throttle shared with the server's other key-protected routes (/metrics); overrides the two budgets. */
  throttle?: FailureThrottle;
  /** At most this many live sessions; the oldest is dropped beyond it (default 1000). */
  maxSessions?: number;
  now?: () => number;
}

export class DashboardAuth {
  private readonly keyDigest: Buffer;
  private readonly sessions = new Map<string, number>(); // token digest (hex) → expiry
  private readonly ttl: number;
  private readonly throttle: FailureThrottle;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(adminKey: string, o: AuthOptions = {}) {
    this.keyDigest = digest(checkAdminKey(adminKey));
    this.ttl = o.sessionTtlMs ?? 12 * 3_600_000;
    this.maxSessions = o.maxSessions ?? 1000;
    this.now = o.now ?? Date.now;
    this.throttle =
      o.throttle ??
      new FailureThrottle({
        now: this.now,
        ...(o.maxFailedLoginsPerMinute !== undefined ? { perClient: o.maxFailedLoginsPerMinute } : {}),
        ...(o.maxFailedLoginsPerMinuteTotal !== undefined ? { global: o.maxFailedLoginsPerMinuteTotal } : {}),
      });
  }

  get sessionTtlMs(): number {
    return this.ttl;
  }

  keyMatches(candidate: unknown): boolean {
    if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > 1024) return false;
    return timingSafeEqual(digest(candidate), this.keyDigest);
  }

  /**
   * 'ok' with a new session token, 'wrong', or 'throttled' with when `address` may try again (too many wrong keys
   * from it, or from everyone, this minute; the key is then not checked at all).
   */
  login(
    candidate: unknown,
    address: string | undefined,
  ): { result: 'ok'; token: string } | { result: 'wrong' } | { result: 'throttled'; retryAfterMs: number } {
    const wait = this.throttle.retryAfterMs(address);
    if (wait > 0) return { result: 'throttled', retryAfterMs: wait };
    if (!this.keyMatches(candidate)) {
      this.throttle.fail(address);
      return { result: 'wrong' };
    }
    const t = this.now();
    this.sweep(t);
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const token = randomBytes(32).toString('base64url');
    this.sessions.set(digest(token).toString('hex'), t + this.ttl);
    return { result: 'ok', token };
  }

  logout(req: FastifyRequest): void {
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (token) this.sessions.delete(digest(token).toString('hex'));
  }

  /**
   * 'ok' (a live session cookie or the admin key as a bearer token), 'denied', or the milliseconds until the
   * client's address may present a bearer key again (throttled: the key is not checked).
   */
  authorize(req: FastifyRequest): 'ok' | 'denied' | number {
    const h = req.headers.authorization;
    if (h !== undefined) {
      const wait = this.throttle.retryAfterMs(req.ip);
      if (wait > 0) return wait;
      const m = /^Bearer\s+(\S+)$/i.exec(h);
      if (m !== null && this.keyMatches(m[1])) return 'ok';
      this.throttle.fail(req.ip);
      return 'denied';
    }
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!token || token.length > 256) return 'denied';
    const id = digest(token).toString('hex');
    const exp = this.sessions.get(id);
    if (exp === undefined) return 'denied';
    if (exp <= this.now()) {
      this.sessions.delete(id);
      return 'denied';
    }
    return 'ok';
  }

  private sweep(t: number): void {
    for (const [id, exp] of this.sessions) if (exp <= t) this.sessions.delete(id);
  }
}
