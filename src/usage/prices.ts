/**
 * Versioned price table. Prices per 1M tokens (input, cached input, output) and per unit for custom meters
 * (e.g. audio_ms, image_steps), in decimal currency units; converted once, exactly, to integer pico-units.
 *
 * JSON shape (unknown fields are errors, never ignored):
 * {
 *   "version": "2026-11-01",               // optional; default "sha256:<16 hex>" of the canonical table
 *   "currency": "USD",                      // optional, default "USD"
 *   "cacheHitBilling": "free",              // response-cache hits: "free" | "cached-input" | "full" (default "free")
 *   "models": {
 *     "demo": { "inputPer1M": "0.50", "cachedInputPer1M": "0.25", "outputPer1M": "1.50",
 *               "cacheHitBilling": "full",                  // optional per-model override
 *               "custom": { "audio_ms": { "perUnit": "0.0000001" } } }
 *   },
 *   "custom": { "image_steps": { "perUnit": "0.00002" } }   // custom meters shared by all models
 * }
 *
 * Exactness: a price p per 1M tokens is p*10^6 pico-units per token, so prices with up to 6 fractional digits are
 * exact and costs are integer products; more digits are rejected. Custom per-unit prices take up to 12 digits.
 */
import { readFileSync } from 'node:fs';
import { PriceError } from './errors.js';
import { parseDecimal, PICO_DIGITS } from './money.js';
import { expectPath } from '../validate.js';
import { nodeCrypto } from '../lazy.js';

export type CacheHitBilling = 'free' | 'cached-input' | 'full';
const BILLINGS: readonly CacheHitBilling[] = ['free', 'cached-input', 'full'];

export interface ModelPriceJson {
  inputPer1M: string | number;
  cachedInputPer1M?: string | number;
  outputPer1M: string | number;
  cacheHitBilling?: CacheHitBilling;
  custom?: Record<string, { perUnit: string | number }>;
}

export interface PriceTableJson {
  version?: string;
  currency?: string;
  cacheHitBilling?: CacheHitBilling;
  models: Record<string, ModelPriceJson>;
  custom?: Record<string, { perUnit: string | number }>;
}

/** Resolved prices for one model, in pico-units per token / per unit. */
export interface ModelPrice {
  inputPerToken: bigint;
  cachedInputPerToken: bigint;
  outputPerToken: bigint;
  cacheHitBilling: CacheHitBilling;
  custom: ReadonlyMap<string, bigint>;
}

export interface CostInput {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  custom?: Record<string, number>;
  cacheHit?: boolean;
}

function checkKeys(obj: object, allowed: string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new PriceError(`${where}: unknown field '${k}' (allowed: ${allowed.join(', ')})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseBilling(v: unknown, where: string): CacheHitBilling {
  if (!BILLINGS.includes(v as CacheHitBilling)) {
    throw new PriceError(`${where}: expected one of ${BILLINGS.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as CacheHitBilling;
}

function parseCustom(v: unknown, where: string, into: Map<string, bigint>): void {
  if (v === undefined) return;
  if (!isObject(v)) throw new PriceError(`${where}: expected an object of custom meters`);
  for (const [name, m] of Object.entries(v)) {
    if (!isObject(m)) throw new PriceError(`${where}.${name}: expected { perUnit }`);
    checkKeys(m, ['perUnit'], `${where}.${name}`);
    into.set(name, parseDecimal(m.perUnit, PICO_DIGITS, `${where}.${name}.perUnit`));
  }
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function nonNegInt(n: number | undefined, what: string): bigint {
  const v = n ?? 0;
  if (!Number.isSafeInteger(v) || v < 0) throw new PriceError(`${what}: expected a non-negative integer, got ${v}`);
  return BigInt(v);
}

export class PriceTable {
  readonly version: string;
  readonly currency: string;
  private readonly models = new Map<string, ModelPrice>();

  private constructor(json: PriceTableJson) {
    if (!isObject(json)) throw new PriceError('price table: expected an object');
    checkKeys(json, ['version', 'currency', 'cacheHitBilling', 'models', 'custom'], 'price table');
    if (json.version !== undefined && (typeof json.version !== 'string' || json.version === '')) {
      throw new PriceError('price table: version must be a non-empty string');
    }
    if (json.currency !== undefined && !/^[A-Z]{3}$/.test(String(json.currency))) {
      throw new PriceError(
        `price table: currency must be a 3-letter code like "USD", got ${JSON.stringify(json.currency)}`,
      );
    }
    this.currency = json.currency ?? 'USD';
    this.version =
      json.version ?? `sha256:${nodeCrypto().createHash('sha256').update(canonical(json)).digest('hex').slice(0, 16)}`;
    const defaultBilling =
      json.cacheHitBilling === undefined ? 'free' : parseBilling(json.cacheHitBilling, 'price table.cacheHitBilling');
    const shared = new Map<string, bigint>();
    parseCustom(json.custom, 'price table.custom', shared);
    if (!isObject(json.models)) throw new PriceError('price table: "models" must be an object of model prices');
    for (const [name, p] of Object.entries(json.models)) {
      const where = `price table.models.${name}`;
      if (!isObject(p)) throw new PriceError(`${where}: expected an object`);
      checkKeys(p, ['inputPer1M', 'cachedInputPer1M', 'outputPer1M', 'cacheHitBilling', 'custom'], where);
      const input = parseDecimal(p.inputPer1M, 6, `${where}.inputPer1M`);
      const custom = new Map(shared);
      parseCustom(p.custom, `${where}.custom`, custom);
      this.models.set(name, {
        inputPerToken: input,
        cachedInputPerToken:
          p.cachedInputPer1M === undefined ? input : parseDecimal(p.cachedInputPer1M, 6, `${where}.cachedInputPer1M`),
        outputPerToken: parseDecimal(p.outputPer1M, 6, `${where}.outputPer1M`),
        cacheHitBilling:
          p.cacheHitBilling === undefined
            ? defaultBilling
            : parseBilling(p.cacheHitBilling, `${where}.cacheHitBilling`),
        custom,
      });
    }
  }

  static fromJSON(json: PriceTableJson): PriceTable {
    return new PriceTable(json);
  }

  /** Load a table from a JSON file (read synchronously: tables are small and loaded at startup). */
  static fromFile(path: string): PriceTable {
    expectPath('the price table file', path);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new PriceError(`price table ${path}: ${(err as Error).message}`);
    }
    return new PriceTable(json as PriceTableJson);
  }

  has(model: string): boolean {
    return this.models.has(model);
  }

  price(model: string): ModelPrice {
    const p = this.models.get(model);
    if (!p) throw new PriceError(`no price for model '${model}' in price table ${this.version}`);
    return p;
  }

  /** Exact cost in pico-units. */
  cost(model: string, u: CostInput): bigint {
    const p = this.price(model);
    const prompt = nonNegInt(u.promptTokens, 'promptTokens');
    const cached = nonNegInt(u.cachedTokens, 'cachedTokens');
    const completion = nonNegInt(u.completionTokens, 'completionTokens');
    if (cached > prompt) throw new PriceError(`cachedTokens (${cached}) exceeds promptTokens (${prompt})`);
    let total = 0n;
    for (const [name, qty] of Object.entries(u.custom ?? {})) {
      const per = p.custom.get(name);
      if (per === undefined)
        throw new PriceError(`no price for custom meter '${name}' of model '${model}' in ${this.version}`);
      total += nonNegInt(qty, `custom.${name}`) * per;
    }
    if (u.cacheHit) {
      if (p.cacheHitBilling === 'free') return total;
      if (p.cacheHitBilling === 'cached-input')
        return total + prompt * p.cachedInputPerToken + completion * p.outputPerToken;
    }
    return total + (prompt - cached) * p.inputPerToken + cached * p.cachedInputPerToken + completion * p.outputPerToken;
  }

  /** Upper bound of a request's cost before it runs (whatever share of the prompt turns out cached). */
  maxCost(model: string, promptTokens: number, maxNewTokens: number, custom?: Record<string, number>): bigint {
    const base = { promptTokens, completionTokens: maxNewTokens, ...(custom ? { custom } : {}) };
    const a = this.cost(model, { ...base, cachedTokens: 0 });
    const b = this.cost(model, { ...base, cachedTokens: promptTokens }); // in case cached input is priced higher
    return a > b ? a : b;
  }
}
