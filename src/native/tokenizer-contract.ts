/**
 * The tokenizer's slice of the native addon (native/addon/js_tokenizer.cc). Only src/tokenizer/native.ts uses it;
 * everything else goes through the `Tokenizer` class that owns the handle.
 */

declare const nativeTokenizerBrand: unique symbol;
declare const nativeDecodeStreamBrand: unique symbol;

/**
 * What createTokenizer reads: a tokenizer.json or a tiktoken encoding, as a file (read natively, on the worker thread)
 * or as bytes. Native code parses and validates everything (native/tokenizer/tokenizer.h); `name` names the source
 * in error messages (default: the file path).
 */
export type NativeTokenizerSource = ({ file: string; bytes?: undefined } | { bytes: Buffer; file?: undefined }) & {
  name?: string;
} & (
    | {
        format: 'tokenizer.json';
        /**
         * tokenizer_config.json's bos_token / eos_token (contents of added tokens) and add_bos_token / add_eos_token:
         * when given, they put the token into (or take it out of) the post-processor's prefix / suffix.
         */
        bosToken?: string;
        eosToken?: string;
        addBosToken?: boolean;
        addEosToken?: boolean;
      }
    | {
        format: 'tiktoken';
        /** The split regex (required for a .tiktoken rank file; overrides a package JSON file's pat_str). */
        pattern?: string;
        /** Special tokens as [content, id] (override a package JSON file's special_tokens). */
        specialTokens?: [string, number][];
      }
  );

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
  /**
   * Reads and builds a tokenizer on a worker thread. Rejects with ERR_TOKENIZER_SPEC (malformed, naming the JSON path
   * or the file) or ERR_TOKENIZER_UNSUPPORTED (a component type tokmeter does not implement, naming its JSON path).
   */
  createTokenizer(source: NativeTokenizerSource): Promise<NativeTokenizer>;
  /** A whole file read on a worker thread into memory with 2 MiB pages where available (fewer page faults). */
  readFileBig(path: string): Promise<Buffer>;
}
