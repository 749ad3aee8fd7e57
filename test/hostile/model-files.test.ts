/**
 * Hostile model folders: a missing tokenizer.json is ERR_MODEL_NOT_FOUND (as documented), and config.json numbers
 * out of any sane range are a ModelLoadError naming the field (they used to be a TypeError about
 * config.contextLength, or to size the KV budget at a terabyte).
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors.js';
import { Model } from '../../src/model/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';

let root: { dir: string; cleanup: () => void };
let base: string;
let n = 0;

beforeAll(async () => {
  root = tempDir('hostile-model');
  base = await makeTestModel(root.dir, 'base', { layers: 1, hidden: 64, heads: 2, intermediate: 128 });
});
afterAll(() => root?.cleanup());

/** A copy of the base folder with `edit` applied to its config.json. */
function variant(edit: (config: Record<string, unknown>) => void): string {
  const dir = path.join(root.dir, `v${n++}`);
  cpSync(base, dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(file, JSON.stringify(config));
  return dir;
}

async function loadError(dir: string): Promise<ModelLoadError> {
  const err = await Model.load(dir, { threads: 1 }).then(
    async (m) => {
      await m.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelLoadError);
  return err as ModelLoadError;
}

describe('model folders', () => {
  it('a missing tokenizer.json is ERR_MODEL_NOT_FOUND naming the file', async () => {
    const dir = variant(() => {});
    rmSync(path.join(dir, 'tokenizer.json'));
    const err = await loadError(dir);
    expect(err.code).toBe('ERR_MODEL_NOT_FOUND');
    expect(err.message).toContain('tokenizer.json');
  });

  it('a tokenizer.json that is not a tokenizer stays ERR_MODEL_INVALID', async () => {
    const dir = variant(() => {});
    writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": 3}');
    expect((await loadError(dir)).code).toBe('ERR_MODEL_INVALID');
  });

  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['max_position_embeddings 2^53', (c) => (c.max_position_embeddings = 2 ** 53), /max_position_embeddings/],
    ['max_position_embeddings 1e9', (c) => (c.max_position_embeddings = 1e9), /max_position_embeddings/],
    ['max_position_embeddings 0', (c) => (c.max_position_embeddings = 0), /max_position_embeddings/],
    ['eos_token_id 1e15', (c) => (c.eos_token_id = 1e15), /eos_token_id/],
    ['eos_token_id 2^31 in a list', (c) => (c.eos_token_id = [2, 2 ** 31]), /eos_token_id/],
    ['num_hidden_layers 1e9', (c) => (c.num_hidden_layers = 1e9), /num_hidden_layers/],
    ['num_attention_heads 0', (c) => (c.num_attention_heads = 0), /num_attention_heads/],
    ['num_key_value_heads 1e7', (c) => (c.num_key_value_heads = 1e7), /num_key_value_heads/],
    ['head_dim 2^40', (c) => (c.head_dim = 2 ** 40), /head_dim/],
    ['vocab_size 2^40', (c) => (c.vocab_size = 2 ** 40), /vocab_size/],
    ['hidden_size -1', (c) => (c.hidden_size = -1), /hidden_size/],
  ];
  for (const [label, edit, field] of cases) {
    it(`config.json ${label} is ERR_MODEL_INVALID naming the field`, async () => {
      const err = await loadError(variant(edit));
      expect(err.code).toBe('ERR_MODEL_INVALID');
      expect(err.message).toMatch(field);
      expect(err.message).toContain('config.json');
    });
  }
});
