/**
 * Tool calling and structured outputs over any chat model: the tool-call formats of the chat template families
 * (Hermes/Qwen, Llama 3.1+ JSON, DeepSeek-V3), their parsers (whole outputs and streams), the constraints that make
 * an output a valid call, and the chat history in the shapes each template expects. See README.md.
 */
import { TokmeterTypeError } from '../errors.js';
import type { ToolCallFormat } from './format.js';
import type { ConstraintSpec, ToolChoice, ToolDefinition } from './types.js';

export type {
  ConstraintSpec,
  JsonSchema,
  ParsedCall,
  ParsedOutput,
  ToolCall,
  ToolChatMessage,
  ToolChoice,
  ToolDefinition,
} from './types.js';
export type { ToolCallFormat, ToolFormatName, CallStart } from './format.js';
export { hermes } from './hermes.js';
export { llama3Json } from './llama3.js';
export { deepseekV3 } from './deepseek.js';
export { toolTemplateOf, toolPrompt, type ToolTemplate } from './tool-prompt.js';
export { ToolCallStream, newCallId, toToolCalls, type ToolStreamEvent } from './stream.js';
export { jsonValueEnd } from './json-scan.js';

/**
 * The constraint a tool choice puts on the output: `required`, calls of any of the tools (several when
 * `parallel`); a named function, one call of it; `auto` and `none`, none (the output is free and parsed, or text).
 */
export function toolChoiceConstraint(
  format: ToolCallFormat,
  tools: readonly ToolDefinition[],
  choice: ToolChoice,
  parallel: boolean,
): ConstraintSpec | undefined {
  if (choice === 'auto' || choice === 'none' || tools.length === 0) return undefined;
  if (choice === 'required') return format.constraint(tools, parallel);
  const tool = tools.find((t) => t.function.name === choice.name);
  if (!tool) throw new TokmeterTypeError(`tool_choice names '${choice.name}', which is not among the tools`);
  return format.constraint([tool], false);
}
