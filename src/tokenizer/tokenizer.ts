/**
 * Tokenizer: exact token counting and encoding over the native engine (native/tokenizer).
 *
 * Owns one native handle. Sync calls (encode, count, decode) run on the calling thread and are cheap for short
 * strings; batch calls run on native threads off the event loop. dispose() is idempotent; later calls throw
 * ClosedError (ERR_DISPOSED); batches already running finish (they hold their own reference).
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { TokmeterTypeError, mapNativeErrors, toTokmeterError } from '../errors.js';
import type { NativeDecodeStream, NativeTokenizer, NativeTokenizerSource } from '../native/tokenizer-contract.js';
import {
  ChatTemplates,
  parseChatTemplates,
  validateMessages,
  type ChatMessage,
  type ChatTemplateOptions,
} from './chat.js';
import { expectPath } from '../validate.js';
import { specError } from './errors.js';
import { describe } from './json.js';
import { tokenizerAddon } from './native.js';
import { tiktokenSource, type TiktokenOptions } from './tiktoken.js';

export interface EncodeOptions {
  /** Apply the post-processor (e.g. BOS). Default true, as in the reference. */
  addSpecialTokens?: boolean;
}
export interface BatchOptions extends EncodeOptions {
  /** Native threads (default: all cores). */
  threads?: number;
}
export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

interface TokenizerMeta {
  bosTokenId?: number;
  eosTokenIds: number[];
  chat: ChatTemplates;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TokmeterTypeError(`expected a string for ${what}, got ${describe(v)}`);
  return v;
}

function flag(opts: unknown, key: string, fallback: boolean): boolean {
  if (opts === undefined) return fallback;
  if (typeof opts !== 'object' || opts === null)
    throw new TokmeterTypeError(`expected an options object, got ${describe(opts)}`);
  const v = (opts as Record<string, unknown>)[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new TokmeterTypeError(`expected a boolean for ${key}, got ${describe(v)}`);
  return v;
}

function threadsOf(opts: BatchOptions | undefined): number | undefined {
  const t = opts?.threads;
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 256)
    throw new TokmeterTypeError(`expected an integer in [1, 256] for threads, got ${describe(t)}`);
  return t;
}

function textArray(v: unknown): string[] {
  if (!Array.isArray(v)) throw new TokmeterTypeError(`expected an array of strings for texts, got ${describe(v)}`);
  for (let i = 0; i < v.length; i++)
    if (typeof v[i] !== 'string')
      throw new TokmeterTypeError(`expected a string for texts[${i}], got ${describe(v[i])}`);
  return v as string[];
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    // Natively, into huge pages: a 10 MB file in fresh 4 KiB pages costs ~30-40 ms of page faults here.
    bytes = await tokenizerAddon().readFileBig(file);
  } catch (err) {
    throw specError(file, `cannot read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw specError(file, `not valid JSON: ${(err as Error).message}`);
  }
}

/** A tokenizer.json object as the bytes native code reads. */
function jsonBytes(json: unknown): Buffer {
  let text: string | undefined;
  try {
    text = JSON.stringify(json);
  } catch (err) {
    // Deeply nested objects overflow JSON.stringify's stack; cycles and BigInts are refused too.
    throw specError(
      'tokenizer.json',
      `the object cannot be serialised (nested more than JSON.stringify takes, or cyclic): ${(err as Error).message}`,
    );
  }
  if (text === undefined) throw specError('tokenizer.json', `expected an object, got ${describe(json)}`);
  return Buffer.from(text, 'utf8');
}

/** Reused by encode() for short texts (sync calls only, so one per thread is enough). */
const encodeScratch = new Uint32Array(8192);

/** Streaming detokenizer: step(id) returns only complete characters; flush() returns what is held back. */
export class DecodeStream {
  /** @internal */
  constructor(private readonly native: NativeDecodeStream) {}
  step(id: number): string {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new TokmeterTypeError(`expected a token id, got ${describe(id)}`);
    try {
      return this.native.step(id);
    } catch (err) {
      throw toTokmeterError(err);
    }
  }
  flush(): string {
    return mapNativeErrors(() => this.native.flush());
  }
}

export class Tokenizer {
  #native: NativeTokenizer | null;
  #meta: TokenizerMeta;
  /** Vocabulary size, added tokens included (largest id + 1). */
  readonly vocabSize: number;

  private constructor(native: NativeTokenizer, meta: TokenizerMeta) {
    this.#native = native;
    this.#meta = meta;
    this.vocabSize = native.vocabSize();
  }

  /** Reads and builds the native tokenizer (on a worker thread). */
  static async #create(source: NativeTokenizerSource, meta: Partial<TokenizerMeta> = {}): Promise<Tokenizer> {
    let native: NativeTokenizer;
    try {
      native = await tokenizerAddon().createTokenizer(source);
    } catch (err) {
      throw toTokmeterError(err);
    }
    return new Tokenizer(native, { eosTokenIds: [], chat: new ChatTemplates(new Map(), {}), ...meta });
  }

  /** A tokenizer.json object (already parsed) or its text. */
  static async fromJSON(json: unknown): Promise<Tokenizer> {
    const bytes = typeof json === 'string' ? Buffer.from(json, 'utf8') : jsonBytes(json);
    return Tokenizer.#create({ format: 'tokenizer.json', bytes, name: 'tokenizer.json' });
  }

  /** Loads a tokenizer.json file. */
  static async fromFile(file: string): Promise<Tokenizer> {
    expectPath('file', file);
    return Tokenizer.#create({ format: 'tokenizer.json', file });
  }

  /**
   * Loads a model folder: tokenizer.json, plus tokenizer_config.json when present (special tokens, add_bos_token /
   * add_eos_token, chat_template) and generation_config.json (eos_token_id).
   */
  static async fromPretrained(dir: string): Promise<Tokenizer> {
    expectPath('dir', dir);
    let config: Record<string, unknown> = {};
    const configFile = path.join(dir, 'tokenizer_config.json');
    if (await exists(configFile)) config = (await readJson(configFile)) as Record<string, unknown>;
    if (typeof config !== 'object' || config === null) throw specError('tokenizer_config.json', 'expected an object');
    const bosToken = tokenContent(config.bos_token);
    const eosToken = tokenContent(config.eos_token);
    // add_bos_token / add_eos_token, when given, decide the post-processor's BOS / EOS as transformers does (native
    // code applies them, and resolves bos_token / eos_token among the added tokens, then the model vocabulary).
    const tokenizer = await Tokenizer.#create({
      format: 'tokenizer.json',
      file: path.join(dir, 'tokenizer.json'),
      ...(bosToken !== undefined ? { bosToken } : {}),
      ...(eosToken !== undefined ? { eosToken } : {}),
      ...(typeof config.add_bos_token === 'boolean' ? { addBosToken: config.add_bos_token } : {}),
      ...(typeof config.add_eos_token === 'boolean' ? { addEosToken: config.add_eos_token } : {}),
    });
    const bos = bosToken === undefined ? undefined : tokenizer.tokenToId(bosToken);
    const eos = eosToken === undefined ? undefined : tokenizer.tokenToId(eosToken);
    const eosIds = new Set<number>(eos === undefined ? [] : [eos]);
    const genFile = path.join(dir, 'generation_config.json');
    if (await exists(genFile)) {
      const gen = (await readJson(genFile)) as Record<string, unknown>;
      const e = typeof gen === 'object' && gen !== null ? gen.eos_token_id : undefined;
      for (const id of Array.isArray(e) ? e : [e]) if (typeof id === 'number') eosIds.add(id);
    }
    const specials: Record<string, string> = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const c = tokenContent(config[k]);
      if (c !== undefined) specials[k] = c;
    }
    tokenizer.#meta = {
      ...(bos !== undefined ? { bosTokenId: bos } : {}),
      eosTokenIds: [...eosIds],
      chat: new ChatTemplates(parseChatTemplates(config.chat_template), specials),
    };
    return tokenizer;
  }

  /** A tiktoken encoding by name (cl100k_base, o200k_base, p50k_base, p50k_edit, r50k_base, gpt2) or rank file. */
  static async fromTiktoken(nameOrFile: string, opts: TiktokenOptions = {}): Promise<Tokenizer> {
    expectPath('encoding name or file', nameOrFile);
    const tokenizer = await Tokenizer.#create(tiktokenSource(nameOrFile, opts));
    const eot = tokenizer.tokenToId('<|endoftext|>');
    if (eot !== undefined && tokenizer.isSpecialToken(eot))
      tokenizer.#meta = { ...tokenizer.#meta, eosTokenIds: [eot] };
    return tokenizer;
  }

  get bosTokenId(): number | undefined {
    return this.#meta.bosTokenId;
  }
  get eosTokenIds(): readonly number[] {
    return this.#meta.eosTokenIds;
  }

  /**
   * @internal The native handle, for src/model only: the generation loop decodes with the same native tokenizer
   * (native/addon/js_model.cc wraps its DecodeStream). Throws ERR_DISPOSED after dispose().
   */
  static nativeHandle(t: Tokenizer): NativeTokenizer {
    return t.#handle();
  }

  #handle(): NativeTokenizer {
    if (!this.#native)
      throw toTokmeterError(Object.assign(new Error('the tokenizer was disposed'), { code: 'ERR_DISPOSED' }));
    return this.#native;
  }

  encode(input: string, opts?: EncodeOptions): Uint32Array {
    const h = this.#handle();
    const add = flag(opts, 'addSpecialTokens', true);
    if (typeof input !== 'string') text(input, 'text');
    // Short texts: ids land in a reused array and are sliced here (cheaper than a typed array made in native code).
    return mapNativeErrors(() => {
      if (input.length <= 4096) {
        const n = h.encodeInto(input, add, encodeScratch);
        if (n <= encodeScratch.length) return encodeScratch.slice(0, n);
      }
      return h.encode(input, add);
    });
  }

  count(input: string, opts?: EncodeOptions): number {
    const h = this.#handle();
    const add = flag(opts, 'addSpecialTokens', true);
    if (typeof input !== 'string') text(input, 'text');
    return mapNativeErrors(() => h.count(input, add));
  }

  async encodeBatch(texts: string[], opts?: BatchOptions): Promise<Uint32Array[]> {
    const h = this.#handle();
    try {
      return await h.encodeBatch(textArray(texts), flag(opts, 'addSpecialTokens', true), threadsOf(opts));
    } catch (err) {
      throw toTokmeterError(err);
    }
  }

  /** Token counts of many texts, computed on native threads off the event loop. */
  async countBatch(texts: string[], opts?: BatchOptions): Promise<Uint32Array> {
    const h = this.#handle();
    try {
      return await h.countBatch(textArray(texts), flag(opts, 'addSpecialTokens', true), threadsOf(opts));
    } catch (err) {
      throw toTokmeterError(err);
    }
  }

  decode(ids: Uint32Array | readonly number[], opts?: DecodeOptions): string {
    const h = this.#handle();
    const skip = flag(opts, 'skipSpecialTokens', false);
    let arr: Uint32Array;
    if (ids instanceof Uint32Array) arr = ids;
    else if (Array.isArray(ids)) {
      arr = new Uint32Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const v = ids[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
          throw new TokmeterTypeError(`expected a token id for ids[${i}], got ${describe(v)}`);
        arr[i] = v;
      }
    } else throw new TokmeterTypeError(`expected a Uint32Array or an array of token ids, got ${describe(ids)}`);
    try {
      return h.decode(arr, skip);
    } catch (err) {
      throw toTokmeterError(err);
    }
  }

  decodeStream(opts?: DecodeOptions): DecodeStream {
    const skip = flag(opts, 'skipSpecialTokens', false);
    return new DecodeStream(mapNativeErrors(() => this.#handle().decodeStream(skip)));
  }

  tokenToId(token: string): number | undefined {
    const h = this.#handle();
    text(token, 'token');
    return mapNativeErrors(() => h.tokenToId(token));
  }
  idToToken(id: number): string | undefined {
    const h = this.#handle();
    return mapNativeErrors(() => h.idToToken(id));
  }
  isSpecialToken(id: number): boolean {
    const h = this.#handle();
    return mapNativeErrors(() => h.isSpecial(id));
  }

  /** Renders the tokenizer's chat template (tokenizer_config.json) for `messages`. */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string {
    this.#handle();
    return this.#meta.chat.render(validateMessages(messages), opts);
  }

  /**
   * The chat template that applyChatTemplate uses for `opts` (the 'tool_use' one for tools when the config names
   * one), or undefined when the tokenizer has none.
   */
  chatTemplate(opts?: Pick<ChatTemplateOptions, 'templateName' | 'tools'>): string | undefined {
    this.#handle();
    return this.#meta.chat.source(opts);
  }

  /** Tokens of the rendered chat template (special tokens written by the template count; none are added). */
  countChat(messages: ChatMessage[], opts?: ChatTemplateOptions): number {
    return this.count(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }

  dispose(): void {
    if (!this.#native) return;
    this.#native.dispose();
    this.#native = null;
  }
}
