/** Report export: CSV (RFC 4180) and JSON. Costs are exact: pico-units as an integer string plus a decimal string. */
import { formatPico } from './money.js';
import type { ReportRow } from './ledger.js';

export interface ReportRowJson {
  group: string;
  requests: number;
  cacheHits: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** integer pico-units */
  costPico: string;
  /** decimal currency units, exact */
  cost: string;
  currency: string;
}

export function reportToJson(rows: ReportRow[], currency = 'USD'): ReportRowJson[] {
  return rows.map((r) => ({
    group: r.group,
    requests: r.requests,
    cacheHits: r.cacheHits,
    promptTokens: r.promptTokens,
    cachedTokens: r.cachedTokens,
    completionTokens: r.completionTokens,
    totalTokens: r.totalTokens,
    costPico: r.cost.toString(),
    cost: formatPico(r.cost),
    currency,
  }));
}

function csvCell(v: string | number): string {
  const s = String(v);
  // Quote when needed; prefix formula-looking text so spreadsheets do not evaluate it.
  const safe = /^[=+\-@\t\r]/.test(s) && typeof v === 'string' ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function reportToCsv(rows: ReportRow[], currency = 'USD'): string {
  const header =
    'group,requests,cache_hits,prompt_tokens,cached_tokens,completion_tokens,total_tokens,cost_pico,cost,currency';
  const lines = reportToJson(rows, currency).map((r) =>
    [
      r.group,
      r.requests,
      r.cacheHits,
      r.promptTokens,
      r.cachedTokens,
      r.completionTokens,
      r.totalTokens,
      r.costPico,
      r.cost,
      r.currency,
    ]
      .map(csvCell)
      .join(','),
  );
  return [header, ...lines].join('\r\n') + '\r\n';
}
