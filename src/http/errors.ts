/**
 * HTTP errors: the one table that maps tokmeter error codes (and fastify's) to OpenAI-shaped error bodies
 * in one place. Every part throws its own typed error with a stable `code`; routes never pick a status.
 *
 *   { "error": { "message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": "..." } }
 *
 * Retry-After (seconds, rounded up) and retry-after-ms are sent for rate limits, budgets and overload.
 */
import { TokmeterError } from '../errors.js';

/** An error raised by the server itself (auth, request validation, routing), with the offending parameter. */
export class ApiError extends TokmeterError {
  constructor(
    code: string,
    message: string,
    readonly param: string | null = null,
    readonly retryAfterMs?: number,
  ) {
    super(code, message);
  }
}

/** A path that exists, asked with a method it does not answer: 405 with the `Allow` header. */
export class MethodNotAllowedError extends ApiError {
  constructor(
    method: string,
    path: string,
    readonly allow: readonly string[],
  ) {
    super('ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use ${allow.join(' or ')}`);
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
}

interface Entry {
  status: number;
  type: string;
  /** OpenAI's `code` field; null = none. */
  openaiCode: string | null;
  /** Whether the tokmeter message is safe and useful to show to the caller (false: a generic message). */
  expose?: boolean;
}

/**
 * tokmeter code → HTTP status and OpenAI error type/code. Codes missing here are 500 server_error.
 * Rate limits whose request can never fit (retryAfterMs = Infinity) stay 429 but carry no Retry-After.
 */
export const ERROR_TABLE: Readonly<Record<string, Entry>> = {
  // ---- the server ----
  ERR_MISSING_API_KEY: { status: 401, type: 'invalid_request_error', openaiCode: 'missing_api_key' },
  ERR_INVALID_API_KEY: { status: 401, type: 'invalid_request_error', openaiCode: 'invalid_api_key' },
  ERR_DASHBOARD_AUTH: { status: 401, type: 'invalid_request_error', openaiCode: 'invalid_api_key' },
  ERR_INVALID_QUERY: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_request' },
  // Too many wrong operator keys (metrics, admin) from one client address: Retry-After says when to try again.
  ERR_AUTH_THROTTLED: { status: 429, type: 'rate_limit_error', openaiCode: 'too_many_failed_attempts' },
  ERR_INVALID_REQUEST: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_request' },
  ERR_UNKNOWN_PARAMETER: { status: 400, type: 'invalid_request_error', openaiCode: 'unknown_parameter' },
  ERR_UNSUPPORTED_PARAMETER: { status: 400, type: 'invalid_request_error', openaiCode: 'unsupported_parameter' },
  ERR_UNKNOWN_MODEL: { status: 404, type: 'invalid_request_error', openaiCode: 'model_not_found' },
  ERR_NOT_FOUND: { status: 404, type: 'invalid_request_error', openaiCode: 'not_found' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error', openaiCode: 'method_not_allowed' },
  ERR_ARRAY_TOO_LONG: { status: 400, type: 'invalid_request_error', openaiCode: 'array_above_max_length' },
  ERR_SHUTTING_DOWN: { status: 503, type: 'server_error', openaiCode: 'shutting_down' },
  // ---- node's HTTP parser and request clocks (http.ts) ----
  ERR_MALFORMED_HTTP: { status: 400, type: 'invalid_request_error', openaiCode: 'malformed_request' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, type: 'invalid_request_error', openaiCode: 'request_timeout' },
  HPE_HEADER_OVERFLOW: { status: 431, type: 'invalid_request_error', openaiCode: 'request_headers_too_large' },
  // ---- fastify (routing) ----
  FST_ERR_BAD_URL: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_url' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, type: 'invalid_request_error', openaiCode: 'uri_too_long' },
  ERR_OVERLOADED: { status: 503, type: 'server_error', openaiCode: 'server_overloaded' },
  ERR_QUEUE_FULL: { status: 503, type: 'server_error', openaiCode: 'server_overloaded' },
  ERR_GENERATION_ABORTED: { status: 503, type: 'server_error', openaiCode: 'generation_aborted' },
  // ---- fastify (body parsing) ----
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error', openaiCode: 'request_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, type: 'invalid_request_error', openaiCode: 'unsupported_media_type' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_request' },
  // ---- arguments (model, tokenizer, meter) ----
  ERR_INVALID_ARGUMENT: { status: 400, type: 'invalid_request_error', openaiCode: 'invalid_request' },
  ERR_NO_CHAT_TEMPLATE: { status: 400, type: 'invalid_request_error', openaiCode: 'chat_template_missing' },
  // ---- admission (src/usage, src/model) ----
  ERR_CONTEXT_LENGTH: { status: 400, type: 'invalid_request_error', openaiCode: 'context_length_exceeded' },
  // The model's KV budget (Model.load kvCacheBytes) cannot hold prompt + max_tokens: for the client, the same
  // remedy as a context length (fewer tokens); the message names the budget.
  ERR_KV_BUDGET: { status: 400, type: 'invalid_request_error', openaiCode: 'context_length_exceeded' },
  ERR_INPUT_TOO_LONG: { status: 400, type: 'invalid_request_error', openaiCode: 'input_too_long' },
  ERR_RATE_LIMIT: { status: 429, type: 'rate_limit_error', openaiCode: 'rate_limit_exceeded' },
  // A request that no wait can admit (larger than the key's tokens per minute or than its budget): a 400, so that
  // clients do not retry it.
  ERR_REQUEST_OVER_LIMIT: { status: 400, type: 'invalid_request_error', openaiCode: 'request_over_limit' },
  ERR_BUDGET_EXCEEDED: { status: 429, type: 'insufficient_quota', openaiCode: 'insufficient_quota' },
  ERR_SPOOL_FULL: { status: 503, type: 'server_error', openaiCode: 'ledger_unavailable' },
  ERR_LIMITER_UNAVAILABLE: { status: 503, type: 'server_error', openaiCode: 'limiter_unavailable' },
  ERR_LEDGER_CLOSED: { status: 503, type: 'server_error', openaiCode: 'shutting_down' },
  // The ledger's database failed: retry later; its message may name the database, so it is logged, not sent.
  ERR_LEDGER: { status: 503, type: 'server_error', openaiCode: 'ledger_unavailable', expose: false },
  ERR_DISPOSED: { status: 503, type: 'server_error', openaiCode: 'shutting_down' },
  // ---- server faults: the caller cannot fix these; the message is logged, not sent ----
  ERR_PRICE: { status: 500, type: 'server_error', openaiCode: 'pricing_error', expose: false },
  ERR_INFERENCE: { status: 500, type: 'server_error', openaiCode: 'inference_error', expose: false },
};

const PARAM_OF: Readonly<Record<string, string>> = {
  ERR_CONTEXT_LENGTH: 'messages',
  ERR_INPUT_TOO_LONG: 'messages',
  ERR_KV_BUDGET: 'max_tokens',
};

/**
 * Retry-After of a full model queue: the engine cannot say when a slot frees (that depends on the running
 * generations' lengths), so clients get a short fixed hint rather than none, as for the server's own overload.
 */
export const QUEUE_FULL_RETRY_MS = 1000;

function retryAfterOf(err: unknown): number | undefined {
  const e = err as { code?: string; retryAfterMs?: unknown; resetsAt?: unknown };
  if (typeof e.retryAfterMs === 'number') return e.retryAfterMs;
  if (e.code === 'ERR_QUEUE_FULL') return QUEUE_FULL_RETRY_MS;
  if (e.code === 'ERR_BUDGET_EXCEEDED' && typeof e.resetsAt === 'number') return Math.max(1, e.resetsAt - Date.now());
  return undefined;
}

/**
 * Maps any thrown value to status, headers and an OpenAI error body. `promptParam` names the request's prompt
 * field ('messages' or 'prompt') for context-length errors.
 */
export function toHttpError(err: unknown, promptParam = 'messages'): HttpError {
  const e = (err ?? {}) as { code?: unknown; message?: unknown; statusCode?: unknown; param?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  let entry = code !== undefined ? ERROR_TABLE[code] : undefined;
  if (!entry && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Another client error from fastify (e.g. a malformed header): keep its status, say what it was.
    entry = { status: e.statusCode, type: 'invalid_request_error', openaiCode: 'invalid_request' };
  }
  entry ??= { status: 500, type: 'server_error', openaiCode: 'internal_error', expose: false };
  const message =
    entry.expose === false
      ? `internal server error (${code ?? 'unexpected'}); the request was not completed`
      : typeof e.message === 'string'
        ? e.message
        : String(err);
  let param: string | null = typeof e.param === 'string' ? e.param : null;
  if (param === null && code !== undefined && PARAM_OF[code])
    param = PARAM_OF[code] === 'messages' ? promptParam : PARAM_OF[code]!;
  const headers: Record<string, string> = {};
  const retry = retryAfterOf(err);
  if (retry !== undefined && Number.isFinite(retry) && entry.status >= 429) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(retry / 1000)));
    headers['retry-after-ms'] = String(Math.max(1, Math.ceil(retry)));
  }
  if (err instanceof MethodNotAllowedError) headers.allow = err.allow.join(', ');
  let type = entry.type;
  if (code === 'ERR_RATE_LIMIT') {
    const limit = (err as { limit?: unknown }).limit;
    type = limit === 'tpm' ? 'tokens' : 'requests'; // as OpenAI names the exhausted resource
  }
  return { status: entry.status, headers, body: { error: { message, type, param, code: entry.openaiCode } } };
}
