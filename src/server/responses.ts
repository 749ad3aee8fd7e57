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
  type ChatMessage,
  type SamplingRequest,
} from './requests.js';
import type { ChoiceOutput, GenerationPlan } from './structured.js';
import { parseResponseFormat, parseToolRequest, type StructuredRequest } from './tool-requests.js';
import { ToolCallStream, type ToolCall, type ToolStreamEvent } from '../tools/index.js';
import type { SseWriter } from './sse.js';

type Body = Record<string, unknown>;

/** Responses fields accepted only at a value that cannot change the output (anything else: 400 naming it). */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  previous_response_id: () => false, // stateless: there is no stored response to continue
  conversation: () => false,
  background: (v) => v === false,
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
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'max_tool_calls',
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

/**
 * The conversation of `input`: message items, and the tool items of a round trip: `function_call` items (the
 * model's calls, as an assistant message with `tool_calls`; consecutive ones together) and `function_call_output`
 * items (the results, as `tool` messages).
 */
function inputMessages(input: unknown): ChatMessage[] {
  if (typeof input === 'string') {
    if (input === '') bad('input', 'expected a non-empty string or array of items for \'input\', got ""');
    return [{ role: 'user', content: input }];
  }
  if (!Array.isArray(input) || input.length === 0)
    bad('input', `expected a non-empty string or array of items for 'input', got ${show(input)}`);
  const out: ChatMessage[] = [];
  input.forEach((item, i) => {
    const where = `input[${i}]`;
    if (!isObject(item)) bad(where, `expected an object for '${where}', got ${show(item)}`);
    const str = (k: string): string => {
      const v = item[k];
      if (typeof v !== 'string') bad(`${where}.${k}`, `expected a string for '${where}.${k}', got ${show(v)}`);
      return v;
    };
    if (item.type === 'function_call') {
      checkFields(item, ['type', 'call_id', 'name', 'arguments', 'id', 'status'], {}, `${where}.`);
      const call = {
        id: str('call_id'),
        type: 'function' as const,
        function: { name: str('name'), arguments: str('arguments') },
      };
      const last = out[out.length - 1];
      if (last?.role === 'assistant' && last.tool_calls) last.tool_calls.push(call);
      else out.push({ role: 'assistant', content: null, tool_calls: [call] });
      return;
    }
    if (item.type === 'function_call_output') {
      checkFields(item, ['type', 'call_id', 'output', 'id', 'status'], {}, `${where}.`);
      out.push({
        role: 'tool',
        content: itemText(item.output, 'tool', `${where}.output`),
        tool_call_id: str('call_id'),
      });
      return;
    }
    if (item.type !== undefined && item.type !== 'message') {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `only message, function_call and function_call_output items are supported in 'input', got type ${show(item.type)}`,
        `${where}.type`,
      );
    }
    checkFields(item, ['type', 'role', 'content', 'id', 'status'], {}, `${where}.`);
    if (typeof item.role !== 'string' || !ROLES.includes(item.role))
      bad(`${where}.role`, `expected one of ${ROLES.join(', ')} for '${where}.role', got ${show(item.role)}`);
    out.push({ role: item.role, content: itemText(item.content, item.role, `${where}.content`) });
  });
  return out;
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
  /** The request's tools, tool choice and text format, as the response echoes them. */
  tools: object[];
  toolChoice: unknown;
  parallelToolCalls: boolean;
  textFormat: object;
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
  let structured: StructuredRequest | undefined;
  if (text !== undefined && text !== null) {
    if (!isObject(text)) bad('text', `expected an object for 'text', got ${show(text)}`);
    checkFields(text, ['format', 'verbosity'], {}, 'text.');
    structured = parseResponseFormat(text.format, 'text.format', true);
    if (text.verbosity !== undefined && text.verbosity !== null && text.verbosity !== 'medium') {
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `'text.verbosity' is not supported (got ${show(text.verbosity)})`,
        'text.verbosity',
      );
    }
  }
  const tools = parseToolRequest(body, true);
  const maxCalls = body.max_tool_calls;
  if (maxCalls !== undefined && maxCalls !== null) {
    if (typeof maxCalls !== 'number' || !Number.isSafeInteger(maxCalls) || maxCalls < 1)
      bad('max_tool_calls', `expected an integer >= 1 for 'max_tool_calls', got ${show(maxCalls)}`);
    // Without tools there are no calls to count; with tools, a bound the output is not held to is refused.
    if (tools) {
      throw new ApiError('ERR_UNSUPPORTED_PARAMETER', "'max_tool_calls' is not supported with tools", 'max_tool_calls');
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
    ...(tools ? { tools } : {}),
    ...(structured ? { structured } : {}),
  };
  echoes.set(r, {
    instructions: typeof instructions === 'string' ? instructions : null,
    maxOutputTokens: maxTokens ?? null,
    temperature: temperature ?? 1,
    topP: topP ?? 1,
    topLogprobs: top,
    metadata: isObject(body.metadata) ? (body.metadata as Record<string, string>) : {},
    user: typeof body.user === 'string' ? body.user : null,
    tools: (tools?.tools ?? []).map((t) => ({ type: 'function', ...t.function, strict: t.function.strict ?? null })),
    toolChoice: tools
      ? typeof tools.choice === 'string'
        ? tools.choice
        : { type: 'function', ...tools.choice }
      : 'auto',
    parallelToolCalls: tools?.parallel ?? true,
    textFormat: isObject(text) && isObject(text.format) ? text.format : { type: 'text' },
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

/** A call as a `function_call` output item (`fc_` id; `call_id` is what a `function_call_output` answers). */
function callItem(call: ToolCall, status: Status, args = call.function.arguments): object {
  return {
    id: `fc_${call.id.slice(call.id.indexOf('_') + 1)}`,
    type: 'function_call',
    status,
    call_id: call.id,
    name: call.function.name,
    arguments: args,
  };
}

/** The response object with its output items so far. */
function responseObject(h: Head, r: SamplingRequest, status: Status, output: object[], usage: object | null): object {
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
    output,
    parallel_tool_calls: e.parallelToolCalls,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: e.temperature,
    text: { format: e.textFormat },
    tool_choice: e.toolChoice,
    tools: e.tools,
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

/** The response's message item id, derived from the response id (at most one message per response). */
const itemIdOf = (h: Head): string => `msg_${h.id.slice(h.id.indexOf('_') + 1)}`;

/**
 * The output items of a finished generation: the message (unless the output only calls tools, with `logprobs` when
 * they were asked for), then the calls.
 */
function outputItems(h: Head, out: ChoiceOutput, logprobs?: OutputLogprobs): object[] {
  const status = statusOf(out.finishReason);
  const items = out.content === null ? [] : [messageItem(itemIdOf(h), status, out.content, logprobs)];
  for (const c of out.toolCalls ?? []) items.push(callItem(c, 'completed'));
  return items;
}

export function responseBody(
  h: Head,
  r: SamplingRequest,
  out: ChoiceOutput,
  usage: Usage,
  logprobs?: ChatLogprobs,
): object {
  return responseObject(
    h,
    r,
    statusOf(out.finishReason),
    outputItems(h, out, logprobs?.content),
    responsesUsage(usage),
  );
}

/**
 * Streams one response as the Responses API's event sequence. Without tools the message item opens at once; with
 * tools it opens at the first text and closes when the output ends, and each call is its own `function_call` item
 * (added with empty arguments once its name is known, an arguments delta per piece as the model writes it,
 * arguments done, item done).
 */
export async function streamResponse(
  sse: SseWriter,
  headers: Record<string, string>,
  r: SamplingRequest,
  plan: GenerationPlan,
  run: MeteredRun,
  h: Head,
  firstToken: () => void,
  aborted: (clientGone: boolean) => ApiError,
  tokenizer: Pick<Tokenizer, 'decode'>,
): Promise<void> {
  const format = logprobsFormatter('chat', tokenizer);
  const itemId = itemIdOf(h);
  let seq = 0;
  const send = (type: string, fields: object): Promise<void> =>
    sse.named(type, { type, sequence_number: seq++, ...fields });
  const output: object[] = [];
  /** The message item's output index while it is open; its text. */
  let message: { index: number; text: string; logprobs: OutputLogprobs; open: boolean } | undefined;
  const at = (): object => ({ item_id: itemId, output_index: message!.index, content_index: 0 });
  const openMessage = async (): Promise<void> => {
    if (message) return;
    message = { index: output.length, text: '', logprobs: [], open: true };
    output.push(messageItem(itemId, 'in_progress', undefined));
    await send('response.output_item.added', { output_index: message.index, item: output[message.index] });
    await send('response.content_part.added', { ...at(), part: outputText('') });
  };
  const closeMessage = async (status: Status): Promise<void> => {
    if (!message?.open) return;
    message.open = false;
    const { text, logprobs } = message;
    await send('response.output_text.done', { ...at(), text, logprobs });
    await send('response.content_part.done', { ...at(), part: outputText(text, logprobs) });
    output[message.index] = messageItem(itemId, status, text, logprobs);
    await send('response.output_item.done', { output_index: message.index, item: output[message.index] });
  };
  /** The open function_call items by call index: their output index and item id. */
  const callItems = new Map<number, { index: number; id: string }>();
  const events = async (list: ToolStreamEvent[], logprobs: OutputLogprobs = []): Promise<void> => {
    for (const e of list) {
      if (e.kind === 'content') {
        await openMessage();
        message!.text += e.text;
        message!.logprobs.push(...logprobs);
        await send('response.output_text.delta', { ...at(), delta: e.text, logprobs });
        continue;
      }
      if (e.kind === 'call') {
        const call: ToolCall = { id: e.id, type: 'function', function: { name: e.name, arguments: '' } };
        const item = callItem(call, 'in_progress', '');
        const index = output.length;
        output.push(item);
        callItems.set(e.index, { index, id: (item as { id: string }).id });
        await send('response.output_item.added', { output_index: index, item });
        continue;
      }
      const open = callItems.get(e.index)!;
      if (e.kind === 'arguments') {
        await send('response.function_call_arguments.delta', {
          item_id: open.id,
          output_index: open.index,
          delta: e.text,
        });
        continue;
      }
      const args = e.call.function.arguments;
      const item = callItem(e.call, e.complete ? 'completed' : 'incomplete');
      output[open.index] = item;
      await send('response.function_call_arguments.done', {
        item_id: open.id,
        output_index: open.index,
        arguments: args,
      });
      await send('response.output_item.done', { output_index: open.index, item });
    }
  };
  sse.start(headers);
  await send('response.created', { response: responseObject(h, r, 'in_progress', [], null) });
  await send('response.in_progress', { response: responseObject(h, r, 'in_progress', [], null) });
  const calls = plan.format ? new ToolCallStream(plan.format) : undefined;
  if (!calls) await openMessage();
  try {
    for await (const chunk of run) {
      if (chunk.tokens.length > 0) firstToken();
      // With logprobs, a token whose text is held back (EOS, a stop-string prefix) still gets its delta. Output read
      // as tool calls carries no logprobs: its text is not one output_text.
      const lp =
        !calls && r.logprobs && chunk.logprobs && chunk.tokens.length > 0
          ? (format([tokenLogprobs(chunk, chunk.logprobs)]) as ChatLogprobs).content
          : [];
      if (chunk.text === '' && lp.length === 0) continue;
      await events(calls ? calls.push(chunk.text) : [{ kind: 'content', text: chunk.text }], lp);
    }
    const res = await run.result;
    if (res.finishReason === 'abort') throw aborted(!sse.open);
    if (calls) await events(calls.end());
    const status = statusOf(res.finishReason);
    await closeMessage(status);
    const usage = { ...responsesUsage(res.usage), ...meteringFields(meteringOf(res)) };
    await send(status === 'completed' ? 'response.completed' : 'response.incomplete', {
      response: responseObject(h, r, status, output, usage),
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
