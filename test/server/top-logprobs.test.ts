/**
 * Alternatives and logit bias through the official `openai` client against a real server (tiny model, real Meter
 * and SQLite ledger): chat `top_logprobs` and completions `logprobs` N in OpenAI's shapes, streamed and not; the
 * sampled token's log-probability equals its entry among the alternatives; greedy samples the first alternative;
 * `logit_bias` +100 forces a token and -100 on the greedy token changes the output; usage equals the ledger record.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import type { SqliteLedger } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir } from './helpers.js';

const messages = [{ role: 'user' as const, content: 'List some alternatives.' }];

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  tmp = tempDir('server-top-logprobs');
  server = await startTestServer({
    model: await makeChatTinyModel(tmp.dir),
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

/** The response's usage is the ledger record's. */
async function expectBilled(id: string, usage: OpenAI.CompletionUsage | undefined): Promise<void> {
  await server.meter.flush();
  const rec = await (server.ledger as SqliteLedger).get(id);
  expect(rec).toMatchObject({ promptTokens: usage!.prompt_tokens, completionTokens: usage!.completion_tokens });
}

const tokenCounts = (u: OpenAI.CompletionUsage | undefined) => [u?.prompt_tokens, u?.completion_tokens];

type Alt = { token: string; logprob: number; bytes: number[] | null };

/** An entry's alternatives: well-formed, most likely first, at most `n`. */
function checkAlternatives(alts: Alt[], n: number): void {
  expect(alts.length).toBeGreaterThan(0);
  expect(alts.length).toBeLessThanOrEqual(n);
  for (let i = 0; i < alts.length; i++) {
    expect(alts[i]!.logprob).toBeLessThanOrEqual(0);
    expect(alts[i]!.bytes).toEqual([...Buffer.from(alts[i]!.token, 'utf8')]);
    if (i > 0) expect(alts[i]!.logprob).toBeLessThanOrEqual(alts[i - 1]!.logprob);
  }
}

/** The sampled token's logprob is its alternative's, when it is listed (and its text names one alternative only). */
function sampledMatches(t: { token: string; logprob: number }, alts: Alt[]): boolean {
  const same = alts.filter((a) => a.token === t.token);
  if (same.length !== 1) return false;
  expect(same[0]!.logprob).toBe(t.logprob);
  return true;
}

describe('chat top_logprobs', () => {
  it('greedy: N alternatives per token in OpenAI shape, the sampled token first; streamed the same', async () => {
    const body = { model: 'tiny', messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 5 };
    const r = await client.chat.completions.create(body);
    const content = r.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(r.usage!.completion_tokens);
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(5);
      checkAlternatives(t.top_logprobs, 5);
      expect(t.top_logprobs[0]!.token).toBe(t.token);
      expect(t.top_logprobs[0]!.logprob).toBe(t.logprob);
    }
    await expectBilled(r.id, r.usage);
    // The alternatives change nothing about what is generated or billed.
    const plain = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, temperature: 0 });
    expect(r.choices[0]!.message.content).toBe(plain.choices[0]!.message.content);
    expect(tokenCounts(r.usage)).toEqual(tokenCounts(plain.usage));

    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    const streamed: typeof content = [];
    let usage: OpenAI.CompletionUsage | undefined;
    let id = '';
    for await (const c of stream) {
      id = c.id;
      streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
      if (c.usage) usage = c.usage;
    }
    // The same tokens and alternatives (a streamed run may reuse the prompt's KV: the numbers agree to rounding).
    expect(streamed.map((t) => [t.token, t.top_logprobs.map((a) => a.token)])).toEqual(
      content.map((t) => [t.token, t.top_logprobs.map((a) => a.token)]),
    );
    streamed.forEach((t, i) => {
      expect(t.logprob).toBeCloseTo(content[i]!.logprob, 4);
      expect(t.top_logprobs[0]!.logprob).toBe(t.logprob);
    });
    expect(tokenCounts(usage)).toEqual(tokenCounts(r.usage));
    await expectBilled(id, usage);
  });

  it('sampling: the sampled token, when among the alternatives, has their log-probability', async () => {
    // top_k 5 keeps the draw among the 5 most likely raw tokens, so each sampled token is among the 20 listed.
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 16,
      temperature: 1.5,
      seed: 3,
      logprobs: true,
      top_logprobs: 20,
      top_k: 5,
    } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    const content = r.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(r.usage!.completion_tokens);
    let matched = 0;
    for (const t of content) {
      checkAlternatives(t.top_logprobs, 20);
      if (sampledMatches(t, t.top_logprobs)) matched++;
      else expect(t.logprob).toBeLessThanOrEqual(t.top_logprobs.at(-1)!.logprob);
    }
    // Every one, but for a token whose text two alternatives share.
    expect(matched).toBeGreaterThanOrEqual(content.length - 1);
  });

  it('top_logprobs needs logprobs and is at most 20', async () => {
    for (const [extra, message] of [
      [{ top_logprobs: 2 }, "'top_logprobs' needs 'logprobs': true"],
      [{ logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
    ] as const) {
      const err = await client.chat.completions
        .create({ model: 'tiny', messages, max_tokens: 1, ...extra })
        .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ param: 'top_logprobs' });
      expect((err as Error).message).toContain(message);
    }
  });
});

describe('completions logprobs N', () => {
  it('lists N alternatives per token plus the sampled one, with tokens, token_logprobs and text_offset', async () => {
    const body = { model: 'tiny', prompt: 'Once upon', max_tokens: 8, temperature: 1, seed: 5, logprobs: 3 };
    const r = await client.completions.create(body);
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(r.usage!.completion_tokens);
    let offset = 0;
    lp.tokens!.forEach((t, i) => {
      expect(lp.text_offset![i]).toBe(offset);
      offset += t.length;
      const top = lp.top_logprobs![i]!;
      // The sampled token is always listed, with its own log-probability (OpenAI: up to logprobs + 1 entries).
      expect(top[t]).toBe(lp.token_logprobs![i]);
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(4);
      for (const v of Object.values(top)) expect(v).toBeLessThanOrEqual(0);
    });
    await expectBilled(r.id, r.usage);

    const stream = await client.completions.create({ ...body, stream: true });
    const tokens: string[] = [];
    const tops: Record<string, number>[] = [];
    const offsets: number[] = [];
    for await (const c of stream) {
      const l = c.choices[0]?.logprobs;
      if (!l) continue;
      tokens.push(...l.tokens!);
      tops.push(...l.top_logprobs!);
      offsets.push(...l.text_offset!);
    }
    expect(tokens).toEqual(lp.tokens);
    expect(offsets).toEqual(lp.text_offset);
    expect(tops.map((t) => Object.keys(t).sort())).toEqual(lp.top_logprobs!.map((t) => Object.keys(t).sort()));
    tops.forEach((t, i) => {
      for (const [k, v] of Object.entries(t)) expect(v).toBeCloseTo(lp.top_logprobs![i]![k]!, 4);
    });
  });
});

describe('several choices', () => {
  it('n = 2: each choice lists its own alternatives, and the bias applies to both', async () => {
    const forced = server.model.tokenizer.encode('sky', { addSpecialTokens: false })[0]!;
    const r = await client.completions.create({
      model: 'tiny',
      prompt: 'Once upon',
      max_tokens: 3,
      temperature: 1,
      seed: 2,
      n: 2,
      logprobs: 2,
      logit_bias: { [forced]: 100 },
    });
    expect(r.choices).toHaveLength(2);
    const text = server.model.tokenizer.decode([forced], { skipSpecialTokens: false });
    for (const c of r.choices) {
      expect(c.logprobs!.tokens).toEqual([text, text, text]);
      for (const [i, top] of c.logprobs!.top_logprobs!.entries()) {
        expect(top[text]).toBe(c.logprobs!.token_logprobs![i]);
        expect(Object.keys(top).length).toBeLessThanOrEqual(3);
      }
    }
    expect(r.usage!.completion_tokens).toBe(6);
    await expectBilled(r.id, r.usage);
  });
});

describe('logit_bias', () => {
  const tokenizer = () => server.model.tokenizer;

  it('+100 on a token forces it; -100 on the greedy token changes the output', async () => {
    const forced = tokenizer().encode('hello', { addSpecialTokens: false })[0]!;
    const text = tokenizer().decode([forced], { skipSpecialTokens: false });
    const r = await client.completions.create({
      model: 'tiny',
      prompt: 'Once upon',
      max_tokens: 5,
      temperature: 0,
      logprobs: 0,
      logit_bias: { [forced]: 100 },
    });
    expect(r.usage!.completion_tokens).toBe(5);
    expect(r.choices[0]!.logprobs!.tokens).toEqual(Array(5).fill(text));
    expect(r.choices[0]!.text).toBe(tokenizer().decode(Array(5).fill(forced)));
    await expectBilled(r.id, r.usage);

    const greedy = await server.model.generate('Once upon', { maxNewTokens: 1, temperature: 0 }).result;
    const banned = greedy.tokens[0]!;
    const plain = await client.completions.create({
      model: 'tiny',
      prompt: 'Once upon',
      max_tokens: 1,
      temperature: 0,
    });
    const biased = await client.completions.create({
      model: 'tiny',
      prompt: 'Once upon',
      max_tokens: 1,
      temperature: 0,
      logit_bias: { [banned]: -100 },
    });
    const inProcess = await server.model.generate('Once upon', {
      maxNewTokens: 1,
      temperature: 0,
      logitBias: { [banned]: -100 },
    }).result;
    expect(inProcess.tokens[0]).not.toBe(banned);
    expect(plain.choices[0]!.text).toBe(greedy.text);
    expect(biased.choices[0]!.text).toBe(inProcess.text);
    expect(tokenCounts(biased.usage)).toEqual(tokenCounts(plain.usage));
  });

  it('chat: the bias reaches the engine, streamed too', async () => {
    const forced = tokenizer().encode('blue', { addSpecialTokens: false })[0]!;
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 3,
      temperature: 0.8,
      seed: 1,
      logit_bias: { [forced]: 100 },
      stream: true,
    });
    let out = '';
    for await (const c of stream) out += c.choices[0]?.delta?.content ?? '';
    expect(out).toBe(tokenizer().decode(Array(3).fill(forced)));
  });
});

describe('responses top_logprobs', () => {
  it('include message.output_text.logprobs lists each token with its alternatives, streamed and not', async () => {
    const body = {
      model: 'tiny',
      input: 'Name a colour.',
      max_output_tokens: 6,
      temperature: 0,
      include: ['message.output_text.logprobs' as const],
      top_logprobs: 3,
    };
    const r = await client.responses.create(body);
    expect(r.top_logprobs).toBe(3);
    const part = (r.output[0] as OpenAI.Responses.ResponseOutputMessage)
      .content[0] as OpenAI.Responses.ResponseOutputText;
    const lps = part.logprobs!;
    expect(lps).toHaveLength(r.usage!.output_tokens);
    for (const t of lps) {
      expect(t.top_logprobs).toHaveLength(3);
      checkAlternatives(t.top_logprobs as Alt[], 3);
      expect(t.top_logprobs[0]).toMatchObject({ token: t.token, logprob: t.logprob });
    }
    await expectBilled(r.id, {
      prompt_tokens: r.usage!.input_tokens,
      completion_tokens: r.usage!.output_tokens,
    } as OpenAI.CompletionUsage);

    const stream = await client.responses.create({ ...body, stream: true });
    const deltas: typeof lps = [];
    let done: typeof lps = [];
    for await (const e of stream) {
      if (e.type === 'response.output_text.delta') deltas.push(...(e.logprobs as typeof lps));
      if (e.type === 'response.output_text.done') done = e.logprobs as typeof lps;
    }
    expect(deltas.map((t) => t.token)).toEqual(lps.map((t) => t.token));
    expect(done).toEqual(deltas);
    // Without include nor top_logprobs: no log-probabilities.
    const plain = await client.responses.create({ model: 'tiny', input: 'Name a colour.', max_output_tokens: 2 });
    expect(
      ((plain.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText)
        .logprobs,
    ).toEqual([]);
    const err = await client.responses
      .create({ model: 'tiny', input: 'x', include: ['reasoning.encrypted_content'] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, param: 'include[0]' });
  });
});
