/**
 * Modules loaded on first use. The package's entry re-exports classes whose heavier dependencies (a template engine,
 * node:crypto, worker threads) only some callers reach; loading those when they are first needed keeps
 * `import { Tokenizer } from 'tokmeter'` cheap for a process that only counts tokens.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A function that loads `id` (a built-in or a package with a CommonJS entry) on its first call, then returns it. */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}

/** node:os, loaded on first use. */
export const nodeOs = lazyModule<typeof import('node:os')>('node:os');

/** node:crypto, loaded on first use. */
export const nodeCrypto = lazyModule<typeof import('node:crypto')>('node:crypto');
