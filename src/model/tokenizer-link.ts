/**
 * How src/model reaches the native handle of a Tokenizer, to give the C++ generation loop an incremental
 * detokenizer (native/addon/js_model.cc wraps tokenizer::DecodeStream): the model decodes with exactly the
 * tokenizer that encoded its prompt.
 */
import type { NativeTokenizer } from '../native/tokenizer-contract.js';
import { Tokenizer } from '../tokenizer/index.js';

export interface DetokenizerSource {
  handle(): NativeTokenizer;
  dispose(): void;
}

/** The tokenizer stays owned by the Model, which disposes it; this source owns nothing of its own. */
export function detokenizerFor(tokenizer: Tokenizer): DetokenizerSource {
  return { handle: () => Tokenizer.nativeHandle(tokenizer), dispose: () => {} };
}
