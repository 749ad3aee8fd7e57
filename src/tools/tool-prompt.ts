/**
 * Which tool-call format a chat template speaks, and the chat history as that template expects it.
 *
 * Hugging Face's convention: the template receives `tools` (a list of `{type: 'function', function: {name,
 * description, parameters}}`), assistant messages with `tool_calls`, and `tool` messages with the results. A
 * template's family is read from the template itself (the markers it writes). A template that does not render
 * `tools` gets them in a system message (the family's own instruction); a template that renders no calls gets the
 * history's calls written in the format as assistant text, and the results as user messages.
 */
import { deepseekV3 } from './deepseek.js';
import type { ToolCallFormat } from './format.js';
import { hermes } from './hermes.js';
import { llama3Json } from './llama3.js';
import type { ToolChatMessage, ToolDefinition } from './types.js';

export interface ToolTemplate {
  format: ToolCallFormat;
  /** The template renders the `tools` variable itself. */
  rendersTools: boolean;
  /** The template renders assistant `tool_calls` and `tool` messages. */
  rendersCalls: boolean;
}

/**
 * The tool-call family of a chat template: Hermes (`<tool_call>`, Qwen 2.5/3, Hermes), DeepSeek-V3 (its tool-call
 * tokens), Llama 3.1+ (`<|python_tag|>`, or `"parameters"` calls in a Llama 3 header template); any other template
 * uses the Hermes format with the tools described in a system message.
 */
export function toolTemplateOf(template: string): ToolTemplate {
  const rendersTools = /\btools\b/.test(template);
  const rendersCalls = /\btool_calls\b/.test(template);
  if (template.includes('<tool_call>')) return { format: hermes, rendersTools, rendersCalls };
  if (template.includes('<｜tool▁call▁begin｜>')) return { format: deepseekV3, rendersTools, rendersCalls };
  if (
    template.includes('<|python_tag|>') ||
    (template.includes('<|start_header_id|>') && template.includes('"parameters"'))
  ) {
    return { format: llama3Json, rendersTools, rendersCalls };
  }
  return { format: hermes, rendersTools: false, rendersCalls: false };
}

/** A system message carrying `text`: appended to the first system message, or a new one before the chat. */
function withSystemText(messages: ToolChatMessage[], text: string): ToolChatMessage[] {
  const first = messages[0];
  if (first && (first.role === 'system' || first.role === 'developer') && typeof first.content === 'string') {
    return [{ ...first, content: `${first.content}\n\n${text}` }, ...messages.slice(1)];
  }
  return [{ role: 'system', content: text }, ...messages];
}

/**
 * The chat and the `tools` variable to render for `tt`'s template: tool definitions in the template's variable or
 * in a system message, the history's calls and results in the shapes the template expects.
 */
export function toolPrompt(
  tt: ToolTemplate,
  messages: readonly ToolChatMessage[],
  tools?: readonly ToolDefinition[],
): { messages: ToolChatMessage[]; tools?: ToolDefinition[] } {
  const f = tt.format;
  let out = messages.map((m): ToolChatMessage => {
    if (tt.rendersCalls) return m.role === 'assistant' && m.tool_calls ? f.templateCall(m) : m;
    if (m.role === 'assistant' && m.tool_calls) {
      const calls = f.write(m.tool_calls.map((c) => c.function));
      const { tool_calls: _calls, ...rest } = m;
      return { ...rest, content: m.content ? `${m.content}\n${calls}` : calls };
    }
    if (m.role === 'tool') return { role: 'user', content: `<tool_response>\n${m.content ?? ''}\n</tool_response>` };
    return m;
  });
  if (!tools || tools.length === 0) return { messages: out };
  if (tt.rendersTools) return { messages: out, tools: [...tools] };
  out = withSystemText(out, f.instructions(tools));
  return { messages: out };
}
