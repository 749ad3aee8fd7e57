/**
 * Every sampler of the engine through the official `openai` client against a real server: OpenAI's
 * presence_penalty, frequency_penalty, seed and logit_bias, and vLLM's top-level top_k, min_p and repetition_penalty.
 * Each request's text equals the same generation run in-process with the library's option names, so the options
 * reach the engine (and are not silently dropped).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateOptions as ModelGenerateOptions } from '../../src/model/index.js';
import type { RunningServer } from '../../src/server/index.js';
import { makeChatTinyModel, startTestServer, tempDir } from './helpers.js';

const messages = [{ role: 'user' as const, content: 'Name three colours.' }];

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  tmp = tempDir('server-samplers');
  server = await startTestServer({ model: await makeChatTinyModel(tmp.dir) });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

async function inProcess(options: ModelGenerateOptions): Promise<string> {
  return (await server.model.generate({ messages }, options).result).text;
}

/** vLLM's extras are top-level fields of the body; the client sends fields it does not know as they are. */
type WithExtras = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & {
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
};

describe('samplers through the OpenAI client', () => {
  it('chat: every sampler reaches the engine', async () => {
    const body: WithExtras = {
      model: server.model.name,
      messages,
      max_tokens: 12,
      temperature: 1,
      seed: 11,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      logit_bias: {},
      top_k: 8,
      min_p: 0.01,
      repetition_penalty: 1.3,
    };
    const res = await client.chat.completions.create(body);
    expect(res.choices[0]!.message.content).toBe(
      await inProcess({
        maxNewTokens: 12,
        temperature: 1,
        seed: 11,
        presencePenalty: 0.5,
        frequencyPenalty: -0.25,
        topK: 8,
        minP: 0.01,
        repetitionPenalty: 1.3,
      }),
    );
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('completions and streaming take them too; top_k 1 samples the greedy text', async () => {
    const greedy = await inProcess({ maxNewTokens: 10, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: server.model.name,
      messages,
      max_tokens: 10,
      temperature: 1.5,
      seed: 5,
      stream: true,
      top_k: 1,
    } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(greedy);
    const penalised = await client.completions.create({
      model: server.model.name,
      prompt: 'Once upon a time',
      max_tokens: 10,
      temperature: 0,
      presence_penalty: 2,
      frequency_penalty: 2,
    });
    const want = await server.model.generate('Once upon a time', {
      maxNewTokens: 10,
      temperature: 0,
      presencePenalty: 2,
      frequencyPenalty: 2,
    }).result;
    expect(penalised.choices[0]!.text).toBe(want.text);
  });

  it('refuses out-of-range values by field name, and a logit bias on an id outside the vocabulary', async () => {
    const call = (extra: Record<string, unknown>) =>
      client.chat.completions
        .create({ model: server.model.name, messages, max_tokens: 1, ...extra } as WithExtras)
        .then(
          () => undefined,
          (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
        );
    const hot = await call({ temperature: 3 });
    expect(hot).toMatchObject({ status: 400, param: 'temperature', code: 'invalid_request' });
    expect(hot!.message).toContain("expected a number in [0, 2] for 'temperature', got 3");
    expect(await call({ presence_penalty: -2.5 })).toMatchObject({ status: 400, param: 'presence_penalty' });
    expect(await call({ top_k: 1.5 })).toMatchObject({ status: 400, param: 'top_k' });
    expect(await call({ logit_bias: { 5: 150 } })).toMatchObject({ status: 400, param: 'logit_bias.5' });
    const outside = await call({ logit_bias: { 5: 10, 99999999: 1 } });
    expect(outside).toMatchObject({ status: 400, param: 'logit_bias.99999999', code: 'invalid_request' });
    expect(outside!.message).toContain('token id 99999999 of');
  });
});
