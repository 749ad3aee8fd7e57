/**
 * Calls streamed as the model writes them: the JSON reader against JSON.parse + JSON.stringify for every way of
 * cutting a text, and each family's stream sending a call's name as soon as its arguments begin and its arguments in
 * pieces before the call ends, adding up to the whole-output parse.
 */
import { describe, expect, it } from 'vitest';
import { JsonValueReader } from '../../src/tools/json-stream.js';
import {
  deepseekV3,
  hermes,
  llama3Json,
  ToolCallStream,
  type ToolCallFormat,
  type ToolStreamEvent,
} from '../../src/tools/index.js';

/** The reader's text for `chunks`, and where it stopped in the last chunk. */
function read(chunks: string[]): { out: string; r: JsonValueReader; stop: number } {
  const r = new JsonValueReader();
  let out = '';
  let stop = 0;
  for (const c of chunks) {
    stop = r.push(c);
    out += r.take();
  }
  return { out, r, stop };
}

const cuts = (text: string): string[][] => {
  const all: string[][] = [[...text]];
  for (let i = 0; i <= text.length; i++) all.push([text.slice(0, i), text.slice(i)]);
  return all;
};

describe('JsonValueReader', () => {
  const texts = [
    '{"city": "Paris {north}", "days": 3}',
    ' { "a" : [ 1 , 2.50 , -0 , 1e2 , 1E400, 0.1e-3 ] , "b" : { } , "c" : [ ] }',
    '{"s": "caf\\u00e9 \\/ \\"q\\" \\\\ \\n\\t\\u0001 \\ud83d\\ude00 😀 \\ud800x \\udc00"}',
    '{"t": true, "f": false, "n": null, "nested": [[{"k": "v"}]]}',
    '[1, "two", {"three": 3}]',
    '"just a string"',
  ];

  it('writes what JSON.stringify(JSON.parse(text)) writes, for every way of cutting the text', () => {
    for (const t of texts) {
      const want = JSON.stringify(JSON.parse(t));
      for (const chunks of cuts(t)) {
        const { out, r } = read(chunks);
        expect(r.done, t).toBe(true);
        expect(out).toBe(want);
      }
    }
  });

  it('stops just past the value; what follows is not read', () => {
    const { out, stop, r } = read(['{"a": 1}\n</tool_call>']);
    expect([out, stop, r.done]).toEqual(['{"a":1}', 8, true]);
  });

  it('fails at the first character that cannot continue a JSON text, having written only a valid prefix', () => {
    for (const [t, prefix] of [
      ['{"a" 1}', '{"a"'],
      ['{"a": 01}', '{"a":'],
      ['{"a": tru e}', '{"a":'],
      ['["a",]', '["a",'],
      ['{"a": "\u0001"}', '{"a":"'],
      ['{"a": "\\x"}', '{"a":"'],
      ['{"a": 1,}', '{"a":1,'],
    ] as const) {
      const { out, r } = read([...t]);
      expect(r.failed, t).toBe(true);
      expect(out).toBe(prefix);
    }
  });
});

function run(format: ToolCallFormat, chunks: string[]): ToolStreamEvent[][] {
  let n = 0;
  const s = new ToolCallStream(format, () => `call_${n++}`);
  return [...chunks.map((c) => s.push(c)), s.end()];
}

/** Per chunk: the arguments text sent while that chunk was read. */
const argsPerChunk = (events: ToolStreamEvent[][]): string[] =>
  events.map((es) => es.map((e) => (e.kind === 'arguments' ? e.text : '')).join(''));

describe('arguments in pieces', () => {
  const families: [string, ToolCallFormat, string[]][] = [
    [
      'Hermes',
      hermes,
      [
        'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"ci',
        'ty": "Pa',
        'ris", "days": 3',
        '}}\n</tool_call>',
      ],
    ],
    ['Llama 3.1', llama3Json, ['{"name": "get_weather", "parameters": {"ci', 'ty": "Pa', 'ris", "days": 3', '}}']],
    [
      'DeepSeek-V3',
      deepseekV3,
      [
        'Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"ci',
        'ty": "Pa',
        'ris", "days": 3',
        '}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
      ],
    ],
  ];

  for (const [family, format, chunks] of families) {
    it(`${family}: the call starts with its name, its arguments come chunk by chunk`, () => {
      const events = run(format, chunks);
      const first = events[0]!.find((e) => e.kind === 'call');
      expect(first).toEqual({ kind: 'call', index: 0, id: 'call_0', name: 'get_weather' });
      // A number is sent once it ends (its canonical text may differ from what was written so far).
      expect(argsPerChunk(events)).toEqual(['{"ci', 'ty":"Pa', 'ris","days":', '3}', '']);
      const done = events.flat().filter((e) => e.kind === 'done');
      expect(done).toEqual([
        {
          kind: 'done',
          index: 0,
          complete: true,
          call: {
            id: 'call_0',
            type: 'function',
            function: { name: 'get_weather', arguments: format.parse(chunks.join('')).calls[0]!.arguments },
          },
        },
      ]);
    });

    it(`${family}: an output cut inside the arguments ends the call incomplete`, () => {
      const events = run(format, chunks.slice(0, 2)).flat();
      expect(events.filter((e) => e.kind === 'call')).toHaveLength(1);
      expect(events.at(-1)).toMatchObject({
        kind: 'done',
        complete: false,
        call: { function: { arguments: '{"city":"Pa' } },
      });
    });
  }

  it('several calls: each its own index, in order', () => {
    const text =
      '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>';
    const events = run(hermes, [...text]).flat();
    expect(events.filter((e) => e.kind !== 'content').map((e) => [e.kind, e.index])).toEqual([
      ['call', 0],
      ['arguments', 0],
      ['arguments', 0],
      ['arguments', 0],
      ['arguments', 0],
      ['arguments', 0],
      ['arguments', 0],
      ['done', 0],
      ['call', 1],
      ['arguments', 1],
      ['arguments', 1],
      ['done', 1],
    ]);
    expect(events.some((e) => e.kind === 'content')).toBe(false);
  });

  it('Hermes: arguments as JSON text in a string, and arguments written before the name, as the whole parse', () => {
    for (const text of [
      '<tool_call>\n{"name": "a", "arguments": "{\\"x\\": [1, 2]}"}\n</tool_call>',
      '<tool_call>\n{"arguments": {"x": 1}, "name": "a"}\n</tool_call>',
      '<tool_call>\n{"name": "a", "arguments": null, "parameters": {"x": 1}}\n</tool_call>',
    ]) {
      const whole = hermes.parse(text);
      for (const chunks of cuts(text)) {
        const events = run(hermes, chunks).flat();
        const args = events.map((e) => (e.kind === 'arguments' ? e.text : '')).join('');
        expect(args).toBe(whole.calls[0]!.arguments);
        expect(events.filter((e) => e.kind === 'call').map((e) => e.kind === 'call' && e.name)).toEqual(['a']);
      }
    }
  });

  it('Hermes: a block that is no call is text up to its </tool_call>, a <tool_call> inside it included', () => {
    const text = 'x <tool_call>{"nam <tool_call>{"name": "a", "arguments": {}}</tool_call> y';
    expect(hermes.parse(text)).toEqual({ content: text, calls: [] });
    for (const chunks of cuts(text)) {
      const events = run(hermes, chunks).flat();
      expect(events.every((e) => e.kind === 'content')).toBe(true);
      expect(events.map((e) => (e.kind === 'content' ? e.text : '')).join('')).toBe(text);
    }
  });
});
