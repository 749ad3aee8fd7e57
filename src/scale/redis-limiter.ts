/**
 * RedisLimiter: the Limiter (limiter.ts) over one Redis shared by every tokmeter server, so a key's RPM, TPM and
 * budgets hold across processes and machines. One round trip per admission (an EVALSHA of ADMIT_LUA), one per
 * settlement (both settle() calls of a request are sent together when they happen in the same tick, as the Meter
 * does). Keys expire on their own (lua.ts), so nothing needs a sweep.
 *
 * Redis unreachable (connection refused or lost, command timeout, LOADING after a restart): the policy decides.
 *   - 'closed' (default): admission rejects with LimiterUnavailableError (ERR_LIMITER_UNAVAILABLE → HTTP 503).
 *   - 'open': the request is admitted without shared accounting (its grant tracks nothing).
 * Either way `tokmeter_limiter_redis_unavailable_total{op,outcome}` counts it and a warn line is logged (the first
 * failure, then at most one line per `logEveryMs` with the count in between; a line when Redis is back).
 * Settlements that cannot reach Redis are retried (5 tries, 100 ms → 1.6 s) and then dropped with an error line:
 * the reservation then stays counted until the window (TPM) or the period (budget) ends — conservative.
 *
 * Budgets: a period's spend lives in Redis. With `loadSpend` (the billing ledger's spend query) a period key that
 * does not exist yet — first use, or Redis lost its data — is seeded from the ledger before admitting (SET NX, so
 * concurrent seeders agree). Period bounds use this process's clock (UTC hour/day/month, as BudgetTracker).
 *
 * Performance notes (bench/scale-out, README there; loopback, 2 shared cores):
 *   - One round trip per admission: EVALSHA (ioredis sends EVAL once per connection, then EVALSHA; the script text
 *     never travels again). The scripts are O(1) amortized (each window entry is added and pruned once), O(entries)
 *     only when computing a refusal's retryAfter, like the in-memory limiter. Redis spends 15–30 µs on an admission
 *     with RPM + TPM + a day budget, ~5 µs on a settlement; the client 0.05–0.1 ms of CPU per admit + settle,
 *     most of it in the socket write of the loopback TCP stack, none in JSON (there is none) or clock calls.
 *   - What decides admission latency is the Redis's persistence: under `appendfsync always` Redis replies to a
 *     write only after fsync, and every admission writes: p50 0.7–4 ms on this machine instead of ~0.1 ms. Hence a
 *     limits Redis with `everysec` (services.ts warns otherwise). Measured and rejected: `redis.set_repl(REPL_NONE)`
 *     for the window writes (p50 0.05 ms on an `always` Redis, but windows and reservations would vanish on a restart
 *     and never reach a replica, and a budget write would still wait for the fsync).
 *   - Under CPU contention p99 is the scheduler's: the same run's PING p99 is the floor the bench prints beside it.
 *   - Rejected: `enableAutoPipelining` (it defers each command to a setImmediate and batches them: no gain at 1 in
 *     flight, and at 32 in flight p99 went from ~10 ms to 26–35 ms in two A/B runs, checks/s within noise).
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Registry } from 'prom-client';
import { TokmeterTypeError } from '../errors.js';
import {
  BudgetExceededError,
  LimiterUnavailableError,
  NOOP_GRANT,
  periodBounds,
  RateLimitError,
  type BudgetPeriod,
  type LimitGrant,
  type LimitRequest,
  type Limiter,
} from '../usage/index.js';
import { ADMIT_LUA, CHARGE_LUA, SETTLE_LUA } from './lua.js';
import { limiterMetrics, Registry as PromRegistry, stderrLog, type LogFn } from './log.js';

export type UnavailablePolicy = 'closed' | 'open';

export interface RedisLimiterOptions {
  /** A `redis://` URL (the limiter owns the connection) or an ioredis client (the caller owns it). */
  redis: string | Redis;
  /** Key prefix (default 'tm'). */
  prefix?: string;
  /** Sliding window length (default 60 000 ms, as the in-memory limiter). */
  windowMs?: number;
  /** What to do when Redis cannot be reached (default 'closed'). */
  onUnavailable?: UnavailablePolicy;
  /** Per-command timeout when the limiter creates the client (default 250 ms). */
  commandTimeoutMs?: number;
  /** Seeds a budget period that Redis does not know yet (e.g. billing ledger spend). */
  loadSpend?: (key: string, from: number, to: number) => Promise<bigint>;
  log?: LogFn;
  /** Registry for the limiter's metrics (the server's); default a private one (`limiter.registry`). */
  registry?: Registry;
  /** Log at most one "Redis unreachable" line per this many ms (default 10 000). */
  logEveryMs?: number;
}

type AdmitReply = [number, number?, (number | string)?];

interface LimiterCommands {
  tmAdmit(...args: (string | number)[]): Promise<AdmitReply>;
  tmSettle(...args: (string | number)[]): Promise<number>;
  tmCharge(...args: (string | number)[]): Promise<number>;
}

const BUDGET_KEY_SLACK_MS = 3_600_000;

/** Options for a client the limiter creates: fail fast instead of queueing while disconnected. */
export function limiterClientOptions(commandTimeoutMs = 250): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 6), 2000),
    lazyConnect: false,
  };
}

export class RedisLimiter implements Limiter {
  readonly redis: Redis;
  readonly policy: UnavailablePolicy;
  readonly registry: Registry;
  private readonly cmd: LimiterCommands;
  private readonly owns: boolean;
  private readonly prefix: string;
  private readonly windowMs: number;
  private readonly loadSpend: RedisLimiterOptions['loadSpend'];
  private readonly log: LogFn;
  private readonly metrics: ReturnType<typeof limiterMetrics>;
  private readonly logEveryMs: number;
  private readonly pending = new Set<Promise<void>>();
  private down = false;
  private lastLog = 0;
  private suppressed = 0;
  private closed = false;

  constructor(o: RedisLimiterOptions) {
    if (!o || (typeof o.redis !== 'string' && !(o.redis instanceof Redis))) {
      throw new TokmeterTypeError('RedisLimiter: expected { redis: "redis://..." | ioredis client }');
    }
    if (o.onUnavailable !== undefined && o.onUnavailable !== 'closed' && o.onUnavailable !== 'open') {
      throw new TokmeterTypeError(
        `RedisLimiter: onUnavailable must be 'closed' or 'open', got ${String(o.onUnavailable)}`,
      );
    }
    const windowMs = o.windowMs ?? 60_000;
    if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
      throw new TokmeterTypeError(`RedisLimiter: expected a positive integer for windowMs, got ${String(o.windowMs)}`);
    }
    this.owns = typeof o.redis === 'string';
    this.redis = typeof o.redis === 'string' ? new Redis(o.redis, limiterClientOptions(o.commandTimeoutMs)) : o.redis;
    if (this.owns) this.redis.on('error', () => undefined); // reported through the policy, per operation
    this.redis.defineCommand('tmAdmit', { lua: ADMIT_LUA });
    this.redis.defineCommand('tmSettle', { lua: SETTLE_LUA });
    this.redis.defineCommand('tmCharge', { lua: CHARGE_LUA });
    this.cmd = this.redis as unknown as LimiterCommands;
    this.policy = o.onUnavailable ?? 'closed';
    this.prefix = o.prefix ?? 'tm';
    this.windowMs = windowMs;
    this.loadSpend = o.loadSpend;
    this.log = o.log ?? stderrLog;
    this.registry = o.registry ?? new PromRegistry();
    this.metrics = limiterMetrics(this.registry);
    this.logEveryMs = o.logEveryMs ?? 10_000;
  }

  /** `<prefix>:{<key>}` — the hash tag keeps one API key's keys in one cluster slot. */
  private base(key: string): string {
    return `${this.prefix}:{${encodeURIComponent(key)}}`;
  }

  private budgetKeys(key: string, budgets: ReadonlyMap<BudgetPeriod, bigint>, t: number) {
    const b = this.base(key);
    return [...budgets].map(([period, limit]) => {
      const [start, end] = periodBounds(period, t);
      return { period, limit, start, end, redisKey: `${b}:b:${period}:${start}` };
    });
  }

  async admit(req: LimitRequest): Promise<LimitGrant> {
    if (this.closed) throw new LimiterUnavailableError('the limiter is closed');
    const rpm = req.rates.requestsPerMinute;
    const tpm = req.rates.tokensPerMinute;
    const budgets = req.budgets && req.budgets.size > 0 ? req.budgets : undefined;
    if (rpm === undefined && tpm === undefined && !budgets) return NOOP_GRANT;
    const id = randomUUID();
    const b = this.base(req.key);
    const bks = budgets ? this.budgetKeys(req.key, budgets, Date.now()) : [];
    const keys = [`${b}:req`, `${b}:tok`, `${b}:tokn`, ...bks.map((x) => x.redisKey)];
    const argv: (string | number)[] = [
      this.windowMs,
      rpm ?? -1,
      tpm ?? -1,
      req.tokens,
      id,
      req.cost.toString(),
      bks.length,
      this.loadSpend ? 1 : 0,
      ...bks.flatMap((x) => [x.limit.toString(), x.end + BUDGET_KEY_SLACK_MS]),
    ];
    const started = performance.now();
    let reply: AdmitReply;
    try {
      for (let attempt = 0; ; attempt++) {
        reply = await this.cmd.tmAdmit(keys.length, ...keys, ...argv);
        if (reply[0] !== 4 || attempt >= 2) break;
        const missing = bks[Number(reply[1]) - 1]!;
        await this.seed(req.key, missing);
      }
    } catch (err) {
      return this.unavailable('admit', err as Error, req.key);
    }
    this.metrics.latency.observe((performance.now() - started) / 1000);
    this.recovered();
    const [code, a, c] = reply;
    if (code === 0)
      return this.grant(
        req,
        id,
        tpm !== undefined,
        bks.map((x) => x.redisKey),
      );
    if (code === 1) {
      this.metrics.refusals.inc({ limit: 'rpm' });
      const retry = Number(a) < 0 ? Infinity : Number(a);
      throw new RateLimitError(
        req.key,
        'rpm',
        retry,
        `key '${req.key}' is over its limit of ${rpm} requests per minute; retry in ${retry} ms`,
        rpm !== undefined ? { requested: 1, limit: rpm } : undefined,
      );
    }
    if (code === 2) {
      this.metrics.refusals.inc({ limit: 'tpm' });
      const retry = Number(a) < 0 ? Infinity : Number(a);
      throw new RateLimitError(
        req.key,
        'tpm',
        retry,
        retry === Infinity
          ? `request may use ${req.tokens} tokens, more than key '${req.key}' may use in a minute (${tpm}); lower maxNewTokens`
          : `key '${req.key}' is over its limit of ${tpm} tokens per minute (${String(c)} in use, ${req.tokens} requested); retry in ${retry} ms`,
        tpm !== undefined ? { requested: req.tokens, limit: tpm } : undefined,
      );
    }
    if (code === 3) {
      this.metrics.refusals.inc({ limit: 'budget' });
      const x = bks[Number(a) - 1]!;
      throw new BudgetExceededError(req.key, x.period, BigInt(String(c)), x.limit, req.cost, x.end);
    }
    // code 4 three times in a row: the seed keeps disappearing (eviction?) — treat as unavailable.
    return this.unavailable('admit', new Error('budget key could not be seeded (evicted?)'), req.key);
  }

  async charge(key: string, cost: bigint, budgets: ReadonlyMap<BudgetPeriod, bigint> | undefined): Promise<void> {
    if (!budgets || budgets.size === 0) return;
    const bks = this.budgetKeys(key, budgets, Date.now());
    await this.retrying('charge', key, async () => {
      if (this.loadSpend) {
        for (const x of bks) if ((await this.redis.exists(x.redisKey)) === 0) await this.seed(key, x);
      }
      await this.cmd.tmCharge(
        bks.length,
        ...bks.map((x) => x.redisKey),
        cost.toString(),
        ...bks.map((x) => x.end + BUDGET_KEY_SLACK_MS),
      );
    });
  }

  private async seed(key: string, x: { start: number; end: number; redisKey: string }): Promise<void> {
    const spent = await this.loadSpend!(key, x.start, x.end);
    await this.redis.set(x.redisKey, spent.toString(), 'PXAT', x.end + BUDGET_KEY_SLACK_MS, 'NX');
  }

  private grant(req: LimitRequest, id: string, trackTokens: boolean, budgetKeys: string[]): LimitGrant {
    const tokn = `${this.base(req.key)}:tokn`;
    let tok: number | undefined;
    let delta: bigint | undefined;
    let tokDone = !trackTokens;
    let costDone = budgetKeys.length === 0;
    let queued = false;
    let last: Promise<void> = Promise.resolve();
    const send = () => {
      queued = false;
      const t = tok;
      const d = delta;
      tok = undefined;
      delta = undefined;
      if (t === undefined && (d === undefined || d === 0n)) return;
      const p = this.retrying('settle', req.key, () =>
        this.cmd.tmSettle(1 + budgetKeys.length, tokn, ...budgetKeys, id, t ?? '', d?.toString() ?? ''),
      );
      last = Promise.all([last, p]).then(() => undefined);
    };
    const queue = () => {
      if (queued) return;
      queued = true;
      queueMicrotask(send);
    };
    return {
      tokens: {
        settle: (actual: number) => {
          if (tokDone) return;
          tokDone = true;
          tok = actual;
          queue();
        },
      },
      budget: {
        settle: (actual: bigint) => {
          if (costDone) return;
          costDone = true;
          delta = actual - req.cost;
          queue();
        },
      },
      settled: async () => {
        await Promise.resolve(); // let a queued send start
        await last;
      },
    };
  }

  /** Run a write with retries; on final failure log + count it (the caller never sees an error). */
  private retrying(op: 'settle' | 'charge', key: string, fn: () => Promise<unknown>): Promise<void> {
    const p = (async () => {
      let delay = 100;
      for (let attempt = 1; ; attempt++) {
        try {
          await fn();
          this.recovered();
          return;
        } catch (err) {
          if (attempt >= 5 || this.closed) {
            this.metrics.unavailable.inc({ op, outcome: 'lost' });
            this.log('error', `shared limiter: could not ${op} key '${key}' in Redis, giving up`, {
              err: (err as Error).message,
              effect:
                op === 'settle'
                  ? 'the reservation stays counted until its window/period ends'
                  : 'the cost is missing from the shared budget',
            });
            return;
          }
          await new Promise((r) => setTimeout(r, delay));
          delay *= 2;
        }
      }
    })();
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  private unavailable(op: 'admit', err: Error, key: string): LimitGrant {
    const open = this.policy === 'open';
    this.metrics.unavailable.inc({ op, outcome: open ? 'admitted' : 'refused' });
    const now = Date.now();
    if (!this.down || now - this.lastLog >= this.logEveryMs) {
      this.log(
        'warn',
        `shared limiter: Redis unreachable, ${open ? 'admitting without limits (fail open)' : 'refusing requests (fail closed)'}`,
        {
          err: err.message,
          key,
          policy: this.policy,
          suppressed: this.suppressed,
        },
      );
      this.lastLog = now;
      this.suppressed = 0;
    } else {
      this.suppressed++;
    }
    this.down = true;
    if (open) return NOOP_GRANT;
    throw new LimiterUnavailableError(
      `rate limits and budgets are shared through Redis, which is unreachable (${err.message}); request refused (fail closed)`,
      { cause: err },
    );
  }

  private recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.log('info', 'shared limiter: Redis reachable again', { suppressed: this.suppressed });
    this.suppressed = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    this.closed = true;
    if (this.owns) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
