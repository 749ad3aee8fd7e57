/**
 * Field checks shared by the request parsers: every ill-typed or unknown field is a 400 that names it, and a value is
 * shown in messages without echoing long strings.
 */
import { ApiError } from '../http/errors.js';

export type Body = Record<string, unknown>;

export function bad(param: string, message: string): never {
  throw new ApiError('ERR_INVALID_REQUEST', message, param);
}

export function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of length ${v.length}` : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

export function isObject(v: unknown): v is Body {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function expectBody(body: unknown): Body {
  if (!isObject(body)) {
    throw new ApiError('ERR_INVALID_REQUEST', `expected a JSON object as the request body, got ${show(body)}`, null);
  }
  return body;
}

/**
 * Checks fields outside `known`: OpenAI fields we do not implement are a 400 unless at a harmless value; any other
 * field is a 400, or, with `ignored`, collected there (top-level fields of generation requests).
 */
export function checkFields(
  body: Body,
  known: readonly string[],
  unsupported: Readonly<Record<string, (v: unknown) => boolean>>,
  where = '',
  ignored?: string[],
): void {
  for (const [k, v] of Object.entries(body)) {
    if (known.includes(k)) continue;
    const isDefault = unsupported[k];
    if (isDefault) {
      if (v === null || isDefault(v)) continue; // the documented default value: the feature is not requested
      throw new ApiError(
        'ERR_UNSUPPORTED_PARAMETER',
        `'${where}${k}' is not supported by this server (got ${show(v)})`,
        `${where}${k}`,
      );
    }
    if (ignored) ignored.push(k);
    else throw new ApiError('ERR_UNKNOWN_PARAMETER', `unknown parameter '${where}${k}'`, `${where}${k}`);
  }
}

export function optInt(body: Body, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    bad(
      name,
      `expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`} for '${name}', got ${show(v)}`,
    );
  }
  return v;
}

export function optBool(body: Body, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') bad(name, `expected a boolean for '${name}', got ${show(v)}`);
  return v;
}
