/**
 * The tokenizer's slice of the native addon (native/addon/js_tokenizer.cc). Only src/tokenizer/native.ts uses it;
 * everything else goes through the `Tokenizer` class that owns the handle.
 */

declare const nativeTokenizerBrand: unique symbol;
declare const nativeDecodeStreamBrand: unique symbol;

export type NativeSplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

export type NativeNormalizerSpec =
  | { kind: 'NFC' | 'NFD' | 'NFKC' | 'NFKD' | 'Lowercase' }
  | { kind: 'Replace'; pattern: string; isRegex: boolean; content: string }
  | { kind: 'Prepend'; content: string }
  | { kind: 'Strip'; left: boolean; right: boolean }
  | { kind: 'Bert'; cleanText: boolean; handleChineseChars: boolean; lowercase: boolean; stripAccents: boolean | null };

export type NativePreTokenizerSpec =
  | { kind: 'Split'; pattern: string; isRegex: boolean; invert: boolean; behavior: NativeSplitBehavior }
  | { kind: 'ByteLevel'; addPrefixSpace: boolean; useRegex: boolean }
  | { kind: 'Metaspace'; replacement: string; prependScheme: 'always' | 'never' | 'first'; split: boolean }
  | { kind: 'Whitespace' | 'WhitespaceSplit' | 'Bert' }
  | { kind: 'Digits'; individualDigits: boolean }
  | { kind: 'Punctuation'; behavior: NativeSplitBehavior };

export type NativeDecoderSpec =
  | { kind: 'ByteLevel' | 'ByteFallback' | 'Fuse' }
  | { kind: 'Metaspace'; replacement: string; prepend: boolean }
  | { kind: 'Strip'; content: string; start: number; stop: number }
  | { kind: 'Replace'; pattern: string; content: string }
  | { kind: 'WordPiece'; prefix: string; cleanup: boolean };

export interface NativeAddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
}

export interface NativeModelSpec {
  kind: 'BPE' | 'WordPiece' | 'Unigram';
  /**
   * Token bytes, concatenated; token i is vocabBytes[vocabOffsets[i] .. vocabOffsets[i + 1]). Left out when the
   * vocabulary comes as `vocabJson` or `ranks`.
   */
  vocabBytes?: Buffer;
  vocabOffsets?: Uint32Array;
  /** 1 where the id has a token. */
  present?: Uint8Array;
  /**
   * Or the raw JSON text of tokenizer.json's model.vocab object (token -> id), parsed natively off the event loop
   * (native/tokenizer/json_scan.h) with JSON.parse's semantics. Native code holds the Buffer until it is parsed.
   */
  vocabJson?: Buffer;
  /** The raw JSON text of model.merges (an array of "a b" or [a, b]), resolved natively like vocabJson. */
  mergesJson?: Buffer;
  /**
   * Or tiktoken ranks parsed natively: a .tiktoken file ('tiktoken') or the tiktoken package's bpe_ranks JSON
   * string literal, quotes included ('package-json-string'). Token bytes are raw (vocabIsBytes).
   */
  ranks?: Buffer;
  ranksFormat?: 'tiktoken' | 'package-json-string';
  /** The unknown token by its string (with vocabJson), resolved natively; unkId is null then. */
  unkToken?: string;
  /** true: vocabBytes are raw token bytes (tiktoken); false: token strings as in tokenizer.json (UTF-8). */
  vocabIsBytes: boolean;
  /** BPE merges as (left id, right id) pairs in rank order. */
  merges: Uint32Array;
  /**
   * Or (when `merges` is empty) the merges as UTF-8 text resolved natively: "left right" per line, or, with
   * mergesTextPairs, left and right on consecutive lines. Faster to load than resolving 300k merges in JS.
   */
  mergesText?: Buffer;
  mergesTextPairs?: boolean;
  /** tiktoken: derive merges from the vocabulary, a pair's rank being the merged token's id. */
  mergesFromRanks: boolean;
  ignoreMerges: boolean;
  byteFallback: boolean;
  fuseUnk: boolean;
  unkId: number | null;
  continuingSubwordPrefix?: string;
  maxInputCharsPerWord?: number;
  /** Unigram: the score (log probability) of each id, one per vocabulary entry. */
  scores?: Float64Array;
}

/** The compact description built by src/tokenizer/spec.ts from tokenizer.json or a tiktoken rank file. */
export interface NativeTokenizerSpec {
  model: NativeModelSpec;
  normalizers: NativeNormalizerSpec[];
  preTokenizers: NativePreTokenizerSpec[];
  decoders: NativeDecoderSpec[];
  hasDecoder: boolean;
  addedTokens: NativeAddedToken[];
  postPrefix: number[];
  postSuffix: number[];
}

export interface NativeDecodeStream {
  readonly [nativeDecodeStreamBrand]: true;
  step(id: number): string;
  flush(): string;
}

export interface NativeTokenizer {
  readonly [nativeTokenizerBrand]: true;
  encode(text: string, addSpecialTokens: boolean): Uint32Array;
  count(text: string, addSpecialTokens: boolean): number;
  /** Writes the ids into `out` when they fit; returns how many there are either way. */
  encodeInto(text: string, addSpecialTokens: boolean, out: Uint32Array): number;
  encodeBatch(texts: string[], addSpecialTokens: boolean, threads?: number): Promise<Uint32Array[]>;
  countBatch(texts: string[], addSpecialTokens: boolean, threads?: number): Promise<Uint32Array>;
  decode(ids: Uint32Array, skipSpecialTokens: boolean): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  isSpecial(id: number): boolean;
  vocabSize(): number;
  decodeStream(skipSpecialTokens: boolean): NativeDecodeStream;
  dispose(): void;
}

export interface NativeTokenizerApi {
  createTokenizer(spec: NativeTokenizerSpec): Promise<NativeTokenizer>;
  /**
   * Byte ranges [begin, end) of the values at the given key paths of a JSON document (the last of duplicated keys,
   * as JSON.parse keeps), or null where absent; found on a worker thread. Rejects with ERR_TOKENIZER_SPEC (naming
   * `field` and a byte offset) when the document is not well-formed JSON.
   */
  scanJsonFields(bytes: Buffer, paths: string[][], field: string): Promise<([number, number] | null)[]>;
  /** A whole file read on a worker thread into memory with 2 MiB pages where available (fewer page faults). */
  readFileBig(path: string): Promise<Buffer>;
}
