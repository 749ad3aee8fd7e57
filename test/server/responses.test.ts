/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * POST /v1/responses through the official `openai` client's `responses.create` (streaming and not): the output is
 * the engine's generation of the same chat in-process, the usage equals the ledger's one record (whose id is the
 * response id), the stream has the documented event sequence, and what a stateless server cannot do is a 400.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import type { SqliteLedger, UsageRecord } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;
let client: OpenAI;

async function record(id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await (server.ledger as SqliteLedger).get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

async function count(id: string): Promise<number> {
  await server.meter.flush();
  const all = await (server.ledger as SqliteLedger).count();
  return (await (server.ledger as SqliteLedger).get(id)) ? all : -1;
}

const instructions = 'Answer in one short sentence.';
const chat = [
  { role: 'system', content: instructions },
  { role: 'user', content: 'What is a token?' },
];

beforeAll(async () => {
  tmp = tempDir('server-responses');
  server = await startTestServer({
    model: await makeChatTinyModel(tmp.dir),
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

function expectUsageIsRecord(usage: any, rec: UsageRecord): void {
  expect(usage).toMatchObject({
    input_tokens: rec.promptTokens,
    input_tokens_details: { cached_tokens: rec.cachedTokens },
    output_tokens: rec.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: rec.totalTokens,
  });
}

describe('POST /v1/responses', () => {
  it('non-streaming: the engine text of the same chat, usage equal to the one ledger record', async () => {
    const before = await (server.ledger as SqliteLedger).count();
    const r = await client.responses.create({
      model: 'tiny',
      instructions,
      input: 'What is a token?',
      max_output_tokens: 6,
      temperature: 0,
    });
    const ref = await server.model.generate({ messages: chat }, { maxNewTokens: 6, temperature: 0 }).result;
    expect(r.object).toBe('response');
    expect(r.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(r.output_text).toBe(ref.text);
    expect(r.output[0]).toMatchObject({ type: 'message', role: 'assistant' });
    expect(r.status).toBe(ref.finishReason === 'length' ? 'incomplete' : 'completed');
    if (r.status === 'incomplete') expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.instructions).toBe(instructions);
    expect(r.usage!.input_tokens).toBe(ref.usage.promptTokens);
    expect(r.usage!.output_tokens).toBe(ref.usage.completionTokens);
    const rec = await record(r.id);
    expectUsageIsRecord(r.usage, rec);
    expect(await count(r.id)).toBe(before + 1);
  });

  it('message items: input_text and earlier output_text turns, the same prompt as the chat', async () => {
    const r = await client.responses.create({
      model: 'tiny',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
        {
          type: 'message',
          role: 'assistant',
          content: [{ type: 'output_text', text: 'Hello!', annotations: [] }],
        } as any,
        { role: 'user', content: 'Count to three.' },
      ],
      max_output_tokens: 3,
      temperature: 0,
    });
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Count to three.' },
    ];
    expect(r.usage!.input_tokens).toBe(server.model.countPrompt({ messages }));
    expectUsageIsRecord(r.usage, await record(r.id));
  });

  it('streaming: the documented event sequence, deltas that add up, final usage equal to the ledger', async () => {
    const stream = await client.responses.create({
      model: 'tiny',
      instructions,
      input: 'What is a token?',
      max_output_tokens: 6,
      temperature: 0,
      stream: true,
    });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    const last = events.at(-1);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      last.response.status === 'completed' ? 'response.completed' : 'response.incomplete',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const text = events
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join('');
    const ref = await server.model.generate({ messages: chat }, { maxNewTokens: 6, temperature: 0 }).result;
    expect(text).toBe(ref.text);
    expect(events.find((e) => e.type === 'response.output_text.done').text).toBe(text);
    expect(last.response.output[0].content[0].text).toBe(text);
    const rec = await record(last.response.id);
    expectUsageIsRecord(last.response.usage, rec);
    // The same greedy request as the first test: the response cache answers it, and says so.
    expect(rec.cacheHit).toBe(true);
    expect(last.response.usage.x_tokmeter_cache).toBe('hit');
    expect(last.response.usage.x_tokmeter_cost).toBe('0 USD');
  });

  it("the client's stream helper gets the final response", async () => {
    const s = client.responses.stream({ model: 'tiny', input: 'Hi', max_output_tokens: 4, temperature: 0 });
    const final = await s.finalResponse();
    expect(final.output_text.length).toBeGreaterThanOrEqual(0);
    expectUsageIsRecord(final.usage, await record(final.id));
  });

  it('accepts store, metadata and empty tools; names unknown fields; refuses what it cannot do (400 naming it)', async () => {
    const ok = await fetch(`${server.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        input: 'hi',
        max_output_tokens: 1,
        store: true,
        metadata: { a: 'b' },
        tools: [],
        text: { format: { type: 'text' } },
        seed: 3,
      }),
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-tokmeter-ignored')).toBe('seed');
    expect(((await ok.json()) as any).store).toBe(false);
    const cases: [object, string][] = [
      [{ previous_response_id: 'resp_123' }, 'previous_response_id'],
      [{ text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema'],
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }, 'input[0].content[0].type'],
      [{ input: [{ type: 'reasoning', summary: [] }] }, 'input[0].type'],
      [{ input: [{ type: 'function_call_output', output: 'x' }] }, 'input[0].call_id'],
      [{ max_output_tokens: 0 }, 'max_output_tokens'],
      [{ input: '' }, 'input'],
    ];
    for (const [extra, param] of cases) {
      const err = await client.responses
        .create({ model: 'tiny', input: 'hi', ...(extra as any) })
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(extra)).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as any).param, JSON.stringify(extra)).toBe(param);
    }
  });
});
