/* eslint-disable @typescript-eslint/no-explicit-any -- the clients are imported dynamically (optional) */
/**
 * The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible` and `@ai-sdk/openai`, whose default model calls
 * /v1/responses) and LangChain (`@langchain/openai`) against `tokmeter serve` started with --always-include-usage:
 * text, streaming, usage and named messages, batched prompts; every usage a client saw equals its ledger record.
 * Each client is optional: when its package is not installed its tests are skipped with the reason printed.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import type { SqliteLedger, UsageRecord } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir } from './helpers.js';

async function optional(name: string): Promise<any> {
  try {
    return await import(name);
  } catch {
    console.warn(`[sdk-clients] skipping the ${name} tests: the package is not installed (npm i -D ${name})`);
    return undefined;
  }
}

const ai = await optional('ai');
const compatible = await optional('@ai-sdk/openai-compatible');
const aiOpenai = await optional('@ai-sdk/openai');
const langchain = await optional('@langchain/openai');
const lcMessages = await optional('@langchain/core/messages');

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;

async function record(id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await (server.ledger as SqliteLedger).get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

/** The id of the last response LangChain's client received (it does not expose it), from its x-request-id. */
let lastId = '';
const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  lastId = res.headers.get('x-request-id') ?? '';
  return res;
};

beforeAll(async () => {
  tmp = tempDir('server-sdks');
  server = await startTestServer({
    model: await makeChatTinyModel(tmp.dir),
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
    alwaysIncludeUsage: true,
  });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

describe.skipIf(!ai || !compatible)('AI SDK with @ai-sdk/openai-compatible', () => {
  const provider = () => compatible.createOpenAICompatible({ name: 'tokmeter', baseURL: `${server.url}/v1` });

  it('generateText: text and usage equal the ledger record', async () => {
    const r = await ai.generateText({ model: provider()('tiny'), prompt: 'Hello', maxOutputTokens: 4, temperature: 0 });
    const rec = await record(r.response.id);
    expect(r.usage.inputTokens).toBe(rec.promptTokens);
    expect(r.usage.outputTokens).toBe(rec.completionTokens);
  });

  it('streamText without stream_options still gets usage (--always-include-usage)', async () => {
    const s = ai.streamText({ model: provider()('tiny'), prompt: 'Hello there', maxOutputTokens: 4, temperature: 0 });
    let text = '';
    for await (const t of s.textStream) text += t;
    const usage = await s.usage;
    const rec = await record((await s.response).id);
    expect(typeof text).toBe('string');
    expect(usage.inputTokens).toBe(rec.promptTokens);
    expect(usage.outputTokens).toBe(rec.completionTokens);
  });
});

describe.skipIf(!ai || !aiOpenai)('AI SDK with @ai-sdk/openai (the Responses API by default)', () => {
  const provider = () => aiOpenai.createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });

  it('generateText and streamText through /v1/responses; usage equals the ledger record', async () => {
    const r = await ai.generateText({ model: provider()('tiny'), prompt: 'Hi', maxOutputTokens: 4, temperature: 0 });
    const rec = await record(r.response.id);
    expect(r.response.id).toMatch(/^resp_/);
    expect(r.usage.inputTokens).toBe(rec.promptTokens);
    expect(r.usage.outputTokens).toBe(rec.completionTokens);
    const s = ai.streamText({ model: provider()('tiny'), prompt: 'Hi again', maxOutputTokens: 4, temperature: 0 });
    let text = '';
    for await (const t of s.textStream) text += t;
    const usage = await s.usage;
    const srec = await record((await s.response).id);
    expect(typeof text).toBe('string');
    expect([usage.inputTokens, usage.outputTokens]).toEqual([srec.promptTokens, srec.completionTokens]);
  });

  it('openai.chat() goes through chat completions with the same accounting', async () => {
    const r = await ai.generateText({ model: provider().chat('tiny'), prompt: 'Hi', maxOutputTokens: 3 });
    const rec = await record(r.response.id);
    expect([r.usage.inputTokens, r.usage.outputTokens]).toEqual([rec.promptTokens, rec.completionTokens]);
  });
});

describe.skipIf(!langchain || !lcMessages)('LangChain @langchain/openai', () => {
  const options = () => ({
    model: 'tiny',
    apiKey: 'unused',
    configuration: { baseURL: `${server.url}/v1`, fetch: recordingFetch },
  });

  it('ChatOpenAI.invoke with a named message: usage_metadata equals the ledger record', async () => {
    const chat = new langchain.ChatOpenAI({ ...options(), maxTokens: 4, temperature: 0 });
    const msg = await chat.invoke([new lcMessages.HumanMessage({ content: 'Hello', name: 'alice' })]);
    const rec = await record(msg.id);
    expect(msg.usage_metadata.input_tokens).toBe(rec.promptTokens);
    expect(msg.usage_metadata.output_tokens).toBe(rec.completionTokens);
  });

  it('ChatOpenAI.stream: usage arrives on the stream', async () => {
    const chat = new langchain.ChatOpenAI({ ...options(), maxTokens: 4, temperature: 0, streamUsage: true });
    let usage: any;
    for await (const c of await chat.stream('Stream, please')) if (c.usage_metadata) usage = c.usage_metadata;
    const rec = await record(lastId);
    expect([usage.input_tokens, usage.output_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
  });

  it('OpenAI (completions) generate([p1, p2]) sends a batched prompt: one record, usage summed', async () => {
    const llm = new langchain.OpenAI({ ...options(), maxTokens: 3, temperature: 0 });
    const r = await llm.generate(['The sea is', 'Tokens are']);
    expect(r.generations).toHaveLength(2);
    const rec = await record(lastId);
    expect(r.llmOutput.tokenUsage).toMatchObject({
      promptTokens: rec.promptTokens,
      completionTokens: rec.completionTokens,
    });
    const p = server.model.countPrompt('The sea is') + server.model.countPrompt('Tokens are');
    expect(rec.promptTokens).toBe(p);
  });
});
