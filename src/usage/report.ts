/**
 * Report export: CSV (RFC 4180) and JSON. Costs are exact: pico-units as an integer string plus a decimal string.
 *
 * No Node.js imports: the dashboard's browser bundle uses this module for its CSV export.
 */
import { formatPico } from './money.js';
import { RECORD_COLUMNS, csvValue } from './columns.js';
import type { ReportRow } from './ledger.js';
import type { UsageRecord } from './types.js';
import type { UsageRecordJson } from './record.js';

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

/** The report's CSV columns, in order: each field of `ReportRowJson` and its header. */
export const REPORT_COLUMNS: readonly { readonly field: keyof ReportRowJson; readonly csv: string }[] = [
  { field: 'group', csv: 'group' },
  { field: 'requests', csv: 'requests' },
  { field: 'cacheHits', csv: 'cache_hits' },
  { field: 'promptTokens', csv: 'prompt_tokens' },
  { field: 'cachedTokens', csv: 'cached_tokens' },
  { field: 'completionTokens', csv: 'completion_tokens' },
  { field: 'totalTokens', csv: 'total_tokens' },
  { field: 'costPico', csv: 'cost_pico' },
  { field: 'cost', csv: 'cost' },
  { field: 'currency', csv: 'currency' },
];

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

/**
 * One CSV cell (RFC 4180): quoted when needed; text that looks like a formula is prefixed with `'` so spreadsheets
 * do not evaluate it. null and undefined are empty cells.
 */
export function csvCell(v: string | number | boolean | bigint | null | undefined): string {
  const s = String(v ?? '');
  const safe = typeof v === 'string' && /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV line (no line break). */
export function csvLine(cells: readonly (string | number | boolean | bigint | null | undefined)[]): string {
  return cells.map(csvCell).join(',');
}

/** The cells of one report row, in REPORT_COLUMNS order (optionally only `fields`). */
export function reportCells(
  r: ReportRowJson,
  fields: readonly (keyof ReportRowJson)[] = REPORT_COLUMNS.map((c) => c.field),
): (string | number)[] {
  return fields.map((f) => r[f]);
}

export function reportToCsv(rows: ReportRow[], currency = 'USD'): string {
  const header = csvLine(REPORT_COLUMNS.map((c) => c.csv));
  const lines = reportToJson(rows, currency).map((r) => csvLine(reportCells(r)));
  return [header, ...lines].join('\r\n') + '\r\n';
}

/** The record CSV's header: one column per record column (columns.ts), in table order. */
export const RECORD_CSV_HEADER: readonly string[] = RECORD_COLUMNS.map((c) => c.csv);

/** One record (or its JSON form) as CSV cells, in RECORD_CSV_HEADER order; times are ISO 8601 UTC. */
export function recordCells(r: UsageRecord | UsageRecordJson): (string | number)[] {
  return RECORD_COLUMNS.map((c) => csvValue(c, r[c.field]));
}

/** Records as CSV (header + one line per record, CRLF line ends). */
export function recordsToCsv(records: readonly (UsageRecord | UsageRecordJson)[]): string {
  return [csvLine(RECORD_CSV_HEADER), ...records.map((r) => csvLine(recordCells(r)))].join('\r\n') + '\r\n';
}
