/**
 * Adapts src/model's `Model` to the metering seam `MeterableModel` (src/usage/types.ts).
 * A Model already has the seam's shape (name, contextLength, countPrompt, generate with `{ text, tokens }`
 * chunks); this adds `preparePrompt`, which the Meter uses once per request (count, response-cache key, generation).
 *
 * Performance note (bench/server): a metered chat request used to render its chat template three times
 * (countPrompt, the cache key, generate) and tokenize twice. `preparePrompt` renders and encodes once
 * (`Model.encodePrompt`, the very ids generate() would feed), bills `ids.length`, keys the response cache on the
 * ids and starts the generation from them (`{ tokens }` prompts), so nothing is rendered or encoded again.
 */
import type { Model } from '../model/index.js';
import type {
  MeterableGenerateOptions as GenerateOptions,
  GenerationRun,
  MeterableModel,
  PreparedPrompt,
  MeterablePromptInput as PromptInput,
} from '../usage/index.js';

export function asMeterable(model: Model): MeterableModel {
  return {
    get name() {
      return model.name;
    },
    get contextLength() {
      return model.contextLength;
    },
    countPrompt: (input: PromptInput) => model.countPrompt(input),
    preparePrompt: (input: PromptInput): PreparedPrompt => {
      const ids = model.encodePrompt(input);
      return {
        promptTokens: ids.length,
        // The ids are the model's whole input: equal ids, equal output (whatever text or template made them; a
        // plain prompt and a chat that render to the same text still differ by the special tokens in their ids).
        cacheKey: new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength),
        generate: (options: GenerateOptions) => model.generate({ tokens: ids }, options),
      };
    },
    generate: (input: PromptInput, options?: GenerateOptions): GenerationRun => model.generate(input, options),
  };
}
