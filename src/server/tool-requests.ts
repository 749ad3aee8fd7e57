/**
 * The request fields of tool calling and structured outputs, validated at the edge like every other field (an
 * ill-typed value is a 400 naming it): `tools`, `tool_choice`, `parallel_tool_calls`, `response_format`, vLLM's
 * `structured_outputs` and `guided_json` / `guided_regex` / `guided_choice`, the history's assistant `tool_calls`
 * and `tool` messages, and their Responses API forms (flat function tools, `text.format`, `function_call` and
 * `function_call_output` input items).
 */
import type { ConstraintSpec, ToolCall, ToolChoice, ToolDefinition } from '../tools/index.js';
import { ApiError } from '../http/errors.js';
import { bad, checkFields, isObject, show, type Body } from './fields.js';

/** The tools of a request and how they may be used. */
export interface ToolRequest {
  tools: ToolDefinition[];
  choice: ToolChoice;
  parallel: boolean;
}

/** A structured output: the constraint and the request field it came from (named by a compile error's 400). */
export interface StructuredRequest {
  constraint: ConstraintSpec;
  param: string;
}

/** OpenAI's rule for function names. */
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function unsupported(param: string, message: string): never {
  throw new ApiError('ERR_UNSUPPORTED_PARAMETER', message, param);
}

function schemaObject(v: unknown, where: string): Record<string, unknown> {
  if (!isObject(v)) bad(where, `expected a JSON Schema object for '${where}', got ${show(v)}`);
  return v;
}

/** One function tool: chat's `{type, function: {...}}`, or the Responses API's flat `{type, name, ...}`. */
function parseTool(t: unknown, where: string, flat: boolean): ToolDefinition {
  if (!isObject(t)) bad(where, `expected a tool object for '${where}', got ${show(t)}`);
  if (t.type !== 'function') {
    unsupported(`${where}.type`, `only function tools are supported, got type ${show(t.type)}`);
  }
  const fields = ['name', 'description', 'parameters', 'strict'];
  let f: Body;
  let at: string;
  if (flat) {
    checkFields(t, ['type', ...fields], {}, `${where}.`);
    f = t;
    at = where;
  } else {
    checkFields(t, ['type', 'function'], {}, `${where}.`);
    if (!isObject(t.function))
      bad(`${where}.function`, `expected an object for '${where}.function', got ${show(t.function)}`);
    checkFields(t.function, fields, {}, `${where}.function.`);
    f = t.function;
    at = `${where}.function`;
  }
  if (typeof f.name !== 'string' || !NAME.test(f.name)) {
    bad(
      `${at}.name`,
      `expected a function name of 1-64 letters, digits, '_' or '-' for '${at}.name', got ${show(f.name)}`,
    );
  }
  const out: ToolDefinition['function'] = { name: f.name };
  if (f.description !== undefined && f.description !== null) {
    if (typeof f.description !== 'string')
      bad(`${at}.description`, `expected a string for '${at}.description', got ${show(f.description)}`);
    out.description = f.description;
  }
  if (f.parameters !== undefined && f.parameters !== null)
    out.parameters = schemaObject(f.parameters, `${at}.parameters`);
  if (f.strict !== undefined && f.strict !== null) {
    if (typeof f.strict !== 'boolean')
      bad(`${at}.strict`, `expected a boolean for '${at}.strict', got ${show(f.strict)}`);
    out.strict = f.strict;
  }
  return { type: 'function', function: out };
}

/**
 * `tools`, `tool_choice` and `parallel_tool_calls` of a body (`flat`: the Responses API's forms). Undefined when
 * the request has no tools (none given, or `[]`), whatever its tool_choice says, unless that requires a call.
 */
export function parseToolRequest(body: Body, flat: boolean): ToolRequest | undefined {
  const raw = body.tools;
  const tools: ToolDefinition[] = [];
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw)) bad('tools', `expected an array of tools for 'tools', got ${show(raw)}`);
    raw.forEach((t, i) => tools.push(parseTool(t, `tools[${i}]`, flat)));
    const names = new Set<string>();
    for (const [i, t] of tools.entries()) {
      if (names.has(t.function.name))
        bad(`tools[${i}]`, `two tools are named '${t.function.name}'; names must be unique`);
      names.add(t.function.name);
    }
  }
  const parallel = body.parallel_tool_calls ?? true;
  if (typeof parallel !== 'boolean')
    bad('parallel_tool_calls', `expected a boolean for 'parallel_tool_calls', got ${show(parallel)}`);
  const choice = parseToolChoice(body.tool_choice, tools, flat);
  if (tools.length === 0) {
    if (choice !== 'auto' && choice !== 'none')
      bad('tool_choice', "'tool_choice' requires a tool call, but the request has no 'tools'");
    return undefined;
  }
  return { tools, choice, parallel };
}

function parseToolChoice(v: unknown, tools: readonly ToolDefinition[], flat: boolean): ToolChoice {
  if (v === undefined || v === null) return 'auto';
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (!isObject(v) || v.type !== 'function') {
    bad('tool_choice', `expected 'auto', 'none', 'required' or a function for 'tool_choice', got ${show(v)}`);
  }
  let name: unknown;
  if (flat) {
    checkFields(v, ['type', 'name'], {}, 'tool_choice.');
    name = v.name;
  } else {
    checkFields(v, ['type', 'function'], {}, 'tool_choice.');
    if (!isObject(v.function))
      bad('tool_choice.function', `expected {name} for 'tool_choice.function', got ${show(v.function)}`);
    checkFields(v.function, ['name'], {}, 'tool_choice.function.');
    name = v.function.name;
  }
  const param = flat ? 'tool_choice.name' : 'tool_choice.function.name';
  if (typeof name !== 'string') bad(param, `expected a function name for '${param}', got ${show(name)}`);
  if (!tools.some((t) => t.function.name === name))
    bad(param, `'${param}' is ${show(name)}, which is not one of the request's tools`);
  return { name };
}

/** `{type: 'text'}` (none), `{type: 'json_object'}`, or a JSON schema as chat's `json_schema` or Responses' flat form. */
export function parseResponseFormat(v: unknown, param: string, flat: boolean): StructuredRequest | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) bad(param, `expected an object for '${param}', got ${show(v)}`);
  switch (v.type) {
    case 'text':
      checkFields(v, ['type'], {}, `${param}.`);
      return undefined;
    case 'json_object':
      checkFields(v, ['type'], {}, `${param}.`);
      return { constraint: { type: 'json_object' }, param };
    case 'json_schema': {
      const fields = ['name', 'schema', 'strict', 'description'];
      let js: Body;
      let at: string;
      if (flat) {
        checkFields(v, ['type', ...fields], {}, `${param}.`);
        js = v;
        at = param;
      } else {
        checkFields(v, ['type', 'json_schema'], {}, `${param}.`);
        if (!isObject(v.json_schema))
          bad(`${param}.json_schema`, `expected an object for '${param}.json_schema', got ${show(v.json_schema)}`);
        checkFields(v.json_schema, fields, {}, `${param}.json_schema.`);
        js = v.json_schema;
        at = `${param}.json_schema`;
      }
      if (typeof js.name !== 'string' || !NAME.test(js.name))
        bad(`${at}.name`, `expected a name of 1-64 letters, digits, '_' or '-' for '${at}.name', got ${show(js.name)}`);
      if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean')
        bad(`${at}.strict`, `expected a boolean for '${at}.strict', got ${show(js.strict)}`);
      if (js.description !== undefined && js.description !== null && typeof js.description !== 'string')
        bad(`${at}.description`, `expected a string for '${at}.description', got ${show(js.description)}`);
      // Strict or not, the output is held to the schema: a grammar cannot follow a schema loosely.
      return {
        constraint: { type: 'json_schema', schema: schemaObject(js.schema, `${at}.schema`) },
        param,
      };
    }
    default:
      return bad(
        `${param}.type`,
        `expected 'text', 'json_object' or 'json_schema' for '${param}.type', got ${show(v.type)}`,
      );
  }
}

/** vLLM's guided_json (a schema, or its JSON text), guided_regex, guided_choice. */
function guided(kind: 'json' | 'regex' | 'choice' | 'json_object', v: unknown, param: string): StructuredRequest {
  switch (kind) {
    case 'json': {
      const schema = typeof v === 'string' ? tryJson(v) : v;
      if (schema === true || isObject(schema)) return { constraint: { type: 'json_schema', schema }, param };
      return bad(param, `expected a JSON Schema (an object or its JSON text) for '${param}', got ${show(v)}`);
    }
    case 'regex':
      if (typeof v !== 'string' || v === '') bad(param, `expected a regular expression for '${param}', got ${show(v)}`);
      return { constraint: { type: 'regex', pattern: v }, param };
    case 'choice':
      if (!Array.isArray(v) || v.length === 0 || v.some((c) => typeof c !== 'string'))
        bad(param, `expected a non-empty array of strings for '${param}', got ${show(v)}`);
      return { constraint: { type: 'choice', choices: v as string[] }, param };
    case 'json_object':
      if (v !== true) bad(param, `expected true for '${param}', got ${show(v)}`);
      return { constraint: { type: 'json_object' }, param };
  }
}

function tryJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}

/** vLLM's top-level guided-decoding fields. */
export const GUIDED_FIELDS = ['guided_json', 'guided_regex', 'guided_choice', 'guided_grammar', 'structured_outputs'];

/**
 * The structured output a chat or completion body asks for: `response_format` (chat), vLLM's `structured_outputs`
 * (`{json | regex | choice | json_object}`) or its older `guided_*` fields. At most one may be given. A grammar
 * (`guided_grammar`, `structured_outputs.grammar`) is refused: the engine takes JSON Schema, regex and choices.
 */
export function parseStructured(body: Body, withResponseFormat: boolean): StructuredRequest | undefined {
  const found: StructuredRequest[] = [];
  if (withResponseFormat) {
    const rf = parseResponseFormat(body.response_format, 'response_format', false);
    if (rf) found.push(rf);
  }
  const given = (k: string): boolean => body[k] !== undefined && body[k] !== null;
  if (given('guided_grammar'))
    unsupported('guided_grammar', "grammars are not supported; use 'guided_json', 'guided_regex' or 'guided_choice'");
  if (given('guided_json')) found.push(guided('json', body.guided_json, 'guided_json'));
  if (given('guided_regex')) found.push(guided('regex', body.guided_regex, 'guided_regex'));
  if (given('guided_choice')) found.push(guided('choice', body.guided_choice, 'guided_choice'));
  const so = body.structured_outputs;
  if (so !== undefined && so !== null) {
    if (!isObject(so)) bad('structured_outputs', `expected an object for 'structured_outputs', got ${show(so)}`);
    checkFields(so, ['json', 'regex', 'choice', 'json_object', 'grammar'], {}, 'structured_outputs.');
    if (so.grammar !== undefined && so.grammar !== null)
      unsupported('structured_outputs.grammar', "grammars are not supported; use 'json', 'regex' or 'choice'");
    for (const k of ['json', 'regex', 'choice', 'json_object'] as const) {
      if (so[k] !== undefined && so[k] !== null) found.push(guided(k, so[k], `structured_outputs.${k}`));
    }
  }
  if (found.length > 1) {
    bad(
      found[1]!.param,
      `give one structured output: '${found[0]!.param}' and '${found[1]!.param}' both constrain the output`,
    );
  }
  return found[0];
}

/** An assistant message's `tool_calls` (chat's shape: id, type 'function', function {name, arguments}). */
export function parseToolCalls(v: unknown, where: string): ToolCall[] {
  if (!Array.isArray(v) || v.length === 0)
    bad(where, `expected a non-empty array of tool calls for '${where}', got ${show(v)}`);
  return v.map((c, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(c)) bad(at, `expected a tool call object for '${at}', got ${show(c)}`);
    checkFields(c, ['id', 'type', 'function'], {}, `${at}.`);
    if (typeof c.id !== 'string' || c.id === '')
      bad(`${at}.id`, `expected a non-empty string for '${at}.id', got ${show(c.id)}`);
    if (c.type !== 'function') unsupported(`${at}.type`, `only function calls are supported, got type ${show(c.type)}`);
    if (!isObject(c.function))
      bad(`${at}.function`, `expected {name, arguments} for '${at}.function', got ${show(c.function)}`);
    checkFields(c.function, ['name', 'arguments'], {}, `${at}.function.`);
    const f = c.function;
    if (typeof f.name !== 'string' || f.name === '')
      bad(`${at}.function.name`, `expected a non-empty string for '${at}.function.name', got ${show(f.name)}`);
    if (typeof f.arguments !== 'string')
      bad(
        `${at}.function.arguments`,
        `expected the arguments as JSON text for '${at}.function.arguments', got ${show(f.arguments)}`,
      );
    return { id: c.id, type: 'function', function: { name: f.name, arguments: f.arguments } };
  });
}
