/**
 * Greedy parity with a real peer: transformers.js (on its own onnxruntime-node, in a child process, offline with a
 * local model path) produces the same tokens as tokmeter on the same model folder, and tokmeter's prompt ids are the
 * ones transformers' tokenizer makes.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Model } from '../../src/model/index.js';
import { makeTestModel, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let dir: string;

beforeAll(async () => {
  root = tempDir('parity');
  dir = await makeTestModel(root.dir, 'tiny');
});
afterAll(() => root?.cleanup());

it('greedy tokens equal transformers.js on the same folder', async () => {
  const prompts = [
    'Hello world',
    'The quick brown fox jumps over the lazy dog.',
    'Numbers: 1, 2, 3, 4 and ünïcödé 你好',
  ];
  const model = await Model.load(dir, { threads: 1 });
  const ids: number[][] = [];
  const ours: number[][] = [];
  try {
    for (const p of prompts) {
      ids.push(Array.from(model.encodePrompt(p)));
      const r = await model.generate(p, { maxNewTokens: 32, temperature: 0 }).result;
      ours.push(Array.from(r.tokens));
    }
  } finally {
    await model.dispose();
  }
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'transformers-child.ts'), dir, '32', JSON.stringify(prompts)],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  const theirs = JSON.parse(out.trim().split('\n').pop()!) as { inputIds: number[][]; outputs: number[][] };
  expect(ids).toEqual(theirs.inputIds); // the same prompt ids from both tokenizers
  expect(ours).toEqual(theirs.outputs);
  for (const t of ours) expect(new Set(t).size).toBeGreaterThan(5);
});
