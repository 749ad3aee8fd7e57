/**
 * Metering errors. Every class extends TokmeterError (src/errors.ts) and has a stable `code`; the HTTP layer maps
 * codes to OpenAI error types (ERR_INPUT_TOO_LONG / ERR_CONTEXT_LENGTH → 400, ERR_RATE_LIMIT → 429 with
 * Retry-After, ERR_BUDGET_EXCEEDED → 402/429, ERR_SPOOL_FULL → 503). Bad arguments throw TokmeterTypeError
 * (ERR_INVALID_ARGUMENT). Kept in this file (not appended to src/errors.ts) so the shared file stays small; the
 * lead may move them.
 */
import { ContextLengthError, TokmeterError } from '../errors.js';

export { ContextLengthError };

export { TokmeterTypeError } from '../errors.js';

/** Base class of metering errors. */
export class UsageError extends TokmeterError {}

/** Raw input bytes or prompt tokens over the configured maximum. Nothing was computed. */
export class InputTooLongError extends UsageError {
  constructor(
    readonly limitKind: 'bytes' | 'tokens',
    readonly actual: number,
    readonly limit: number,
  ) {
    super(
      'ERR_INPUT_TOO_LONG',
      limitKind === 'bytes'
        ? `input is ${actual} bytes, over the limit of ${limit} bytes`
        : `input is ${actual} tokens, over the limit of ${limit} tokens per request`,
    );
  }
}

/** Prompt tokens plus the requested completion tokens do not fit the model's context window (one class for the Meter
 * and the Model: src/errors.ts). */
export function contextLengthError(
  promptTokens: number,
  maxNewTokens: number,
  contextLength: number,
): ContextLengthError {
  return new ContextLengthError(
    'ERR_CONTEXT_LENGTH',
    `request needs ${promptTokens + maxNewTokens} tokens (${promptTokens} prompt + ${maxNewTokens} new), ` +
      `over the model's context length of ${contextLength}`,
    { promptTokens, contextLength, maxNewTokens },
  );
}

/**
 * A per-key rate limit refused the request. `retryAfterMs` is when the same request would be admitted if nothing
 * else arrives; `Infinity` when it can never fit (the request alone is larger than the limit).
 */
export class RateLimitError extends UsageError {
  constructor(
    readonly key: string,
    readonly limit: 'rpm' | 'tpm',
    readonly retryAfterMs: number,
    message: string,
    /** What the request asked for and the key's limit, in the limit's unit (requests or tokens), when known. */
    readonly amounts?: { requested: number; limit: number },
  ) {
    super('ERR_RATE_LIMIT', message);
  }
}

/** The key's spending budget for the current period cannot cover the request's maximum cost. */
export class BudgetExceededError extends UsageError {
  constructor(
    readonly key: string,
    readonly period: string,
    /** pico-units already spent or reserved in this period */
    readonly spent: bigint,
    readonly budget: bigint,
    readonly requested: bigint,
    readonly resetsAt: number,
  ) {
    super(
      'ERR_BUDGET_EXCEEDED',
      `key '${key}' ${period} budget exhausted: ${spent} spent/reserved + ${requested} requested > ${budget} ` +
        `(pico-units); resets at ${new Date(resetsAt).toISOString()}`,
    );
  }
}

/** The local spool is full (the database has been unreachable for a while); new requests are refused. */
export class SpoolFullError extends UsageError {
  constructor(
    readonly spoolBytes: number,
    readonly maxBytes: number,
    readonly lastDbError: string | undefined,
  ) {
    super(
      'ERR_SPOOL_FULL',
      `usage spool is full (${spoolBytes} of ${maxBytes} bytes pending); the ledger database is not accepting ` +
        `writes${lastDbError ? ` (last error: ${lastDbError})` : ''}`,
    );
  }
}

/** No price for a model or custom meter, or a malformed price table. */
export class PriceError extends UsageError {
  constructor(message: string) {
    super('ERR_PRICE', message);
  }
}

/** The ledger was closed, another process holds its spool, or a read-only ledger was asked to write. */
export class LedgerError extends UsageError {
  constructor(
    code: 'ERR_LEDGER_CLOSED' | 'ERR_SPOOL_LOCKED' | 'ERR_LEDGER_READ_ONLY' | 'ERR_LEDGER',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
