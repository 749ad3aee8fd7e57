/**
 * Tool calling in OpenAI's shapes, as the library and the server use them: tool definitions, the caller's choice,
 * the calls parsed from a model's output, and the constraint a tool choice turns into.
 */

/** A JSON Schema (an object, or `true`/`false`); checked by the grammar engine when it is compiled. */
export type JsonSchema = Record<string, unknown> | boolean;

/**
 * What a generation's output must match (the grammar engine's spec). `json_schema`: one JSON value valid against
 * `schema`; `json_object`: any JSON object; `regex`, `choice` (one of the strings), `literal` (exactly the text);
 * `sequence` / `any_of` / `repeat` compose them.
 */
export type ConstraintSpec =
  | { type: 'json_schema'; schema: JsonSchema }
  | { type: 'json_object' }
  | { type: 'regex'; pattern: string }
  | { type: 'choice'; choices: string[] }
  | { type: 'literal'; text: string }
  | { type: 'sequence'; items: ConstraintSpec[] }
  | { type: 'any_of'; items: ConstraintSpec[] }
  | { type: 'repeat'; item: ConstraintSpec; min: number; max?: number };

/** A function the model may call (OpenAI's chat completions `tools[]` entry). */
export interface ToolDefinition {
  type: 'function';
  function: {
    name: string;
    description?: string;
    /** JSON Schema of the arguments object; absent = a function without parameters. */
    parameters?: Record<string, unknown>;
    strict?: boolean;
  };
}

/**
 * `auto`: the model decides (its output is parsed, not constrained); `none`: no calls (the output is text);
 * `required`: at least one call; `{name}`: a call of that function.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** A call as the model wrote it: the function's name and its arguments as JSON text. */
export interface ParsedCall {
  name: string;
  /** The arguments object as JSON text (as OpenAI's `function.arguments`). */
  arguments: string;
}

/** A model's output split into its text and its calls. */
export interface ParsedOutput {
  /** The text outside the calls (trimmed of the whitespace around them); '' when there is none. */
  content: string;
  calls: ParsedCall[];
}

/** A call in OpenAI's `message.tool_calls[]` shape. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A chat message in the history as the server passes it to the chat template. */
export interface ToolChatMessage {
  role: string;
  content: string | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  [key: string]: unknown;
}
