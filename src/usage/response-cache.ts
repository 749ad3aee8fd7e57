/**
 * Response cache for deterministic requests: LRU order, a TTL per entry and a byte budget over the stored text,
 * token ids and key. Keys hash (model, rendered prompt or its ids, sampling parameters); only requests with temperature 0 or
 * a fixed seed are cacheable (the Meter decides, see `cacheKeyFor`).
 *
 * Map insertion order is the LRU order: a hit deletes and re-inserts the entry.
 */
import { Buffer } from 'node:buffer';
import { nodeCrypto } from '../lazy.js';
import type { MeterableGenerateOptions, FinishReason, Usage } from './types.js';

export interface CachedResponse {
  text: string;
  tokens: Uint32Array;
  finishReason: FinishReason;
  usage: Usage;
}

interface Entry {
  value: CachedResponse;
  bytes: number;
  expiresAt: number;
}

export interface ResponseCacheOptions {
  /** Byte budget for all entries (default 64 MiB). */
  maxBytes?: number;
  /** Time to live of an entry in ms (default 10 minutes). */
  ttlMs?: number;
  /** Maximum number of entries (default unbounded apart from bytes). */
  maxEntries?: number;
}

/** Stable cache key, or undefined when the request is not deterministic. */
export function cacheKeyFor(
  model: string,
  renderedPrompt: string | Uint8Array,
  o: MeterableGenerateOptions & { maxNewTokens: number },
): string | undefined {
  const deterministic = o.temperature === 0 || o.seed !== undefined;
  if (!deterministic) return undefined;
  // An entry keeps the text and ids, not the alternatives of each step.
  if ((o.topLogprobs ?? 0) > 0) return undefined;
  const bias = Object.entries(o.logitBias ?? {});
  // Every option that changes the output; the warpers and the seed are irrelevant to greedy decoding, the
  // penalties apply to greedy decoding too.
  const greedy = o.temperature === 0;
  const sampling = JSON.stringify([
    o.temperature ?? null,
    greedy ? null : (o.topP ?? null),
    greedy ? null : (o.seed ?? null),
    o.maxNewTokens,
    typeof o.stop === 'string' ? [o.stop] : (o.stop ?? []),
    greedy ? null : (o.topK ?? null),
    greedy ? null : (o.minP ?? null),
    o.repetitionPenalty ?? null,
    o.presencePenalty ?? null,
    o.frequencyPenalty ?? null,
    // Only when given, so keys without a bias stay as they were.
    ...(bias.length > 0 ? [bias.map(([id, b]) => [Number(id), b]).sort((a, b) => a[0]! - b[0]!)] : []),
  ]);
  // The same bytes as createHash().update(model).update('\0').update(prompt).update('\0').update(sampling) (so the
  // same key), hashed in one call where Node has crypto.hash (≥ 20.12): ~2 µs less per request on the admission path.
  const crypto = nodeCrypto();
  if (typeof crypto.hash !== 'function') {
    return crypto
      .createHash('sha256')
      .update(model)
      .update('\u0000')
      .update(renderedPrompt)
      .update('\u0000')
      .update(sampling)
      .digest('base64url');
  }
  const bytes =
    typeof renderedPrompt === 'string'
      ? Buffer.from(`${model}\u0000${renderedPrompt}\u0000${sampling}`, 'utf8')
      : Buffer.concat([
          Buffer.from(`${model}\u0000`, 'utf8'),
          renderedPrompt,
          Buffer.from(`\u0000${sampling}`, 'utf8'),
        ]);
  return crypto.hash('sha256', bytes, 'base64url');
}

export class ResponseCache {
  readonly maxBytes: number;
  readonly ttlMs: number;
  readonly maxEntries: number;
  private readonly map = new Map<string, Entry>();
  private bytesUsed = 0;
  hits = 0;
  misses = 0;

  constructor(
    options: ResponseCacheOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.maxEntries = options.maxEntries ?? Number.MAX_SAFE_INTEGER;
  }

  get bytes(): number {
    return this.bytesUsed;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): CachedResponse | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    if (e.expiresAt <= this.now()) {
      this.remove(key, e);
      this.misses++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    this.hits++;
    return e.value;
  }

  set(key: string, value: CachedResponse): void {
    const bytes = key.length + value.text.length * 2 + value.tokens.byteLength + 64;
    if (bytes > this.maxBytes) return; // would evict everything and still not fit
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    this.map.set(key, { value, bytes, expiresAt: this.now() + this.ttlMs });
    this.bytesUsed += bytes;
    for (const [k, e] of this.map) {
      if (this.bytesUsed <= this.maxBytes && this.map.size <= this.maxEntries) break;
      this.remove(k, e);
    }
  }

  clear(): void {
    this.map.clear();
    this.bytesUsed = 0;
  }

  private remove(key: string, e: Entry): void {
    this.map.delete(key);
    this.bytesUsed -= e.bytes;
  }
}
