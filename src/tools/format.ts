/**
 * A tool-call format: how one family of chat templates writes calls in the assistant's output, and everything the
 * library needs to speak it: parse a finished output into text and calls, tell a stream where a call may begin
 * (so that text which may be its start is held back), build the constraint that makes the output a valid call,
 * and write calls and results back into a chat history the way the family's template expects them.
 */
import type { CallReader } from './call-reader.js';
import { partialMarkerAtEnd } from './json-scan.js';
import type { ConstraintSpec, JsonSchema, ParsedCall, ParsedOutput, ToolChatMessage, ToolDefinition } from './types.js';

export type ToolFormatName = 'hermes' | 'llama3_json' | 'deepseek_v3';

/** Where a call begins in a stream's pending text. */
export interface CallStart {
  /** Index of the call's first character in the pending text. */
  at: number;
  /** true: a call starts there; false: the text from `at` on may be the start of one (hold it back). */
  complete: boolean;
}

export interface ToolCallFormat {
  readonly name: ToolFormatName;
  /** Splits a finished output into its text and its calls; text that is no valid call stays text. */
  parse(text: string): ParsedOutput;
  /**
   * Where a call begins in `pending` (text not yet sent as content), or undefined when none can. `atStart`: nothing
   * but whitespace came before `pending` (formats whose calls stand alone in the message begin only there).
   */
  callStart(pending: string, atStart: boolean): CallStart | undefined;
  /** A reader of a stream's calls from where `callStart` found one (the text from there on is pushed to it). */
  reader(): CallReader;
  /** The output as calls of `tools`, each call's arguments valid against its tool's parameters. */
  constraint(tools: readonly ToolDefinition[], parallel: boolean): ConstraintSpec;
  /** One call as the model writes it (used to write calls into a history whose template has no tool support). */
  write(calls: readonly ParsedCall[]): string;
  /** The instruction that tells a model about the tools and this format, for templates that do not render tools. */
  instructions(tools: readonly ToolDefinition[]): string;
  /**
   * The shape of an assistant message with tool calls that the family's template expects (its arguments as an
   * object or as the JSON text, its content null or text).
   */
  templateCall(m: ToolChatMessage): ToolChatMessage;
}

/** The arguments schema of a tool: its parameters, or an object without properties when it has none. */
export function parametersOf(t: ToolDefinition): JsonSchema {
  return t.function.parameters ?? { type: 'object', properties: {} };
}

export const literal = (text: string): ConstraintSpec => ({ type: 'literal', text });

/**
 * Calls of any of `tools` (each built by `call`), one or (parallel) several joined by `separator`, inside
 * `open`/`close` when the family wraps the list.
 */
export function callsConstraint(
  tools: readonly ToolDefinition[],
  parallel: boolean,
  call: (t: ToolDefinition) => ConstraintSpec,
  separator: string,
  open = '',
  close = '',
): ConstraintSpec {
  const one: ConstraintSpec = tools.length === 1 ? call(tools[0]!) : { type: 'any_of', items: tools.map(call) };
  const items: ConstraintSpec[] = [];
  if (open) items.push(literal(open));
  items.push(one);
  if (parallel) items.push({ type: 'repeat', item: { type: 'sequence', items: [literal(separator), one] }, min: 0 });
  if (close) items.push(literal(close));
  return items.length === 1 ? one : { type: 'sequence', items };
}

/** One call: `before`, the arguments (valid against the tool's parameters), `after`. */
export function argumentsBetween(t: ToolDefinition, before: string, after: string): ConstraintSpec {
  return {
    type: 'sequence',
    items: [literal(before), { type: 'json_schema', schema: parametersOf(t) }, literal(after)],
  };
}

/** `callStart` of a format whose calls begin with `marker` anywhere in the text. */
export function markerStart(marker: string): ToolCallFormat['callStart'] {
  return (pending) => {
    const at = pending.indexOf(marker);
    if (at >= 0) return { at, complete: true };
    const n = partialMarkerAtEnd(pending, marker);
    return n > 0 ? { at: pending.length - n, complete: false } : undefined;
  };
}

/** The tools as JSON lines, as Hugging Face templates list them (`tool | tojson`). */
export function toolsJson(tools: readonly ToolDefinition[]): string {
  return tools.map((t) => JSON.stringify(t)).join('\n');
}

/** An assistant message whose calls' arguments are objects (templates that apply `tojson` to them). */
export function argumentsAsObjects(m: ToolChatMessage): ToolChatMessage {
  if (!m.tool_calls) return m;
  return {
    ...m,
    content: m.content ?? '',
    tool_calls: m.tool_calls.map((c) => {
      let args: unknown = c.function.arguments;
      try {
        args = JSON.parse(c.function.arguments) as unknown;
      } catch {
        // not JSON: the template gets the text as the client sent it
      }
      return { ...c, function: { name: c.function.name, arguments: args as string } };
    }),
  };
}
