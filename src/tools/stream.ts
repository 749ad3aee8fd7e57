/**
 * Tool calls out of a text stream: text that cannot be part of a call goes out as content at once; text that may be
 * the start of a call (a marker, or part of one at the end of what came so far) is held back. Once a call has begun,
 * the rest of the output is held until the end and parsed whole: its calls come out as OpenAI's `delta.tool_calls`
 * (a first delta with index, id, type and name, then the arguments), and what turns out not to be a call goes out as
 * content. The calls a client assembles equal the non-streamed `message.tool_calls` (ids aside), and its text equals
 * `message.content` up to the whitespace around the calls, which the non-streamed content trims.
 */
import { nodeCrypto } from '../lazy.js';
import type { ToolCallFormat } from './format.js';
import type { ParsedCall, ToolCall } from './types.js';

/** OpenAI-style call id: `call_` and 24 random characters. */
export function newCallId(): string {
  return `call_${nodeCrypto().randomBytes(18).toString('base64url').slice(0, 24)}`;
}

/** The calls of a parsed output with fresh ids, in `message.tool_calls` shape. */
export function toToolCalls(calls: readonly ParsedCall[], newId: () => string = newCallId): ToolCall[] {
  return calls.map((c) => ({ id: newId(), type: 'function', function: { name: c.name, arguments: c.arguments } }));
}

/** One piece of a stream: text, or a call (its index among the output's calls). */
export type ToolStreamEvent = { content: string } | { call: ToolCall; index: number };

export class ToolCallStream {
  #pending = '';
  #inCall = false;
  /** Only whitespace was sent so far. */
  #atStart = true;
  #calls = 0;
  #ended = false;

  constructor(
    private readonly format: ToolCallFormat,
    private readonly newId: () => string = newCallId,
  ) {}

  /** Number of calls the stream has produced. */
  get calls(): number {
    return this.#calls;
  }

  /** The events for the next piece of output text. */
  push(text: string): ToolStreamEvent[] {
    if (this.#ended) throw new Error('ToolCallStream: push() after end()');
    this.#pending += text;
    if (this.#inCall) return [];
    const start = this.format.callStart(this.#pending, this.#atStart);
    if (!start) return this.#send(this.#take(this.#pending.length));
    const before = this.#take(start.at);
    if (start.complete) this.#inCall = true;
    return this.#send(before);
  }

  /** The events for the held-back rest, once the output is complete. */
  end(): ToolStreamEvent[] {
    if (this.#ended) return [];
    this.#ended = true;
    const rest = this.#take(this.#pending.length);
    if (!this.#inCall) return this.#send(rest);
    const parsed = this.format.parse(rest);
    if (parsed.calls.length === 0) return this.#send(rest);
    // Text after or between the calls (a parse keeps it in `content`; the text before them was sent already)
    // comes first, so that a consumer that closes its text before the calls (the Responses API) has all of it.
    const events: ToolStreamEvent[] = parsed.content !== '' ? [{ content: parsed.content }] : [];
    for (const call of toToolCalls(parsed.calls, this.newId)) events.push({ call, index: this.#calls++ });
    return events;
  }

  #take(n: number): string {
    const s = this.#pending.slice(0, n);
    this.#pending = this.#pending.slice(n);
    return s;
  }

  #send(text: string): ToolStreamEvent[] {
    if (text === '') return [];
    if (text.trim() !== '') this.#atStart = false;
    return [{ content: text }];
  }
}
