/**
 * Structured outputs (native/grammar through the engine): with a constraint, every generation that finishes with
 * 'stop' is a complete document of the spec — random-weight models at temperature 1, so the grammar does the work.
 * Documents are validated with ajv. Batched constrained and unconstrained generations equal their solo runs with
 * the same seed; compile errors are typed (GrammarError with code, pointer and keyword); usage counts every token.
 * Both vocabulary spellings the engine reads are covered: SentencePiece with byte fallback (Llama 2) and byte-level
 * BPE (Llama 3).
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrammarError, Model, type ConstraintSpec, type GenerationResult } from '../../src/model/index.js';
import { TokmeterTypeError } from '../../src/errors.js';
import { same } from './batch-helpers.js';
import { makeTestModel, tempDir } from './helpers.js';

// ajv through ajv-formats, so that both come from one install.
const require = createRequire(import.meta.url);
const requireAjv = createRequire(require.resolve('ajv-formats'));
type Validate = ((data: unknown) => boolean) & { errors?: unknown };
const Ajv = (requireAjv('ajv') as { default: new (o: object) => { compile: (s: unknown) => Validate } }).default;
const addFormats = (require('ajv-formats') as { default: (a: unknown) => void }).default;
const ajv = new Ajv({ strict: false });
addFormats(ajv);

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 6 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    role: { enum: ['admin', 'user', 'guest'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 2 },
    ok: { type: 'boolean' },
  },
  required: ['name', 'role'],
  additionalProperties: false,
} as const;

let root: { dir: string; cleanup: () => void };
let sp: Model; // Llama 2 tokenizer (SentencePiece, byte fallback)
let bl: Model; // Llama 3 tokenizer (byte-level BPE)
let solo: Model;

beforeAll(async () => {
  root = tempDir('constraint');
  const spDir = await makeTestModel(root.dir, 'tiny');
  const blDir = await makeTestModel(root.dir, 'tiny-llama3', { tokenizer: 'llama3' });
  sp = await Model.load(spDir, { threads: 1, maxBatch: 8 });
  solo = await Model.load(spDir, { threads: 1, maxBatch: 1 });
  bl = await Model.load(blDir, { threads: 1, maxBatch: 4 });
}, 120_000);
afterAll(async () => {
  await sp?.dispose();
  await solo?.dispose();
  await bl?.dispose();
  root?.cleanup();
});

async function sample(m: Model, constraint: ConstraintSpec, seeds: number): Promise<GenerationResult[]> {
  const runs = [];
  for (let seed = 1; seed <= seeds; seed++) {
    runs.push(m.generate('Answer in JSON:', { constraint, temperature: 1, seed, maxNewTokens: 160 }).result);
  }
  return Promise.all(runs);
}

describe('json_schema', () => {
  for (const [name, model] of [
    ['SentencePiece vocabulary', () => sp],
    ['byte-level vocabulary', () => bl],
  ] as const) {
    it(`finished outputs parse and validate (${name})`, async () => {
      const validate = ajv.compile(SCHEMA);
      const results = await sample(model(), { type: 'json_schema', schema: SCHEMA }, 12);
      const stopped = results.filter((r) => r.finishReason === 'stop');
      expect(stopped.length).toBeGreaterThan(0);
      for (const r of stopped) {
        const doc: unknown = JSON.parse(r.text);
        if (!validate(doc)) throw new Error(`invalid: ${r.text} ${JSON.stringify(validate.errors)}`);
      }
      for (const r of results) {
        // Usage counts every sampled token, the EOS included.
        expect(r.usage.completionTokens).toBe(r.tokens.length);
      }
    }, 60_000);
  }

  it('json_object gives a JSON object; choice and regex give their language', async () => {
    for (const r of await sample(sp, { type: 'json_object' }, 6)) {
      if (r.finishReason !== 'stop') continue;
      const v: unknown = JSON.parse(r.text);
      expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
    }
    const choices = ['red', 'green', 'blue'];
    const picked = await sample(bl, { type: 'choice', choices }, 6);
    for (const r of picked) {
      expect(r.finishReason).toBe('stop');
      expect(choices).toContain(r.text);
    }
    for (const r of await sample(sp, { type: 'regex', pattern: '[0-9]{3}-[a-z]{2}' }, 6)) {
      expect(r.finishReason).toBe('stop');
      expect(r.text).toMatch(/^[0-9]{3}-[a-z]{2}$/);
    }
  }, 60_000);

  it('a tool-call format through sequence/any_of/repeat', async () => {
    const call = (name: string, parameters: object) => ({
      type: 'json_schema' as const,
      schema: {
        type: 'object',
        properties: { name: { const: name }, arguments: parameters },
        required: ['name', 'arguments'],
        additionalProperties: false,
      },
    });
    const spec: ConstraintSpec = {
      type: 'repeat',
      min: 1,
      max: 2,
      item: {
        type: 'sequence',
        items: [
          { type: 'literal', text: '<tool_call>\n' },
          {
            type: 'any_of',
            items: [
              call('get_weather', {
                type: 'object',
                properties: { city: { enum: ['Paris', 'Oslo'] } },
                required: ['city'],
                additionalProperties: false,
              }),
              call('now', { type: 'object', additionalProperties: false }),
            ],
          },
          { type: 'literal', text: '\n</tool_call>' },
        ],
      },
    };
    for (const r of await sample(bl, spec, 6)) {
      if (r.finishReason !== 'stop') continue;
      const calls = [...r.text.matchAll(/<tool_call>\n(.*?)\n<\/tool_call>/gs)].map((m) => JSON.parse(m[1]!) as object);
      expect(calls.length).toBeGreaterThan(0);
      for (const c of calls) expect(['get_weather', 'now']).toContain((c as { name: string }).name);
    }
  }, 60_000);
});

describe('batching', () => {
  it('constrained and unconstrained rows batched together equal their solo runs', async () => {
    const constraint: ConstraintSpec = { type: 'json_schema', schema: SCHEMA };
    const cases = [
      { constraint, seed: 1 },
      { seed: 2 },
      { constraint, seed: 3 },
      { seed: 4 },
      { constraint: { type: 'json_object' } as ConstraintSpec, seed: 5 },
    ].map((o) => ({ ...o, temperature: 1, maxNewTokens: 48 }));
    const before = sp.stats();
    const batched = await Promise.all(cases.map((o) => sp.generate('Go:', o).result));
    const s = sp.stats();
    expect(s.batchRows - before.batchRows).toBeGreaterThan(s.batchSteps - before.batchSteps); // really batched
    for (let i = 0; i < cases.length; i++) same(batched[i]!, await solo.generate('Go:', cases[i]!).result);
  }, 60_000);
});

describe('errors', () => {
  it('a keyword the engine cannot enforce rejects result with a GrammarError naming pointer and keyword', async () => {
    const run = sp.generate('x', {
      constraint: { type: 'json_schema', schema: { type: 'object', properties: { a: { not: { type: 'string' } } } } },
    });
    const err = await run.result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrammarError);
    expect((err as GrammarError).code).toBe('ERR_GRAMMAR_UNSUPPORTED');
    expect((err as GrammarError).pointer).toBe('/schema/properties/a');
    expect((err as GrammarError).keyword).toBe('not');
    const usage = (err as GrammarError & { usage: { promptTokens: number; completionTokens: number } }).usage;
    expect([usage.promptTokens, usage.completionTokens]).toEqual([0, 0]); // nothing ran
    const invalid = await sp
      .generate('x', { constraint: { type: 'regex', pattern: '(ab' } })
      .result.catch((e: unknown) => e);
    expect((invalid as GrammarError).code).toBe('ERR_GRAMMAR_INVALID');
  });

  it('a malformed spec is a TypeError before anything runs', () => {
    expect(() => sp.generate('x', { constraint: { type: 'nope' } as unknown as ConstraintSpec })).toThrow(
      TokmeterTypeError,
    );
    expect(() => sp.generate('x', { constraint: { type: 'choice', choices: [] } })).toThrow(/choices/);
  });
});
