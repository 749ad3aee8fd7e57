/**
 * BPE tokenizer.json files with the model's word affixes, for parity tests against the reference (no installed
 * package ships one). Each is trained here on the parity corpus (a plain BPE trainer: the most frequent adjacent
 * pair, ties to the smallest, 300 times) and laid out as the real files of its family are:
 *   clip:   CLIP's layout: NFC + whitespace runs to one space + lowercase, CLIP's split (Removed, inverted) then
 *           ByteLevel, a byte-level vocabulary whose word-final units carry "</w>" (end_of_word_suffix, with an empty
 *           continuing_subword_prefix), <|startoftext|> / <|endoftext|> around each text (RobertaProcessing);
 *   gpt1:   GPT-1's layout: BertNormalizer (lowercase), BertPreTokenizer, a character vocabulary with "</w>" word
 *           ends, <unk> for unknown characters, the BPEDecoder;
 *   prefix: a character vocabulary whose non-initial units carry "##" (continuing_subword_prefix), Whitespace
 *           pre-tokenizer, [UNK], the WordPiece decoder.
 * The reference loads the same file and is the oracle; how the vocabulary was made does not matter to parity.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { realDocs } from './tokenizer-corpus.js';
import { BYTE_CHARS, specialToken } from './tokenizer-json-parts.js';

export type AffixKind = 'clip' | 'gpt1' | 'prefix';

const CLIP_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

interface Layout {
  prefix: string;
  suffix: string;
  unk: string;
  /** The training words of a text, as the units the model sees. */
  words: (text: string) => string[][];
  /** Units every word may start from besides those seen in training. */
  alphabet: readonly string[];
}

function layout(kind: AffixKind): Layout {
  if (kind === 'clip') {
    const split = new RegExp(CLIP_SPLIT, 'gu');
    return {
      prefix: '',
      suffix: '</w>',
      unk: '<|endoftext|>',
      words: (t) =>
        (t.normalize('NFC').replace(/\s+/gu, ' ').toLowerCase().match(split) ?? []).map((w) =>
          [...Buffer.from(w, 'utf8')].map((b) => BYTE_CHARS[b]!),
        ),
      alphabet: BYTE_CHARS,
    };
  }
  const re = kind === 'gpt1' ? /\p{L}+|\p{N}+|[^\s\p{L}\p{N}]/gu : /\w+|[^\w\s]+/gu;
  return {
    prefix: kind === 'prefix' ? '##' : '',
    suffix: kind === 'gpt1' ? '</w>' : '',
    unk: kind === 'gpt1' ? '<unk>' : '[UNK]',
    words: (t) => ((kind === 'gpt1' ? t.toLowerCase() : t).match(re) ?? []).map((w) => [...w]),
    alphabet: [],
  };
}

/** Vocabulary (token -> id) and merges of a BPE trained on the corpus with `kind`'s affixes. */
export function trainAffixBpe(kind: AffixKind, merges = 300): { vocab: Record<string, number>; merges: string[] } {
  const l = layout(kind);
  const counts = new Map<string, number>();
  for (const d of realDocs(400_000)) {
    for (const units of l.words(d.text)) {
      const key = units.join('\u0000');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const affix = (units: string[]) =>
    units.map((u, i) => (i > 0 ? l.prefix : '') + u + (i === units.length - 1 ? l.suffix : ''));
  const words = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 4000)
    .map(([key, n]) => ({ syms: affix(key.split('\u0000')), n }));
  const vocab: Record<string, number> = {};
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  for (const u of l.alphabet) add(u);
  if (l.suffix) for (const u of l.alphabet) add(u + l.suffix);
  const initial = new Set<string>();
  for (const w of words) for (const s of w.syms) initial.add(s);
  for (const s of [...initial].sort()) add(s);
  const out: string[] = [];
  for (let m = 0; m < merges; m++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const k = `${w.syms[i]}\u0000${w.syms[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + w.n);
      }
    }
    let best = '';
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && k < best)) [best, bestN] = [k, n];
    if (!best) break;
    const [a, b] = best.split('\u0000') as [string, string];
    const merged = a + b.slice(l.prefix.length);
    add(merged);
    out.push(`${a} ${b}`);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          next.push(merged);
          i++;
        } else {
          next.push(w.syms[i]!);
        }
      }
      w.syms = next;
    }
  }
  add(l.unk);
  return { vocab, merges: out };
}

/** The tokenizer.json document of `kind` (see the file comment). */
export function affixBpeJson(kind: AffixKind): object {
  const l = layout(kind);
  const { vocab, merges } = trainAffixBpe(kind);
  const model = {
    type: 'BPE',
    dropout: null,
    unk_token: l.unk,
    continuing_subword_prefix: kind === 'clip' ? '' : l.prefix || null,
    end_of_word_suffix: l.suffix || null,
    fuse_unk: false,
    byte_fallback: false,
    vocab,
    merges,
  };
  if (kind === 'clip') {
    const start = Object.keys(vocab).length;
    vocab['<|startoftext|>'] = start;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [specialToken('<|startoftext|>', start), specialToken('<|endoftext|>', vocab['<|endoftext|>']!)],
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'NFC' },
          { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
          { type: 'Lowercase' },
        ],
      },
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        ],
      },
      post_processor: {
        type: 'RobertaProcessing',
        sep: ['<|endoftext|>', vocab['<|endoftext|>']],
        cls: ['<|startoftext|>', start],
        trim_offsets: false,
        add_prefix_space: false,
      },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model,
    };
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [specialToken(l.unk, vocab[l.unk]!)],
    normalizer:
      kind === 'gpt1'
        ? { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true }
        : null,
    pre_tokenizer: kind === 'gpt1' ? { type: 'BertPreTokenizer' } : { type: 'Whitespace' },
    post_processor: null,
    decoder:
      kind === 'gpt1' ? { type: 'BPEDecoder', suffix: '</w>' } : { type: 'WordPiece', prefix: '##', cleanup: true },
    model,
  };
}

let written = 0;
/** Writes `kind`'s tokenizer.json to a new temporary file and returns its path (the caller removes it). */
export function affixBpeFile(kind: AffixKind): string {
  const file = path.join(os.tmpdir(), `tokmeter-bpe-${kind}-${process.pid}-${written++}.json`);
  fs.writeFileSync(file, JSON.stringify(affixBpeJson(kind)));
  return file;
}
