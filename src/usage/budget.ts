/**
 * Spending budgets per key and calendar period (UTC hour / day / month), exact in pico-units.
 *
 * Like the rate limiter, `reserve()` is synchronous: it checks spent + reserved + the request's maximum cost against
 * the budget and reserves that maximum; `settle()` swaps the reservation for the real cost. A period's spend is
 * loaded once from the ledger (`prepare()`, async) so budgets survive restarts; after that it is kept in memory.
 * With several processes sharing one Postgres ledger each process enforces on its own view (documented limit).
 */
import { BudgetExceededError } from './errors.js';

export type BudgetPeriod = 'hour' | 'day' | 'month';
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['hour', 'day', 'month'];

export function periodBounds(period: BudgetPeriod, t: number): [number, number] {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  const mo = d.getUTCMonth();
  if (period === 'month') return [Date.UTC(y, mo, 1), Date.UTC(y, mo + 1, 1)];
  if (period === 'day') {
    const s = Date.UTC(y, mo, d.getUTCDate());
    return [s, s + 86_400_000];
  }
  const s = Date.UTC(y, mo, d.getUTCDate(), d.getUTCHours());
  return [s, s + 3_600_000];
}

/** Loads what a key already spent in [from, to) (from the ledger). */
export type SpendLoader = (key: string, from: number, to: number) => Promise<bigint>;

interface PeriodState {
  start: number;
  end: number;
  spent: bigint; // settled cost + open reservations
  loaded: Promise<void> | undefined;
  ready: boolean;
}

export class BudgetReservation {
  private done = false;
  constructor(
    private readonly states: PeriodState[],
    readonly reserved: bigint,
  ) {}

  /** Replace the reserved maximum by the actual cost. Idempotent. */
  settle(actual: bigint): void {
    if (this.done) return;
    this.done = true;
    for (const s of this.states) s.spent += actual - this.reserved;
  }
}

export class BudgetTracker {
  private readonly states = new Map<string, PeriodState>();

  constructor(
    private readonly budgetsFor: (key: string) => ReadonlyMap<BudgetPeriod, bigint> | undefined,
    private readonly loader: SpendLoader | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  private state(key: string, period: BudgetPeriod, t: number): PeriodState {
    const [start, end] = periodBounds(period, t);
    const id = `${period}\u0000${start}\u0000${key}`;
    let s = this.states.get(id);
    if (!s) {
      s = { start, end, spent: 0n, loaded: undefined, ready: this.loader === undefined };
      this.states.set(id, s);
    }
    return s;
  }

  /** Make sure the current periods' spend for `key` is known (one ledger query per key and period). */
  async prepare(key: string): Promise<void> {
    await this.pending(key);
  }

  /**
   * What `prepare()` would wait for, or undefined when every current period of `key` is already known (no ledger,
   * no budgets, or loaded): then admission can stay synchronous and the engine starts in the caller's tick.
   */
  pending(key: string): Promise<void> | undefined {
    const budgets = this.budgetsFor(key);
    if (!budgets || !this.loader) return undefined;
    const t = this.now();
    let waits: Promise<void>[] | undefined;
    for (const period of budgets.keys()) {
      const s = this.state(key, period, t);
      if (s.ready) continue;
      if (!s.loaded) {
        const loader = this.loader;
        s.loaded = loader(key, s.start, s.end).then(
          (spent) => {
            s.spent += spent;
            s.ready = true;
          },
          (err) => {
            s.loaded = undefined; // try again on the next request
            throw err;
          },
        );
      }
      (waits ??= []).push(s.loaded);
    }
    return waits && Promise.all(waits).then(() => undefined);
  }

  /** Reserve `amount` against every budget of `key`, or throw BudgetExceededError. Synchronous. */
  reserve(key: string, amount: bigint): BudgetReservation {
    const budgets = this.budgetsFor(key);
    if (!budgets || budgets.size === 0) return new BudgetReservation([], amount);
    const t = this.now();
    const hit: PeriodState[] = [];
    for (const [period, budget] of budgets) {
      const s = this.state(key, period, t);
      if (s.spent + amount > budget) {
        throw new BudgetExceededError(key, period, s.spent, budget, amount, s.end);
      }
      hit.push(s);
    }
    for (const s of hit) s.spent += amount;
    return new BudgetReservation(hit, amount);
  }

  /** Add a cost that already happened (custom meters) without a check. */
  charge(key: string, amount: bigint): void {
    const budgets = this.budgetsFor(key);
    if (!budgets) return;
    const t = this.now();
    for (const period of budgets.keys()) this.state(key, period, t).spent += amount;
  }

  /** Spent + reserved for key in the period containing now (for reports and tests). */
  spent(key: string, period: BudgetPeriod): bigint {
    return this.state(key, period, this.now()).spent;
  }

  /** Forget finished periods. */
  sweep(): void {
    const t = this.now();
    for (const [id, s] of this.states) if (s.end <= t) this.states.delete(id);
  }
}
