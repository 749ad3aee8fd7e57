/** OpenAI response and stream-chunk shapes (chat.completion, text_completion), built from engine results. */
import type { Usage } from '../usage/index.js';

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

export function completionBody(kind: Kind, h: Head, text: string, finishReason: string, usage: Usage): object {
  if (kind === 'chat') {
    return {
      id: h.id,
      object: 'chat.completion',
      created: h.created,
      model: h.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, refusal: null },
          logprobs: null,
          finish_reason: finishReason,
        },
      ],
      usage: openaiUsage(usage),
    };
  }
  return {
    id: h.id,
    object: 'text_completion',
    created: h.created,
    model: h.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
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
  part: { text?: string; role?: boolean; finishReason?: string },
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
    return {
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...usage,
    };
  }
  return {
    ...base,
    object: 'text_completion',
    choices: [{ index: 0, text: part.text ?? '', logprobs: null, finish_reason: finish }],
    ...usage,
  };
}

/** The final usage chunk of `stream_options.include_usage`: no choices, the request's usage. */
export function usageChunk(kind: Kind, h: Head, usage: Usage): object {
  return {
    id: h.id,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: h.created,
    model: h.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [],
    usage: openaiUsage(usage),
  };
}
