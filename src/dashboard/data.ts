/**
 * The dashboard's data: every number is a ledger aggregate from `meter.report()` — the function `/v1/usage`
 * answers with — or `ledger.spend()` (what budgets enforce). Nothing is summed from raw records, in the server or
 * in the browser; the browser only draws what this returns.
 *
 * Time series: up to a week, at most 60 buckets of 1 min … 6 h; past a week, UTC days (partial at the edges of the
 * period, as `groupBy: 'day'` would give). One `report({ groupBy: 'model' })` per bucket over [start, end): the
 * (ts) index keeps each one a range scan, so the series reads each record once however the period is cut, and the
 * same rows give each key's totals.
 *
 * Performance notes (100,000 records over 24 h, SQLite, a shared 2-core box, warm): one `groupBy: 'key'` pass
 * ~150 ms, 24 per-bucket reports ~115 ms in all, the latest 50 records < 1 ms. The first version made three passes
 * (by key, by model, per bucket) and the page's first render took 1.1–1.4 s; now the first render needs one pass
 * and the models (a second pass) load after it. A custom GROUP BY on ts was rejected: the ledger's `report()` is
 * the contract that keeps the page equal to /v1/usage. `npx tsx bench/dashboard/run.ts` prints the current numbers.
 */
import { TokmeterTypeError } from '../errors.js';
import {
  formatPico,
  parsePico,
  periodBounds,
  recordToJson,
  reportToJson,
  type BudgetPeriod,
  type Meter,
  type RecentRecords,
  type ReportRow,
  type ReportRowJson,
  type UsageRecordJson,
} from '../usage/index.js';

export const MAX_BUCKETS = 60;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const BUCKETS = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR];
export const MAX_SPAN_MS = 400 * DAY;

export interface SummaryQuery {
  from: number;
  to: number;
  key: string | undefined;
  model: string | undefined;
  /** Latest records to list (1..500). */
  limit: number;
}

export interface KeyRow {
  key: string;
  usage: ReportRowJson;
  budgets: {
    period: BudgetPeriod;
    limit: string;
    limitPico: string;
    spent: string;
    spentPico: string;
    percent: number;
    ends: number;
  }[];
  rateLimit: {
    tokensPerMinute: number | null;
    tokensInWindow: number;
    tokensHeadroom: number | null;
    requestsPerMinute: number | null;
    requestsInWindow: number | null;
    requestsHeadroom: number | null;
  };
}

export interface Summary {
  generatedAt: number;
  from: number;
  to: number;
  currency: string;
  filters: { key: string | null; model: string | null };
  options: { keys: string[] };
  bucket: { ms: number; label: string };
  totals: ReportRowJson;
  series: {
    t: number[];
    requests: number[];
    promptTokens: number[];
    cachedTokens: number[];
    completionTokens: number[];
    costPico: string[];
  };
  keys: KeyRow[];
  recent: UsageRecordJson[] | null;
  queryMs: number;
}

const ZERO = (group: string): ReportRow => ({
  group,
  requests: 0,
  cacheHits: 0,
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  cost: 0n,
});

export function addRows(group: string, rows: readonly ReportRow[]): ReportRow {
  const t = ZERO(group);
  for (const r of rows) {
    t.requests += r.requests;
    t.cacheHits += r.cacheHits;
    t.promptTokens += r.promptTokens;
    t.cachedTokens += r.cachedTokens;
    t.completionTokens += r.completionTokens;
    t.totalTokens += r.totalTokens;
    t.cost += r.cost;
  }
  return t;
}

/** The bucket for a period: UTC days past a week, else the smallest of BUCKETS giving at most MAX_BUCKETS. */
export function chooseBucket(from: number, to: number): number {
  if (to - from > 7 * DAY) return DAY;
  for (const b of BUCKETS) if (Math.ceil((to - from) / b) <= MAX_BUCKETS) return b;
  return DAY;
}

function bucketLabel(ms: number): string {
  if (ms >= DAY) return '1 day (UTC)';
  if (ms >= HOUR) return `${ms / HOUR} hour${ms === HOUR ? '' : 's'}`;
  return `${ms / MINUTE} minute${ms === MINUTE ? '' : 's'}`;
}

// ---- query parsing (unknown or ill-typed fields are 400s that name the field) ----

export class DashboardQueryError extends TokmeterTypeError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function time(v: unknown, field: string): number {
  const t = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) {
    throw new DashboardQueryError(
      field,
      `expected an ISO date or milliseconds since the epoch for '${field}', got ${JSON.stringify(v)}`,
    );
  }
  return t;
}

const NAME = /^[A-Za-z0-9._:@/-]{1,256}$/;

export function parseSummaryQuery(q: unknown, now: number): SummaryQuery {
  const query = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>;
  for (const k of Object.keys(query)) {
    if (!['from', 'to', 'key', 'model', 'limit'].includes(k)) {
      throw new DashboardQueryError(k, `unknown query field '${k}' (allowed: from, to, key, model, limit)`);
    }
  }
  const to = query.to === undefined || query.to === '' ? now : time(query.to, 'to');
  const from = query.from === undefined || query.from === '' ? to - DAY : time(query.from, 'from');
  if (from >= to) throw new DashboardQueryError('from', `'from' must be before 'to'`);
  if (to - from > MAX_SPAN_MS) throw new DashboardQueryError('from', `the period may span at most 400 days`);
  const name = (field: 'key' | 'model'): string | undefined => {
    const v = query[field];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string' || !NAME.test(v)) {
      throw new DashboardQueryError(field, `expected a ${field} name for '${field}', got ${JSON.stringify(v)}`);
    }
    return v;
  };
  let limit = 50;
  if (query.limit !== undefined) {
    limit = typeof query.limit === 'string' && /^\d+$/.test(query.limit) ? Number(query.limit) : NaN;
    if (!(limit >= 1 && limit <= 500)) {
      throw new DashboardQueryError(
        'limit',
        `expected an integer 1..500 for 'limit', got ${JSON.stringify(query.limit)}`,
      );
    }
  }
  return { from, to, key: name('key'), model: name('model'), limit };
}

// ---- the summary ----

export interface SummarySources {
  meter: Meter;
  records: RecentRecords | undefined;
  /** Tenants to list even without usage in the period (e.g. every tenant of the keys file). */
  tenants?: () => Iterable<string>;
  now: () => number;
}

/**
 * One `report({ groupBy: 'key' })` per bucket: the series (each bucket's rows added up) and, from the same rows,
 * each key's totals for the period (the keys table). UTC day buckets are clipped to the period like
 * `groupBy: 'day'` would be.
 */
async function series(
  meter: Meter,
  q: SummaryQuery,
  bucket: number,
): Promise<{ t: number[]; rows: ReportRow[]; byKey: ReportRow[] }> {
  const filter = {
    ...(q.key !== undefined ? { key: q.key } : {}),
    ...(q.model !== undefined ? { model: q.model } : {}),
  };
  const t: number[] = [];
  const rows: ReportRow[] = [];
  const perKey = new Map<string, ReportRow[]>();
  for (let b = Math.floor(q.from / bucket) * bucket; b < q.to; b += bucket) {
    const from = Math.max(b, q.from);
    const to = Math.min(b + bucket, q.to);
    const got = await meter.report({ groupBy: 'key', from, to, ...filter });
    t.push(b);
    rows.push(addRows(String(b), got));
    for (const r of got) {
      const list = perKey.get(r.group);
      if (list) list.push(r);
      else perKey.set(r.group, [r]);
    }
  }
  const byKey = [...perKey.entries()]
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .map(([key, list]) => addRows(key, list));
  return { t, rows, byKey };
}

/** The models of the period (for the selected key, every model): the model list and the models table. */
export async function buildModels(
  meter: Meter,
  q: SummaryQuery,
): Promise<{ currency: string; models: ReportRowJson[] }> {
  const rows = await meter.report({
    groupBy: 'model',
    from: q.from,
    to: q.to,
    ...(q.key !== undefined ? { key: q.key } : {}),
  });
  return { currency: meter.prices.currency, models: reportToJson(rows, meter.prices.currency) };
}

export async function buildSummary(src: SummarySources, q: SummaryQuery): Promise<Summary> {
  const t0 = performance.now();
  const { meter } = src;
  const ledger = meter.ledger;
  if (!ledger) throw new TokmeterTypeError('the dashboard needs a Meter with a ledger');
  const currency = meter.prices.currency;
  const period = { from: q.from, to: q.to };
  // One pass over the period's records, by bucket × key: series, keys table, totals. A second, by key, only when a
  // key is selected, so the key list still offers every key. Models come from buildModels (a separate request the
  // page makes after its first render).
  const bucket = chooseBucket(q.from, q.to);
  const s = await series(meter, q, bucket);
  const keyRows =
    q.key === undefined
      ? s.byKey
      : await meter.report({ groupBy: 'key', ...period, ...(q.model !== undefined ? { model: q.model } : {}) });
  const totals = addRows('total', s.byKey);

  const usageByKey = new Map(s.byKey.map((r) => [r.group, r]));
  const keyNames = new Set(keyRows.map((r) => r.group));
  for (const k of src.tenants?.() ?? []) keyNames.add(k);
  if (q.key !== undefined) keyNames.add(q.key);
  const shownKeys = [...keyNames].filter((k) => q.key === undefined || k === q.key).sort();
  const now = src.now();
  const limiter = meter.limiter;
  const keys: KeyRow[] = [];
  for (const key of shownKeys) {
    const limits = meter.keyLimits(key);
    const budgets: KeyRow['budgets'] = [];
    for (const [period, value] of Object.entries(limits.budget ?? {}) as [BudgetPeriod, string | number][]) {
      const limit = parsePico(value, `budget.${period}`);
      const [start, end] = periodBounds(period, now);
      const spent = await ledger.spend(key, start, end);
      budgets.push({
        period,
        limit: formatPico(limit),
        limitPico: limit.toString(),
        spent: formatPico(spent),
        spentPico: spent.toString(),
        percent: limit === 0n ? (spent > 0n ? 100 : 0) : Number((spent * 10000n) / limit) / 100,
        ends: end,
      });
    }
    const tpm = limits.tokensPerMinute ?? null;
    const rpm = limits.requestsPerMinute ?? null;
    const inWindow = limiter.tokensInWindow(key);
    const reqs = limiter.requestsInWindow(key);
    keys.push({
      key,
      usage: reportToJson([usageByKey.get(key) ?? ZERO(key)], currency)[0]!,
      budgets,
      rateLimit: {
        tokensPerMinute: tpm,
        tokensInWindow: inWindow,
        tokensHeadroom: tpm === null ? null : Math.max(0, tpm - inWindow),
        requestsPerMinute: rpm,
        requestsInWindow: reqs,
        requestsHeadroom: rpm === null || reqs === null ? null : Math.max(0, rpm - reqs),
      },
    });
  }

  const recent = src.records
    ? (await src.records.recent({ ...period, key: q.key, model: q.model, limit: q.limit })).map(recordToJson)
    : null;

  const option = (rows: ReportRow[], selected: string | undefined): string[] => {
    const names = new Set(rows.map((r) => r.group));
    if (selected !== undefined) names.add(selected);
    return [...names].sort();
  };
  return {
    generatedAt: now,
    from: q.from,
    to: q.to,
    currency,
    filters: { key: q.key ?? null, model: q.model ?? null },
    options: { keys: option(keyRows, q.key) },
    bucket: { ms: bucket, label: bucketLabel(bucket) },
    totals: reportToJson([totals], currency)[0]!,
    series: {
      t: s.t,
      requests: s.rows.map((r) => r.requests),
      promptTokens: s.rows.map((r) => r.promptTokens),
      cachedTokens: s.rows.map((r) => r.cachedTokens),
      completionTokens: s.rows.map((r) => r.completionTokens),
      costPico: s.rows.map((r) => r.cost.toString()),
    },
    keys,
    recent,
    queryMs: Math.round((performance.now() - t0) * 10) / 10,
  };
}
