/** Public surface of src/usage (re-exported from src/index.ts). */
export type {
  MeterableModel,
  PreparedPrompt,
  MeterablePromptInput,
  MeterableGenerateOptions,
  GenerationRun,
  MeterableChunk,
  TopLogprob,
  MeterableResult,
  GenerationFailure,
  FinishReason,
  RecordFinishReason,
  Usage,
  UsageRecord,
  TokenCounter,
} from './types.js';
export {
  UsageError,
  InputTooLongError,
  ContextLengthError,
  contextLengthError,
  RateLimitError,
  BudgetExceededError,
  SpoolFullError,
  PriceError,
  LedgerError,
} from './errors.js';
export {
  PriceTable,
  type PriceTableJson,
  type ModelPriceJson,
  type ModelPrice,
  type CacheHitBilling,
} from './prices.js';
export { formatPico, parsePico } from './money.js';
export { constraintProblem, type ConstraintSpec, type JsonSchema } from './constraint.js';
export {
  Meter,
  MeteredModel,
  MeteredCounter,
  type MeterOptions,
  type MeterLimits,
  type KeyLimits,
  type MeteredGenerateOptions,
  type MeteredRun,
  type MeteredResult,
  type Admission,
} from './meter.js';
export {
  GENERATE_OPTIONS,
  checkGenerateOptions,
  optionProblem,
  type OptionProblem,
  type GenerateOptionName,
  type OptionSpec,
  type NumberOption,
  type StringsOption,
  type TokenBiasOption,
} from './generate-options.js';
export { ResponseCache, type ResponseCacheOptions } from './response-cache.js';
export { RateLimiter, type RateLimits } from './rate-limiter.js';
export { BudgetTracker, periodBounds, type BudgetPeriod } from './budget.js';
export { LimiterUnavailableError, NOOP_GRANT, type Limiter, type LimitGrant, type LimitRequest } from './limiter.js';
export {
  SpooledLedger,
  normalizeQuery,
  type Ledger,
  type LedgerStats,
  type ReportQuery,
  type NormalizedReportQuery,
  type ReportRow,
  type GroupBy,
  type SpooledLedgerOptions,
} from './ledger.js';
export { SqliteLedger, type SqliteLedgerOptions } from './sqlite-ledger.js';
export { PostgresLedger, type PostgresLedgerOptions } from './postgres-ledger.js';
export { reportToCsv, reportToJson, type ReportRowJson } from './report.js';
export { recordToJson, validateRecord, type UsageRecordJson } from './record.js';
export {
  SqliteRecentRecords,
  PostgresRecentRecords,
  recentRecordsFor,
  recentRecordsForSpec,
  type RecentRecords,
  type RecentQuery,
} from './recent-records.js';
