/**
 * The package's entry: tokenizer, model, session, metering and ledgers. Importing it loads no web server, database
 * driver or message client: the HTTP server is `tokmeter/server`, the dashboard `tokmeter/dashboard`, the
 * many-servers path (Redis, Kafka) `tokmeter/scale`, and the ledgers load their drivers when they first connect.
 */
export { Session, tensor } from './session.js';
export type { SessionOptions, Tensor, TensorInfo, TensorType, TensorDataByType } from './session.js';
export { versions, runtimeCandidates, BUNDLED_ORT_VERSION } from './runtime.js';
export * from './errors.js';
export * from './usage/index.js';
export * from './tokenizer/index.js';
export { cudaStatus, requireCuda, type CudaStatus } from './cuda/index.js';
export {
  Model,
  Generation,
  QueueFullError,
  KvBudgetError,
  DEFAULT_KV_CACHE_BYTES,
  DEFAULT_MAX_QUEUE,
  DEFAULT_MAX_BATCH,
} from './model/index.js';
export type {
  ModelLoadOptions,
  ModelDtype,
  GenerateOptions as ModelGenerateOptions,
  PromptInput as ModelPromptInput,
  GenerationChunk as ModelGenerationChunk,
  GenerationResult as ModelGenerationResult,
  ModelTimings,
  PhaseTiming,
  ModelInfo,
  ModelStats,
} from './model/index.js';
export {
  deepseekV3,
  hermes,
  llama3Json,
  toolChoiceConstraint,
  toolPrompt,
  toolTemplateOf,
  ToolCallStream,
  newCallId,
  toToolCalls,
} from './tools/index.js';
export type {
  ConstraintSpec as ToolConstraintSpec,
  ParsedCall,
  ParsedOutput,
  ToolCall,
  ToolCallFormat,
  ToolChatMessage,
  ToolChoice,
  ToolDefinition,
  ToolFormatName,
  ToolStreamEvent,
  ToolTemplate,
} from './tools/index.js';
