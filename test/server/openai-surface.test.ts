/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * What real OpenAI clients send and need, through the official `openai` client against `tokmeter serve`'s server
 * (tiny model, real Meter and SQLite ledger): the prefix cache on by default (cached_tokens billed at the cached
 * price), caching and cost visible to the client, harmless fields accepted and unknown ones named, logprobs,
 * assistant prefill, and --always-include-usage. Every usage a client sees equals its ledger record.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { continueFinalMessage } from '../../src/tokenizer/index.js';
import { formatPico, type SqliteLedger, type UsageRecord } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let modelDir: string;
let server: RunningServer;
let client: OpenAI;

/** A system prompt long enough that its KV is worth keeping (tens of tokens). */
const SYSTEM =
  'You are a careful assistant for a metering company. Answer briefly, name units, never guess prices, and say ' +
  'when a number is an estimate. Tokens are counted by the engine, and cached prompt tokens cost less.';

async function record(id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await (server.ledger as SqliteLedger).get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

async function post(route: string, body: unknown): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

/** The `data:` payloads of an SSE body (without [DONE]). */
async function sse(route: string, body: unknown): Promise<{ headers: Headers; events: any[]; raw: string }> {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const raw = await res.text();
  const events = raw
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice(6)));
  return { headers: res.headers, events, raw };
}

beforeAll(async () => {
  tmp = tempDir('server-surface');
  modelDir = await makeChatTinyModel(tmp.dir);
  const prices = path.join(tmp.dir, 'prices.json');
  writeFileSync(
    prices,
    JSON.stringify({
      version: 'p1',
      currency: 'EUR',
      models: { tiny: { inputPer1M: '2', cachedInputPer1M: '0.5', outputPer1M: '8' } },
    }),
  );
  server = await startTestServer({ model: modelDir, prices, ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}` });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

describe('prefix cache (on by default in serve)', () => {
  it('a repeated system prompt is reported as cached_tokens, and billed at the cached-input price', async () => {
    const ask = (q: string) =>
      client.chat.completions.create({
        model: 'tiny',
        messages: [
          { role: 'system', content: SYSTEM },
          { role: 'user', content: q },
        ],
        max_tokens: 3,
        temperature: 0,
      });
    const first = await ask('How much is a token?');
    const second = await ask('And a cached one?');
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(first.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    expect(cached).toBeGreaterThan(20); // the system prompt's tokens at least
    expect(cached).toBeLessThan(second.usage!.prompt_tokens);
    const rec = await record(second.id);
    expect(rec).toMatchObject({
      promptTokens: second.usage!.prompt_tokens,
      cachedTokens: cached,
      completionTokens: second.usage!.completion_tokens,
    });
    const u = { promptTokens: rec.promptTokens, completionTokens: rec.completionTokens };
    const table = server.meter.prices;
    expect(rec.cost).toBe(table.cost('tiny', { ...u, cachedTokens: cached }));
    expect(rec.cost).toBeLessThan(table.cost('tiny', { ...u, cachedTokens: 0 }));
  });
});

describe('prefix cache bound', () => {
  it('--prefix-cache-bytes bounds what the prefix cache may hold, within the KV budget', async () => {
    expect(server.model.stats()).toMatchObject({ prefixCache: true });
    expect(server.model.stats().cacheLimitBytes).toBe(server.model.stats().kvCacheBytes);
    const bounded = await startTestServer({ model: modelDir, prefixCacheBytes: 1 << 20 });
    try {
      expect(bounded.model.stats().cacheLimitBytes).toBe(1 << 20);
    } finally {
      await bounded.close();
    }
    const off = await startTestServer({ model: modelDir, prefixCache: false });
    try {
      expect(off.model.stats()).toMatchObject({ prefixCache: false, cacheLimitBytes: 0 });
    } finally {
      await off.close();
    }
  });
});

describe('caching and cost visible to the client', () => {
  it('headers: x-tokmeter-cache miss then hit (response cache), x-tokmeter-cost equal to the ledger record', async () => {
    const body = { model: 'tiny', prompt: 'The price of a token is', max_tokens: 4, temperature: 0 };
    const a = await post('/v1/completions', body);
    const b = await post('/v1/completions', body);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.headers.get('x-tokmeter-cache')).toBe('miss');
    expect(b.headers.get('x-tokmeter-cache')).toBe('hit');
    for (const r of [a, b]) {
      const rec = await record(r.json.id);
      expect(r.headers.get('x-tokmeter-cost')).toBe(`${formatPico(rec.cost)} EUR`);
      expect(rec.cacheHit).toBe(r === b);
      expect(r.json.usage.prompt_tokens).toBe(rec.promptTokens);
      expect(r.json.usage.completion_tokens).toBe(rec.completionTokens);
    }
    // cacheHitBilling defaults to free: the hit costs nothing, and the client is told so.
    expect(b.headers.get('x-tokmeter-cost')).toBe('0 EUR');
    expect(a.headers.get('x-tokmeter-cost')).not.toBe('0 EUR');
  });

  it('streams: the cache header, and cache and cost as extra fields of the final usage chunk', async () => {
    const body = {
      model: 'tiny',
      messages: [{ role: 'user' as const, content: 'Stream me a price.' }],
      max_tokens: 4,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    };
    const first = await sse('/v1/chat/completions', body);
    const again = await sse('/v1/chat/completions', body);
    for (const [s, cache] of [
      [first, 'miss'],
      [again, 'hit'],
    ] as const) {
      expect(s.headers.get('x-tokmeter-cache')).toBe(cache);
      const usage = s.events.at(-1).usage;
      const rec = await record(s.events[0].id);
      expect(usage).toMatchObject({
        prompt_tokens: rec.promptTokens,
        completion_tokens: rec.completionTokens,
        prompt_tokens_details: { cached_tokens: rec.cachedTokens },
        x_tokmeter_cache: cache,
        x_tokmeter_cost: `${formatPico(rec.cost)} EUR`,
      });
    }
    // The openai client reads the same stream and keeps the usage fields it knows.
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let usage: any;
    for await (const c of stream) if (c.usage) usage = c.usage;
    expect(usage.x_tokmeter_cache).toBe('hit');
  });
});

describe('lenient where harmless, strict where it matters', () => {
  it('accepts name, metadata, store: false, service_tier, parallel_tool_calls without tools', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', name: 'alice', content: 'hi' },
      ],
      max_tokens: 2,
      metadata: { team: 'billing' },
      store: false,
      service_tier: 'auto',
      parallel_tool_calls: false,
    });
    expect(r.choices[0]!.message.role).toBe('assistant');
    const rec = await record(r.id);
    expect(rec.promptTokens).toBe(r.usage!.prompt_tokens);
  });

  it('passes messages[].name to the chat template as a message field', async () => {
    const tpl = path.join(tmp.dir, 'named');
    const { makeModel } = await import('../../src/modelgen/index.js');
    await makeModel({ size: 'tiny', out: tpl });
    const cfgPath = path.join(tpl, 'tokenizer_config.json');
    const { readFileSync } = await import('node:fs');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.chat_template =
      "{% for m in messages %}{{ m['role'] }}{% if m['name'] %}({{ m['name'] }}){% endif %}: {{ m['content'] }}\n{% endfor %}";
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const named = await startTestServer({ model: tpl });
    try {
      const count = async (name?: string) => {
        const res = await fetch(`${named.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: named.model.name,
            messages: [{ role: 'user', content: 'hi', ...(name ? { name } : {}) }],
            max_tokens: 1,
          }),
        });
        return ((await res.json()) as any).usage.prompt_tokens as number;
      };
      const expected = named.model.tokenizer.count('user(alice_the_named): hi\n', { addSpecialTokens: false });
      expect(await count('alice_the_named')).toBe(expected);
      expect(await count()).toBeLessThan(expected);
    } finally {
      await named.close();
    }
  });

  it('ignores unknown top-level fields but names them in x-tokmeter-ignored', async () => {
    const r = await post('/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
      frobnicate: true,
      guided_whatever: { a: 1 },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-tokmeter-ignored')).toBe('frobnicate,guided_whatever');
    const plain = await post('/v1/completions', { model: 'tiny', prompt: 'a', max_tokens: 1 });
    expect(plain.headers.get('x-tokmeter-ignored')).toBeNull();
    const s = await sse('/v1/completions', { model: 'tiny', prompt: 'a', max_tokens: 1, stream: true, x_extra: 1 });
    expect(s.headers.get('x-tokmeter-ignored')).toBe('x_extra');
  });

  it('keeps a 400 for what would change the output if ignored', async () => {
    const messages = [{ role: 'user', content: 'hi' }];
    const cases: [object, string][] = [
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }, 'response_format.json_schema.schema'],
      [
        { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
        'messages[0].content[0].type',
      ],
      [
        { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
        'messages[0].content[0].type',
      ],
      [{ n: 9 }, 'n'],
      [{ store: true }, 'store'],
      [{ service_tier: 'flex' }, 'service_tier'],
      [{ metadata: { a: 1 } }, 'metadata'],
      [{ messages: [{ role: 'user', content: 'x', name: 3 }] }, 'messages[0].name'],
    ];
    for (const [extra, param] of cases) {
      const r = await post('/v1/chat/completions', { model: 'tiny', messages, max_tokens: 1, ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.json.error.param, JSON.stringify(extra)).toBe(param);
    }
  });
});

describe('logprobs (the sampled token)', () => {
  it('chat: one entry per completion token, in OpenAI shape, streamed and not', async () => {
    const messages = [{ role: 'user' as const, content: 'Give me log-probabilities.' }];
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
    });
    const content = r.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(r.usage!.completion_tokens);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.bytes).toEqual([...Buffer.from(t.token, 'utf8')]);
      expect(t.top_logprobs).toEqual([]);
    }
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 0,
      stream: true,
    });
    const streamed: { token: string; logprob: number }[] = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed.map((t) => t.token)).toEqual(content.map((t) => t.token));
    streamed.forEach((t, i) => expect(t.logprob).toBeCloseTo(content[i]!.logprob, 4));
    const err = await client.chat.completions
      .create({ model: 'tiny', messages, max_tokens: 1, logprobs: true, top_logprobs: 21 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as any).param).toBe('top_logprobs');
  });

  it('completions: logprobs 0 gives tokens, token_logprobs, top_logprobs and text_offset', async () => {
    const r = await client.completions.create({
      model: 'tiny',
      prompt: 'Once',
      max_tokens: 4,
      temperature: 0,
      logprobs: 0,
    });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(r.usage!.completion_tokens);
    expect(lp.token_logprobs).toHaveLength(lp.tokens!.length);
    let offset = 0;
    lp.tokens!.forEach((t, i) => {
      expect(lp.text_offset![i]).toBe(offset);
      offset += t.length;
      expect(lp.top_logprobs![i]).toEqual({ [t]: lp.token_logprobs![i] });
    });
    const err = await client.completions
      .create({ model: 'tiny', prompt: 'Once', max_tokens: 1, logprobs: 6 })
      .catch((e: unknown) => e);
    expect((err as any).param).toBe('logprobs');
  });
});

describe('assistant prefill', () => {
  it('continue_final_message continues the final assistant message instead of opening a new turn', async () => {
    const messages = [
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: 'Once upon a' },
    ];
    const r = await post('/v1/chat/completions', {
      model: 'tiny',
      messages,
      continue_final_message: true,
      add_generation_prompt: false,
      max_tokens: 4,
      temperature: 0,
    });
    expect(r.status).toBe(200);
    // The prompt is the template without the generation prompt, cut right after "Once upon a".
    const tok = server.model.tokenizer;
    const rendered = tok.applyChatTemplate(messages, { addGenerationPrompt: false });
    const cut = rendered.slice(0, rendered.lastIndexOf('Once upon a') + 'Once upon a'.length);
    expect(rendered.endsWith('\n')).toBe(true); // closed by the template...
    expect(cut.endsWith('Once upon a')).toBe(true); // ...and not any more
    const ids = tok.encode(cut, { addSpecialTokens: false });
    expect(r.json.usage.prompt_tokens).toBe(ids.length);
    const ref = await server.model.generate({ tokens: ids }, { maxNewTokens: 4, temperature: 0 }).result;
    expect(r.json.choices[0].message.content).toBe(ref.text);
    // A new turn would have been a different prompt.
    const turn = await post('/v1/chat/completions', { model: 'tiny', messages, max_tokens: 1 });
    expect(turn.json.usage.prompt_tokens).not.toBe(r.json.usage.prompt_tokens);
  });

  it('refuses prefill without a final assistant message, or with a generation prompt as well', async () => {
    const user = [{ role: 'user', content: 'hi' }];
    const a = await post('/v1/chat/completions', { model: 'tiny', messages: user, continue_final_message: true });
    expect([a.status, a.json.error.param]).toEqual([400, 'continue_final_message']);
    const b = await post('/v1/chat/completions', {
      model: 'tiny',
      messages: [...user, { role: 'assistant', content: 'x' }],
      continue_final_message: true,
      add_generation_prompt: true,
    });
    expect([b.status, b.json.error.param]).toEqual([400, 'add_generation_prompt']);
  });

  it('cuts after the trimmed text when the template strips trailing whitespace (as transformers does)', () => {
    const msgs = [{ role: 'assistant', content: 'Hello there  ' }];
    expect(continueFinalMessage('<s>[a] Hello there  </s>', msgs)).toBe('<s>[a] Hello there  ');
    expect(continueFinalMessage('<s>[a] Hello there</s>', msgs)).toBe('<s>[a] Hello there');
    expect(() => continueFinalMessage('<s>[a] HELLO</s>', msgs)).toThrow(/does not appear/);
    expect(() => continueFinalMessage('<s></s>', [{ role: 'assistant', content: ' ' }])).toThrow(/with text/);
  });
});

describe('--always-include-usage', () => {
  it('sends the usage chunk on a stream that did not ask for it', async () => {
    const always = await startTestServer({ model: modelDir, alwaysIncludeUsage: true });
    try {
      const c = new OpenAI({ baseURL: `${always.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const stream = await c.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
        stream: true,
      });
      const chunks = [];
      for await (const ch of stream) chunks.push(ch);
      expect(chunks.at(-1)!.choices).toEqual([]);
      expect(chunks.at(-1)!.usage!.completion_tokens).toBeGreaterThan(0);
      expect(chunks.slice(0, -1).every((ch) => ch.usage === null)).toBe(true);
    } finally {
      await always.close();
    }
    // The default server sends none unless asked.
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      stream: true,
    });
    for await (const ch of stream) expect(ch.usage ?? undefined).toBeUndefined();
  });
});
