/**
 * Builds test/tokenizer/fixtures/wordpiece-bert-cased.json: a BERT-style WordPiece tokenizer.json trained by the
 * reference (Hugging Face `tokenizers`: its default WordPieceTrainer through Tokenizer.train) on the parity corpus,
 * with BertNormalizer (cased: lowercase false, strip_accents null), BertPreTokenizer and the WordPiece decoder, as
 * bert-base-cased is made. No installed package ships a BERT tokenizer.json, so the file is generated once and
 * committed; scripts/tokenizer-wordpiece.ts derives the other normalizer settings and post-processors from it.
 *
 * The trainer adds no special tokens and writes only the normalizer, pre-tokenizer, model and decoder, so the
 * script then puts BERT's five special tokens in front of the vocabulary (ids 0-4, the rest shifted by 5) as added
 * tokens, as bert-base-cased's file has them, and the [CLS] A [SEP] / [CLS] A [SEP] B [SEP] TemplateProcessing.
 * The vocabulary is cut to its first VOCAB entries (the trainer's order: the alphabet, then the merges in the order
 * they were learnt) to keep the file small.
 *
 *   npx tsx scripts/tokenizer-wordpiece-fixture.ts
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { realDocs } from './tokenizer-corpus.js';
import { specialToken } from './tokenizer-json-parts.js';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WORDPIECE_FIXTURE = path.join(root, 'test', 'tokenizer', 'fixtures', 'wordpiece-bert-cased.json');

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const VOCAB = 12_000;

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const hf = require('tokenizers') as typeof import('tokenizers');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-wordpiece-'));
  const files: string[] = [];
  realDocs(2_000_000).forEach((d, i) => {
    const f = path.join(dir, `${i}.txt`);
    fs.writeFileSync(f, d.text);
    files.push(f);
  });
  const t = new hf.Tokenizer(hf.WordPiece.empty());
  t.setNormalizer(hf.bertNormalizer({ lowercase: false }));
  t.setPreTokenizer(hf.bertPreTokenizer());
  t.setDecoder(hf.wordPieceDecoder());
  const t0 = performance.now();
  t.train(files);
  console.log(`trained on ${files.length} files in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const raw = path.join(dir, 'trained.json');
  t.save(raw, false);
  const j = JSON.parse(fs.readFileSync(raw, 'utf8'));
  const learnt = Object.entries(j.model.vocab as Record<string, number>)
    .sort((a, b) => a[1] - b[1])
    .slice(0, VOCAB - SPECIALS.length);
  j.model.vocab = Object.fromEntries([...SPECIALS, ...learnt.map(([tok]) => tok)].map((tok, id) => [tok, id]));
  j.model.unk_token = '[UNK]';
  j.added_tokens = SPECIALS.map((content, id) => specialToken(content, id));
  const special = (id: string) => ({ SpecialToken: { id, type_id: 0 } });
  j.post_processor = {
    type: 'TemplateProcessing',
    single: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]')],
    pair: [
      special('[CLS]'),
      { Sequence: { id: 'A', type_id: 0 } },
      special('[SEP]'),
      { Sequence: { id: 'B', type_id: 1 } },
      { SpecialToken: { id: '[SEP]', type_id: 1 } },
    ],
    special_tokens: Object.fromEntries(
      ['[CLS]', '[SEP]'].map((tok) => [tok, { id: tok, ids: [SPECIALS.indexOf(tok)], tokens: [tok] }]),
    ),
  };
  fs.mkdirSync(path.dirname(WORDPIECE_FIXTURE), { recursive: true });
  fs.writeFileSync(WORDPIECE_FIXTURE, JSON.stringify(j));
  // The reference must load what was written.
  hf.Tokenizer.fromFile(WORDPIECE_FIXTURE);
  execFileSync('npx', ['--no-install', 'prettier', '--write', '--log-level', 'warn', WORDPIECE_FIXTURE], {
    stdio: 'inherit',
  });
  console.log(`${WORDPIECE_FIXTURE}: ${fs.statSync(WORDPIECE_FIXTURE).size} bytes`);
  fs.rmSync(dir, { recursive: true, force: true });
}
