/** Checked readers for parsed JSON: every failure names the field. */
import { specError } from './errors.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

export function obj(v: unknown, field: string): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw specError(field, `expected an object, got ${describe(v)}`);
  return v as JsonObject;
}

export function arr(v: unknown, field: string): Json[] {
  if (!Array.isArray(v)) throw specError(field, `expected an array, got ${describe(v)}`);
  return v as Json[];
}

export function str(o: JsonObject, key: string, field: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw specError(`${field}.${key}`, `expected a string, got ${describe(v)}`);
  return v;
}

export function optStr(o: JsonObject, key: string, field: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw specError(`${field}.${key}`, `expected a string or null, got ${describe(v)}`);
  return v;
}

export function bool(o: JsonObject, key: string, field: string, fallback?: boolean): boolean {
  const v = o[key];
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  if (typeof v !== 'boolean') throw specError(`${field}.${key}`, `expected a boolean, got ${describe(v)}`);
  return v;
}

export function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xfffffff0)
    throw specError(field, `expected a non-negative integer, got ${describe(v)}`);
  return v;
}
