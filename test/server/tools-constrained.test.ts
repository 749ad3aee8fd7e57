/* eslint-disable @typescript-eslint/no-explicit-any -- client responses are read as the clients return them */
/**
 * Constrained tool calls and structured outputs through real clients, from a random-weight model with Qwen 3's
 * tokenizer and chat template: `tool_choice` required / named, `response_format` json_schema (strict), streamed
 * calls, the Responses API's function_call items and text.format, LangChain's withStructuredOutput (functionCalling,
 * jsonSchema, jsonMode) and bindTools (a tool round trip; streamed), the AI SDK's generateObject, streamObject and
 * tools with toolChoice 'required' (generateText, streamText). Every call's arguments and every document validate
 * against their schema (ajv), and every usage a client saw equals its ledger record.
 */
import path from 'node:path';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel } from '../../src/modelgen/index.js';
import type { RunningServer } from '../../src/server/index.js';
import { ENGINE_CONSTRAINTS } from '../../src/server/structured.js';
import type { SqliteLedger, UsageRecord } from '../../src/usage/index.js';
import { startTestServer, tempDir } from './helpers.js';

const ai = await import('ai');
const compatible = await import('@ai-sdk/openai-compatible');
const langchain = await import('@langchain/openai');
const lcMessages = await import('@langchain/core/messages');

const weather = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
const time = {
  type: 'object',
  properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } },
  required: ['zone'],
  additionalProperties: false,
};
const person = {
  title: 'person',
  description: 'A person',
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 10 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, maxItems: 3 },
  },
  required: ['name', 'age', 'tags'],
  additionalProperties: false,
};
const SCHEMAS: Record<string, object> = { get_weather: weather, get_time: time };
const tools = [
  { type: 'function' as const, function: { name: 'get_weather', description: 'Weather', parameters: weather } },
  { type: 'function' as const, function: { name: 'get_time', description: 'Time', parameters: time } },
];

const ajv = new Ajv();
function expectValid(schema: object, value: unknown): void {
  const validate = ajv.compile(schema);
  expect(validate(value), `${JSON.stringify(value)}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

function expectCalls(calls: { id?: string; function: { name: string; arguments: string } }[]): void {
  expect(calls.length).toBeGreaterThan(0);
  for (const c of calls) {
    if (c.id !== undefined) expect(c.id).toMatch(/^call_/);
    expect(Object.keys(SCHEMAS)).toContain(c.function.name);
    expectValid(SCHEMAS[c.function.name]!, JSON.parse(c.function.arguments));
  }
}

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;
let lastId = '';
const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  lastId = res.headers.get('x-request-id') ?? '';
  return res;
};

async function record(id: string): Promise<UsageRecord> {
  await server.meter.flush();
  const r = await (server.ledger as SqliteLedger).get(id);
  if (!r) throw new Error(`no ledger record for ${id}`);
  return r;
}

const client = (): OpenAI => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [{ role: 'user' as const, content: 'Weather in Oslo for two days, and the time?' }];

describe.skipIf(!ENGINE_CONSTRAINTS)('constrained output', () => {
  beforeAll(async () => {
    tmp = tempDir('server-tools-constrained');
    const dir = path.join(tmp.dir, 'qwen', 'tiny');
    await makeModel({ size: 'tiny', tokenizer: 'qwen3', out: dir });
    server = await startTestServer({ model: dir, ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}` });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    tmp?.cleanup();
  });

  describe('openai SDK', () => {
    it('response_format json_schema (strict): the content validates', async () => {
      for (const seed of [1, 2, 3]) {
        const r = await client().chat.completions.create({
          model: 'tiny',
          messages,
          response_format: { type: 'json_schema', json_schema: { name: 'person', schema: person, strict: true } },
          max_tokens: 200,
          seed,
        });
        expect(r.choices[0]!.finish_reason).toBe('stop');
        expectValid(person, JSON.parse(r.choices[0]!.message.content!));
        const rec = await record(r.id);
        expect([r.usage!.prompt_tokens, r.usage!.completion_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
      }
    });

    it('a schema the engine cannot enforce is a 400 naming the field', async () => {
      const err = await client()
        .chat.completions.create({
          model: 'tiny',
          messages,
          response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { not: { type: 'string' } } } },
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as any).param).toBe('response_format');
      expect((err as any).code).toBe('unsupported_parameter');
    });

    it('tool_choice required: calls of the tools whose arguments validate; finish_reason tool_calls', async () => {
      for (const seed of [1, 2, 3]) {
        const r = await client().chat.completions.create({
          model: 'tiny',
          messages,
          tools,
          tool_choice: 'required',
          max_tokens: 300,
          seed,
        });
        const c = r.choices[0]!;
        expect(c.finish_reason).toBe('tool_calls');
        expect(c.message.content).toBeNull();
        expectCalls(c.message.tool_calls as any);
        const rec = await record(r.id);
        expect([r.usage!.prompt_tokens, r.usage!.completion_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
      }
    });

    it('a named function: one call of it; then a round trip with its result', async () => {
      const r = await client().chat.completions.create({
        model: 'tiny',
        messages,
        tools,
        tool_choice: { type: 'function', function: { name: 'get_time' } },
        max_tokens: 100,
        seed: 4,
      });
      const calls = r.choices[0]!.message.tool_calls as any[];
      expect(calls).toHaveLength(1);
      expect(calls[0].function.name).toBe('get_time');
      expectCalls(calls);
      const next = await client().chat.completions.create({
        model: 'tiny',
        messages: [
          ...messages,
          r.choices[0]!.message as any,
          { role: 'tool', tool_call_id: calls[0].id, content: '12:00' },
        ],
        tools,
        max_tokens: 4,
        seed: 4,
      });
      const rec = await record(next.id);
      expect(next.usage!.prompt_tokens).toBe(rec.promptTokens);
    });

    it('streaming: delta.tool_calls assemble into calls that validate; the usage chunk equals the ledger', async () => {
      const stream = await client().chat.completions.create({
        model: 'tiny',
        messages,
        tools,
        tool_choice: 'required',
        max_tokens: 300,
        seed: 5,
        stream: true,
        stream_options: { include_usage: true },
      });
      const calls: { id?: string; function: { name: string; arguments: string } }[] = [];
      let finish: string | null = null;
      let usage: any;
      let id = '';
      for await (const chunk of stream) {
        id = chunk.id;
        if (chunk.usage) usage = chunk.usage;
        const ch = chunk.choices[0];
        if (!ch) continue;
        if (ch.finish_reason) finish = ch.finish_reason;
        for (const d of ch.delta.tool_calls ?? []) {
          calls[d.index] ??= { function: { name: '', arguments: '' } };
          if (d.id) calls[d.index]!.id = d.id;
          if (d.function?.name) calls[d.index]!.function.name += d.function.name;
          if (d.function?.arguments) calls[d.index]!.function.arguments += d.function.arguments;
        }
      }
      expect(finish).toBe('tool_calls');
      expectCalls(calls);
      const rec = await record(id);
      expect([usage.prompt_tokens, usage.completion_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
    });

    it('the Responses API: function_call items for required tools, and text.format json_schema', async () => {
      const r = await client().responses.create({
        model: 'tiny',
        input: messages[0]!.content,
        tools: tools.map((t) => ({ type: 'function' as const, ...t.function, strict: true })),
        tool_choice: 'required',
        max_output_tokens: 300,
      });
      const items = r.output.filter((o: any) => o.type === 'function_call') as any[];
      expectCalls(items.map((i) => ({ id: i.call_id, function: { name: i.name, arguments: i.arguments } })));
      const rec = await record(r.id);
      expect([r.usage!.input_tokens, r.usage!.output_tokens]).toEqual([rec.promptTokens, rec.completionTokens]);
      const s = await client().responses.create({
        model: 'tiny',
        input: 'A person, please',
        text: { format: { type: 'json_schema', name: 'person', schema: person, strict: true } },
        max_output_tokens: 200,
      });
      expectValid(person, JSON.parse(s.output_text));
    });
  });

  describe('LangChain', () => {
    /** `seed`: a seeded request samples the same output on every run. */
    const chat = (seed?: number): any =>
      new langchain.ChatOpenAI({
        model: 'tiny',
        apiKey: 'unused',
        maxTokens: 300,
        ...(seed === undefined ? {} : { modelKwargs: { seed } }),
        configuration: { baseURL: `${server.url}/v1`, fetch: recordingFetch },
      });

    for (const method of ['functionCalling', 'jsonSchema'] as const) {
      it(`withStructuredOutput (${method}): the object validates; usage equals the ledger`, async () => {
        const r = await chat().withStructuredOutput(person, { method, includeRaw: true }).invoke('A person, please');
        expectValid(person, r.parsed);
        const rec = await record(lastId);
        expect([r.raw.usage_metadata.input_tokens, r.raw.usage_metadata.output_tokens]).toEqual([
          rec.promptTokens,
          rec.completionTokens,
        ]);
      });
    }

    it('withStructuredOutput (jsonMode): response_format json_object, a JSON object; usage equals the ledger', async () => {
      // jsonMode asks for a JSON object, not for the schema: the object is all it is held to. A random-weight model
      // under the json_object grammar often writes on to max_tokens; this seed closes its object.
      const r = await chat(8)
        .withStructuredOutput(person, { method: 'jsonMode', includeRaw: true })
        .invoke('A person as JSON, please');
      expect(r.parsed).toBeTypeOf('object');
      expect(Array.isArray(r.parsed)).toBe(false);
      expect(r.raw.response_metadata.finish_reason).toBe('stop');
      const rec = await record(lastId);
      expect([r.raw.usage_metadata.input_tokens, r.raw.usage_metadata.output_tokens]).toEqual([
        rec.promptTokens,
        rec.completionTokens,
      ]);
    });

    it('bindTools round trip: the model calls a tool, a ToolMessage goes back, the model answers; usage equals the ledger', async () => {
      const bound = chat().bindTools(tools, { tool_choice: 'required' });
      const history = [new lcMessages.HumanMessage(messages[0]!.content)];
      const first = await bound.invoke(history);
      expect(first.tool_calls.length).toBeGreaterThan(0);
      for (const c of first.tool_calls) expectValid(SCHEMAS[c.name]!, c.args);
      let rec = await record(lastId);
      expect([first.usage_metadata.input_tokens, first.usage_metadata.output_tokens]).toEqual([
        rec.promptTokens,
        rec.completionTokens,
      ]);
      const results = first.tool_calls.map(
        (c: any) => new lcMessages.ToolMessage({ content: '{"ok": true}', tool_call_id: c.id }),
      );
      // The answer: tools still offered, but the model must answer in text (tool_choice none).
      const second = await chat()
        .bindTools(tools, { tool_choice: 'none' })
        .invoke([...history, first, ...results], { max_tokens: 12 });
      expect(second.tool_calls).toEqual([]);
      expect(typeof second.content).toBe('string');
      rec = await record(lastId);
      expect([second.usage_metadata.input_tokens, second.usage_metadata.output_tokens]).toEqual([
        rec.promptTokens,
        rec.completionTokens,
      ]);
      // The prompt billed is the history the template rendered: longer than the first turn's.
      expect(second.usage_metadata.input_tokens).toBeGreaterThan(first.usage_metadata.input_tokens);
    });

    it('bindTools streamed: tool_call_chunks concatenate into calls that validate', async () => {
      const bound = chat(5).bindTools(tools, { tool_choice: 'required' });
      let all: any;
      let pieces = 0;
      for await (const chunk of await bound.stream(messages[0]!.content)) {
        pieces += (chunk.tool_call_chunks ?? []).filter((c: any) => c.args).length;
        all = all ? all.concat(chunk) : chunk;
      }
      expect(all.tool_calls.length).toBeGreaterThan(0);
      for (const c of all.tool_calls) expectValid(SCHEMAS[c.name]!, c.args);
      // The arguments came in more pieces than there are calls.
      expect(pieces).toBeGreaterThan(all.tool_calls.length);
    });
  });

  describe('AI SDK (@ai-sdk/openai-compatible)', () => {
    /** `includeUsage`: streams ask for the usage chunk (stream_options.include_usage). */
    const model = (includeUsage = false): any =>
      compatible.createOpenAICompatible({
        name: 'tokmeter',
        baseURL: `${server.url}/v1`,
        supportsStructuredOutputs: true,
        includeUsage,
      })('tiny');

    it('generateObject: the object validates; usage equals the ledger', async () => {
      const r = await ai.generateObject({
        model: model(),
        schema: ai.jsonSchema(person as any),
        prompt: 'A person, please',
        maxOutputTokens: 200,
      });
      expectValid(person, r.object);
      const rec = await record(r.response.id);
      expect([r.usage.inputTokens, r.usage.outputTokens]).toEqual([rec.promptTokens, rec.completionTokens]);
    });

    it('streamObject: the object validates; the usage (include_usage) equals the ledger', async () => {
      const r = ai.streamObject({
        model: model(true),
        schema: ai.jsonSchema(person as any),
        prompt: 'A person, please',
        maxOutputTokens: 200,
      });
      let partials = 0;
      for await (const _ of r.partialObjectStream) partials++;
      expect(partials).toBeGreaterThan(1);
      expectValid(person, await r.object);
      const usage = await r.usage;
      const rec = await record((await r.response).id);
      expect([usage.inputTokens, usage.outputTokens]).toEqual([rec.promptTokens, rec.completionTokens]);
    });

    const aiTools = (): any => ({
      get_weather: ai.tool({ description: 'Weather', inputSchema: ai.jsonSchema(weather as any) }),
      get_time: ai.tool({ description: 'Time', inputSchema: ai.jsonSchema(time as any) }),
    });

    it("tools with toolChoice 'required': the calls' inputs validate; usage equals the ledger", async () => {
      const r = await ai.generateText({
        model: model(),
        prompt: messages[0]!.content,
        tools: aiTools(),
        toolChoice: 'required',
        maxOutputTokens: 300,
      });
      expect(r.toolCalls.length).toBeGreaterThan(0);
      for (const c of r.toolCalls as any[]) expectValid(SCHEMAS[c.toolName]!, c.input);
      const rec = await record(r.response.id);
      expect([r.usage.inputTokens, r.usage.outputTokens]).toEqual([rec.promptTokens, rec.completionTokens]);
    });

    it('streamText with tools: input deltas assemble into inputs that validate; usage equals the ledger', async () => {
      const r = ai.streamText({
        model: model(true),
        prompt: messages[0]!.content,
        tools: aiTools(),
        toolChoice: 'required',
        maxOutputTokens: 300,
        seed: 5,
      });
      const deltas = new Map<string, string[]>();
      for await (const p of r.fullStream as AsyncIterable<any>) {
        if (p.type === 'tool-input-delta') deltas.set(p.id, [...(deltas.get(p.id) ?? []), p.delta]);
      }
      const calls = (await r.toolCalls) as any[];
      expect(calls.length).toBeGreaterThan(0);
      for (const c of calls) {
        expectValid(SCHEMAS[c.toolName]!, c.input);
        const pieces = deltas.get(c.toolCallId) ?? [];
        expect(pieces.length).toBeGreaterThan(1);
        expect(JSON.parse(pieces.join(''))).toEqual(c.input);
      }
      expect(await r.finishReason).toBe('tool-calls');
      const usage = await r.usage;
      const rec = await record((await r.response).id);
      expect([usage.inputTokens, usage.outputTokens]).toEqual([rec.promptTokens, rec.completionTokens]);
    });
  });
});
