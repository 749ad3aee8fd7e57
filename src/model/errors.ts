/** Errors of src/model that src/errors.ts does not define; registered with its code table (one mapping place). */
import { TokmeterError, registerErrorCode } from '../errors.js';

/**
 * generate() refused a request because the model's FIFO queue already holds `maxQueue` waiting generations
 * (Model.load option). Nothing ran and nothing is billed; retry later. Code ERR_QUEUE_FULL.
 */
export class QueueFullError extends TokmeterError {}
registerErrorCode('ERR_QUEUE_FULL', QueueFullError);

/**
 * generate() refused a request whose KV cache alone would exceed the model's budget (Model.load option
 * kvCacheBytes): 2 x kvBytesPerToken x (prompt + maxNewTokens, within the context). Nothing ran and nothing is
 * billed; lower maxNewTokens or load the model with a larger kvCacheBytes. Code ERR_KV_BUDGET.
 */
export class KvBudgetError extends TokmeterError {}
registerErrorCode('ERR_KV_BUDGET', KvBudgetError);
