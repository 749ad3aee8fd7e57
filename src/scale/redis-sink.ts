/**
 * RedisStreamSink: usage events on a Redis Stream. Each batch is one pipeline of
 *   XADD <stream> MAXLEN ~ <maxLen> * id <event id> key <api key> event <CloudEvents JSON>
 * Stream entry ids are Redis's (time-sequence); the idempotency id travels in the `id` field and the billing
 * worker deduplicates on it. A batch counts as sent when every XADD replied; with `appendfsync always` (see
 * docs/DEPLOYMENT.md) that reply means the event is on disk, so the spool can forget it.
 *
 * Trimming (`MAXLEN ~`) bounds memory but deletes the oldest entries whether or not the billing worker has read
 * them: size `maxLen` for the longest worker outage you accept (default 1,000,000 events ≈ 0.5–1 GB).
 */
import { Redis } from 'ioredis';
import { TokmeterTypeError } from '../errors.js';
import { EventSinkLedger, type EventSinkOptions, type EventTransport, type OutgoingEvent } from './event-sink.js';
import { limiterClientOptions } from './redis-limiter.js';

export const DEFAULT_STREAM = 'tokmeter:usage';

export interface RedisStreamSinkOptions extends EventSinkOptions {
  /** A `redis://` URL (the sink owns the connection) or an ioredis client (the caller owns it). */
  redis: string | Redis;
  /** Stream key (default 'tokmeter:usage'). */
  stream?: string;
  /** Approximate bound on the stream's length (default 1,000,000). */
  maxLen?: number;
}

export class RedisStreamTransport implements EventTransport {
  readonly name = 'redis';
  readonly redis: Redis;
  private readonly owns: boolean;

  constructor(
    redis: string | Redis,
    readonly stream: string,
    readonly maxLen: number,
  ) {
    this.owns = typeof redis === 'string';
    this.redis =
      typeof redis === 'string' ? new Redis(redis, { ...limiterClientOptions(5000), lazyConnect: true }) : redis;
    if (this.owns) this.redis.on('error', () => undefined); // failures surface per batch and are retried
  }

  async connect(): Promise<void> {
    if (this.owns && this.redis.status === 'wait') await this.redis.connect();
  }

  async send(events: OutgoingEvent[]): Promise<void> {
    const p = this.redis.pipeline();
    for (const e of events) {
      p.xadd(this.stream, 'MAXLEN', '~', this.maxLen, '*', 'id', e.id, 'key', e.key, 'event', e.value);
    }
    const res = await p.exec();
    if (!res) throw new Error('redis pipeline was discarded');
    for (const [err] of res) if (err) throw err;
  }

  isConnectionError(err: Error): boolean {
    return !/^(ERR|WRONGTYPE)/.test(err.message);
  }

  async disconnect(): Promise<void> {
    // The connection reconnects by itself; only close() (below) releases it.
  }

  async close(): Promise<void> {
    if (this.owns) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

export class RedisStreamSink extends EventSinkLedger {
  declare readonly transport: RedisStreamTransport;

  constructor(options: RedisStreamSinkOptions) {
    const maxLen = options.maxLen ?? 1_000_000;
    if (!Number.isSafeInteger(maxLen) || maxLen < 1) {
      throw new TokmeterTypeError(
        `RedisStreamSink: expected a positive integer for maxLen, got ${String(options.maxLen)}`,
      );
    }
    super(new RedisStreamTransport(options.redis, options.stream ?? DEFAULT_STREAM, maxLen), options);
  }

  override async close(options?: { timeoutMs?: number }): Promise<void> {
    await super.close(options);
    await this.transport.close();
  }
}
