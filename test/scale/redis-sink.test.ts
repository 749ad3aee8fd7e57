/** RedisStreamSink: one entry per record, carrying its idempotency id, in a stream bounded by MAXLEN ~. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeUsageEvent } from '../../src/scale/events.js';
import { RedisStreamSink } from '../../src/scale/redis-sink.js';
import { record, tempDir } from './helpers.js';
import { RUN_REDIS, redisUrl, uniquePrefix } from './redis-helper.js';

describe.runIf(RUN_REDIS)('RedisStreamSink', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('XADDs each record with its idempotency id and keeps the stream near maxLen', async () => {
    const stream = uniquePrefix('bounded');
    const maxLen = 200;
    const sink = new RedisStreamSink({ redis: redisUrl(), stream, maxLen, spoolDir: tempDir(), batchSize: 100 });
    const records = Array.from({ length: 2000 }, (_, i) => record(50_000 + i));
    try {
      for (let i = 0; i < records.length; i += 100) await sink.append(records.slice(i, i + 100));
      await sink.flush({ timeoutMs: 20_000 });
    } finally {
      await sink.close();
    }
    // `MAXLEN ~` trims whole radix-tree nodes (stream-node-max-entries, 100 by default): at least maxLen entries
    // stay, and fewer than maxLen + one node.
    const [, nodeMax] = (await redis.config('GET', 'stream-node-max-entries')) as string[];
    const len = await redis.xlen(stream);
    expect(len).toBeGreaterThanOrEqual(maxLen);
    expect(len).toBeLessThan(maxLen + Number(nodeMax));
    // the newest entries survive, in order, each carrying the record's id in a field and in its event
    const entries = await redis.xrange(stream, '-', '+');
    const tail = records.slice(-len);
    entries.forEach(([, fields], i) => {
      const f = new Map<string, string>();
      for (let j = 0; j + 1 < fields.length; j += 2) f.set(fields[j]!, fields[j + 1]!);
      expect(f.get('id')).toBe(tail[i]!.id);
      expect(f.get('key')).toBe(tail[i]!.key);
      expect(decodeUsageEvent(f.get('event')!).record).toEqual(tail[i]);
    });
    await redis.del(stream);
  });
});
