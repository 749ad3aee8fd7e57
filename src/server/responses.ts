/**
 * POST /v1/responses — OpenAI's Responses API, stateless: the request carries the whole conversation (`input`,
 * `instructions`); nothing is stored, so `previous_response_id` and `conversation` are a 400 and `store: true` is
 * accepted but the response says `store: false` (as for a store that is off). The generation is the same metered
 * path as chat completions (one Meter admission, one ledger record whose id is the response id); this file parses
 * the request into the chat form and formats the response object and its stream events.
 *
 * Stream (named SSE events, each with a `sequence_number`, no `[DONE]`): response.created, response.in_progress,
 * response.output_item.added, response.content_part.added, response.output_text.delta..., response.output_text.done,
 * response.content_part.done, response.output_item.done, then response.completed (or response.incomplete when
 * `max_output_tokens` ended it). An error after the first event is one `error` event, then the stream ends.
 */
import { randomUUID } from 'node:crypto';
import type { MeteredRun, Usage } from '../usage/index.js';
import { ApiError, toHttpError } from '../http/errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import {
  logprobsFormatter,
  meteringFields,
  meteringOf,
  SYSTEM_FINGERPRINT,
  tokenLogprobs,
  type ChatLogprobs,
} from './openai-format.js';
import {
  bad,
  checkFields,
  expectBody,
  isObject,
  optBool,
  optInt,
  O,
  option,
  show,
  type SamplingRequest,
} from './requests.js';
import type { SseWriter } from './sse.js';

type Body = Record<string, unknown>;

/** Responses fields accepted only at a value that cannot change the output (anything else: 400 naming it). */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  previous_response_id: () => false, // stateless: there is no stored response to continue
  conversation: () => false,
  background: (v) => v === false,
  tools: (v) => Array.isArray(v) && v.length === 0,
  tool_choice: (v) => v === 'none' || v === 'auto',
  parallel_tool_calls: (v) => typeof v === 'boolean',
  max_tool_calls: () => true, // with no tools, no calls
  reasoning: () => false,
  truncation: (v) => v === 'disabled',
  prompt: () => false,
  metadata: (v) =>
    isObject(v) &&
    Object.keys(v).length <= 16 &&
    Object.entries(v).every(([k, x]) => k.length <= 64 && typeof x === 'string' && x.length <= 512),
  service_tier: (v) => v === 'auto' || v === 'default',
  user: (v) => typeof v === 'string',
  safety_identifier: (v) => typeof v === 'string',
  prompt_cache_key: (v) => typeof v === 'string', // a routing hint; the prefix cache needs none
  stream_options: (v) => isObject(v),
};

const KNOWN = [
  'model',
  'input',
  'instructions',
  'max_output_tokens',
  'temperature',
  'top_p',
  'stream',
  'store',
  'text',
  'include',
  'top_logprobs',
];

/** The one `include` value that changes the output: each output_text's `logprobs`. */
const INCLUDE_LOGPROBS = 'message.output_text.logprobs';
const ROLES = ['system', 'developer', 'user', 'assistant'];

/** The text of an input message's content: a string, or input_text (output_text for assistant turns) parts. */
function itemText(content: unknown, role: string, where: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content))
    bad(where, `expected a string or an array of content parts for '${where}', got ${show(content)}`);
  return content
    .map((p, i) => {
      const at = `${where}[${i}]`;
      if (!isObject(p)) bad(at, `expected a content part object for '${at}', got ${show(p)}`);
      const textType = role === 'assistant' ? 'output_text' : 'input_text';
      if (p.type !== textType && p.type !== 'input_text' && p.type !== 'output_text') {
        // Images, files and audio would change the answer if dropped.
        throw new ApiError(
          'ERR_UNSUPPORTED_PARAMETER',
          `only text content parts are supported, got type ${show(p.type)}`,
          `${at}.type`,
        );
      }
      checkFields(p, ['type', 'text', 'annotations', 'logprobs'], {}, `${at}.`);
      if (typeof p.text !== 'string') bad(`${at}.text`, `expected a string for '${at}.text', got ${show(p.text)}`);
      return p.text;
    })
    .join('');
}

function inputMessages(input: unknown): { role: string; content: string }[] {
  if (typeof input === 'string') {
    if (input === '') bad('input', 'expected a non-empty string or array of items for \'input\', got ""');
    return [{ role: 'user', content: input }];
  }
  if (!Array.isArray(input) || input.length === 0)
    bad('input', `expected a non-empty string or array of items for 'input', got ${show(input)}`);
  return input.map((item, i) => {
    const where = `input[${i}]`;
    if (!isObject(item)) bad(where, `expected an object for '${where}', got ${show(item)}`);
    if (item.type !== undefined && item.type !== 'message') {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `only message items are supported in 'input' (no tools or reasoning), got type ${show(item.type)}`,
        `${where}.type`,
      );
    }
    checkFields(item, ['type', 'role', 'content', 'id', 'status'], {}, `${where}.`);
    if (typeof item.role !== 'string' || !ROLES.includes(item.role))
      bad(`${where}.role`, `expected one of ${ROLES.join(', ')} for '${where}.role', got ${show(item.role)}`);
    return { role: item.role, content: itemText(item.content, item.role, `${where}.content`) };
  });
}

/** What the response object echoes of the request. */
interface Echo {
  instructions: string | null;
  maxOutputTokens: number | null;
  temperature: number;
  topP: number;
  topLogprobs: number;
  metadata: Record<string, string>;
  user: string | null;
}

const echoes = new WeakMap<SamplingRequest, Echo>();

export function parseResponsesRequest(raw: unknown): SamplingRequest {
  const body: Body = expectBody(raw);
  const ignored: string[] = [];
  checkFields(body, KNOWN, UNSUPPORTED, '', ignored);
  if (typeof body.model !== 'string' || body.model === '')
    bad('model', `expected a model id (string) for 'model', got ${show(body.model)}`);
  const messages = inputMessages(body.input);
  const instructions = body.instructions ?? null;
  if (instructions !== null && typeof instructions !== 'string')
    bad('instructions', `expected a string for 'instructions', got ${show(instructions)}`);
  if (typeof instructions === 'string' && instructions !== '')
    messages.unshift({ role: 'system', content: instructions });
  const text = body.text;
  if (text !== undefined && text !== null) {
    if (!isObject(text)) bad('text', `expected an object for 'text', got ${show(text)}`);
    checkFields(text, ['format', 'verbosity'], {}, 'text.');
    const f = text.format;
    if (f !== undefined && f !== null && !(isObject(f) && f.type === 'text' && Object.keys(f).length === 1)) {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `only the text format {"type": "text"} is supported (structured outputs need a grammar engine), got ${show(isObject(f) ? f.type : f)}`,
        'text.format',
      );
    }
    if (text.verbosity !== undefined && text.verbosity !== null && text.verbosity !== 'medium') {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `'text.verbosity' is not supported (got ${show(text.verbosity)})`,
        'text.verbosity',
      );
    }
  }
  optBool(body, 'store'); // checked, and accepted either way: nothing is stored (the response says store: false)
  const include = body.include ?? [];
  if (!Array.isArray(include)) bad('include', `expected an array for 'include', got ${show(include)}`);
  include.forEach((v, i) => {
    if (v !== INCLUDE_LOGPROBS) {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `only ${JSON.stringify(INCLUDE_LOGPROBS)} may be included, got ${show(v)}`,
        `include[${i}]`,
      );
    }
  });
  // Alternatives come with the log-probabilities they belong to: asking for either lists both.
  const top = optInt(body, 'top_logprobs', O.topLogprobs.min, O.topLogprobs.max) ?? 0;
  const logprobs = include.length > 0 || top > 0;
  const maxTokens = option(body, 'max_output_tokens', O.maxNewTokens) as number | undefined;
  const temperature = option(body, 'temperature', O.temperature) as number | undefined;
  const topP = option(body, 'top_p', O.topP) as number | undefined;
  const r: SamplingRequest = {
    model: body.model,
    input: { messages },
    inputs: [{ messages }],
    n: 1,
    logprobs,
    topLogprobs: top,
    ignored,
    promptParam: 'input',
    maxTokens,
    temperature,
    topP,
    seed: undefined,
    stop: undefined,
    samplers: {},
    stream: optBool(body, 'stream') ?? false,
    includeUsage: true,
  };
  echoes.set(r, {
    instructions: typeof instructions === 'string' ? instructions : null,
    maxOutputTokens: maxTokens ?? null,
    temperature: temperature ?? 1,
    topP: topP ?? 1,
    topLogprobs: top,
    metadata: isObject(body.metadata) ? (body.metadata as Record<string, string>) : {},
    user: typeof body.user === 'string' ? body.user : null,
  });
  return r;
}

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function responsesUsage(u: Usage): ResponsesUsage {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

interface Head {
  id: string;
  created: number;
  model: string;
}

type Status = 'in_progress' | 'completed' | 'incomplete';

/** Per token: `{token, logprob, bytes, top_logprobs}` (chat's entries); empty unless asked for. */
type OutputLogprobs = ChatLogprobs['content'];

function outputText(text: string, logprobs: OutputLogprobs = []): object {
  return { type: 'output_text', text, annotations: [], logprobs };
}

function messageItem(itemId: string, status: Status, text: string | undefined, logprobs?: OutputLogprobs): object {
  return {
    id: itemId,
    type: 'message',
    status,
    role: 'assistant',
    content: text === undefined ? [] : [outputText(text, logprobs)],
  };
}

/** The response object; `output` holds the assistant message once there is one. */
function responseObject(
  h: Head,
  r: SamplingRequest,
  status: Status,
  itemId: string,
  text: string | undefined,
  usage: object | null,
  logprobs?: OutputLogprobs,
): object {
  const e = echoes.get(r)!;
  return {
    id: h.id,
    object: 'response',
    created_at: h.created,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: e.instructions,
    max_output_tokens: e.maxOutputTokens,
    model: h.model,
    output: text === undefined ? [] : [messageItem(itemId, status, text, logprobs)],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: e.temperature,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_logprobs: e.topLogprobs,
    top_p: e.topP,
    truncation: 'disabled',
    usage,
    user: e.user,
    metadata: e.metadata,
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

const statusOf = (finishReason: string): Status => (finishReason === 'length' ? 'incomplete' : 'completed');

/** The response's output item id, derived from the response id (one message per response). */
const itemIdOf = (h: Head): string => `msg_${h.id.slice(h.id.indexOf('_') + 1)}`;

export function responseBody(
  h: Head,
  r: SamplingRequest,
  text: string,
  finishReason: string,
  usage: Usage,
  logprobs?: ChatLogprobs,
): object {
  return responseObject(h, r, statusOf(finishReason), itemIdOf(h), text, responsesUsage(usage), logprobs?.content);
}

/** Streams one response as the Responses API's event sequence. */
export async function streamResponse(
  sse: SseWriter,
  headers: Record<string, string>,
  r: SamplingRequest,
  run: MeteredRun,
  h: Head,
  firstToken: () => void,
  aborted: (clientGone: boolean) => ApiError,
  tokenizer: Pick<Tokenizer, 'decode'>,
): Promise<void> {
  const format = logprobsFormatter('chat', tokenizer);
  const all: OutputLogprobs = [];
  const itemId = itemIdOf(h);
  let seq = 0;
  const send = (type: string, fields: object): Promise<void> =>
    sse.named(type, { type, sequence_number: seq++, ...fields });
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  sse.start(headers);
  await send('response.created', { response: responseObject(h, r, 'in_progress', itemId, undefined, null) });
  await send('response.in_progress', { response: responseObject(h, r, 'in_progress', itemId, undefined, null) });
  await send('response.output_item.added', { output_index: 0, item: messageItem(itemId, 'in_progress', undefined) });
  await send('response.content_part.added', { ...at, part: outputText('') });
  try {
    for await (const chunk of run) {
      if (chunk.tokens.length > 0) firstToken();
      // With logprobs, a token whose text is held back (EOS, a stop-string prefix) still gets its delta.
      const lp =
        r.logprobs && chunk.logprobs && chunk.tokens.length > 0
          ? (format([tokenLogprobs(chunk, chunk.logprobs)]) as ChatLogprobs).content
          : [];
      if (chunk.text === '' && lp.length === 0) continue;
      all.push(...lp);
      await send('response.output_text.delta', { ...at, delta: chunk.text, logprobs: lp });
    }
    const res = await run.result;
    if (res.finishReason === 'abort') throw aborted(!sse.open);
    const status = statusOf(res.finishReason);
    await send('response.output_text.done', { ...at, text: res.text, logprobs: all });
    await send('response.content_part.done', { ...at, part: outputText(res.text, all) });
    await send('response.output_item.done', { output_index: 0, item: messageItem(itemId, status, res.text, all) });
    const usage = { ...responsesUsage(res.usage), ...meteringFields(meteringOf(res)) };
    await send(status === 'completed' ? 'response.completed' : 'response.incomplete', {
      response: responseObject(h, r, status, itemId, res.text, usage, all),
    });
  } catch (err) {
    // Headers are sent: the error goes in the stream; the Meter has recorded the usage.
    const e = toHttpError(err, 'input').body.error;
    await send('error', { code: e.code, message: e.message, param: e.param });
  }
  sse.end();
}

/** A fresh response id (`resp_` + 32 hex digits, as OpenAI's look). */
export const newResponseId = (): string => `resp_${randomUUID().replaceAll('-', '')}`;
