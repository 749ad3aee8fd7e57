/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * The OpenAI API through the official `openai` client against a real server (tiny model, real Model, Tokenizer,
 * Meter and SQLite ledger): chat and completions, streaming and not, include_usage; the usage the client sees equals
 * what the engine produced in-process and the ledger's record; tokenize/detokenize; models; usage; metrics; tenants.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import type { SqliteLedger, UsageRecord } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir, writeKeysFile } from './helpers.js';

const ALICE = { key: 'tm-test-alice-0123456789', id: 'alice-ci', tenant: 'alice' };
const BOB = { key: 'tm-test-bob-0123456789', id: 'bob-laptop', tenant: 'bob' };
const messages = [{ role: 'user' as const, content: 'Tell me a story about tokens.' }];
const METRICS_KEY = 'tm-test-metrics-0123456789';

let tmp: ReturnType<typeof tempDir>;
let modelDir: string;
let server: RunningServer;
let alice: OpenAI;
let bob: OpenAI;

async function record(id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await (server.ledger as SqliteLedger).get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

async function post(route: string, body: unknown, key = ALICE.key): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  tmp = tempDir('server-api');
  modelDir = await makeChatTinyModel(tmp.dir);
  server = await startTestServer({
    model: modelDir,
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
    keys: writeKeysFile(tmp.dir, [ALICE, BOB]),
    metricsKey: METRICS_KEY,
  });
  const client = (key: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 });
  alice = client(ALICE.key);
  bob = client(BOB.key);
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

/** The same greedy generation in-process, through the very Model the server uses. */
async function inProcess(input: Parameters<RunningServer['model']['generate']>[0], maxNewTokens: number) {
  const run = server.model.generate(input, { maxNewTokens, temperature: 0 });
  return run.result;
}

describe('chat completions', () => {
  it('renders the chat template once per metered request (count, cache key and generation share it)', async () => {
    const tok = server.model.tokenizer;
    const render = tok.applyChatTemplate.bind(tok);
    let renders = 0;
    tok.applyChatTemplate = ((...args: Parameters<typeof render>) => {
      renders++;
      return render(...args);
    }) as typeof tok.applyChatTemplate;
    try {
      const r = await alice.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, seed: 11 });
      expect(renders).toBe(1);
      expect(r.usage!.prompt_tokens).toBe(server.model.countPrompt({ messages }));
    } finally {
      delete (tok as { applyChatTemplate?: unknown }).applyChatTemplate; // back to the prototype's method
    }
  });

  it('non-streaming: text and usage equal the engine in-process and the ledger record', async () => {
    const r = await alice.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
    const ref = await inProcess({ messages }, 12);
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message).toMatchObject({ role: 'assistant', content: ref.text });
    expect(r.choices[0]!.finish_reason).toBe(ref.finishReason);
    expect(r.usage).toMatchObject({
      prompt_tokens: ref.usage.promptTokens,
      completion_tokens: ref.usage.completionTokens,
      total_tokens: ref.usage.totalTokens,
    });
    const rec = await record(r.id);
    expect(rec).toMatchObject({
      key: 'alice',
      model: 'tiny',
      promptTokens: r.usage!.prompt_tokens,
      completionTokens: r.usage!.completion_tokens,
      totalTokens: r.usage!.total_tokens,
      // serve keeps the prefix cache on: an earlier test's prompt may be reused; the ledger says the same
      cachedTokens: r.usage!.prompt_tokens_details!.cached_tokens,
      finishReason: ref.finishReason,
    });
  });

  it('streaming with include_usage: streamed text, then finish_reason, then one usage chunk, then [DONE]', async () => {
    const stream = await alice.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const ref = await inProcess({ messages }, 12);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(ref.text);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({
      prompt_tokens: ref.usage.promptTokens,
      completion_tokens: ref.usage.completionTokens,
    });
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe(ref.finishReason);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    const rec = await record(last.id);
    expect(rec.completionTokens).toBe(last.usage!.completion_tokens);
    expect(rec.promptTokens).toBe(last.usage!.prompt_tokens);
  });

  it('streaming without include_usage sends no usage', async () => {
    const stream = await bob.chat.completions.create({ model: 'tiny', messages, max_tokens: 4, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.usage === undefined)).toBe(true);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
  });

  it('honours max_completion_tokens and stop strings', async () => {
    const r = await alice.chat.completions.create({
      model: 'tiny',
      messages,
      max_completion_tokens: 3,
      temperature: 0,
    });
    expect(r.usage!.completion_tokens).toBe(3);
    const ref = await inProcess({ messages }, 12);
    const stop = ref.text.slice(4, 7);
    const s = await alice.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 12,
      temperature: 0,
      stop: [stop],
    });
    expect(s.choices[0]!.finish_reason).toBe('stop');
    expect(s.choices[0]!.message.content).toBe(ref.text.slice(0, ref.text.indexOf(stop)));
  });
});

describe('completions', () => {
  it('non-streaming and streaming give the engine text and usage', async () => {
    const prompt = 'Once upon a time';
    const ref = await inProcess(prompt, 10);
    const r = await alice.completions.create({ model: 'tiny', prompt, max_tokens: 10, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]!.text).toBe(ref.text);
    expect(r.usage).toMatchObject({
      prompt_tokens: ref.usage.promptTokens,
      completion_tokens: ref.usage.completionTokens,
    });
    expect((await record(r.id)).completionTokens).toBe(ref.usage.completionTokens);

    const stream = await alice.completions.create({
      model: 'tiny',
      prompt,
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(ref.text);
    expect(usage).toMatchObject({
      prompt_tokens: ref.usage.promptTokens,
      completion_tokens: ref.usage.completionTokens,
    });
  });

  it('seeded sampling is reproducible and differs by seed', async () => {
    const one = (seed: number) =>
      alice.completions.create({ model: 'tiny', prompt: 'x y z', max_tokens: 8, temperature: 1, seed });
    const [a, b] = [await one(7), await one(7)];
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
    const c = await one(8);
    expect(c.choices[0]!.text).not.toBe(a.choices[0]!.text);
  });
});

describe('models, tokenize, detokenize, usage, metrics, health', () => {
  it('lists the served model', async () => {
    const list = await alice.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny']);
    expect((list.data[0] as unknown as { max_model_len: number }).max_model_len).toBe(2048);
  });

  it('tokenize counts exactly what a request is billed for, and detokenize inverts it', async () => {
    const t = await post('/tokenize', { model: 'tiny', messages });
    const r = await alice.chat.completions.create({ model: 'tiny', messages, max_tokens: 1 });
    expect(t.status).toBe(200);
    expect(t.json.count).toBe(r.usage!.prompt_tokens);
    expect(t.json.tokens).toHaveLength(t.json.count);
    expect(t.json.max_model_len).toBe(2048);
    const p = await post('/tokenize', { prompt: 'Hello world' });
    expect(p.json.count).toBe(server.model.countPrompt('Hello world'));
    const d = await post('/detokenize', { tokens: p.json.tokens.slice(1) });
    expect(d).toMatchObject({ status: 200, json: { prompt: 'Hello world' } });
    const bad = await post('/detokenize', { tokens: [1, 99_999_999] });
    expect(bad).toMatchObject({ status: 400, json: { error: { param: 'tokens[1]' } } });
  });

  it("/v1/usage reports only the caller's tenant, equal to its ledger records", async () => {
    await bob.completions.create({ model: 'tiny', prompt: 'bob only', max_tokens: 2 });
    const get = async (key: string, q = '') => {
      const res = await fetch(`${server.url}/v1/usage${q}`, { headers: { authorization: `Bearer ${key}` } });
      return (await res.json()) as any;
    };
    const a = await get(ALICE.key, '?group_by=model');
    const b = await get(BOB.key, '?group_by=model');
    expect(a.tenant).toBe('alice');
    expect(b.tenant).toBe('bob');
    const ledgerA = await server.meter.report({ groupBy: 'key', key: 'alice' });
    expect(a.data[0]).toMatchObject({
      group: 'tiny',
      requests: ledgerA[0]!.requests,
      totalTokens: ledgerA[0]!.totalTokens,
    });
    const ledgerB = await server.meter.report({ groupBy: 'key', key: 'bob' });
    expect(b.data[0]).toMatchObject({ requests: ledgerB[0]!.requests, totalTokens: ledgerB[0]!.totalTokens });
    expect(ledgerA[0]!.requests).not.toBe(ledgerB[0]!.requests);
    const bad = await fetch(`${server.url}/v1/usage?group_by=week`, {
      headers: { authorization: `Bearer ${BOB.key}` },
    });
    expect(bad.status).toBe(400);
  });

  it('/metrics needs the metrics key: 401 without it, with a wrong one or with a tenant key', async () => {
    const get = async (authorization?: string) => {
      const res = await fetch(`${server.url}/metrics`, authorization ? { headers: { authorization } } : {});
      return { status: res.status, body: (await res.json()) as any };
    };
    const none = await get();
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ type: 'invalid_request_error', code: 'missing_api_key' });
    for (const bad of [`Bearer ${METRICS_KEY}x`, `Bearer ${ALICE.key}`, METRICS_KEY, 'Bearer ']) {
      const r = await get(bad);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('invalid_api_key');
      expect(JSON.stringify(r.body)).not.toContain(METRICS_KEY);
    }
    const ok = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
  });

  it('metricsKey and publicMetrics exclude each other; a metrics key has 16+ characters', async () => {
    await expect(startTestServer({ model: modelDir, metricsKey: METRICS_KEY, publicMetrics: true })).rejects.toThrow(
      /exclude each other/,
    );
    await expect(startTestServer({ model: modelDir, metricsKey: 'short' })).rejects.toThrow(/at least 16 characters/);
  });

  it('/metrics counts tokens per model, tenant and key, equal to the ledger', async () => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } });
    const text = await res.text();
    const value = (name: string, tenant: string, key: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{model="tiny",tenant="${tenant}",key="${key}"}`));
      return Number(line?.split(' ').at(-1));
    };
    const [row] = await server.meter.report({ groupBy: 'key', key: 'alice' });
    expect(value('tokmeter_prompt_tokens_total', 'alice', 'alice-ci')).toBe(row!.promptTokens);
    expect(value('tokmeter_completion_tokens_total', 'alice', 'alice-ci')).toBe(row!.completionTokens);
    expect(value('tokmeter_cached_tokens_total', 'alice', 'alice-ci')).toBe(row!.cachedTokens);
    expect(text).toContain('tokmeter_time_to_first_token_seconds_count');
    expect(text).toContain('tokmeter_http_request_duration_seconds_bucket');
    expect(text).toMatch(/tokmeter_queue_depth 0/);
    expect(text).not.toContain(ALICE.key);
  });

  it('/health needs no key and tells liveness only; the ledger counts are metrics', async () => {
    const h = (await (await fetch(`${server.url}/health`)).json()) as any;
    expect(h).toEqual({ status: 'ok' });
    await server.meter.flush();
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } });
    const text = await res.text();
    const stats = server.ledger!.stats();
    expect(text).toContain(`tokmeter_ledger_pending_records ${stats.pending}`);
    expect(text).toContain(`tokmeter_ledger_written_records ${stats.written}`);
    expect(stats.written).toBeGreaterThan(0);
    expect(text).toContain('tokmeter_ledger_connected 1');
    expect(text).toMatch(/tokmeter_ledger_spool_max_bytes \d+/);
  });
});
