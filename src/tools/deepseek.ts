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

export const deepseekV3: ToolCallFormat = {
  name: 'deepseek_v3',
  parse,
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
