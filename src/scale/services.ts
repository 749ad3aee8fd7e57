/**
 * `createRedisServices(url, …)`: what `tokmeter serve --redis URL` turns on — a RedisLimiter for the Meter's
 * `limiter` option and a RedisStreamSink for its `ledger` — plus, with a PostgreSQL URL, the billing database for
 * `/v1/usage` reports and for seeding budget periods Redis does not know.
 */
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { TokmeterTypeError } from '../errors.js';
import { BillingDb } from './billing-db.js';
import { Registry as PromRegistry, stderrLog, type LogFn } from './log.js';
import { RedisLimiter } from './redis-limiter.js';
import { RedisStreamSink } from './redis-sink.js';

export interface RedisServicesOptions {
  /** Local spool of the event sink (e.g. `.tokmeter/spool`); one per server process. */
  spoolDir: string;
  /** The billing ledger (postgres://…) the billing worker writes: reports and budget seeding read it. */
  postgres?: string;
  /**
   * A second Redis for the usage stream (default: the same as the limiter's). Events want `appendfsync always`;
   * limits do not (a lost second of counters is harmless) and pay ~1 fsync per admission under it — see
   * docs/DEPLOYMENT.md.
   */
  eventsUrl?: string;
  /** Ledger table (default usage_records). */
  table?: string;
  /** Admit requests without shared limits while Redis is unreachable (default: refuse them, HTTP 503). */
  failOpen?: boolean;
  stream?: string;
  maxLen?: number;
  /** Key prefix of the limiter (default 'tm'). */
  prefix?: string;
  /** CloudEvents source of this server (default tokmeter://<hostname>/<pid>). */
  source?: string;
  registry?: Registry;
  log?: LogFn;
}

export interface RedisServices {
  limiter: RedisLimiter;
  sink: RedisStreamSink;
  billing: BillingDb | undefined;
  /** Close the limiter (waits for settlements) and the sink (flushes the spool, bounded). Idempotent. */
  close(): Promise<void>;
}

export async function createRedisServices(url: string, o: RedisServicesOptions): Promise<RedisServices> {
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
    throw new TokmeterTypeError(`expected a redis:// or rediss:// URL for --redis, got ${JSON.stringify(url)}`);
  }
  if (o.eventsUrl !== undefined && !/^rediss?:\/\//.test(o.eventsUrl)) {
    throw new TokmeterTypeError(`expected a redis:// URL for the events Redis, got ${JSON.stringify(o.eventsUrl)}`);
  }
  if (o.postgres !== undefined && !/^postgres(ql)?:\/\//.test(o.postgres)) {
    throw new TokmeterTypeError(
      `with --redis the ledger is the billing worker's PostgreSQL (postgres://…), got ${JSON.stringify(o.postgres)}`,
    );
  }
  const log = o.log ?? stderrLog;
  const registry = o.registry ?? new PromRegistry();
  const billing =
    o.postgres !== undefined ? new BillingDb(o.postgres, o.table !== undefined ? { table: o.table } : {}) : undefined;
  const limiter = new RedisLimiter({
    redis: url,
    registry,
    log,
    onUnavailable: o.failOpen ? 'open' : 'closed',
    ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
    ...(billing ? { loadSpend: (key: string, from: number, to: number) => billing.spendNow(key, from, to) } : {}),
  });
  const sink = new RedisStreamSink({
    redis: o.eventsUrl ?? url,
    spoolDir: o.spoolDir,
    registry,
    onError: (err) => log('warn', 'usage events: Redis unreachable, events wait in the spool', { err: err.message }),
    ...(billing ? { billing } : {}),
    ...(o.stream !== undefined ? { stream: o.stream } : {}),
    ...(o.maxLen !== undefined ? { maxLen: o.maxLen } : {}),
    ...(o.source !== undefined ? { source: o.source } : {}),
  });
  await sink.open();
  await checkDurability(sink.transport.redis, log);
  await checkAdmissionLatency(limiter.redis, o.eventsUrl === undefined, log);
  let closing: Promise<void> | undefined;
  return {
    limiter,
    sink,
    billing,
    close() {
      closing ??= (async () => {
        await limiter.close();
        await sink.close();
      })();
      return closing;
    },
  };
}

/** Redis's AOF settings (CONFIG GET), or the error that prevented reading them. */
async function persistence(redis: Redis): Promise<{ aof: string; fsync: string } | Error> {
  try {
    await new Promise<void>((resolve) => {
      if (redis.status === 'ready') return resolve();
      const t = setTimeout(resolve, 2000);
      redis.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
    const [, aof] = (await redis.config('GET', 'appendonly')) as string[];
    const [, fsync] = (await redis.config('GET', 'appendfsync')) as string[];
    return { aof: aof ?? '?', fsync: fsync ?? '?' };
  } catch (err) {
    return err as Error;
  }
}

/** Warn when Redis would lose acknowledged events on a crash (AOF off, or fsync only every second). */
async function checkDurability(redis: Redis, log: LogFn): Promise<void> {
  const p = await persistence(redis);
  if (p instanceof Error) {
    log(
      'info',
      'could not read the Redis persistence settings (CONFIG GET); make sure AOF is on with appendfsync always',
      { err: p.message },
    );
  } else if (p.aof !== 'yes' || p.fsync !== 'always') {
    log('warn', 'Redis may lose acknowledged usage events on a crash: run it with appendonly yes, appendfsync always', {
      appendonly: p.aof,
      appendfsync: p.fsync,
    });
  }
}

/**
 * Warn when every admission waits for a disk flush: under `appendfsync always` Redis replies to a write only after
 * fsync, and every admission writes (measured in bench/scale-out: admit p50 0.7–4 ms instead of ~0.1 ms, tracking
 * the disk; the 2 ms target is out of reach). Limits do not need it: a lost second of counters only loosens them
 * briefly.
 */
async function checkAdmissionLatency(redis: Redis, shared: boolean, log: LogFn): Promise<void> {
  const p = await persistence(redis);
  if (p instanceof Error || p.aof !== 'yes' || p.fsync !== 'always') return;
  log(
    'warn',
    'shared limiter: its Redis fsyncs every write (appendfsync always), so every admission waits for a disk flush; ' +
      (shared
        ? 'give the limits their own Redis with appendfsync everysec and keep this one for usage events (eventsUrl)'
        : 'run the limits Redis with appendfsync everysec'),
    { appendfsync: p.fsync, see: 'docs/DEPLOYMENT.md#redis-persistence' },
  );
}
