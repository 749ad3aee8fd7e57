/**
 * Tool calls out of a text stream, sent as the model writes them. Text that cannot be part of a call goes out as
 * content at once; text that may be the start of a call (a marker, or part of one at the end of what came so far) is
 * held back until it is known. From a call's start, the format's reader (src/tools/call-reader.ts) takes the text:
 * a call is announced (index, id, name) once its name is known and its arguments have begun, then its arguments come
 * in pieces as they are written, as OpenAI streams `delta.tool_calls`; the pieces add up to the canonical JSON text
 * of `message.tool_calls[].function.arguments`. Whitespace that only separates text from calls is not sent.
 *
 * For an output whose calls are complete and well formed, the calls a client assembles equal the non-streamed
 * `message.tool_calls` (ids aside), and its text equals `message.content` up to the whitespace around the calls.
 * A call, once announced, stays a call: output that breaks it later, or ends inside it (max_tokens), leaves it
 * with the arguments written so far and marks it incomplete; the whole-output parser would read such text as content.
 */
import { nodeCrypto } from '../lazy.js';
import type { CallEvent, CallReader } from './call-reader.js';
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

/**
 * One piece of a stream: text; a call's start (its index among the output's calls, id and name); a piece of its
 * arguments; its end, with the whole call (`complete` false when the output broke it or ended inside it).
 */
export type ToolStreamEvent =
  | { kind: 'content'; text: string }
  | { kind: 'call'; index: number; id: string; name: string }
  | { kind: 'arguments'; index: number; text: string }
  | { kind: 'done'; index: number; call: ToolCall; complete: boolean };

export class ToolCallStream {
  #pending = '';
  /** Whitespace at the end of the text sent so far, held until text follows (not sent before a call). */
  #space = '';
  #reader: CallReader | undefined;
  /** Only whitespace was sent so far. */
  #atStart = true;
  #calls = 0;
  #incomplete = 0;
  #open: ToolCall | undefined;
  #ended = false;

  constructor(
    private readonly format: ToolCallFormat,
    private readonly newId: () => string = newCallId,
  ) {}

  /** Number of calls the stream has started. */
  get calls(): number {
    return this.#calls;
  }

  /** Whether every call the stream started is complete (so the output's finish reason is `tool_calls`). */
  get callsComplete(): boolean {
    return this.#calls > 0 && this.#incomplete === 0 && this.#open === undefined;
  }

  /** The events for the next piece of output text. */
  push(text: string): ToolStreamEvent[] {
    if (this.#ended) throw new Error('ToolCallStream: push() after end()');
    const out: ToolStreamEvent[] = [];
    let t = text;
    for (;;) {
      if (this.#reader) {
        const r = this.#reader.push(t);
        this.#apply(r.events, out);
        if (r.rest === undefined) return out;
        this.#reader = undefined;
        this.#atStart = false;
        t = r.rest;
      }
      this.#pending += t;
      const start = this.format.callStart(this.#pending, this.#atStart);
      if (!start) {
        this.#text(this.#take(this.#pending.length), out);
        return out;
      }
      this.#text(this.#take(start.at), out);
      if (!start.complete) return out;
      this.#reader = this.format.reader();
      t = this.#take(this.#pending.length);
    }
  }

  /** The events for the held-back rest, once the output is complete. */
  end(): ToolStreamEvent[] {
    if (this.#ended) return [];
    this.#ended = true;
    const out: ToolStreamEvent[] = [];
    if (this.#reader) this.#apply(this.#reader.end(), out);
    this.#reader = undefined;
    this.#text(this.#take(this.#pending.length), out);
    if (this.#open) this.#apply([{ callEnd: true, complete: false }], out);
    if (this.#calls === 0 && this.#space !== '') out.push({ kind: 'content', text: this.#space });
    return out;
  }

  #apply(events: readonly CallEvent[], out: ToolStreamEvent[]): void {
    for (const e of events) {
      if ('content' in e) this.#text(e.content, out);
      else if ('name' in e) {
        this.#space = '';
        this.#atStart = false;
        const call: ToolCall = { id: this.newId(), type: 'function', function: { name: e.name, arguments: '' } };
        this.#open = call;
        out.push({ kind: 'call', index: this.#calls++, id: call.id, name: e.name });
      } else if ('arguments' in e) {
        this.#open!.function.arguments += e.arguments;
        out.push({ kind: 'arguments', index: this.#calls - 1, text: e.arguments });
      } else if (this.#open) {
        if (!e.complete) this.#incomplete++;
        out.push({ kind: 'done', index: this.#calls - 1, call: this.#open, complete: e.complete });
        this.#open = undefined;
      }
    }
  }

  #take(n: number): string {
    const s = this.#pending.slice(0, n);
    this.#pending = this.#pending.slice(n);
    return s;
  }

  /** Sends text, holding back its trailing whitespace until more text follows. */
  #text(text: string, out: ToolStreamEvent[]): void {
    if (text === '') return;
    const all = this.#space + text;
    const body = all.trimEnd();
    this.#space = all.slice(body.length);
    if (body === '') return;
    if (body.trim() !== '') this.#atStart = false;
    out.push({ kind: 'content', text: body });
  }
}
