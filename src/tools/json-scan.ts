/**
 * Where a JSON value written in a model's output ends, without parsing it: the parsers use it to cut a call's
 * JSON out of the text around it (Llama's `{...}; {...}`, a Hermes call followed by more text).
 */

/**
 * The index just past the JSON object or array that starts at `start` (after leading whitespace), or -1 when the
 * text ends first or the value is not an object or array. Strings (with their escapes) are skipped, so braces
 * inside them do not count. Says nothing about the value's validity: JSON.parse decides that.
 */
export function jsonValueEnd(text: string, start = 0): number {
  let i = start;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  const open = text[i];
  if (open !== '{' && open !== '[') return -1;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** JSON.parse that answers undefined instead of throwing. */
export function tryParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The length of the longest suffix of `text` that is a proper prefix of `marker` (0 when none): text a stream must
 * hold back because the next chunk may complete the marker.
 */
export function partialMarkerAtEnd(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(marker.slice(0, n))) return n;
  }
  return 0;
}
