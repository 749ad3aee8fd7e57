export { Model, DEFAULT_KV_CACHE_BYTES, DEFAULT_MAX_QUEUE, DEFAULT_MAX_BATCH } from './model.js';
export { QueueFullError, KvBudgetError } from './errors.js';
export type { ModelLoadOptions, ModelDtype, ModelInfo, PromptInput, GenerateOptions } from './model.js';
export { Generation } from './generation.js';
export type { GenerationChunk, GenerationResult, FinishReason, Usage } from './generation.js';
export type { ModelStats, ModelTimings, PhaseTiming } from '../native/model-contract.js';
export type { ConstraintSpec, JsonSchema } from '../usage/index.js';
export { GrammarError } from '../errors.js';
