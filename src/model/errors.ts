/** Errors of src/model that src/errors.ts does not define; registered with its code table (one mapping place). */
import { TokmeterError, registerErrorCode } from '../errors.js';

/**
 * generate() refused a request because the model's FIFO queue already holds `maxQueue` waiting generations
 * (Model.load option). Nothing ran and nothing is billed; retry later. Code ERR_QUEUE_FULL.
 */
export class QueueFullError extends TokmeterError {}
registerErrorCode('ERR_QUEUE_FULL', QueueFullError);
