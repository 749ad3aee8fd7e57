/** Pieces of tokenizer.json documents shared by the test fixtures that build them. */

/** An added_tokens entry for a special token (not normalized, no stripping unless asked). */
export function specialToken(content: string, id: number, opts: { lstrip?: boolean } = {}): object {
  return {
    id,
    content,
    single_word: false,
    lstrip: opts.lstrip ?? false,
    rstrip: false,
    normalized: false,
    special: true,
  };
}

/** GPT-2's byte-level alphabet: BYTE_CHARS[b] is the character that stands for byte b. */
export const BYTE_CHARS: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
})();
