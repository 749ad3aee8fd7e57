// Formatting helpers for the page (browser code, bundled by scripts/build-dashboard.mjs). Money stays exact: costs
// arrive as integer pico-unit strings and are summed and printed with BigInt, as src/usage/money.ts does.

const PICO = 10n ** 12n;

/** Pico-units (bigint) → exact decimal string, e.g. 1500000n → "0.0000015". */
export function formatPico(pico) {
  const neg = pico < 0n;
  const a = neg ? -pico : pico;
  const whole = a / PICO;
  const frac = (a % PICO).toString().padStart(12, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? '.' + frac : ''}`;
}

/** Money for people: exact, but at least 2 and at most 6 decimals shown (the title attribute has every digit). */
export function formatMoney(pico) {
  const exact = formatPico(pico);
  const [w, f = ''] = exact.split('.');
  const shown = f.length <= 6 ? f.padEnd(2, '0') : f.slice(0, 6);
  return { text: `${w}.${shown}${f.length > 6 ? '…' : ''}`, exact };
}

export const sumPico = (xs) => xs.reduce((a, x) => a + BigInt(x), 0n);
export const sumNum = (xs) => xs.reduce((a, x) => a + x, 0);

const intFmt = new Intl.NumberFormat('en-US');
export const fmtInt = (n) => intFmt.format(n);

export function fmtRate(n, digits = 1) {
  return n === null || n === undefined ? '—' : n.toFixed(digits);
}

/** UTC "YYYY-MM-DD HH:MM:SS" (the page shows every time in UTC and says so). */
export function fmtTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** datetime-local value (UTC wall time) ↔ ms. */
export const toLocalInput = (ms) => new Date(ms).toISOString().slice(0, 16);
export const fromLocalInput = (v) => Date.parse(`${v}:00Z`);

/** One CSV cell (RFC 4180), with formula-looking text prefixed so spreadsheets do not evaluate it. */
export function csvCell(v) {
  const s = String(v ?? '');
  const safe = typeof v === 'string' && /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const csvLine = (cells) => cells.map(csvCell).join(',');
