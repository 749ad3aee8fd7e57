/** Precise argument checks for the TypeScript edge (arguments are checked where they enter, once): each names the argument and what it got. */
import { TokmeterTypeError } from './errors.js';

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'string')
    return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (typeof value === 'function') return 'a function';
  return typeof value === 'object' ? 'an object' : typeof value;
}

export function expectInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new TokmeterTypeError(`expected an integer ${range} for ${name}, got ${describe(value)}`);
  }
  return value;
}

export function expectOptionalInteger(name: string, value: unknown, min: number, max?: number): number | undefined {
  return value === undefined ? undefined : expectInteger(name, value, min, max);
}

export function expectString(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TokmeterTypeError(`expected a string for ${name}, got ${describe(value)}`);
  return value;
}

/**
 * A file or folder path. A NUL byte is refused: the operating system would read the path only up to it (so
 * "secret.txt\0.json" opens secret.txt).
 */
export function expectPath(name: string, value: unknown): string {
  expectString(name, value);
  if ((value as string).includes('\0')) {
    throw new TokmeterTypeError(`expected a path without NUL bytes for ${name}, got ${describe(value)}`);
  }
  return value as string;
}

export function expectObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokmeterTypeError(`expected an object for ${name}, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Rejects keys that are not in `known`, so that a typo is an error instead of a silently ignored option. */
export function expectKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new TokmeterTypeError(`unknown option '${key}' in ${name}; known options: ${known.join(', ')}`);
    }
  }
}
