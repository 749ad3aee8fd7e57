/**
 * tokenizer.json (Hugging Face `tokenizers` format) -> NativeTokenizerSpec, the compact description the native
 * engine compiles. Validates every field it reads and names the one at fault; a component tokmeter does not
 * implement is an ERR_TOKENIZER_UNSUPPORTED error, never a silent substitute.
 */
import type {
  NativeAddedToken,
  NativeDecoderSpec,
  NativeModelSpec,
  NativeNormalizerSpec,
  NativePreTokenizerSpec,
  NativeSplitBehavior,
  NativeTokenizerSpec,
} from '../native/tokenizer-contract.js';
import { specError, unsupported } from './errors.js';
import { arr, bool, describe, obj, optStr, str, uint, type Json, type JsonObject } from './json.js';
import { tokenizerAddon } from './native.js';

const BEHAVIORS = new Set(['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']);

function behavior(o: JsonObject, field: string, fallback?: NativeSplitBehavior): NativeSplitBehavior {
  const v = o.behavior ?? fallback;
  if (typeof v !== 'string' || !BEHAVIORS.has(v))
    throw specError(`${field}.behavior`, `expected one of ${[...BEHAVIORS].join(', ')}, got ${describe(v)}`);
  return v as NativeSplitBehavior;
}

function pattern(o: JsonObject, field: string): { pattern: string; isRegex: boolean } {
  const p = obj(o.pattern, `${field}.pattern`);
  if (typeof p.String === 'string') return { pattern: p.String, isRegex: false };
  if (typeof p.Regex === 'string') return { pattern: p.Regex, isRegex: true };
  throw specError(`${field}.pattern`, 'expected {"String": ...} or {"Regex": ...}');
}

/** UTF-8 length of a well-formed JS string (lone surrogates count as U+FFFD, 3 bytes, as Buffer.from does). */
function utf8Length(t: string): number {
  let n = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < t.length && (t.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Packs token strings (or raw bytes) into one Buffer plus offsets. Strings are joined and encoded once (a
 * per-token encode costs ~10x more for a 200k vocabulary).
 */
export function packVocab(
  tokens: (string | Uint8Array | undefined)[],
): Pick<NativeModelSpec, 'vocabBytes' | 'vocabOffsets' | 'present'> {
  const offsets = new Uint32Array(tokens.length + 1);
  const present = new Uint8Array(tokens.length);
  let allStrings = true;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === undefined) continue;
    present[i] = 1;
    if (typeof t !== 'string') allStrings = false;
  }
  if (allStrings) {
    let pos = 0;
    const parts: string[] = [];
    for (let i = 0; i < tokens.length; i++) {
      offsets[i] = pos;
      const t = tokens[i] as string | undefined;
      if (t === undefined) continue;
      parts.push(t);
      pos += utf8Length(t);
    }
    offsets[tokens.length] = pos;
    const bytes = Buffer.from(parts.join(''), 'utf8');
    if (bytes.length !== pos) throw new Error(`internal: vocabulary packing mismatch (${bytes.length} != ${pos})`);
    return { vocabBytes: bytes, vocabOffsets: offsets, present };
  }
  let total = 0;
  for (const t of tokens) if (t !== undefined) total += typeof t === 'string' ? utf8Length(t) : t.length;
  const bytes = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < tokens.length; i++) {
    offsets[i] = pos;
    const t = tokens[i];
    if (t === undefined) continue;
    if (typeof t === 'string') pos += bytes.write(t, pos, 'utf8');
    else {
      bytes.set(t, pos);
      pos += t.length;
    }
  }
  offsets[tokens.length] = pos;
  return { vocabBytes: bytes, vocabOffsets: offsets, present };
}

/** Token -> id through the parsed vocabulary object itself (no second 200k-entry Map to build). */
interface VocabIds {
  get(token: string): number | undefined;
}

/**
 * The largest id a vocabulary of `count` tokens may use: beyond it, the id table would be mostly holes, gigabytes for
 * nothing. The same rule as the native JSON scanner's (native/tokenizer/json_scan.cc) and added tokens'.
 */
export function maxSparseId(count: number): number {
  return count * 16 + 65536;
}

function vocabArray(v: Json, field: string): { tokens: (string | undefined)[]; ids: VocabIds } {
  const o = obj(v, field);
  // Checked before any table is built: one huge id would otherwise allocate (and fill) an array of its size.
  let count = 0;
  let maxId = 0;
  for (const key in o) {
    const id = o[key];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xfffffff0)
      uint(id, `${field}[${JSON.stringify(key)}]`);
    count++;
    if ((id as number) > maxId) maxId = id as number;
  }
  if (count > 0 && maxId > maxSparseId(count))
    throw specError(field, `id ${maxId} is far beyond the vocabulary's ${count} tokens`);
  const tokens: (string | undefined)[] = [];
  for (const key in o) {
    const id = o[key];
    if (tokens[id as number] !== undefined)
      throw specError(`${field}[${JSON.stringify(key)}]`, `id ${id} is used twice`);
    tokens[id as number] = key;
  }
  const own = Object.prototype.hasOwnProperty;
  return { tokens, ids: { get: (t) => (own.call(o, t) ? (o[t] as number) : undefined) } };
}

/**
 * Merges as newline-separated text for native resolution, when that encoding is unambiguous (no token contains a
 * newline; string merges have exactly one space). Otherwise undefined, and the merges are resolved in JS.
 */
function mergesAsText(merges: Json[]): { text: Buffer; pairs: boolean } | undefined {
  if (merges.length === 0) return undefined;
  if (typeof merges[0] === 'string') {
    for (let i = 0; i < merges.length; i++) if (typeof merges[i] !== 'string') return undefined;
    const joined = (merges as string[]).join('\n');
    let lines = 1;
    for (let k = joined.indexOf('\n'); k >= 0; k = joined.indexOf('\n', k + 1)) lines++;
    return lines === merges.length ? { text: Buffer.from(joined, 'utf8'), pairs: false } : undefined;
  }
  const flat: string[] = [];
  for (const e of merges) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string') return undefined;
    flat.push(e[0], e[1]);
  }
  const joined = flat.join('\n');
  let lines = 1;
  for (let k = joined.indexOf('\n'); k >= 0; k = joined.indexOf('\n', k + 1)) lines++;
  return lines === flat.length ? { text: Buffer.from(joined, 'utf8'), pairs: true } : undefined;
}

function resolveMerges(merges: Json[], ids: VocabIds): Uint32Array {
  const pairs = new Uint32Array(merges.length * 2);
  for (let i = 0; i < merges.length; i++) {
    const e = merges[i];
    let a: string | undefined, b: string | undefined;
    if (typeof e === 'string') {
      const sp = e.indexOf(' ');
      if (sp < 0 || e.indexOf(' ', sp + 1) >= 0)
        throw specError(`model.merges[${i}]`, `expected "left right", got ${describe(e)}`);
      a = e.slice(0, sp);
      b = e.slice(sp + 1);
    } else if (Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string') {
      [a, b] = e as [string, string];
    } else throw specError(`model.merges[${i}]`, `expected "left right" or [left, right], got ${describe(e)}`);
    const ia = ids.get(a!),
      ib = ids.get(b!);
    if (ia === undefined) throw specError(`model.merges[${i}]`, `${JSON.stringify(a)} is not in model.vocab`);
    if (ib === undefined) throw specError(`model.merges[${i}]`, `${JSON.stringify(b)} is not in model.vocab`);
    pairs[2 * i] = ia;
    pairs[2 * i + 1] = ib;
  }
  return pairs;
}

/** model.vocab and model.merges as raw JSON text, cut out of the document (see specFromTokenizerJsonBytes). */
export interface RawModelFields {
  vocabJson: Buffer;
  mergesJson?: Buffer;
}

function model(m: JsonObject, raw?: RawModelFields): NativeModelSpec {
  const type = m.type ?? (m.merges !== undefined ? 'BPE' : undefined);
  if (raw && (type === 'BPE' || type === 'WordPiece')) return rawModel(m, type, raw);
  if (type === 'BPE') {
    const { tokens, ids } = vocabArray(m.vocab ?? null, 'model.vocab');
    checkBpeOptions(m);
    const merges = arr(m.merges ?? [], 'model.merges');
    const mergeText = mergesAsText(merges);
    const pairs = mergeText ? new Uint32Array(0) : resolveMerges(merges, ids);
    const unk = optStr(m, 'unk_token', 'model');
    let unkId: number | null = null;
    if (unk !== null) {
      const id = ids.get(unk);
      if (id === undefined) throw specError('model.unk_token', `${JSON.stringify(unk)} is not in model.vocab`);
      unkId = id;
    }
    return {
      kind: 'BPE',
      ...packVocab(tokens),
      vocabIsBytes: false,
      merges: pairs,
      ...(mergeText ? { mergesText: mergeText.text, mergesTextPairs: mergeText.pairs } : {}),
      mergesFromRanks: false,
      ignoreMerges: bool(m, 'ignore_merges', 'model', false),
      byteFallback: bool(m, 'byte_fallback', 'model', false),
      fuseUnk: bool(m, 'fuse_unk', 'model', false),
      unkId,
    };
  }
  if (type === 'WordPiece') {
    const { tokens, ids } = vocabArray(m.vocab ?? null, 'model.vocab');
    const unk = str(m, 'unk_token', 'model');
    const unkId = ids.get(unk);
    if (unkId === undefined) throw specError('model.unk_token', `${JSON.stringify(unk)} is not in model.vocab`);
    return {
      kind: 'WordPiece',
      ...packVocab(tokens),
      vocabIsBytes: false,
      merges: new Uint32Array(0),
      mergesFromRanks: false,
      ignoreMerges: false,
      byteFallback: false,
      fuseUnk: false,
      unkId,
      continuingSubwordPrefix: optStr(m, 'continuing_subword_prefix', 'model') ?? '##',
      maxInputCharsPerWord:
        m.max_input_chars_per_word === undefined
          ? 100
          : uint(m.max_input_chars_per_word, 'model.max_input_chars_per_word'),
    };
  }
  if (type === 'Unigram') return unigram(m);
  throw unsupported('model.type', `model ${describe(type)}`);
}

function checkBpeOptions(m: JsonObject): void {
  if (m.dropout !== undefined && m.dropout !== null)
    throw unsupported('model.dropout', 'BPE dropout (non-deterministic)');
  for (const k of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    const v = optStr(m, k, 'model');
    if (v) throw unsupported(`model.${k}`, `BPE ${k} ${JSON.stringify(v)}`);
  }
}

/**
 * BPE / WordPiece whose vocab (and merges) stay raw JSON for native code: the same options are validated here; the
 * vocabulary, the merges and unk_token are checked natively (same rules, same field names in errors).
 */
function rawModel(m: JsonObject, type: 'BPE' | 'WordPiece', raw: RawModelFields): NativeModelSpec {
  const common = {
    vocabJson: raw.vocabJson,
    vocabIsBytes: false,
    merges: new Uint32Array(0),
    mergesFromRanks: false,
    unkId: null,
  };
  if (type === 'BPE') {
    checkBpeOptions(m);
    // Merges that are not an array stay in the parsed rest (the scanner only cuts out arrays): an error here.
    if (!raw.mergesJson && arr(m.merges ?? [], 'model.merges').length > 0)
      throw new Error('internal: model.merges was not handed to native code');
    const unk = optStr(m, 'unk_token', 'model');
    return {
      kind: 'BPE',
      ...common,
      ...(raw.mergesJson ? { mergesJson: raw.mergesJson } : {}),
      ignoreMerges: bool(m, 'ignore_merges', 'model', false),
      byteFallback: bool(m, 'byte_fallback', 'model', false),
      fuseUnk: bool(m, 'fuse_unk', 'model', false),
      ...(unk !== null ? { unkToken: unk } : {}),
    };
  }
  return {
    kind: 'WordPiece',
    ...common,
    ignoreMerges: false,
    byteFallback: false,
    fuseUnk: false,
    unkToken: str(m, 'unk_token', 'model'),
    continuingSubwordPrefix: optStr(m, 'continuing_subword_prefix', 'model') ?? '##',
    maxInputCharsPerWord:
      m.max_input_chars_per_word === undefined
        ? 100
        : uint(m.max_input_chars_per_word, 'model.max_input_chars_per_word'),
  };
}

/** Unigram (SentencePiece): model.vocab is a list of [piece, score]; the id is the index. */
function unigram(m: JsonObject): NativeModelSpec {
  const vocab = arr(m.vocab ?? null, 'model.vocab');
  const tokens: string[] = new Array<string>(vocab.length);
  const scores = new Float64Array(vocab.length);
  for (let i = 0; i < vocab.length; i++) {
    const e = vocab[i];
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string')
      throw specError(`model.vocab[${i}]`, `expected [piece, score], got ${describe(e)}`);
    if (typeof e[1] !== 'number' || !Number.isFinite(e[1]))
      throw specError(`model.vocab[${i}][1]`, `expected a finite number, got ${describe(e[1])}`);
    tokens[i] = e[0];
    scores[i] = e[1];
  }
  let unkId: number | null = null;
  if (m.unk_id !== undefined && m.unk_id !== null) {
    unkId = uint(m.unk_id, 'model.unk_id');
    if (unkId >= vocab.length)
      throw specError('model.unk_id', `${unkId} is not below the vocabulary size ${vocab.length}`);
  }
  return {
    kind: 'Unigram',
    ...packVocab(tokens),
    vocabIsBytes: false,
    merges: new Uint32Array(0),
    mergesFromRanks: false,
    ignoreMerges: false,
    byteFallback: bool(m, 'byte_fallback', 'model', false),
    fuseUnk: true,
    unkId,
    scores,
  };
}

/**
 * Deepest nesting of Sequence components (normalizers, pre-tokenizers, decoders, post-processors). Real files nest
 * one or two levels; a hostile one nested thousands deep would exhaust the stack (and build field names quadratic
 * in its depth) before any check.
 */
export const MAX_SEQUENCE_DEPTH = 32;

function checkDepth(depth: number, field: string): void {
  if (depth > MAX_SEQUENCE_DEPTH)
    throw specError(field, `Sequence components nested more than ${MAX_SEQUENCE_DEPTH} levels deep`);
}

function normalizers(v: Json | undefined, field: string, out: NativeNormalizerSpec[], depth = 0): void {
  if (v === undefined || v === null) return;
  checkDepth(depth, field);
  const o = obj(v, field);
  const type = o.type;
  switch (type) {
    case 'Sequence': {
      const list = arr(o.normalizers, `${field}.normalizers`);
      list.forEach((n, i) => normalizers(n, `${field}.normalizers[${i}]`, out, depth + 1));
      return;
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
    case 'Lowercase':
      out.push({ kind: type });
      return;
    case 'Replace': {
      const p = pattern(o, field);
      if (p.isRegex) throw unsupported(`${field}.pattern`, 'Replace normalizer with a Regex pattern');
      if (p.pattern === '') throw specError(`${field}.pattern.String`, 'must not be empty');
      out.push({ kind: 'Replace', ...p, content: str(o, 'content', field) });
      return;
    }
    case 'Prepend':
      out.push({ kind: 'Prepend', content: str(o, 'prepend', field) });
      return;
    case 'Strip':
      out.push({ kind: 'Strip', left: bool(o, 'strip_left', field, true), right: bool(o, 'strip_right', field, true) });
      return;
    case 'BertNormalizer':
      out.push({
        kind: 'Bert',
        cleanText: bool(o, 'clean_text', field, true),
        handleChineseChars: bool(o, 'handle_chinese_chars', field, true),
        lowercase: bool(o, 'lowercase', field, true),
        stripAccents:
          o.strip_accents === undefined || o.strip_accents === null ? null : bool(o, 'strip_accents', field),
      });
      return;
    default:
      throw unsupported(`${field}.type`, `normalizer ${describe(type)}`);
  }
}

function metaspaceScheme(o: JsonObject, field: string): 'always' | 'never' | 'first' {
  const s = o.prepend_scheme;
  if (s === undefined || s === null) return bool(o, 'add_prefix_space', field, true) ? 'always' : 'never';
  if (s === 'always' || s === 'never' || s === 'first') return s;
  throw specError(`${field}.prepend_scheme`, `expected "always", "never" or "first", got ${describe(s)}`);
}

function preTokenizers(v: Json | undefined, field: string, out: NativePreTokenizerSpec[], depth = 0): void {
  if (v === undefined || v === null) return;
  checkDepth(depth, field);
  const o = obj(v, field);
  const type = o.type;
  switch (type) {
    case 'Sequence': {
      const list = arr(o.pretokenizers, `${field}.pretokenizers`);
      list.forEach((n, i) => preTokenizers(n, `${field}.pretokenizers[${i}]`, out, depth + 1));
      return;
    }
    case 'Split':
      out.push({
        kind: 'Split',
        ...pattern(o, field),
        invert: bool(o, 'invert', field, false),
        behavior: behavior(o, field),
      });
      return;
    case 'ByteLevel':
      out.push({
        kind: 'ByteLevel',
        addPrefixSpace: bool(o, 'add_prefix_space', field, true),
        useRegex: bool(o, 'use_regex', field, true),
      });
      return;
    case 'Metaspace': {
      const replacement = str(o, 'replacement', field);
      if ([...replacement].length !== 1) throw specError(`${field}.replacement`, 'expected exactly one character');
      out.push({
        kind: 'Metaspace',
        replacement,
        prependScheme: metaspaceScheme(o, field),
        split: bool(o, 'split', field, true),
      });
      return;
    }
    case 'Whitespace':
    case 'WhitespaceSplit':
      out.push({ kind: type });
      return;
    case 'BertPreTokenizer':
      out.push({ kind: 'Bert' });
      return;
    case 'Digits':
      out.push({ kind: 'Digits', individualDigits: bool(o, 'individual_digits', field, false) });
      return;
    case 'Punctuation':
      out.push({ kind: 'Punctuation', behavior: behavior(o, field, 'Isolated') });
      return;
    default:
      throw unsupported(`${field}.type`, `pre-tokenizer ${describe(type)}`);
  }
}

function decoders(v: Json | undefined, field: string, out: NativeDecoderSpec[], depth = 0): void {
  if (v === undefined || v === null) return;
  checkDepth(depth, field);
  const o = obj(v, field);
  const type = o.type;
  switch (type) {
    case 'Sequence': {
      const list = arr(o.decoders, `${field}.decoders`);
      list.forEach((n, i) => decoders(n, `${field}.decoders[${i}]`, out, depth + 1));
      return;
    }
    case 'ByteLevel':
    case 'ByteFallback':
    case 'Fuse':
      out.push({ kind: type });
      return;
    case 'Metaspace':
      out.push({
        kind: 'Metaspace',
        replacement: str(o, 'replacement', field),
        prepend: metaspaceScheme(o, field) !== 'never',
      });
      return;
    case 'Strip':
      out.push({
        kind: 'Strip',
        content: str(o, 'content', field),
        start: uint(o.start, `${field}.start`),
        stop: uint(o.stop, `${field}.stop`),
      });
      return;
    case 'Replace': {
      const p = pattern(o, field);
      if (p.isRegex) throw unsupported(`${field}.pattern`, 'Replace decoder with a Regex pattern');
      out.push({ kind: 'Replace', pattern: p.pattern, content: str(o, 'content', field) });
      return;
    }
    case 'WordPiece':
      out.push({
        kind: 'WordPiece',
        prefix: optStr(o, 'prefix', field) ?? '##',
        cleanup: bool(o, 'cleanup', field, true),
      });
      return;
    default:
      throw unsupported(`${field}.type`, `decoder ${describe(type)}`);
  }
}

interface PostParts {
  prefix: number[];
  suffix: number[];
}

function postProcessor(
  v: Json | undefined,
  field: string,
  tokenId: (s: string, f: string) => number,
  depth = 0,
): PostParts {
  const parts: PostParts = { prefix: [], suffix: [] };
  if (v === undefined || v === null) return parts;
  checkDepth(depth, field);
  const o = obj(v, field);
  switch (o.type) {
    case 'ByteLevel':
      return parts; // offsets only
    case 'Sequence': {
      const list = arr(o.processors, `${field}.processors`);
      list.forEach((p, i) => {
        const sub = postProcessor(p, `${field}.processors[${i}]`, tokenId, depth + 1);
        parts.prefix = [...sub.prefix, ...parts.prefix];
        parts.suffix = [...parts.suffix, ...sub.suffix];
      });
      return parts;
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const pair = (k: string): number => {
        const p = arr(o[k], `${field}.${k}`);
        if (p.length !== 2 || typeof p[0] !== 'string') throw specError(`${field}.${k}`, 'expected [token, id]');
        return uint(p[1], `${field}.${k}[1]`);
      };
      return { prefix: [pair('cls')], suffix: [pair('sep')] };
    }
    case 'TemplateProcessing': {
      const single = arr(o.single, `${field}.single`);
      const specials = obj(o.special_tokens ?? {}, `${field}.special_tokens`);
      let seenSeq = false;
      single.forEach((item, i) => {
        const f = `${field}.single[${i}]`;
        const it = obj(item, f);
        if (it.Sequence !== undefined) {
          const id = str(obj(it.Sequence, `${f}.Sequence`), 'id', `${f}.Sequence`);
          if (id !== 'A')
            throw specError(`${f}.Sequence.id`, `expected "A" in a single-sequence template, got ${describe(id)}`);
          if (seenSeq) throw unsupported(f, 'a template that repeats the sequence');
          seenSeq = true;
          return;
        }
        if (it.SpecialToken === undefined) throw specError(f, 'expected {"SpecialToken": ...} or {"Sequence": ...}');
        const name = str(obj(it.SpecialToken, `${f}.SpecialToken`), 'id', `${f}.SpecialToken`);
        const entry = specials[name];
        let ids: number[];
        if (entry !== undefined) {
          const e = obj(entry, `${field}.special_tokens[${JSON.stringify(name)}]`);
          ids = arr(e.ids, `${field}.special_tokens[${JSON.stringify(name)}].ids`).map((x, k) =>
            uint(x, `${field}.special_tokens[${JSON.stringify(name)}].ids[${k}]`),
          );
        } else ids = [tokenId(name, `${f}.SpecialToken.id`)];
        (seenSeq ? parts.suffix : parts.prefix).push(...ids);
      });
      if (!seenSeq) throw specError(`${field}.single`, 'the template has no {"Sequence": {"id": "A"}}');
      return parts;
    }
    default:
      throw unsupported(`${field}.type`, `post-processor ${describe(o.type)}`);
  }
}

function addedTokens(v: Json | undefined): NativeAddedToken[] {
  if (v === undefined || v === null) return [];
  const byId = new Map<number, number>();
  const byContent = new Map<string, number>();
  // Two entries with one id (or one content) would leave which of them encodes or decodes to chance.
  const unique = (a: NativeAddedToken, i: number): NativeAddedToken => {
    const sameId = byId.get(a.id);
    if (sameId !== undefined)
      throw specError(`added_tokens[${i}].id`, `id ${a.id} is also the id of added_tokens[${sameId}]`);
    const sameContent = byContent.get(a.content);
    if (sameContent !== undefined) {
      throw specError(
        `added_tokens[${i}].content`,
        `${JSON.stringify(a.content)} is also the content of added_tokens[${sameContent}]`,
      );
    }
    byId.set(a.id, i);
    byContent.set(a.content, i);
    return a;
  };
  return arr(v, 'added_tokens').map((t, i) => {
    const f = `added_tokens[${i}]`;
    const o = obj(t, f);
    const content = str(o, 'content', f);
    if (content === '') throw specError(`${f}.content`, 'must not be empty');
    const special = bool(o, 'special', f, false);
    return unique(
      {
        id: uint(o.id, `${f}.id`),
        content,
        special,
        normalized: bool(o, 'normalized', f, !special),
        lstrip: bool(o, 'lstrip', f, false),
        rstrip: bool(o, 'rstrip', f, false),
        singleWord: bool(o, 'single_word', f, false),
      },
      i,
    );
  });
}

/**
 * Builds the native description from a parsed tokenizer.json. With `raw`, model.vocab / model.merges of `json` are
 * placeholders and their JSON text travels to native code instead.
 */
export function specFromTokenizerJson(json: unknown, raw?: RawModelFields): NativeTokenizerSpec {
  const root = obj(json, 'tokenizer.json');
  const m = model(obj(root.model, 'model'), raw);
  const added = addedTokens(root.added_tokens);
  const vocabIds = new Map<string, number>();
  for (const a of added) vocabIds.set(a.content, a.id);
  const tokenId = (s: string, f: string): number => {
    const id = vocabIds.get(s);
    if (id === undefined) throw specError(f, `${JSON.stringify(s)} is not an added token`);
    return id;
  };
  const spec: NativeTokenizerSpec = {
    model: m,
    normalizers: [],
    preTokenizers: [],
    decoders: [],
    hasDecoder: root.decoder !== undefined && root.decoder !== null,
    addedTokens: added,
    postPrefix: [],
    postSuffix: [],
  };
  normalizers(root.normalizer, 'normalizer', spec.normalizers);
  preTokenizers(root.pre_tokenizer, 'pre_tokenizer', spec.preTokenizers);
  decoders(root.decoder, 'decoder', spec.decoders);
  const post = postProcessor(root.post_processor, 'post_processor', tokenId);
  spec.postPrefix = post.prefix;
  spec.postSuffix = post.suffix;
  if (root.truncation !== undefined && root.truncation !== null) throw unsupported('truncation', 'truncation settings');
  if (root.padding !== undefined && root.padding !== null) throw unsupported('padding', 'padding settings');
  return spec;
}

/** JSON.parse with the loader's error for malformed text. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw specError(file, `not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * `bytes` with the values at the given ranges replaced by `{}` / `[]` (whatever each range held is cut out), as
 * text: the small rest of a document whose big fields go to native code raw.
 */
export function jsonWithout(bytes: Buffer, cuts: { range: [number, number]; placeholder: string }[]): string {
  const sorted = [...cuts].sort((a, b) => a.range[0] - b.range[0]);
  const parts: Buffer[] = [];
  let at = 0;
  for (const c of sorted) {
    parts.push(bytes.subarray(at, c.range[0]), Buffer.from(c.placeholder));
    at = c.range[1];
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts).toString('utf8');
}

/**
 * tokenizer.json bytes -> NativeTokenizerSpec without JSON-parsing the big fields in JavaScript: native code finds
 * model.vocab and model.merges (on a worker thread), JS parses and validates the small rest, and the two fields go
 * to native code as raw JSON, parsed there off the event loop (native/tokenizer/json_scan.h, JSON.parse semantics).
 * Documents the scanner does not take (malformed JSON, a Unigram vocabulary array) go through JSON.parse as before,
 * so a malformed file still gets JSON.parse's message.
 */
export async function specFromTokenizerJsonBytes(bytes: Buffer, file: string): Promise<NativeTokenizerSpec> {
  let ranges: ([number, number] | null)[] | undefined;
  try {
    ranges = await tokenizerAddon().scanJsonFields(
      bytes,
      [
        ['model', 'vocab'],
        ['model', 'merges'],
      ],
      file,
    );
  } catch {
    ranges = undefined;
  }
  const vocab = ranges?.[0];
  if (!ranges || !vocab || bytes[vocab[0]] !== 0x7b /* { */)
    return specFromTokenizerJson(parseJsonText(bytes.toString('utf8'), file));
  const merges = ranges[1];
  const cuts = [{ range: vocab, placeholder: '{}' }];
  let mergesJson: Buffer | undefined;
  if (merges && bytes[merges[0]] === 0x5b /* [ */) {
    cuts.push({ range: merges, placeholder: '[]' });
    mergesJson = bytes.subarray(merges[0], merges[1]);
  }
  const rest = parseJsonText(jsonWithout(bytes, cuts), file);
  return specFromTokenizerJson(rest, {
    vocabJson: bytes.subarray(vocab[0], vocab[1]),
    ...(mergesJson ? { mergesJson } : {}),
  });
}
