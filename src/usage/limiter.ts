/**
 * The async limiter seam between the Meter and a shared store (Redis; the implementation is `RedisLimiter` in
 * src/scale). Same semantics as the in-memory pair `RateLimiter` + `BudgetTracker`, in one call:
 *
 *   admit({ key, tokens, cost, rates, budgets })
 *     - budgets first: for every period, spent + reserved + cost ≤ budget, else BudgetExceededError;
 *     - then RPM (the request counts once), then TPM with `tokens` reserved (prompt + maxNewTokens; 0 for a
 *       response-cache hit), else RateLimitError with retryAfterMs (Infinity when the request can never fit);
 *     - all checks and all reservations happen atomically (no other admission can interleave, in any process).
 *   grant.tokens.settle(actual) / grant.budget.settle(actualCost) replace the reservations by what was used
 *     (a refund of the unused part, or a charge of an overrun). Idempotent, never throw, never block the caller.
 *
 * When the store is unreachable the implementation applies its policy: refuse with LimiterUnavailableError (fail
 * closed, the default) or admit without shared accounting (fail open).
 */
import type { BudgetPeriod } from './budget.js';
import { UsageError } from './errors.js';
import type { RateLimits } from './rate-limiter.js';

export interface LimitRequest {
  key: string;
  /** Tokens to reserve against TPM (prompt + maxNewTokens; 0 for a cache hit or a counting request). */
  tokens: number;
  /** Maximum cost to reserve against every budget, in pico-units. */
  cost: bigint;
  rates: RateLimits;
  budgets?: ReadonlyMap<BudgetPeriod, bigint> | undefined;
}

export interface LimitGrant {
  readonly tokens: { settle(actualTokens: number): void };
  readonly budget: { settle(actualCost: bigint): void };
  /** Resolves once every settle() called so far reached the store (or was given up on and logged). */
  settled(): Promise<void>;
}

export interface Limiter {
  admit(req: LimitRequest): Promise<LimitGrant>;
  /** Add a cost that already happened (custom meters, `meter.record()`) to the key's budgets, without a check. */
  charge(key: string, cost: bigint, budgets: ReadonlyMap<BudgetPeriod, bigint> | undefined): Promise<void>;
  /** Wait for settlements in flight; release the connection if the limiter owns it. Idempotent. */
  close(): Promise<void>;
}

/** The shared limiter's store is unreachable and the policy is fail-closed. HTTP: 503. */
export class LimiterUnavailableError extends UsageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LIMITER_UNAVAILABLE', message, options);
  }
}

/** A grant that tracks nothing (no limits configured, or admitted under fail-open). */
export const NOOP_GRANT: LimitGrant = Object.freeze({
  tokens: { settle: () => undefined },
  budget: { settle: () => undefined },
  settled: () => Promise.resolve(),
});
