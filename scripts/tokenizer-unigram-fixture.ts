/**
 * Builds test/tokenizer/fixtures/unigram-*.json: real SentencePiece-style Unigram tokenizer.json files trained by
 * the reference (Hugging Face `tokenizers`, its default UnigramTrainer through Tokenizer.train) on the parity corpus.
 * No installed package ships a Unigram tokenizer.json, so the fixture is generated once and committed; the parity
 * test then compares tokmeter with the reference loading the same file.
 *
 *   npx tsx scripts/tokenizer-unigram-fixture.ts
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { realDocs } from './tokenizer-corpus.js';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const UNIGRAM_FIXTURE = path.join(root, 'test', 'tokenizer', 'fixtures', 'unigram-metaspace.json');

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const hf = require('tokenizers') as typeof import('tokenizers');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-unigram-'));
  const files: string[] = [];
  realDocs(3_000_000).forEach((d, i) => {
    const f = path.join(dir, `${i}.txt`);
    fs.writeFileSync(f, d.text);
    files.push(f);
  });
  const t = new hf.Tokenizer(hf.Unigram.empty());
  t.setNormalizer(hf.nfkcNormalizer());
  t.setPreTokenizer(hf.metaspacePreTokenizer());
  t.setDecoder(hf.metaspaceDecoder());
  const t0 = performance.now();
  t.train(files);
  console.log(`trained on ${files.length} files in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  fs.mkdirSync(path.dirname(UNIGRAM_FIXTURE), { recursive: true });
  t.save(UNIGRAM_FIXTURE, false);
  // Formatted like every other file in the repository; prettier keeps each number's text as written.
  execFileSync('npx', ['--no-install', 'prettier', '--write', '--log-level', 'warn', UNIGRAM_FIXTURE], {
    stdio: 'inherit',
  });
  console.log(`${UNIGRAM_FIXTURE}: ${fs.statSync(UNIGRAM_FIXTURE).size} bytes`);
  fs.rmSync(dir, { recursive: true, force: true });
}
