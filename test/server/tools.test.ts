/* eslint-disable @typescript-eslint/no-explicit-any -- client responses are read as the clients return them */
/**
 * Tool calling and structured outputs through real clients (the openai SDK, LangChain, the AI SDK) against a
 * server whose model has Qwen 3's tokenizer and chat template (the Hermes tool-call format, rendered by the
 * template itself) and one with a template that knows no tools (the tools go in a system message). Every usage a
 * client saw equals its ledger record. Constrained cases (tool_choice required or named, response_format) produce
 * calls and documents that validate against their schemas even from a random-weight model.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel } from '../../src/modelgen/index.js';
import type { RunningServer } from '../../src/server/index.js';
import { ENGINE_CONSTRAINTS } from '../../src/server/structured.js';
import type { SqliteLedger, UsageRecord } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let qwen: RunningServer;
let plain: RunningServer;

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
};
const timeTool = {
  type: 'function' as const,
  function: {
    name: 'get_time',
    description: 'The time in a zone',
    parameters: {
      type: 'object',
      properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } },
      required: ['zone'],
      additionalProperties: false,
    },
  },
};

async function record(server: RunningServer, id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await (server.ledger as SqliteLedger).get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

const client = (s: RunningServer): OpenAI => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });

beforeAll(async () => {
  tmp = tempDir('server-tools');
  const qwenDir = path.join(tmp.dir, 'qwen', 'tiny'); // the model's name is its folder's
  await makeModel({ size: 'tiny', tokenizer: 'qwen3', out: qwenDir });
  qwen = await startTestServer({ model: qwenDir, ledger: `sqlite:${path.join(tmp.dir, 'qwen.db')}` });
  plain = await startTestServer({
    model: await makeChatTinyModel(tmp.dir),
    ledger: `sqlite:${path.join(tmp.dir, 'plain.db')}`,
  });
}, 120_000);

afterAll(async () => {
  await qwen?.close();
  await plain?.close();
  tmp?.cleanup();
});

describe('tools without constraints (auto, none, round trips)', () => {
  it('auto: the tools are rendered by the model template; the prompt is billed as rendered', async () => {
    const messages = [{ role: 'user' as const, content: 'Weather in Oslo?' }];
    const r = await client(qwen).chat.completions.create({
      model: 'tiny',
      messages,
      tools: [weatherTool, timeTool],
      max_tokens: 3,
      temperature: 0,
    });
    const rendered = qwen.model.tokenizer.countChat(messages, {
      tools: [weatherTool, timeTool],
      addGenerationPrompt: true,
    });
    expect(r.usage!.prompt_tokens).toBe(rendered);
    expect(rendered).toBeGreaterThan(qwen.model.tokenizer.countChat(messages, { addGenerationPrompt: true }));
    const rec = await record(qwen, r.id);
    expect([r.usage!.prompt_tokens, r.usage!.completion_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
  });

  it('a round trip: assistant tool_calls (arguments as JSON text) and tool results reach the template', async () => {
    const call = {
      id: 'call_abc',
      type: 'function' as const,
      function: { name: 'get_weather', arguments: '{"city":"Oslo","days":2}' },
    };
    const r = await client(qwen).chat.completions.create({
      model: 'tiny',
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: 'call_abc', content: '{"temp": 21}' },
      ],
      tools: [weatherTool],
      max_tokens: 3,
      temperature: 0,
    });
    // Qwen's template applies tojson to an arguments object, and renders the result as a user <tool_response>.
    const expected = qwen.model.tokenizer.applyChatTemplate(
      [
        { role: 'user', content: 'Weather in Oslo?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ ...call, function: { name: 'get_weather', arguments: { city: 'Oslo', days: 2 } } }],
        },
        { role: 'tool', tool_call_id: 'call_abc', content: '{"temp": 21}' },
      ],
      { tools: [weatherTool], addGenerationPrompt: true },
    );
    expect(expected).toContain(
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}\n</tool_call>',
    );
    expect(expected).toContain('<tool_response>\n{"temp": 21}\n</tool_response>');
    expect(r.usage!.prompt_tokens).toBe(qwen.model.tokenizer.count(expected, { addSpecialTokens: false }));
    // /tokenize counts the same chat as the generation billed it.
    const tok = await fetch(`${qwen.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: null, tool_calls: [call] },
          { role: 'tool', tool_call_id: 'call_abc', content: '{"temp": 21}' },
        ],
        tools: [weatherTool],
      }),
    });
    expect(((await tok.json()) as { count: number }).count).toBe(r.usage!.prompt_tokens);
    const rec = await record(qwen, r.id);
    expect(r.usage!.completion_tokens).toBe(rec.completionTokens);
  });

  it('a template without tool support gets the tools in a system message', async () => {
    const messages = [{ role: 'user' as const, content: 'Weather?' }];
    const withTools = await client(plain).chat.completions.create({
      model: 'tiny',
      messages,
      tools: [weatherTool],
      max_tokens: 2,
      temperature: 0,
    });
    const without = await client(plain).chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 2,
      temperature: 0,
    });
    expect(withTools.usage!.prompt_tokens).toBeGreaterThan(without.usage!.prompt_tokens + 50);
  });

  it('the Responses API takes function tools and function_call / function_call_output items', async () => {
    const r = await client(qwen).responses.create({
      model: 'tiny',
      input: [
        { role: 'user', content: 'Weather in Oslo?' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo","days":1}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
      ],
      tools: [{ type: 'function', ...weatherTool.function, strict: true }],
      max_output_tokens: 3,
      temperature: 0,
    });
    expect(r.tools).toHaveLength(1);
    const rec = await record(qwen, r.id);
    expect([r.usage!.input_tokens, r.usage!.output_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
  });
});

describe.skipIf(ENGINE_CONSTRAINTS)('before the engine can constrain output', () => {
  it('refuses what would change the output if ignored, naming the field', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const cases: [object, string][] = [
      [{ tools: [weatherTool], tool_choice: 'required' }, 'tool_choice'],
      [{ tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } } }, 'tool_choice'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ guided_regex: '[a-z]+' }, 'guided_regex'],
    ];
    for (const [extra, param] of cases) {
      const err = await client(qwen)
        .chat.completions.create({ model: 'tiny', messages, max_tokens: 2, ...(extra as any) })
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(extra)).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as any).param, JSON.stringify(extra)).toBe(param);
    }
  });
});
