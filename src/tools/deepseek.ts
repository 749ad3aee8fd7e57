/**
 * DeepSeek-V3's tool calls (its chat template writes them, its tokenizer has the markers as added tokens that stay
 * in the decoded text):
 *
 *   text<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
 *   \n<｜tool▁call▁begin｜>...<｜tool▁call▁end｜><｜tool▁calls▁end｜>
 *
 * Its template renders an assistant message's calls only when the message's content is null, with the arguments
 * as JSON text, and does not render tool definitions (they go in a system message, see tool-prompt.ts).
 */
import { argumentsBetween, callsConstraint, markerStart, toolsJson, type ToolCallFormat } from './format.js';
import { BufferedCallReader, startsWithLiteral } from './call-reader.js';
import { JsonValueReader } from './json-stream.js';
import { isPlainObject, tryParse } from './json-scan.js';
import type { ParsedCall, ParsedOutput } from './types.js';

const CALLS_BEGIN = '<｜tool▁calls▁begin｜>';
const CALLS_END = '<｜tool▁calls▁end｜>';
const CALL_BEGIN = '<｜tool▁call▁begin｜>';
const CALL_END = '<｜tool▁call▁end｜>';
const SEP = '<｜tool▁sep｜>';

const CALL = new RegExp(`${CALL_BEGIN}function${SEP}([^\\n]+)\\n\`\`\`json\\n([\\s\\S]*?)\\n\`\`\`${CALL_END}`, 'g');

function parse(text: string): ParsedOutput {
  const begin = text.indexOf(CALLS_BEGIN);
  if (begin < 0) return { content: text, calls: [] };
  const calls: ParsedCall[] = [];
  const block = text.slice(begin + CALLS_BEGIN.length);
  let last = 0;
  for (const m of block.matchAll(CALL)) {
    // Calls follow each other, separated by whitespace only.
    if (block.slice(last, m.index).trim() !== '') break;
    const args = tryParse(m[2]!);
    if (!isPlainObject(args)) break;
    calls.push({ name: m[1]!.trim(), arguments: JSON.stringify(args) });
    last = m.index + m[0].length;
  }
  if (calls.length === 0) return { content: text, calls: [] };
  let rest = block.slice(last).trimStart();
  if (rest.startsWith(CALLS_END)) rest = rest.slice(CALLS_END.length);
  return { content: (text.slice(0, begin) + rest).trim(), calls };
}

const HEAD = `function${SEP}`;
const FENCE = '```json\n';
const TAIL = `\`\`\`${CALL_END}`;

/**
 * A stream's calls from `<｜tool▁calls▁begin｜>` on: each call's name (sent at its newline), its arguments as they
 * come, its closing fence; after `<｜tool▁calls▁end｜>` (or anything that is not a next call) the text goes on.
 * A call that breaks before it was announced ends the calls: it and what follows are text.
 */
class DeepSeekReader extends BufferedCallReader {
  #state: 'begin' | 'between' | 'head' | 'name' | 'fence' | 'args' | 'tail' = 'begin';
  #name = '';
  #args = new JsonValueReader();

  protected step(): string | undefined {
    for (;;) {
      switch (this.#state) {
        case 'begin':
        case 'head':
        case 'fence': {
          const lit = this.#state === 'begin' ? CALLS_BEGIN : this.#state === 'head' ? HEAD : FENCE;
          const m = this.literal(lit);
          if (m === 'partial') return undefined;
          if (m === 'no') return this.#text();
          this.#state = this.#state === 'begin' ? 'between' : this.#state === 'head' ? 'name' : 'args';
          break;
        }
        case 'between': {
          if (!this.skipSpace()) return undefined;
          const next = this.literal(CALL_BEGIN);
          if (next === 'yes') {
            this.#state = 'head';
            break;
          }
          const end = this.literal(CALLS_END);
          if (next === 'partial' || end === 'partial') return undefined;
          if (end === 'no') return this.#text();
          const rest = this.buf;
          this.buf = '';
          return rest;
        }
        case 'name': {
          const nl = this.buf.indexOf('\n');
          if (nl < 0) return undefined;
          this.#name = this.consume(nl + 1).trim();
          if (this.#name === '') return this.#text();
          this.#args = new JsonValueReader();
          this.#state = 'fence';
          break;
        }
        case 'args': {
          this.consume(this.#args.push(this.buf));
          const first = this.#args.first;
          if (first !== undefined && first !== '{') return this.#text();
          if (first === '{' && !this.announced) this.announce(this.#name);
          this.emit({ arguments: this.#args.take() });
          if (this.#args.failed) return this.#text();
          if (!this.#args.done) return undefined;
          this.#state = 'tail';
          break;
        }
        case 'tail': {
          const space = this.buf.length - this.buf.trimStart().length;
          if (space === this.buf.length) return undefined;
          if (!this.buf.slice(0, space).includes('\n')) return this.#text();
          const m = startsWithLiteral(this.buf.slice(space), TAIL);
          if (m === 'partial') return undefined;
          if (m === 'no') return this.#text();
          this.consume(space + TAIL.length);
          this.endCall(true);
          this.#state = 'between';
          break;
        }
      }
    }
  }

  /** What is held is text: a call that broke (ending an announced one), and all that follows. */
  #text(): string {
    if (this.announced) this.endCall(false);
    this.flushText();
    return '';
  }

  protected finish(): void {
    if (this.announced) this.endCall(false);
    if (this.#state === 'between' && this.calls > 0) this.raw = '';
    this.flushText();
  }
}

export const deepseekV3: ToolCallFormat = {
  name: 'deepseek_v3',
  parse,
  reader: () => new DeepSeekReader(),
  callStart: markerStart(CALLS_BEGIN),
  constraint(tools, parallel) {
    return callsConstraint(
      tools,
      parallel,
      (t) => argumentsBetween(t, `${CALL_BEGIN}function${SEP}${t.function.name}\n\`\`\`json\n`, `\n\`\`\`${CALL_END}`),
      '\n',
      CALLS_BEGIN,
      CALLS_END,
    );
  },
  write(calls) {
    const each = calls.map(
      (c) => `${CALL_BEGIN}function${SEP}${c.name}\n\`\`\`json\n${c.arguments}\n\`\`\`${CALL_END}`,
    );
    return `${CALLS_BEGIN}${each.join('\n')}${CALLS_END}`;
  },
  instructions(tools) {
    return (
      `## Tools\nYou have access to the following functions:\n\n${toolsJson(tools)}\n\nTo call functions, answer ` +
      `with ${CALLS_BEGIN}, then for each call ${CALL_BEGIN}function${SEP}<name>\n\`\`\`json\n<arguments>\n\`\`\`` +
      `${CALL_END}, then ${CALLS_END}.`
    );
  },
  // The template writes `tool['function']['arguments']` into the text (so: the JSON text) and renders the calls
  // only of a message whose content is null.
  templateCall: (m) => (m.tool_calls ? { ...m, content: null } : m),
};
