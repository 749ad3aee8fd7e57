/**
 * What a request's tools and structured output do to its generation: the prompt (the history and tool definitions
 * in the shapes the model's chat template expects, src/tools), the constraint on the output (a tool choice that
 * requires a call, `response_format`, vLLM's guided fields), and how the output is read back (calls parsed in the
 * template family's format, `finish_reason: "tool_calls"`).
 *
 * | tool_choice | prompt | constraint | output |
 * |---|---|---|---|
 * | none given / `none` | tools rendered | the structured output's, if any | text |
 * | `auto` | tools rendered | none; with a structured output: a call *or* the structured output (`any_of`) | parsed |
 * | `required` | tools rendered | calls of any tool (several when `parallel_tool_calls`) | parsed |
 * | `{function: {name}}` | tools rendered | one call of that tool | parsed |
 */
import type { MeterablePromptInput } from '../usage/index.js';
import { ApiError } from '../http/errors.js';
import {
  toolChoiceConstraint,
  toolPrompt,
  toolTemplateOf,
  toToolCalls,
  type ConstraintSpec,
  type ToolCall,
  type ToolCallFormat,
  type ToolChatMessage,
  type ToolTemplate,
} from '../tools/index.js';
import type { SamplingRequest } from './requests.js';
import type { ToolRequest } from './tool-requests.js';

/**
 * Whether the engine takes a `constraint` generation option. Until it does, a request whose output would have to
 * be constrained is refused (400 naming the field), never answered unconstrained.
 */
export const ENGINE_CONSTRAINTS = true;

export interface GenerationPlan {
  /** The prompt to generate from (the request's first prompt, shaped for tools when it is a chat). */
  input: MeterablePromptInput;
  constraint?: ConstraintSpec;
  /** The request field the constraint comes from: a 400 for a schema the engine cannot compile names it. */
  constraintParam?: string;
  /** Set when the output is parsed for calls. */
  format?: ToolCallFormat;
}

/** Why a request needs the constraint engine, for the 400 when there is none. */
function constraintRefusal(param: string): ApiError {
  return new ApiError(
    'ERR_UNSUPPORTED_PARAMETER',
    `'${param}' needs constrained generation, which this server's engine does not have`,
    param,
  );
}

/**
 * A chat with tools or tool history in the shapes the model's chat template expects (src/tools): the one place
 * that shapes it, so that /tokenize counts what a generation request bills. Other prompts are returned as they are.
 */
export function chatForTemplate(
  input: MeterablePromptInput,
  tools: ToolRequest | undefined,
  template: () => string | undefined,
): { input: MeterablePromptInput; tt?: ToolTemplate } {
  if (typeof input === 'string') return { input };
  if (!tools && !input.messages.some((m) => m.role === 'tool' || m.tool_calls !== undefined)) return { input };
  const tt = toolTemplateOf(template() ?? '');
  const p = toolPrompt(tt, input.messages as ToolChatMessage[], tools?.tools);
  return { input: { ...input, ...p }, tt };
}

/**
 * The plan of request `r` for a model whose chat template `template()` gives (asked only for a chat with tools or
 * tool history; undefined: the model has none, and the chat fails as before, when it is rendered).
 */
export function planGeneration(r: SamplingRequest, template: () => string | undefined): GenerationPlan {
  const structured = r.structured;
  const t = r.tools;
  const { input, tt } = chatForTemplate(r.input, t, template);
  let format: ToolCallFormat | undefined;
  let toolConstraint: ConstraintSpec | undefined;
  if (tt && t && t.choice !== 'none') {
    format = tt.format;
    // `auto` is free, unless a structured output is asked for too: then the answer is a call or that output.
    toolConstraint =
      t.choice === 'auto'
        ? structured && tt.format.constraint(t.tools, t.parallel)
        : toolChoiceConstraint(tt.format, t.tools, t.choice, t.parallel);
  }
  let constraint: ConstraintSpec | undefined;
  let constraintParam: string | undefined;
  if (toolConstraint && structured && t?.choice === 'auto') {
    constraint = { type: 'any_of', items: [toolConstraint, structured.constraint] };
    constraintParam = structured.param;
  } else if (toolConstraint) {
    constraint = toolConstraint;
    constraintParam = 'tools';
  } else if (structured) {
    constraint = structured.constraint;
    constraintParam = structured.param;
  }
  if (constraint && !ENGINE_CONSTRAINTS)
    throw constraintRefusal(constraintParam === 'tools' ? 'tool_choice' : constraintParam!);
  return {
    input,
    ...(constraint ? { constraint, constraintParam: constraintParam! } : {}),
    ...(format ? { format } : {}),
  };
}

/** A choice's output read back: its text (null when it only calls), its calls, its finish reason. */
export interface ChoiceOutput {
  content: string | null;
  toolCalls?: ToolCall[];
  finishReason: string;
}

export function readOutput(plan: GenerationPlan, text: string, finishReason: string): ChoiceOutput {
  if (!plan.format) return { content: text, finishReason };
  const parsed = plan.format.parse(text);
  if (parsed.calls.length === 0) return { content: text, finishReason };
  return {
    content: parsed.content === '' ? null : parsed.content,
    toolCalls: toToolCalls(parsed.calls),
    finishReason: 'tool_calls',
  };
}

/**
 * A constraint the engine refused to compile (its `ERR_GRAMMAR_*` codes), restated as a 400 naming the request
 * field it came from; any other error is returned as it is.
 */
export function constraintError(err: unknown, plan: GenerationPlan): unknown {
  const e = err as { code?: unknown; message?: unknown };
  if (plan.constraintParam === undefined || typeof e?.code !== 'string' || !e.code.startsWith('ERR_GRAMMAR_')) {
    return err;
  }
  return new ApiError(
    e.code === 'ERR_GRAMMAR_UNSUPPORTED' ? 'ERR_UNSUPPORTED_PARAMETER' : 'ERR_INVALID_REQUEST',
    `'${plan.constraintParam}': ${String(e.message)}`,
    plan.constraintParam,
  );
}
