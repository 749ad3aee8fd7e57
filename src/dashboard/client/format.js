// Formatting helpers for the page (browser code, bundled by scripts/build-dashboard.mjs). Money stays exact: costs
// arrive as integer pico-unit strings and are summed and printed with BigInt by src/usage/money.ts itself, and the
// CSV export is written by src/usage/report.ts: esbuild bundles those modules, so the page and the server format
// and export the same way. (The page imports these two modules directly, not src/usage/index.ts, which loads the
// ledgers and Node.js built-ins.)
import { formatPico } from '../../usage/money.js';

export { formatPico };
export { csvCell, csvLine } from '../../usage/report.js';

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
