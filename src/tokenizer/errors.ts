/** Tokenizer error classes and their codes (registered with src/errors.ts). */
import { TokmeterError, registerErrorCode } from '../errors.js';

/**
 * tokenizer.json / tiktoken file is malformed (ERR_TOKENIZER_SPEC) or names an unsupported component
 * (ERR_TOKENIZER_UNSUPPORTED). Native code reads the file and names the JSON path at fault in the message.
 */
export class TokenizerSpecError extends TokmeterError {}

registerErrorCode('ERR_TOKENIZER_SPEC', TokenizerSpecError);
registerErrorCode('ERR_TOKENIZER_UNSUPPORTED', TokenizerSpecError);

/** The native tokenizer failed while encoding (ERR_TOKENIZER_INTERNAL, e.g. the regex engine reported an error). */
export class TokenizerError extends TokmeterError {}
registerErrorCode('ERR_TOKENIZER_INTERNAL', TokenizerError);

/**
 * A regex of the tokenizer file (a Split pre-tokenizer or Replace normalizer pattern) exceeded its match budget on
 * this input (ERR_TOKENIZER_REGEX_LIMIT): it backtracks catastrophically. The budget grows with the input, so the
 * patterns of real tokenizers never reach it; the message names the pattern's field.
 */
export class RegexLimitError extends TokmeterError {}
registerErrorCode('ERR_TOKENIZER_REGEX_LIMIT', RegexLimitError);

export function specError(field: string, problem: string): TokenizerSpecError {
  return new TokenizerSpecError('ERR_TOKENIZER_SPEC', `invalid tokenizer: ${field}: ${problem}`);
}
