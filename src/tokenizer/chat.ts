/** Chat templates (tokenizer_config.json `chat_template`), rendered with @huggingface/jinja. */
import type { Template } from '@huggingface/jinja';
import { lazyModule } from '../lazy.js';
import { TokmeterTypeError } from '../errors.js';
import { specError } from './errors.js';

// Loaded on the first render: most processes that load a tokenizer never render a chat.
const jinja = lazyModule<typeof import('@huggingface/jinja')>('@huggingface/jinja');

export interface ChatMessage {
  role: string;
  content: string | null | unknown[];
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn header (default false). */
  addGenerationPrompt?: boolean;
  /** Named template when the config has several (default: "default"). */
  templateName?: string;
  /** Tool definitions passed to the template as `tools`. */
  tools?: unknown[];
  /** Extra template variables (e.g. enable_thinking). */
  extra?: Record<string, unknown>;
}

export function validateMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages))
    throw new TokmeterTypeError(`expected an array of chat messages, got ${typeof messages}`);
  messages.forEach((m, i) => {
    if (typeof m !== 'object' || m === null) throw new TokmeterTypeError(`expected an object for messages[${i}]`);
    const r = (m as { role?: unknown }).role;
    if (typeof r !== 'string') throw new TokmeterTypeError(`expected a string for messages[${i}].role`);
    const c = (m as { content?: unknown }).content;
    if (c !== null && c !== undefined && typeof c !== 'string' && !Array.isArray(c))
      throw new TokmeterTypeError(`expected a string, an array or null for messages[${i}].content`);
  });
  return messages as ChatMessage[];
}

/** The templates of a tokenizer_config.json: a string, or a list of {name, template}. */
export function parseChatTemplates(v: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (v === undefined || v === null) return out;
  if (typeof v === 'string') {
    out.set('default', v);
    return out;
  }
  if (!Array.isArray(v))
    throw specError('tokenizer_config.json chat_template', 'expected a string or a list of {name, template}');
  v.forEach((e, i) => {
    const o = e as { name?: unknown; template?: unknown };
    if (typeof o?.name !== 'string' || typeof o.template !== 'string')
      throw specError(`tokenizer_config.json chat_template[${i}]`, 'expected {name: string, template: string}');
    out.set(o.name, o.template);
  });
  return out;
}

export class ChatTemplates {
  private readonly compiled = new Map<string, Template>();
  constructor(
    private readonly templates: Map<string, string>,
    private readonly specialTokens: Record<string, string>,
  ) {}

  get available(): string[] {
    return [...this.templates.keys()];
  }

  /** The name of the template `render` uses for `opts`: the named one, else 'tool_use' for tools when there is one. */
  #nameFor(opts: ChatTemplateOptions): string {
    return opts.templateName ?? (opts.tools && this.templates.has('tool_use') ? 'tool_use' : 'default');
  }

  /**
   * The source of the template `render` uses for `opts` (undefined when there is none), e.g. to tell which
   * tool-call format it writes.
   */
  source(opts: ChatTemplateOptions = {}): string | undefined {
    return this.templates.get(this.#nameFor(opts));
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const name = this.#nameFor(opts);
    const source = this.templates.get(name);
    if (source === undefined) {
      throw new TokmeterTypeError(
        this.templates.size === 0
          ? 'this tokenizer has no chat template (tokenizer_config.json has no chat_template)'
          : `no chat template named ${JSON.stringify(name)} (available: ${this.available.join(', ')})`,
        'ERR_NO_CHAT_TEMPLATE',
      );
    }
    let t = this.compiled.get(name);
    if (!t) {
      t = new (jinja().Template)(source);
      this.compiled.set(name, t);
    }
    return t.render({
      ...this.specialTokens,
      ...(opts.extra ?? {}),
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      ...(opts.tools ? { tools: opts.tools } : {}),
    });
  }
}

/**
 * Cuts a chat rendered without the generation prompt right after the final message's text, so that generation
 * continues that message instead of starting a new turn (an assistant prefill). As Hugging Face transformers'
 * `continue_final_message`: the last occurrence of the message's text (trimmed) is located in the rendering; if the
 * template kept the text's trailing whitespace, the cut keeps it too, otherwise the cut is after the trimmed text.
 * A template that does not reproduce the message's text (it rewrites it) cannot be continued: TokmeterTypeError.
 */
export function continueFinalMessage(rendered: string, messages: readonly ChatMessage[]): string {
  const last = messages[messages.length - 1];
  let final: unknown = last?.content;
  if (Array.isArray(final)) {
    const parts = final as { text?: unknown }[];
    final = [...parts].reverse().find((p) => typeof p?.text === 'string')?.text;
  }
  if (typeof final !== 'string' || final.trim() === '') {
    throw new TokmeterTypeError('continuing the final message needs a final message with text');
  }
  const trimmed = final.trim();
  const at = rendered.lastIndexOf(trimmed);
  if (at < 0) {
    throw new TokmeterTypeError(
      'the final message does not appear in the rendered chat (the chat template rewrites it), so it cannot be continued',
    );
  }
  const kept = final.trimStart();
  return rendered.slice(at, at + kept.length) === kept
    ? rendered.slice(0, at + kept.length)
    : rendered.slice(0, at + trimmed.length);
}
