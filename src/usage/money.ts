/**
 * Exact money. Amounts are bigint counts of pico-units (1e-12 of the currency unit). Prices are parsed from decimal
 * strings (or JSON numbers written as plain decimals) without ever going through floating point arithmetic.
 */
import { PriceError } from './errors.js';
import { TokmeterTypeError } from '../errors.js';

export const PICO_DIGITS = 12;
const PICO = 10n ** 12n;

/**
 * Parse a non-negative decimal ("0.5", "12", "0.000001") into an integer count of 10^-scale units.
 * More fractional digits than `scale` is an error, never a silent rounding.
 */
export function parseDecimal(value: unknown, scale: number, what: string): bigint {
  let s: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0)
      throw new PriceError(`${what}: expected a non-negative number, got ${value}`);
    s = String(value); // shortest round-trip form = the literal as written in JSON for normal prices
  } else if (typeof value === 'string') {
    s = value.trim();
  } else {
    throw new PriceError(`${what}: expected a decimal string or number, got ${typeof value}`);
  }
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) throw new PriceError(`${what}: expected a plain non-negative decimal like "0.25", got ${JSON.stringify(s)}`);
  const frac = m[2] ?? '';
  if (frac.replace(/0+$/, '').length > scale) {
    throw new PriceError(`${what}: ${s} has more than ${scale} fractional digits; it cannot be represented exactly`);
  }
  return BigInt(m[1]!) * 10n ** BigInt(scale) + BigInt((frac + '0'.repeat(scale)).slice(0, scale) || '0');
}

/** Format pico-units as a decimal string of the currency unit, e.g. 1500000n -> "0.0000015". */
export function formatPico(pico: bigint): string {
  if (typeof pico !== 'bigint') throw new TokmeterTypeError(`expected a bigint for pico, got ${typeof pico}`);
  const neg = pico < 0n;
  const a = neg ? -pico : pico;
  const whole = a / PICO;
  const frac = (a % PICO).toString().padStart(PICO_DIGITS, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? '.' + frac : ''}`;
}

/** Parse a currency amount ("10.50") into pico-units. */
export function parsePico(value: unknown, what: string): bigint {
  return parseDecimal(value, PICO_DIGITS, what);
}
