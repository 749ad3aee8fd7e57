/**
 * The crash test of the scale-out path against the real processes: `tokmeter serve --redis … --ledger postgres://…` (the CLI, a
 * tiny model from the model maker) and `tokmeter billing-worker` (the CLI), on a private Redis with AOF
 * (appendfsync always).
 *
 *   1. server A completes requests (streamed with include_usage, and plain JSON); for the last four Redis refuses
 *      XADD (an ACL), so their records are only in A's spool; then A is SIGKILLed with two requests in flight (one
 *      streaming tokens, one admitted and waiting for the engine);
 *   2. Redis is restarted (SHUTDOWN + AOF replay);
 *   3. server B starts on A's spool directory (replays what A had accepted but not sent), completes more requests,
 *      and stops gracefully;
 *   4. billing worker 1 is SIGKILLed mid-batch (read from the stream, INSERT waiting on a table lock, nothing
 *      acknowledged); worker 2 takes over what it left pending.
 *
 * What must hold afterwards, and what cannot:
 *   - every request whose client saw its usage (the include_usage chunk, or the JSON body) is in the ledger exactly
 *     once, with the token counts the client saw; the ledger totals equal the clients' totals;
 *   - a request in flight at the SIGKILL cannot be billed for what it had streamed: the Meter writes a record only
 *     when a generation ends, and the process that knew the partial count is gone. So the guarantee is the other
 *     side: it is not billed at all (nothing partial, nothing duplicated), and its client did not see a usage;
 *   - its reservation is never refunded (no process is left to settle it), so the shared budget in Redis keeps its
 *     maximum cost until the period ends: budget in Redis = billed cost + the in-flight requests' maximum cost
 *     (conservative: the tenant can spend less, never more).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeChatTinyModel, tempDir, writeKeysFile } from '../server/helpers.js';
import { runChild, type Child } from './child.js';
import { pgUrl, privateRedis, ROOT, RUN_REDIS_PG, waitFor } from './redis-helper.js';

const CLI = path.join(ROOT, 'src', 'cli', 'index.ts');
const IN_FLIGHT_MAX_TOKENS = 1800; // ~2 s of tokens on the tiny model: far from done when the SIGKILL lands
const STREAM = 'tokmeter:usage'; // the server's default stream
const PRICE = { in: 1_000_000n, out: 2_000_000n }; // pico-units per token ("1.00" and "2.00" per 1M)

interface Seen {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens: number;
}
interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
}
const fromUsage = (u: OpenAiUsage): Seen => ({
  promptTokens: u.prompt_tokens,
  completionTokens: u.completion_tokens,
  totalTokens: u.total_tokens,
  cachedTokens: u.prompt_tokens_details?.cached_tokens ?? 0,
});

describe.runIf(RUN_REDIS_PG)('tokmeter serve --redis, SIGKILLed mid-stream (real server and billing-worker)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let redis: ReturnType<typeof privateRedis>;
  let model = '';
  let keysFile = '';
  let pricesFile = '';
  const children: Child[] = [];
  let local: Redis | undefined; // the test's own connection to the private Redis
  let db: pg.Client | undefined;
  let locker: pg.Client | undefined;
  const tenant = `crash-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const apiKey = `sk-test-${Math.random().toString(36).slice(2)}`;

  beforeAll(async () => {
    tmp = tempDir('scale-crash');
    model = await makeChatTinyModel(tmp.dir);
    // Limits and a day budget, so every admission goes through the RedisLimiter (reserve, then settle).
    keysFile = writeKeysFile(tmp.dir, [{ key: apiKey, id: 'k1', tenant }], {
      [tenant]: { requestsPerMinute: 1000, tokensPerMinute: 1_000_000, budget: { day: '1000.00' } },
    });
    pricesFile = path.join(tmp.dir, 'prices.json');
    writeFileSync(
      pricesFile,
      JSON.stringify({
        version: 'crash-test',
        models: { tiny: { inputPer1M: '1.00', cachedInputPer1M: '1.00', outputPer1M: '2.00' } },
      }),
    );
    redis = privateRedis();
  }, 120_000);

  afterAll(async () => {
    for (const c of children) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await c.exited;
    }
    local?.disconnect();
    await db?.end();
    await locker?.end();
    redis?.dispose();
    tmp?.cleanup();
  });

  const cli = (args: string[]): Child => {
    const c = runChild(CLI, {}, args);
    children.push(c);
    return c;
  };
  const serve = async (spool: string): Promise<{ child: Child; url: string }> => {
    const child = cli([
      'serve',
      '--model',
      model,
      '--port',
      '0',
      '--threads',
      '1',
      '--keys',
      keysFile,
      '--prices',
      pricesFile,
      '--redis',
      redis.url,
      '--ledger',
      pgUrl(),
      '--spool-dir',
      spool,
    ]);
    const line = await child.waitLine(/serving .* at (http:\/\/\S+)\/v1/, 90_000);
    return { child, url: /at (http:\/\/\S+)\/v1/.exec(line)![1]! };
  };
  const post = (url: string, route: string, body: unknown) =>
    fetch(`${url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify(body),
    });

  /** One completed request; returns its id (= ledger record id) and the usage the client saw. */
  async function complete(url: string, i: number, stream: boolean): Promise<[string, Seen]> {
    const body = { model: 'tiny', prompt: `completed request ${i} says hello`, max_tokens: 4 + (i % 5) };
    if (!stream) {
      const res = await post(url, '/v1/completions', { ...body, temperature: 0 });
      expect(res.status).toBe(200);
      const json = (await res.json()) as { id: string; usage: OpenAiUsage };
      return [json.id, fromUsage(json.usage)];
    }
    const res = await post(url, '/v1/completions', {
      ...body,
      temperature: 0.7,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    const last = JSON.parse(events.at(-2)!) as { id: string; usage: OpenAiUsage };
    expect(last.id).toBe(res.headers.get('x-request-id'));
    return [last.id, fromUsage(last.usage)];
  }

  /**
   * A long stream: resolves once it was admitted (response headers) or once its first content chunk arrived;
   * `ended` settles with everything the client received when the connection ends.
   */
  async function startLongStream(url: string, i: number, until: 'admitted' | 'first token') {
    const prompt = `in flight request ${i} will never finish`;
    const res = await post(url, '/v1/completions', {
      model: 'tiny',
      prompt,
      max_tokens: IN_FLIGHT_MAX_TOKENS,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id')!;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (until === 'first token' && !/data: \{.*"text":"[^"]/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ${id} ended before its first token: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
    const ended = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
      } catch {
        // the server died: the connection is reset
      }
      return text;
    })();
    return { id, prompt, ended };
  }

  it('bills each completed request once, as its client saw it, and the killed ones not at all', async () => {
    const seen = new Map<string, Seen>();
    const spool = path.join(tmp.dir, 'spool');

    const rc = (local = new Redis(redis.url, { maxRetriesPerRequest: 1 }));
    rc.on('error', () => undefined);
    const inStream = async () => new Set((await rc.xrange(STREAM, '-', '+')).map(([, f]) => f[f.indexOf('id') + 1]!));

    // 1. server A completes requests; for the later ones Redis refuses XADD (an ACL), so their records are
    //    accepted (fdatasync'ed to A's spool, the client got its usage) but not sent when A is SIGKILLed with
    //    two requests in flight.
    const a = await serve(spool);
    for (let i = 0; i < 4; i++) {
      const [id, usage] = await complete(a.url, i, i % 2 === 0);
      seen.set(id, usage);
    }
    await waitFor(async () => (await inStream()).size === 4, 10_000, "A's first 4 events in the stream");
    await rc.call('ACL', 'SETUSER', 'default', '-xadd');
    const onlyInSpool: string[] = [];
    for (let i = 4; i < 8; i++) {
      const [id, usage] = await complete(a.url, i, i % 2 === 0);
      seen.set(id, usage);
      onlyInSpool.push(id);
    }
    // in flight at the kill: one streaming tokens, one admitted (its reservation made) and waiting for the engine
    const streaming = await startLongStream(a.url, 100, 'first token');
    const inFlight = [streaming, await startLongStream(a.url, 101, 'admitted')];
    a.child.proc.kill('SIGKILL');
    expect((await a.child.exited).signal).toBe('SIGKILL');
    for (const f of inFlight) {
      const text = await f.ended;
      expect(text).not.toContain('[DONE]'); // the client never saw a usage for it
      expect(text).not.toContain('"usage":{');
    }
    await rc.call('ACL', 'SETUSER', 'default', '+xadd');
    const sent = await inStream();
    expect(onlyInSpool.filter((id) => sent.has(id))).toEqual([]); // only A's spool had them

    // 2. Redis restart: what A had XADDed survives through the AOF
    redis.ctl('restart');

    // 3. server B on A's spool: replays A's unsent records; more requests; graceful stop (flushes its spool)
    const b = await serve(spool);
    for (let i = 8; i < 14; i++) {
      const [id, usage] = await complete(b.url, i, i % 2 === 0);
      seen.set(id, usage);
    }
    const promptOf = async (prompt: string) =>
      ((await (await post(b.url, '/tokenize', { prompt })).json()) as { count: number }).count;
    const inFlightPrompt = await Promise.all(inFlight.map((f) => promptOf(f.prompt)));
    b.child.proc.kill('SIGTERM');
    expect((await b.child.exited).code, b.child.stderr.join('')).toBe(0);

    // 4. billing worker 1 is SIGKILLed mid-batch: it has read a batch (pending in the group, not acknowledged) and
    //    its INSERT waits on a table lock the test holds. Worker 2 takes the batch over once it is idle for 500 ms.
    const sql = (db = new pg.Client({ connectionString: pgUrl() }));
    await sql.connect();
    const watched = [...seen.keys(), ...inFlight.map((f) => f.id)];
    const billed = async () =>
      (
        await sql
          .query<{ n: string }>('SELECT count(*) AS n FROM usage_records WHERE id = ANY($1)', [watched])
          .catch(() => ({ rows: [{ n: '0' }] }))
      ).rows[0]!.n;
    const pending = async () => Number(((await rc.call('XPENDING', STREAM, 'tokmeter-billing')) as [number])[0]);
    const lock = (locker = new pg.Client({ connectionString: pgUrl() }));
    await lock.connect();
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE usage_records IN SHARE ROW EXCLUSIVE MODE'); // blocks INSERT, not SELECT
    const worker = ['billing-worker', '--redis', redis.url, '--ledger', pgUrl(), '--batch', '3'];
    const w1 = cli(worker);
    await waitFor(async () => (await pending().catch(() => 0)) > 0, 60_000, 'worker 1 to read its first batch');
    w1.proc.kill('SIGKILL');
    await w1.exited;
    expect(await billed()).toBe('0');
    await lock.query('COMMIT'); // w1's orphaned INSERT may still commit now: then w2's re-insert is a no-op
    expect(await pending()).toBeGreaterThan(0); // left pending on the dead consumer
    const w2 = cli([...worker, '--claim-idle-ms', '500']);
    await waitFor(
      async () => {
        if (Number(await billed()) < seen.size) return false;
        const pending = (await rc.call('XPENDING', STREAM, 'tokmeter-billing')) as [number];
        return Number(pending[0]) === 0;
      },
      60_000,
      `the ledger to hold all ${seen.size} completed records and nothing to be pending`,
    );
    w2.proc.kill('SIGTERM');
    expect((await w2.exited).code, w2.stderr.join('')).toBe(0);

    // every completed request exactly once, as its client saw it; no in-flight request billed
    const { rows } = await sql.query<{
      id: string;
      prompt_tokens: number;
      cached_tokens: number;
      completion_tokens: number;
      total_tokens: number;
      cost: string;
      n: string;
    }>(
      `SELECT id, prompt_tokens, cached_tokens, completion_tokens, total_tokens, cost::text AS cost,
                count(*) OVER (PARTITION BY id) AS n
           FROM usage_records WHERE id = ANY($1)`,
      [watched],
    );
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(seen.keys()));
    expect(rows.every((r) => r.n === '1')).toBe(true);
    for (const r of rows) {
      expect(
        {
          promptTokens: Number(r.prompt_tokens),
          completionTokens: Number(r.completion_tokens),
          totalTokens: Number(r.total_tokens),
          cachedTokens: Number(r.cached_tokens),
        },
        r.id,
      ).toEqual(seen.get(r.id));
    }
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    expect(sum(rows.map((r) => Number(r.total_tokens)))).toBe(sum([...seen.values()].map((s) => s.totalTokens)));
    const billedCost = rows.reduce((x, r) => x + BigInt(r.cost), 0n);
    expect(billedCost).toBe(
      [...seen.values()].reduce(
        (x, s) => x + BigInt(s.promptTokens) * PRICE.in + BigInt(s.completionTokens) * PRICE.out,
        0n,
      ),
    );

    // the shared budget: completed requests settled to their actual cost, the killed ones keep their maximum
    const budgetKeys = await rc.keys(`tm:{${encodeURIComponent(tenant)}}:b:day:*`); // two if the run spans 0:00 UTC
    expect(budgetKeys.length).toBeGreaterThan(0);
    let inRedis = 0n;
    for (const k of budgetKeys) inRedis += BigInt((await rc.get(k)) ?? '0');
    const reservedByKilled = inFlightPrompt.reduce(
      (x, p) => x + BigInt(p) * PRICE.in + BigInt(IN_FLIGHT_MAX_TOKENS) * PRICE.out,
      0n,
    );
    expect(inRedis).toBe(billedCost + reservedByKilled);
  }, 300_000); // two server starts and two workers on a loaded 2-core machine
});
