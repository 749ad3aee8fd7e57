/**
 * The Hermes format, as Qwen 2.5/3 and Hermes 2/3 templates write it: each call is a JSON object in its own
 * `<tool_call>` block, after any text:
 *
 *   text<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>...
 *
 * It is also the format of templates that have no tool support of their own (the tools are then described in a
 * system message, see tool-prompt.ts).
 */
import {
  argumentsAsObjects,
  argumentsBetween,
  callsConstraint,
  markerStart,
  toolsJson,
  type ToolCallFormat,
} from './format.js';
import { BufferedCallReader, CallObjectReader } from './call-reader.js';
import { isPlainObject, tryParse } from './json-scan.js';
import type { ParsedCall, ParsedOutput } from './types.js';

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

/** A block's JSON as a call: `{name, arguments}` (arguments an object, or JSON text of one, as some models write). */
function callOf(json: string): ParsedCall | undefined {
  const v = tryParse(json.trim());
  if (!isPlainObject(v) || typeof v.name !== 'string' || v.name === '') return undefined;
  let args: unknown = v.arguments ?? v.parameters ?? {};
  if (typeof args === 'string') args = tryParse(args);
  if (!isPlainObject(args)) return undefined;
  return { name: v.name, arguments: JSON.stringify(args) };
}

function parse(text: string): ParsedOutput {
  const calls: ParsedCall[] = [];
  let content = '';
  let i = 0;
  for (;;) {
    const open = text.indexOf(OPEN, i);
    if (open < 0) break;
    const close = text.indexOf(CLOSE, open + OPEN.length);
    // An unclosed last block (the generation ended, e.g. at max_tokens or EOS, before `</tool_call>`) still counts
    // when its JSON is complete.
    const inner = text.slice(open + OPEN.length, close < 0 ? undefined : close);
    const call = callOf(inner);
    const end = close < 0 ? text.length : close + CLOSE.length;
    if (call) {
      calls.push(call);
      content += text.slice(i, open);
    } else content += text.slice(i, end);
    i = end;
  }
  content += text.slice(i);
  return { content: calls.length > 0 ? content.trim() : text, calls };
}

/**
 * A stream's calls from a `<tool_call>` on: each block's call object read as it comes, then `</tool_call>`, then the
 * text after it. A block that is no call (bad JSON, no name) is sent as text up to its `</tool_call>`, as the
 * whole-output parser keeps it; so is what follows a call's object inside its block when it is not `</tool_call>`.
 */
class HermesReader extends BufferedCallReader {
  #state: 'open' | 'object' | 'close' | 'skip' = 'open';
  #obj = new CallObjectReader(['arguments', 'parameters'], true);

  protected step(): string | undefined {
    for (;;) {
      switch (this.#state) {
        case 'open': {
          const m = this.literal(OPEN);
          if (m === 'partial') return undefined;
          if (m === 'no') return this.#skip();
          this.#state = 'object';
          break;
        }
        case 'object': {
          const r = this.readObject(this.#obj);
          if (r === 'more') return undefined;
          if (r === 'failed') return this.#skip();
          this.endCall(true);
          this.#state = 'close';
          break;
        }
        case 'close': {
          if (!this.skipSpace()) return undefined;
          const m = this.literal(CLOSE);
          if (m === 'partial') return undefined;
          if (m === 'no') return this.#skip();
          this.raw = '';
          return this.#rest();
        }
        case 'skip': {
          const at = (this.raw + this.buf).indexOf(CLOSE);
          if (at < 0) return undefined;
          this.consume(at + CLOSE.length - this.raw.length);
          this.emit({ content: this.raw });
          this.raw = '';
          return this.#rest();
        }
      }
    }
  }

  /** The rest of the block is text, up to its `</tool_call>`. */
  #skip(): string | undefined {
    if (this.announced) this.endCall(false);
    this.#state = 'skip';
    return this.step();
  }

  #rest(): string {
    const rest = this.buf;
    this.buf = '';
    return rest;
  }

  protected finish(): void {
    if (this.#state === 'object' && this.announced) {
      this.emit({ arguments: this.#obj.takeArguments() });
      this.endCall(false);
    }
    // A call whose object is complete counts without its `</tool_call>` (the generation ended first).
    if (this.#state === 'close') this.raw = '';
    this.flushText();
  }
}

export const hermes: ToolCallFormat = {
  name: 'hermes',
  parse,
  callStart: markerStart(OPEN),
  reader: () => new HermesReader(),
  constraint(tools, parallel) {
    return callsConstraint(
      tools,
      parallel,
      (t) => argumentsBetween(t, `${OPEN}\n{"name": ${JSON.stringify(t.function.name)}, "arguments": `, `}\n${CLOSE}`),
      '\n',
    );
  },
  write(calls) {
    return calls
      .map((c) => `${OPEN}\n{"name": ${JSON.stringify(c.name)}, "arguments": ${c.arguments}}\n${CLOSE}`)
      .join('\n');
  },
  instructions(tools) {
    return (
      '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
      `You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n${toolsJson(tools)}\n` +
      '</tools>\n\nFor each function call, return a json object with function name and arguments within ' +
      `${OPEN}${CLOSE} XML tags:\n${OPEN}\n{"name": <function-name>, "arguments": <args-json-object>}\n${CLOSE}`
    );
  },
  templateCall: argumentsAsObjects,
};
