/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * Every error status of the server with its OpenAI body shape, through HTTP and the official client; keys and
 * tenants with their limits; a client that disconnects mid-stream (its generation stops, its usage is recorded).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asMeterable, buildApp, ServerMetrics, type RunningServer } from '../../src/server/index.js';
import { Meter, type SqliteLedger, type UsageRecord } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir, writeKeysFile } from './helpers.js';

const OK = { key: 'tm-ok-key-000000000000', id: 'ok', tenant: 'free' };
const RPM2 = { key: 'tm-rpm-key-00000000000', id: 'rpm', tenant: 'slow' };
const BROKE = { key: 'tm-broke-key-000000000', id: 'broke', tenant: 'broke' };
const TIGHT = { key: 'tm-tight-key-000000000', id: 'tight', tenant: 'tight' };
const TPM = { key: 'tm-tpm-key-00000000000', id: 'tpm', tenant: 'tpm' };
const NONE = { key: 'tm-none-key-0000000000', id: 'none', tenant: 'none' };
const messages = [{ role: 'user' as const, content: 'hi there' }];

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;

async function call(route: string, init: { body?: unknown; raw?: string; key?: string | null; method?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? OK.key}`;
  const res = await fetch(`${server.url}${route}`, {
    method: init.method ?? 'POST',
    headers,
    ...(init.method === 'GET' ? {} : { body: init.raw ?? JSON.stringify(init.body ?? {}) }),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

/** The OpenAI error shape: exactly {error: {message, type, param, code}}. */
function expectErrorShape(json: any, fields: { type?: string; code?: string | null; param?: string | null }) {
  expect(Object.keys(json)).toEqual(['error']);
  expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof json.error.message).toBe('string');
  expect(json.error.message.length).toBeGreaterThan(0);
  expect(json.error).toMatchObject(fields);
}

beforeAll(async () => {
  tmp = tempDir('server-errors');
  const model = await makeChatTinyModel(tmp.dir);
  const prices = path.join(tmp.dir, 'prices.json');
  writeFileSync(
    prices,
    JSON.stringify({ version: 't1', models: { tiny: { inputPer1M: '1000', outputPer1M: '1000' } } }),
  );
  server = await startTestServer({
    model,
    prices,
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
    maxBodyBytes: 64 * 1024,
    keys: writeKeysFile(tmp.dir, [OK, RPM2, BROKE, TIGHT, TPM, NONE], {
      slow: { requestsPerMinute: 2 },
      broke: { budget: { day: '0.000001' } },
      tight: { budget: { day: '0.02' } },
      tpm: { tokensPerMinute: 30 },
      none: { requestsPerMinute: 0 },
    }),
  });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

describe('error statuses and bodies', () => {
  const chat = (extra: object = {}) => ({ body: { model: 'tiny', messages, max_tokens: 2, ...extra } });

  it('401 for a missing or unknown key, through the openai client too', async () => {
    const missing = await call('/v1/chat/completions', { ...chat(), key: null });
    expect(missing.status).toBe(401);
    expectErrorShape(missing.json, { type: 'invalid_request_error', code: 'missing_api_key', param: null });
    const wrong = await call('/v1/chat/completions', { ...chat(), key: 'tm-not-a-key' });
    expect(wrong.status).toBe(401);
    expectErrorShape(wrong.json, { code: 'invalid_api_key' });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
  });

  it('401 on /metrics when the server has no metrics key and was not told to serve them openly', async () => {
    // This server has API keys but neither metricsKey, adminKey nor publicMetrics: /metrics is closed to all.
    for (const authorization of [undefined, `Bearer ${OK.key}`]) {
      const res = await fetch(`${server.url}/metrics`, authorization ? { headers: { authorization } } : {});
      expect(res.status).toBe(401);
      const body = (await res.json()) as any;
      expectErrorShape(body, { code: 'missing_api_key' });
      expect(body.error.message).toMatch(/--metrics-key .*--public-metrics/);
    }
  });

  it('400 naming the field for unknown, ill-typed and unsupported parameters', async () => {
    const cases: [object, string, string][] = [
      [{ temperature: 'hot' }, 'temperature', 'invalid_request'],
      [{ max_tokens: -1 }, 'max_tokens', 'invalid_request'],
      [{ n: 9 }, 'n', 'unsupported_parameter'],
      [{ logprobs: true, top_logprobs: 21 }, 'top_logprobs', 'invalid_request'],
      [{ seed: 'x' }, 'seed', 'invalid_request'],
    ];
    for (const [extra, param, code] of cases) {
      const r = await call('/v1/chat/completions', chat(extra));
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expectErrorShape(r.json, { type: 'invalid_request_error', param, code });
      expect(r.json.error.message).toContain(param);
    }
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: OK.key, maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'tiny', messages, n: 9 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
  });

  it('400 invalid JSON, 404 unknown model and route, 415 wrong media type', async () => {
    const bad = await call('/v1/chat/completions', { raw: '{"model": ' });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.json, { code: 'invalid_json' });
    const model = await call('/v1/chat/completions', { body: { model: 'gpt-4o', messages } });
    expect(model.status).toBe(404);
    expectErrorShape(model.json, { code: 'model_not_found', param: 'model' });
    const route = await call('/v1/embeddings', { body: {} });
    expect(route.status).toBe(404);
    expectErrorShape(route.json, { code: 'not_found' });
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/xml', authorization: `Bearer ${OK.key}` },
      body: '<hi/>',
    });
    expect(res.status).toBe(415);
    expectErrorShape(await res.json(), { code: 'unsupported_media_type' });
  });

  it('400 context_length_exceeded with both numbers, for chat and completions', async () => {
    const r = await call('/v1/chat/completions', chat({ max_tokens: 5000 }));
    expect(r.status).toBe(400);
    expectErrorShape(r.json, { type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' });
    expect(r.json.error.message).toContain('2048');
    const long = 'word '.repeat(2100);
    const c = await call('/v1/completions', { body: { model: 'tiny', prompt: long, max_tokens: 1 } });
    expect(c.status).toBe(400);
    expectErrorShape(c.json, { code: 'context_length_exceeded', param: 'prompt' });
  });

  it('413 for a body over the limit', async () => {
    const r = await call('/v1/completions', { body: { model: 'tiny', prompt: 'x'.repeat(100 * 1024) } });
    expect(r.status).toBe(413);
    expectErrorShape(r.json, { code: 'request_too_large' });
  });

  it("429 with Retry-After once a tenant's requests per minute are used", async () => {
    const ok1 = await call('/v1/completions', { key: RPM2.key, body: { model: 'tiny', prompt: 'a', max_tokens: 1 } });
    const ok2 = await call('/tokenize', { key: RPM2.key, body: { prompt: 'a' } });
    expect([ok1.status, ok2.status]).toEqual([200, 200]);
    const r = await call('/v1/completions', { key: RPM2.key, body: { model: 'tiny', prompt: 'a', max_tokens: 1 } });
    expect(r.status).toBe(429);
    expectErrorShape(r.json, { type: 'requests', code: 'rate_limit_exceeded' });
    const retry = Number(r.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    // Another tenant is not affected.
    expect((await call('/v1/completions', { body: { model: 'tiny', prompt: 'a', max_tokens: 1 } })).status).toBe(200);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: RPM2.key, maxRetries: 0 });
    const err = await client.completions.create({ model: 'tiny', prompt: 'a', max_tokens: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
  });

  it('429 insufficient_quota with Retry-After once what is left of the budget cannot cover the request', async () => {
    // Each request may cost ~0.007 (prompt + 4 tokens at 0.001 a token) of a 0.02 day budget: a few are admitted,
    // then the rest of the day's budget is too small, which waiting for the next day helps.
    const statuses: number[] = [];
    let r: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 8 && r?.status !== 429; i++) {
      r = await call('/v1/completions', { key: TIGHT.key, body: { model: 'tiny', prompt: 'a', max_tokens: 4 } });
      statuses.push(r.status);
    }
    expect(statuses[0]).toBe(200);
    expect(statuses.at(-1)).toBe(429);
    expectErrorShape(r!.json, { type: 'insufficient_quota', code: 'insufficient_quota' });
    const retry = Number(r!.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(86_400);
  });

  it('400 naming max_tokens when the request alone costs more than the whole budget (no wait helps)', async () => {
    const r = await call('/v1/completions', { key: BROKE.key, body: { model: 'tiny', prompt: 'a', max_tokens: 4 } });
    expect(r.status).toBe(400);
    expectErrorShape(r.json, { type: 'invalid_request_error', code: 'request_over_limit', param: 'max_tokens' });
    expect(r.json.error.message).toMatch(/max_tokens = 4/);
    expect(r.json.error.message).not.toMatch(/maxNewTokens/);
    expect(r.headers.get('retry-after')).toBeNull();
  });

  it('400 without Retry-After for a key that may make no requests at all', async () => {
    const r = await call('/v1/completions', { key: NONE.key, body: { model: 'tiny', prompt: 'a', max_tokens: 1 } });
    expect(r.status).toBe(400);
    expectErrorShape(r.json, { code: 'request_over_limit', param: null });
    expect(r.headers.get('retry-after')).toBeNull();
  });

  it('400 naming max_tokens when the request alone needs more than the tokens per minute (no wait helps)', async () => {
    const r = await call('/v1/chat/completions', { key: TPM.key, body: { model: 'tiny', messages, max_tokens: 40 } });
    expect(r.status).toBe(400);
    expectErrorShape(r.json, { type: 'invalid_request_error', code: 'request_over_limit', param: 'max_tokens' });
    expect(r.json.error.message).toMatch(/max_tokens = 40.*\(30 tokens\)/);
    expect(r.headers.get('retry-after')).toBeNull();
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: TPM.key, maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 40 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    // A request that fits is admitted; one that fits the limit but not what is left of the minute is a 429.
    expect(
      (await call('/v1/completions', { key: TPM.key, body: { model: 'tiny', prompt: 'a', max_tokens: 20 } })).status,
    ).toBe(200);
    const again = await call('/v1/completions', { key: TPM.key, body: { model: 'tiny', prompt: 'a', max_tokens: 20 } });
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('refused requests leave no ledger record; streams refused before the first byte get a JSON error', async () => {
    await server.meter.flush(); // records of earlier tests may still be on their way from the spool
    const before = await (server.ledger as SqliteLedger).count();
    const r = await call('/v1/chat/completions', {
      key: BROKE.key,
      body: { model: 'tiny', messages, max_tokens: 4, stream: true },
    });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/json');
    await server.meter.flush();
    expect(await (server.ledger as SqliteLedger).count()).toBe(before);
  });
});

describe('the engine refusing a job after admission', () => {
  it('is a JSON error before the first byte (a stream too), with nothing billed', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({ prices: { tiny: { inputPer1M: 1, outputPer1M: 1 } }, onRecord: (r) => records.push(r) });
    const adapted = asMeterable(server.model);
    const refusals = [
      Object.assign(new Error('the model has 256 generations waiting'), { code: 'ERR_QUEUE_FULL' }),
      Object.assign(new Error('2 x 16 KiB x 900 tokens exceed the KV budget of 1 MiB'), { code: 'ERR_KV_BUDGET' }),
    ];
    let refusal = refusals[0]!;
    const refusing = {
      ...adapted,
      name: 'tiny',
      contextLength: server.model.contextLength,
      preparePrompt: (input: Parameters<typeof adapted.countPrompt>[0]) => ({
        ...adapted.preparePrompt!(input),
        generate: () => {
          throw refusal;
        },
      }),
    };
    const metrics = new ServerMetrics();
    const app = await buildApp({ model: refusing, tokenizer: server.model.tokenizer, meter, metrics });
    try {
      for (const stream of [false, true]) {
        refusal = refusals[0]!;
        const full = await app.inject({
          method: 'POST',
          url: '/v1/chat/completions',
          payload: { model: 'tiny', messages, max_tokens: 4, stream },
        });
        expect(full.statusCode).toBe(503);
        expect(full.headers['content-type']).toContain('application/json');
        expectErrorShape(full.json(), { type: 'server_error', code: 'server_overloaded' });
        refusal = refusals[1]!;
        const kv = await app.inject({
          method: 'POST',
          url: '/v1/completions',
          payload: { model: 'tiny', prompt: 'hello', max_tokens: 900, stream },
        });
        expect(kv.statusCode).toBe(400);
        expectErrorShape(kv.json(), { code: 'context_length_exceeded', param: 'max_tokens' });
        expect(kv.json().error.message).toContain('KV budget');
      }
      expect(records).toEqual([]);
      expect(await metrics.registry.getSingleMetricAsString('tokmeter_generations_in_flight')).toMatch(
        /tokmeter_generations_in_flight 0/,
      );
    } finally {
      await app.close();
      await meter.close();
    }
  });
});

describe('client disconnect mid-stream', () => {
  it('aborts the generation and records what was processed', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: OK.key, maxRetries: 0 });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'tiny', messages, max_tokens: 1900, temperature: 0, stream: true },
      { signal: ac.signal },
    );
    let id = '';
    let pieces = 0;
    try {
      for await (const c of stream) {
        id = c.id;
        if (c.choices[0]?.delta.content) pieces++;
        if (pieces >= 2) ac.abort();
      }
    } catch (err) {
      expect((err as Error).name).toMatch(/Abort/);
    }
    expect(id).not.toBe('');
    let rec: UsageRecord | undefined;
    for (let i = 0; i < 100 && !rec; i++) {
      await server.meter.flush();
      rec = await (server.ledger as SqliteLedger).get(id);
      if (!rec) await new Promise((r) => setTimeout(r, 50));
    }
    expect(rec).toBeDefined();
    expect(rec!.finishReason).toBe('abort');
    expect(rec!.promptTokens).toBe(server.model.countPrompt({ messages }));
    expect(rec!.completionTokens).toBeGreaterThanOrEqual(pieces);
    expect(rec!.completionTokens).toBeLessThan(1900);
    expect(rec!.cost).toBe(BigInt(rec!.totalTokens) * 1_000_000_000n); // 1000 per 1M tokens = 1e9 pico per token
    expect(await server.metrics.registry.getSingleMetricAsString('tokmeter_generations_in_flight')).toMatch(
      /tokmeter_generations_in_flight 0/,
    );
  });
});
