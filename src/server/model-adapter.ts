/**
 * Adapts src/model's `Model` to the metering seam `MeterableModel` (src/usage/types.ts).
 * A Model already has the seam's shape (name, contextLength, countPrompt, generate with `{ text, tokens }`
 * chunks); this adds `renderPrompt`, the response-cache key.
 */
import type { Model } from '../model/index.js';
import type { GenerateOptions, GenerationRun, MeterableModel, PromptInput } from '../usage/index.js';

export function asMeterable(model: Model): MeterableModel {
  return {
    get name() {
      return model.name;
    },
    get contextLength() {
      return model.contextLength;
    },
    countPrompt: (input: PromptInput) => model.countPrompt(input),
    // Response-cache key: a plain prompt and a rendered chat are different inputs even when their text is equal
    // (a plain prompt gets the tokenizer's special tokens), so the two are tagged.
    renderPrompt: (input: PromptInput) =>
      typeof input === 'string'
        ? `prompt\0${input}`
        : `chat\0${model.tokenizer.applyChatTemplate(input.messages, { addGenerationPrompt: true })}`,
    generate: (input: PromptInput, options?: GenerateOptions): GenerationRun => model.generate(input, options),
  };
}
