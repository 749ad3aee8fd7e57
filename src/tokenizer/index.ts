export { Tokenizer, DecodeStream } from './tokenizer.js';
export type { EncodeOptions, BatchOptions, DecodeOptions } from './tokenizer.js';
export type { ChatMessage, ChatTemplateOptions } from './chat.js';
export { continueFinalMessage } from './chat.js';
export { TIKTOKEN_ENCODINGS } from './tiktoken.js';
export type { TiktokenEncodingName, TiktokenOptions } from './tiktoken.js';
export { TokenizerSpecError, TokenizerError, RegexLimitError } from './errors.js';
