/**
 * Request bodies of the OpenAI-compatible routes, validated at the edge: an ill-typed field, or an OpenAI feature
 * this server does not implement at a value that would change the output, is a 400 that names the field. Nothing is
 * coerced. `null` means "not given" for the fields OpenAI documents as nullable. Fields that cannot change the
 * output are accepted (`metadata`, `store: false`, `service_tier` auto/default, `parallel_tool_calls` without
 * tools, `messages[].name`); an unknown top-level field of a generation request is ignored and listed in
 * `ignored` (the server names them in the `x-tokmeter-ignored` header and its log). Generation options (sampling,
 * max_tokens, stop) are checked against the one option table the library uses too (src/usage/generate-options.ts),
 * with the API's names.
 */
import { TokmeterTypeError } from '../errors.js';
import {
  GENERATE_OPTIONS,
  optionProblem,
  type MeterablePromptInput as PromptInput,
  type OptionSpec,
} from '../usage/index.js';
import { ApiError } from '../http/errors.js';
import type { ToolChatMessage } from '../tools/index.js';
import {
  GUIDED_FIELDS,
  parseStructured,
  parseToolCalls,
  parseToolRequest,
  type StructuredRequest,
  type ToolRequest,
} from './tool-requests.js';

/**
 * Bounds of a chat request, checked while its body is validated, before the chat template renders it: rendering
 * costs time in the messages and their size, on the event loop.
 */
export interface ChatLimits {
  /** Messages per chat request; more is a 400 `array_above_max_length` on 'messages'. Default 2,048. */
  maxChatMessages?: number;
  /** UTF-8 bytes of all message contents together; more is a 400 `input_too_long` on 'messages'. Default 1 MiB. */
  maxChatContentBytes?: number;
}

export const DEFAULT_CHAT_LIMITS: Readonly<Required<ChatLimits>> = {
  maxChatMessages: 2048,
  maxChatContentBytes: 1024 * 1024,
};

/** Validates configured chat limits (integers >= 1) and fills in the defaults. */
export function checkChatLimits(o: ChatLimits): Required<ChatLimits> {
  const out = { ...DEFAULT_CHAT_LIMITS };
  for (const name of ['maxChatMessages', 'maxChatContentBytes'] as const) {
    const v = o[name];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new TokmeterTypeError(`expected an integer >= 1 for ${name}, got ${String(v)}`);
    }
    out[name] = v;
  }
  return out;
}

/** Server-side bounds of a generation request. */
export interface RequestLimits extends Required<ChatLimits> {
  /** Most choices per request: `n` times the prompts of a batched completion. */
  maxChoices: number;
}

export const DEFAULT_LIMITS: RequestLimits = { ...DEFAULT_CHAT_LIMITS, maxChoices: 8 };

export interface SamplingRequest {
  model: string;
  /** The first (chat: the only) prompt. */
  input: PromptInput;
  /** Every prompt of the request, in order (a completion's batched `prompt` array; else `[input]`). */
  inputs: PromptInput[];
  /** Choices per prompt (`n`). */
  n: number;
  /** Log-probability of each sampled token (chat `logprobs: true`, completions `logprobs` ≥ 0). */
  logprobs: boolean;
  /** Alternatives listed per token (chat `top_logprobs` 0-20, completions `logprobs` 0-5); 0 with `logprobs` off. */
  topLogprobs: number;
  /** Unknown top-level fields that were ignored, in body order. */
  ignored: string[];
  /** Prompt field name for error params: 'messages', 'prompt' or (Responses) 'input'. */
  promptParam: 'messages' | 'prompt' | 'input';
  maxTokens: number | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  seed: number | undefined;
  stop: string[] | undefined;
  /** The other samplers the engine has (vLLM's top_k, min_p, repetition_penalty; OpenAI's penalties). */
  samplers: Samplers;
  stream: boolean;
  includeUsage: boolean;
  /** The request's tools and tool choice (chat, Responses); undefined without tools. */
  tools?: ToolRequest;
  /** The structured output asked for (`response_format`, vLLM's guided fields, Responses' `text.format`). */
  structured?: StructuredRequest;
}

export interface Samplers {
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** OpenAI's logit_bias when it holds a bias (an empty map changes nothing and is left out). */
  logitBias?: Record<string, number>;
}

import { bad, checkFields, expectBody, isObject, optBool, optInt, show, type Body } from './fields.js';

export { bad, checkFields, expectBody, isObject, optBool, optInt, show };

/**
 * A generation option by its HTTP name, checked against the option table (generate-options.ts) and reported with
 * the API's field name. `null` means not given.
 */
export function option(body: Body, field: string, spec: OptionSpec): unknown {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  const p = optionProblem(spec, v);
  if (p) {
    const where = `${field}${p.path}`;
    throw new ApiError(
      p.unsupported ? 'ERR_UNSUPPORTED_PARAMETER' : 'ERR_INVALID_REQUEST',
      p.message(`'${where}'`),
      where,
    );
  }
  return v;
}

export const O = GENERATE_OPTIONS;
/** The samplers read by their HTTP names (every sampler of the option table that Samplers lists). */
const SAMPLER_FIELDS = ['topK', 'minP', 'repetitionPenalty', 'presencePenalty', 'frequencyPenalty'] as const;

/** The samplers of `Samplers` that a body names, checked against the option table. */
export function samplersOf(body: Body): Samplers {
  const samplers: Samplers = {};
  for (const name of SAMPLER_FIELDS) {
    const v = option(body, O[name].http, O[name]) as number | undefined;
    if (v !== undefined) samplers[name] = v;
  }
  return samplers;
}

const isFalse = (v: unknown): boolean => v === false;
/** OpenAI's metadata: up to 16 string values (keys ≤ 64, values ≤ 512 characters); stored nowhere. */
const isMetadata = (v: unknown): boolean =>
  isObject(v) &&
  Object.keys(v).length <= 16 &&
  Object.entries(v).every(([k, x]) => k.length <= 64 && typeof x === 'string' && x.length <= 512);
/** 'auto' and 'default' are the standard tier, which is the only one there is. */
const isStandardTier = (v: unknown): boolean => v === 'auto' || v === 'default';

/** OpenAI fields accepted only at their default value (anything else is a clear 400, never silently ignored). */
const CHAT_UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  // The deprecated forms of tools: refused, so that a client using them learns it instead of getting text.
  functions: () => false,
  function_call: () => false,
  // Nothing is stored: `store: true` would promise a stored completion that never exists.
  store: isFalse,
  metadata: isMetadata,
  modalities: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text',
  audio: () => false,
  prediction: () => false,
  reasoning_effort: () => false,
  service_tier: isStandardTier,
  web_search_options: () => false,
};

const COMPLETION_UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  echo: isFalse,
  suffix: () => false,
  best_of: (v) => v === 1,
  metadata: isMetadata,
  store: isFalse,
  service_tier: isStandardTier,
};

const COMMON = [
  'model',
  'max_tokens',
  'temperature',
  'top_p',
  'seed',
  'stop',
  'n',
  'stream',
  'stream_options',
  'user',
  O.topK.http,
  O.minP.http,
  O.repetitionPenalty.http,
  O.presencePenalty.http,
  O.frequencyPenalty.http,
  O.logitBias.http,
  ...GUIDED_FIELDS,
];

function common(
  body: Body,
  inputs: PromptInput[],
  promptParam: 'messages' | 'prompt',
  limits: RequestLimits,
  logprobs: boolean,
  topLogprobs: number,
  ignored: string[],
): SamplingRequest {
  if (typeof body.model !== 'string' || body.model === '')
    bad('model', `expected a model id (string) for 'model', got ${show(body.model)}`);
  const maxTokens = option(body, 'max_tokens', O.maxNewTokens) as number | undefined;
  const maxCompletion = option(body, 'max_completion_tokens', O.maxNewTokens) as number | undefined;
  if (maxTokens !== undefined && maxCompletion !== undefined && maxTokens !== maxCompletion) {
    bad(
      'max_completion_tokens',
      `'max_tokens' (${maxTokens}) and 'max_completion_tokens' (${maxCompletion}) disagree; give one`,
    );
  }
  const n = optInt(body, 'n', 1) ?? 1;
  if (n * inputs.length > limits.maxChoices) {
    throw new ApiError(
      'ERR_UNSUPPORTED_PARAMETER',
      inputs.length > 1
        ? `${inputs.length} prompts x n=${n} = ${n * inputs.length} choices, over this server's maximum of ${limits.maxChoices} per request`
        : `n=${n} is over this server's maximum of ${limits.maxChoices} choices per request`,
      inputs.length > 1 && n === 1 ? 'prompt' : 'n',
    );
  }
  const s = option(body, 'stop', O.stop) as string | string[] | undefined;
  const stop = typeof s === 'string' ? [s] : s && s.length > 0 ? s : undefined;
  const samplers = samplersOf(body);
  const bias = option(body, 'logit_bias', O.logitBias) as Record<string, number> | undefined;
  if (bias && Object.keys(bias).length > 0) samplers.logitBias = bias;
  const stream = optBool(body, 'stream') ?? false;
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!stream) bad('stream_options', "'stream_options' is only allowed when 'stream' is true");
    if (!isObject(so)) bad('stream_options', `expected an object for 'stream_options', got ${show(so)}`);
    checkFields(so, ['include_usage'], {}, 'stream_options.');
    includeUsage = optBool(so, 'include_usage') ?? false;
  }
  if (body.user !== undefined && body.user !== null && typeof body.user !== 'string')
    bad('user', `expected a string for 'user', got ${show(body.user)}`);
  const structured = parseStructured(body, promptParam === 'messages');
  const tools = promptParam === 'messages' ? parseToolRequest(body, false) : undefined;
  return {
    model: body.model,
    input: inputs[0]!,
    inputs,
    n,
    logprobs,
    topLogprobs,
    ignored,
    promptParam,
    maxTokens: maxTokens ?? maxCompletion,
    temperature: option(body, 'temperature', O.temperature) as number | undefined,
    topP: option(body, 'top_p', O.topP) as number | undefined,
    seed: option(body, 'seed', O.seed) as number | undefined,
    stop,
    samplers,
    stream,
    includeUsage,
    ...(tools ? { tools } : {}),
    ...(structured ? { structured } : {}),
  };
}

function messageContent(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    // Content parts: only text is supported; the parts are joined in order, as OpenAI does for text-only content.
    return v
      .map((p, i) => {
        if (!isObject(p)) bad(`${where}[${i}]`, `expected a content part object, got ${show(p)}`);
        if (p.type !== 'text') {
          throw new ApiError(
            'ERR_UNSUPPORTED_PARAMETER',
            `only text content parts are supported, got type ${show(p.type)}`,
            `${where}[${i}].type`,
          );
        }
        checkFields(p, ['type', 'text'], {}, `${where}[${i}].`);
        if (typeof p.text !== 'string') bad(`${where}[${i}].text`, `expected a string, got ${show(p.text)}`);
        return p.text;
      })
      .join('');
  }
  return bad(where, `expected a string or an array of text parts for '${where}', got ${show(v)}`);
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];

/** A chat message as the request gives it to the chat template (before the tool-call format shapes it). */
export type ChatMessage = ToolChatMessage;

export function parseChatRequest(raw: unknown, limits: RequestLimits = DEFAULT_LIMITS): SamplingRequest {
  const body = expectBody(raw);
  const ignored: string[] = [];
  checkFields(
    body,
    [
      ...COMMON,
      'messages',
      'max_completion_tokens',
      'logprobs',
      'top_logprobs',
      'continue_final_message',
      'add_generation_prompt',
      'tools',
      'tool_choice',
      'parallel_tool_calls',
      'response_format',
    ],
    CHAT_UNSUPPORTED,
    '',
    ignored,
  );
  const m = body.messages;
  if (!Array.isArray(m) || m.length === 0) bad('messages', `expected a non-empty array for 'messages', got ${show(m)}`);
  if (m.length > limits.maxChatMessages) {
    throw new ApiError(
      'ERR_ARRAY_TOO_LONG',
      `'messages' has ${m.length} messages, over the limit of ${limits.maxChatMessages} per request`,
      'messages',
    );
  }
  let bytes = 0;
  const messages = m.map((msg, i) => {
    const where = `messages[${i}]`;
    if (!isObject(msg)) bad(where, `expected an object for '${where}', got ${show(msg)}`);
    checkFields(msg, ['role', 'content', 'name', 'tool_calls', 'tool_call_id'], { refusal: () => false }, `${where}.`);
    if (typeof msg.role !== 'string' || !ROLES.includes(msg.role)) {
      bad(`${where}.role`, `expected one of ${ROLES.join(', ')} for '${where}.role', got ${show(msg.role)}`);
    }
    const out: ChatMessage = { role: msg.role, content: null };
    const given = (v: unknown): boolean => v !== undefined && v !== null;
    if (given(msg.tool_calls)) {
      if (msg.role !== 'assistant') bad(`${where}.tool_calls`, "only assistant messages have 'tool_calls'");
      out.tool_calls = parseToolCalls(msg.tool_calls, `${where}.tool_calls`);
      bytes += out.tool_calls.reduce((n, c) => n + Buffer.byteLength(c.function.arguments, 'utf8'), 0);
    }
    if (msg.role === 'tool') {
      if (typeof msg.tool_call_id !== 'string' || msg.tool_call_id === '')
        bad(
          `${where}.tool_call_id`,
          `expected the id of the call it answers for '${where}.tool_call_id', got ${show(msg.tool_call_id)}`,
        );
      out.tool_call_id = msg.tool_call_id;
    } else if (given(msg.tool_call_id)) bad(`${where}.tool_call_id`, "only tool messages have a 'tool_call_id'");
    // An assistant message that calls tools may have no text.
    if (!(out.tool_calls && (msg.content === undefined || msg.content === null))) {
      out.content = messageContent(msg.content, `${where}.content`);
      bytes += Buffer.byteLength(out.content, 'utf8');
    }
    if (bytes > limits.maxChatContentBytes) {
      throw new ApiError(
        'ERR_INPUT_TOO_LONG',
        `the contents of 'messages' are over the limit of ${limits.maxChatContentBytes} bytes per request`,
        'messages',
      );
    }
    if (given(msg.name)) {
      if (typeof msg.name !== 'string' || msg.name === '')
        bad(`${where}.name`, `expected a non-empty string for '${where}.name', got ${show(msg.name)}`);
      out.name = msg.name; // the chat template sees it as message.name
    }
    return out;
  });
  const logprobs = optBool(body, 'logprobs') ?? false;
  const top = optInt(body, 'top_logprobs', O.topLogprobs.min, O.topLogprobs.max);
  if (top !== undefined && !logprobs) bad('top_logprobs', "'top_logprobs' needs 'logprobs': true");
  const prefill = chatPrefill(body, messages);
  return common(body, [{ messages, ...prefill }], 'messages', limits, logprobs, top ?? 0, ignored);
}

/**
 * vLLM's `continue_final_message` / `add_generation_prompt`: continue the final assistant message (prefill) instead
 * of opening a new turn. Returns the prompt flags (empty for the default: a new assistant turn).
 */
function chatPrefill(
  body: Body,
  messages: { role: string }[],
): { addGenerationPrompt?: boolean; continueFinalMessage?: boolean } {
  const cont = optBool(body, 'continue_final_message') ?? false;
  const agp = optBool(body, 'add_generation_prompt');
  if (cont) {
    if (agp === true) {
      bad(
        'add_generation_prompt',
        "'continue_final_message' continues the last message, so 'add_generation_prompt' must not also be true",
      );
    }
    const last = messages[messages.length - 1]!;
    if (last.role !== 'assistant') {
      bad(
        'continue_final_message',
        `'continue_final_message' continues a final assistant message, but the last message's role is ${show(last.role)}`,
      );
    }
    return { addGenerationPrompt: false, continueFinalMessage: true };
  }
  return agp === false ? { addGenerationPrompt: false } : {};
}

export function parseCompletionRequest(raw: unknown, limits: RequestLimits = DEFAULT_LIMITS): SamplingRequest {
  const body = expectBody(raw);
  const ignored: string[] = [];
  checkFields(body, [...COMMON, 'prompt', 'logprobs'], COMPLETION_UNSUPPORTED, '', ignored);
  const p = body.prompt;
  let prompts: string[];
  if (Array.isArray(p)) {
    if (p.length === 0) bad('prompt', "expected a non-empty string or array of strings for 'prompt', got []");
    if (p.some((x) => typeof x !== 'string')) {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        "'prompt' must be a string or an array of strings (token-id prompts are not supported)",
        'prompt',
      );
    }
    prompts = p as string[];
  } else prompts = [p as string];
  prompts.forEach((x, i) => {
    const where = Array.isArray(p) ? `prompt[${i}]` : 'prompt';
    if (typeof x !== 'string' || x === '') bad(where, `expected a non-empty string for '${where}', got ${show(x)}`);
  });
  // Legacy completions: logprobs is how many alternatives to list per token (0-5); 0 = the sampled token's only.
  const lp = optInt(body, 'logprobs', 0, 5);
  return common(body, prompts, 'prompt', limits, lp !== undefined, lp ?? 0, ignored);
}

export interface TokenizeRequest {
  input: PromptInput;
  /** Chat: add the assistant header (default true). */
  addGenerationPrompt: boolean;
  /** Plain prompts: the tokenizer's special tokens (default true, as generate() feeds them). */
  addSpecialTokens: boolean;
  model: string | undefined;
  /** A chat's tools (rendered as a generation request with them would be). */
  tools?: ToolRequest;
}

/** vLLM's /tokenize: `{prompt}` or `{messages}`, with add_special_tokens / add_generation_prompt. */
export function parseTokenizeRequest(raw: unknown, limits: RequestLimits = DEFAULT_LIMITS): TokenizeRequest {
  const body = expectBody(raw);
  checkFields(body, ['model', 'prompt', 'messages', 'tools', 'add_special_tokens', 'add_generation_prompt'], {});
  const model = body.model === undefined || body.model === null ? undefined : body.model;
  if (model !== undefined && typeof model !== 'string')
    bad('model', `expected a string for 'model', got ${show(model)}`);
  if ((body.prompt === undefined) === (body.messages === undefined))
    bad('prompt', "give exactly one of 'prompt' or 'messages'");
  if (body.prompt !== undefined) {
    if (typeof body.prompt !== 'string') bad('prompt', `expected a string for 'prompt', got ${show(body.prompt)}`);
    if (body.add_generation_prompt !== undefined)
      bad('add_generation_prompt', "'add_generation_prompt' applies to 'messages' only");
    return {
      input: body.prompt,
      addGenerationPrompt: true,
      addSpecialTokens: optBool(body, 'add_special_tokens') ?? true,
      model,
    };
  }
  const chat = parseChatRequest({ model: 'x', messages: body.messages, tools: body.tools }, limits);
  if (body.add_special_tokens !== undefined)
    bad('add_special_tokens', "'add_special_tokens' applies to 'prompt' only (a chat template writes its own)");
  return {
    ...(chat.tools ? { tools: chat.tools } : {}),
    input: chat.input,
    addGenerationPrompt: optBool(body, 'add_generation_prompt') ?? true,
    addSpecialTokens: false,
    model,
  };
}

export function parseDetokenizeRequest(
  raw: unknown,
  vocabSize: number,
): { tokens: number[]; model: string | undefined } {
  const body = expectBody(raw);
  checkFields(body, ['model', 'tokens'], {});
  const model = body.model === undefined || body.model === null ? undefined : body.model;
  if (model !== undefined && typeof model !== 'string')
    bad('model', `expected a string for 'model', got ${show(model)}`);
  if (!Array.isArray(body.tokens))
    bad('tokens', `expected an array of token ids for 'tokens', got ${show(body.tokens)}`);
  body.tokens.forEach((t, i) => {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocabSize) {
      bad(`tokens[${i}]`, `expected a token id in [0, ${vocabSize - 1}] for 'tokens[${i}]', got ${show(t)}`);
    }
  });
  return { tokens: body.tokens as number[], model };
}

/** GET /v1/usage query: group_by (day|model), from, to (ISO dates or ms). */
export function parseUsageQuery(q: unknown): {
  groupBy: 'day' | 'model';
  from: number | undefined;
  to: number | undefined;
} {
  const query = isObject(q) ? q : {};
  checkFields(query, ['group_by', 'from', 'to'], {});
  const g = query.group_by ?? 'day';
  if (g !== 'day' && g !== 'model') bad('group_by', `expected 'day' or 'model' for 'group_by', got ${show(g)}`);
  const time = (name: 'from' | 'to'): number | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    const t = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : typeof v === 'string' ? Date.parse(v) : NaN;
    if (!Number.isFinite(t))
      bad(name, `expected an ISO date or milliseconds since the epoch for '${name}', got ${show(v)}`);
    return t;
  };
  return { groupBy: g, from: time('from'), to: time('to') };
}
