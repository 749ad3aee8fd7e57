/**
 * Llama 3.1+ JSON tool calls (Meta's documented format for user-defined tools): the whole assistant message is
 * the call, a JSON object `{"name": ..., "parameters": {...}}`, optionally after `<|python_tag|>` (a special token,
 * so it is not in the decoded text); several calls are separated by `; `. Text that does not start with `{` is
 * content; output that starts like a call but is not one stays content too.
 */
import { argumentsAsObjects, argumentsBetween, callsConstraint, toolsJson, type ToolCallFormat } from './format.js';
import { BufferedCallReader, CallObjectReader } from './call-reader.js';
import { isPlainObject, jsonValueEnd, tryParse } from './json-scan.js';
import type { ParsedCall, ParsedOutput } from './types.js';

const PYTHON_TAG = '<|python_tag|>';

function parse(text: string): ParsedOutput {
  let body = text.trimStart();
  if (body.startsWith(PYTHON_TAG)) body = body.slice(PYTHON_TAG.length);
  const calls: ParsedCall[] = [];
  let i = 0;
  for (;;) {
    const end = jsonValueEnd(body, i);
    if (end < 0) break;
    const v = tryParse(body.slice(i, end));
    if (!isPlainObject(v) || typeof v.name !== 'string' || v.name === '') break;
    const args = v.parameters ?? v.arguments ?? {};
    if (!isPlainObject(args)) break;
    calls.push({ name: v.name, arguments: JSON.stringify(args) });
    i = end;
    const sep = /^\s*;\s*/.exec(body.slice(i));
    if (!sep) break;
    i += sep[0].length;
  }
  // Only a message that is calls and nothing else is a call message.
  if (calls.length === 0 || body.slice(i).trim() !== '') return { content: text, calls: [] };
  return { content: '', calls };
}

/**
 * A stream's calls from the message's first `{` on: call objects separated by `;`. A first object that is no call
 * makes the whole message text, as the whole-output parser does. Calls are sent as they come, so text after them
 * (which makes the whole-output parser read the message as text) cannot take them back: it is sent as text.
 */
class Llama3Reader extends BufferedCallReader {
  #state: 'lead' | 'object' | 'sep' = 'lead';
  #obj = new CallObjectReader(['parameters', 'arguments'], false);

  protected step(): string | undefined {
    for (;;) {
      if (this.#state === 'lead') {
        if (!this.skipSpace()) return undefined;
        const m = this.literal(PYTHON_TAG);
        if (m === 'partial') return undefined;
        this.#state = 'object';
      } else if (this.#state === 'object') {
        const r = this.readObject(this.#obj);
        if (r === 'more') return undefined;
        if (r === 'failed') return this.#text();
        this.endCall(true);
        this.#state = 'sep';
      } else {
        if (!this.skipSpace()) return undefined;
        if (!this.buf.startsWith(';')) return this.#text();
        this.consume(1);
        this.#obj = new CallObjectReader(['parameters', 'arguments'], false);
        this.#state = 'object';
      }
    }
  }

  /** What is left is text: a first object that is no call (all of it), or what follows the calls. */
  #text(): string {
    if (this.announced) this.endCall(false);
    this.flushText();
    return '';
  }

  protected finish(): void {
    if (this.#state === 'object' && this.announced) {
      this.emit({ arguments: this.#obj.takeArguments() });
      this.endCall(false);
    }
    this.flushText();
  }
}

export const llama3Json: ToolCallFormat = {
  name: 'llama3_json',
  parse,
  reader: () => new Llama3Reader(),
  callStart(pending, atStart) {
    if (!atStart) return undefined;
    const trimmed = pending.trimStart();
    const at = pending.length - trimmed.length;
    if (trimmed === '' || PYTHON_TAG.startsWith(trimmed)) return { at, complete: false };
    if (trimmed.startsWith('{') || trimmed.startsWith(PYTHON_TAG)) return { at, complete: true };
    return undefined;
  },
  constraint(tools, parallel) {
    return callsConstraint(
      tools,
      parallel,
      (t) => argumentsBetween(t, `{"name": ${JSON.stringify(t.function.name)}, "parameters": `, '}'),
      '; ',
    );
  },
  write(calls) {
    return calls.map((c) => `{"name": ${JSON.stringify(c.name)}, "parameters": ${c.arguments}}`).join('; ');
  },
  instructions(tools) {
    return (
      'Given the following functions, please respond with a JSON for a function call with its proper arguments ' +
      'that best answers the given prompt.\n\nRespond in the format {"name": function name, "parameters": ' +
      `dictionary of argument name and its value}. Do not use variables.\n\n${toolsJson(tools)}`
    );
  },
  templateCall: argumentsAsObjects,
};
