/** OpenAI response and stream-chunk shapes (chat.completion, text_completion), built from engine results. */
import { Buffer } from 'node:buffer';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ToolCall, ToolStreamEvent } from '../tools/index.js';
import { formatPico, type MeteredResult, type TopLogprob, type Usage } from '../usage/index.js';

export type Kind = 'chat' | 'completion';

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export function openaiUsage(u: Usage): OpenAIUsage {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

interface Head {
  id: string;
  created: number;
  model: string;
}

export const SYSTEM_FINGERPRINT = 'tokmeter';

/**
 * How a response was metered, as the client sees it: whether the response cache answered it, and its exact cost
 * (the ledger record's, as a decimal of the currency unit). Sent as `x-tokmeter-cache` / `x-tokmeter-cost` headers
 * and as extra fields of a stream's final `usage`.
 */
export interface Metering {
  cache: 'hit' | 'miss';
  cost: string;
  currency: string;
}

export function meteringOf(res: MeteredResult): Metering {
  return { cache: res.cacheHit ? 'hit' : 'miss', cost: formatPico(res.record.cost), currency: res.record.currency };
}

/** Sampled tokens, their log-probabilities and (top_logprobs) each step's alternatives, per chunk. */
export interface TokenLogprobs {
  tokens: Uint32Array;
  logprobs: Float32Array;
  top?: TopLogprob[][];
}

/** A chunk's log-probabilities in the formatter's input shape. */
export function tokenLogprobs(
  chunk: { tokens: Uint32Array; topLogprobs?: TopLogprob[][] },
  logprobs: Float32Array,
): TokenLogprobs {
  return { tokens: chunk.tokens, logprobs, ...(chunk.topLogprobs ? { top: chunk.topLogprobs } : {}) };
}

interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** Chat: `{content: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], refusal}`. */
export interface ChatLogprobs {
  content: (ChatTokenLogprob & { top_logprobs: ChatTokenLogprob[] })[];
  refusal: null;
}

/**
 * Completions: parallel arrays; `top_logprobs` maps the `logprobs` most likely tokens' texts to their log-probabilities,
 * plus the sampled token's when it is not among them (as OpenAI does: up to logprobs + 1 entries; `logprobs: 0`
 * lists the sampled token only). Ids that decode to one text share an entry: the sampled token's log-probability
 * for its text, else the more likely one's.
 */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/**
 * Formats log-probabilities in OpenAI's shapes. A token's text is its own decoding (special tokens included; a
 * token holding part of a UTF-8 character decodes to U+FFFD), `bytes` that text's UTF-8. Completions' `text_offset`
 * counts characters of those texts from the start of the completion, across the calls of one formatter (a stream).
 */
export function logprobsFormatter(
  kind: Kind,
  tokenizer: Pick<Tokenizer, 'decode'>,
): (parts: readonly TokenLogprobs[]) => ChatLogprobs | CompletionLogprobs {
  let offset = 0;
  return (parts) => {
    const toks: { token: string; logprob: number; top: readonly TopLogprob[] }[] = [];
    for (const p of parts) {
      p.tokens.forEach((id, i) =>
        toks.push({
          token: tokenizer.decode([id], { skipSpecialTokens: false }),
          logprob: p.logprobs[i]!,
          top: p.top?.[i] ?? [],
        }),
      );
    }
    if (kind === 'chat') {
      const entry = (token: string, logprob: number): ChatTokenLogprob => ({
        token,
        logprob,
        bytes: [...Buffer.from(token, 'utf8')],
      });
      return {
        content: toks.map((t) => ({
          ...entry(t.token, t.logprob),
          top_logprobs: t.top.map((a) => entry(a.text, a.logprob)),
        })),
        refusal: null,
      };
    }
    const topOf = (t: (typeof toks)[number]): Record<string, number> => {
      const out = Object.create(null) as Record<string, number>; // a token's text may be '__proto__'
      // The sampled token's text maps to its own log-probability, also when another id decodes to the same text.
      for (const a of t.top) if (!(a.text in out)) out[a.text] = a.text === t.token ? t.logprob : a.logprob;
      if (!(t.token in out)) out[t.token] = t.logprob;
      return out;
    };
    const text_offset = toks.map((t) => {
      const at = offset;
      offset += t.token.length;
      return at;
    });
    return {
      tokens: toks.map((t) => t.token),
      token_logprobs: toks.map((t) => t.logprob),
      top_logprobs: toks.map(topOf),
      text_offset,
    };
  };
}

/** One choice of a response. */
export interface Choice {
  /** Chat: null when the message only calls tools. */
  text: string | null;
  finishReason: string;
  logprobs: ChatLogprobs | CompletionLogprobs | null;
  /** Chat: the calls parsed from the output. */
  toolCalls?: ToolCall[];
}

/** One entry of a stream chunk's `delta.tool_calls`: a call's start (id, name) or a piece of its arguments. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

/**
 * A tool-call stream event as a `delta.tool_calls` entry, as OpenAI sends them: a call's start with its id, type,
 * name and empty arguments, then pieces of its arguments; undefined for events that send nothing (text, a call's
 * end).
 */
export function toolCallDelta(e: ToolStreamEvent): ToolCallDelta | undefined {
  if (e.kind === 'call')
    return { index: e.index, id: e.id, type: 'function', function: { name: e.name, arguments: '' } };
  if (e.kind === 'arguments') return { index: e.index, function: { arguments: e.text } };
  return undefined;
}

export function completionBody(kind: Kind, h: Head, choices: readonly Choice[], usage: Usage): object {
  if (kind === 'chat') {
    return {
      id: h.id,
      object: 'chat.completion',
      created: h.created,
      model: h.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: choices.map((c, index) => ({
        index,
        message: {
          role: 'assistant',
          content: c.text,
          refusal: null,
          ...(c.toolCalls ? { tool_calls: c.toolCalls } : {}),
        },
        logprobs: c.logprobs,
        finish_reason: c.finishReason,
      })),
      usage: openaiUsage(usage),
    };
  }
  return {
    id: h.id,
    object: 'text_completion',
    created: h.created,
    model: h.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: choices.map((c, index) => ({
      index,
      text: c.text,
      logprobs: c.logprobs,
      finish_reason: c.finishReason,
    })),
    usage: openaiUsage(usage),
  };
}

/**
 * One stream chunk. `delta` is the new text (chat: undefined = the opening role chunk); `finishReason` is set on
 * the last content chunk; with include_usage every chunk carries `usage: null`, as OpenAI sends them.
 */
export function streamChunk(
  kind: Kind,
  h: Head,
  part: {
    index?: number;
    text?: string;
    role?: boolean;
    finishReason?: string;
    logprobs?: ChatLogprobs | CompletionLogprobs;
    toolCalls?: ToolCallDelta[];
  },
  includeUsage: boolean,
): object {
  const finish = part.finishReason ?? null;
  const base = { id: h.id, created: h.created, model: h.model, system_fingerprint: SYSTEM_FINGERPRINT };
  const usage = includeUsage ? { usage: null } : {};
  if (kind === 'chat') {
    const delta: Record<string, unknown> = {};
    if (part.role) {
      delta.role = 'assistant';
      delta.content = '';
    }
    if (part.text !== undefined) delta.content = part.text;
    if (part.toolCalls) delta.tool_calls = part.toolCalls;
    return {
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: part.index ?? 0, delta, logprobs: part.logprobs ?? null, finish_reason: finish }],
      ...usage,
    };
  }
  return {
    ...base,
    object: 'text_completion',
    choices: [
      { index: part.index ?? 0, text: part.text ?? '', logprobs: part.logprobs ?? null, finish_reason: finish },
    ],
    ...usage,
  };
}

/**
 * The final usage chunk of `stream_options.include_usage`: no choices, the request's usage, and how it was metered
 * (`x_tokmeter_cache`, `x_tokmeter_cost`: extra fields that OpenAI clients ignore).
 */
export function usageChunk(kind: Kind, h: Head, usage: Usage, m: Metering): object {
  return {
    id: h.id,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: h.created,
    model: h.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [],
    usage: { ...openaiUsage(usage), ...meteringFields(m) },
  };
}

/** The metering as extra `usage` fields of a stream's last event. */
export function meteringFields(m: Metering): { x_tokmeter_cache: string; x_tokmeter_cost: string } {
  return { x_tokmeter_cache: m.cache, x_tokmeter_cost: `${m.cost} ${m.currency}` };
}
