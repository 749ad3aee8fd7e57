/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * Several choices per request through the official `openai` client: chat `n` > 1 and completions with a batched
 * `prompt` array (and both). The usage is OpenAI's (each prompt counted once, completion tokens summed over the
 * choices) and equals the request's one ledger record; the other choices of a prompt reuse its KV through the prefix
 * cache (prefill once); each choice samples from its own seed.
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
const ledger = () => server.ledger as SqliteLedger;

async function record(id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await ledger().get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

beforeAll(async () => {
  tmp = tempDir('server-choices');
  server = await startTestServer({
    model: await makeChatTinyModel(tmp.dir),
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
    maxChoices: 6,
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

const messages = [{ role: 'user' as const, content: 'Name three colours of the sea at dawn.' }];

describe('n > 1 and batched prompts', () => {
  it('chat n=3 (greedy): three choices equal to the engine, prompt billed once, one ledger record', async () => {
    await server.meter.flush();
    const before = await ledger().count();
    const stats0 = server.model.stats();
    const r = await client.chat.completions.create({ model: 'tiny', messages, n: 3, max_tokens: 5, temperature: 0 });
    const ref = await server.model.generate({ messages }, { maxNewTokens: 5, temperature: 0 }).result;
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of r.choices) {
      expect(c.message.content).toBe(ref.text);
      expect(c.finish_reason).toBe(ref.finishReason);
    }
    expect(r.usage!.prompt_tokens).toBe(ref.usage.promptTokens);
    expect(r.usage!.completion_tokens).toBe(3 * ref.usage.completionTokens);
    const rec = await record(r.id);
    expect(rec).toMatchObject({
      promptTokens: r.usage!.prompt_tokens,
      cachedTokens: r.usage!.prompt_tokens_details!.cached_tokens,
      completionTokens: r.usage!.completion_tokens,
    });
    expect(await ledger().count()).toBe(before + 1);
    // Choices 1 and 2 copied the prompt's KV that choice 0 prefilled (all but the last prompt token).
    const stats1 = server.model.stats();
    expect(stats1.cacheHits - stats0.cacheHits).toBeGreaterThanOrEqual(2);
  });

  it('sampled choices each have their own seed stream', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages,
      n: 3,
      max_tokens: 12,
      temperature: 1,
      seed: 7,
    });
    const texts = r.choices.map((c) => c.message.content);
    expect(new Set(texts).size).toBeGreaterThan(1);
    const again = await client.chat.completions.create({
      model: 'tiny',
      messages,
      n: 3,
      max_tokens: 12,
      temperature: 1,
      seed: 7,
    });
    expect(again.choices.map((c) => c.message.content)).toEqual(texts);
  });

  it('completions with a batched prompt and n=2: prompt-major choices, each prompt counted once', async () => {
    const prompts = ['The sea is', 'Tokens are counted by'];
    const r = await client.completions.create({ model: 'tiny', prompt: prompts, n: 2, max_tokens: 4, temperature: 0 });
    const refs = await Promise.all(
      prompts.map((p) => server.model.generate(p, { maxNewTokens: 4, temperature: 0 }).result),
    );
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r.choices.map((c) => c.text)).toEqual([refs[0]!.text, refs[0]!.text, refs[1]!.text, refs[1]!.text]);
    expect(r.usage!.prompt_tokens).toBe(refs[0]!.usage.promptTokens + refs[1]!.usage.promptTokens);
    expect(r.usage!.completion_tokens).toBe(2 * (refs[0]!.usage.completionTokens + refs[1]!.usage.completionTokens));
    const rec = await record(r.id);
    expect([rec.promptTokens, rec.completionTokens]).toEqual([r.usage!.prompt_tokens, r.usage!.completion_tokens]);
  });

  it('streams every choice by index, a finish chunk each, then one usage chunk equal to the ledger', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages,
      n: 2,
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text: string[] = ['', ''];
    const tokens: number[] = [0, 0];
    const finish: (string | null)[] = [null, null];
    let usage: any;
    let id = '';
    for await (const c of stream) {
      id = c.id;
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text[ch.index] += ch.delta.content ?? '';
        tokens[ch.index] = tokens[ch.index]! + (ch.logprobs?.content?.length ?? 0);
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
    }
    const ref = await server.model.generate({ messages }, { maxNewTokens: 5, temperature: 0 }).result;
    expect(text).toEqual([ref.text, ref.text]);
    expect(finish).toEqual([ref.finishReason, ref.finishReason]);
    expect(tokens).toEqual([ref.usage.completionTokens, ref.usage.completionTokens]);
    expect(usage.completion_tokens).toBe(2 * ref.usage.completionTokens);
    const rec = await record(id);
    expect([rec.promptTokens, rec.completionTokens]).toEqual([usage.prompt_tokens, usage.completion_tokens]);
  });

  it('refuses more choices than the server allows, naming n or prompt', async () => {
    const a = await client.chat.completions.create({ model: 'tiny', messages, n: 7 }).catch((e: unknown) => e);
    expect((a as any).param).toBe('n');
    const b = await client.completions
      .create({ model: 'tiny', prompt: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] })
      .catch((e: unknown) => e);
    expect((b as any).param).toBe('prompt');
  });
});
