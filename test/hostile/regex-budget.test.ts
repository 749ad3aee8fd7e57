/**
 * Regexes of tokenizer files run under a budget per match attempt that grows with the input. A catastrophically
 * backtracking pattern used to hold the thread for PCRE2's fixed default budget and then throw a plain Error on the
 * sync path; it is now a RegexLimitError (ERR_TOKENIZER_REGEX_LIMIT) naming the pattern, within a small budget. Real
 * tokenizer patterns never reach the budget: 10,000,000 spaces through llama3's pattern used to fail with "match
 * limit exceeded" and now tokenize.
 */
import { describe, expect, it } from 'vitest';
import { lenmlFile } from '../../scripts/tokenizer-parity.js';
import { TokmeterError } from '../../src/errors.js';
import { RegexLimitError, Tokenizer } from '../../src/tokenizer/index.js';

function base(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', vocab: { a: 0, b: 1, '!': 2 }, merges: [] },
    ...extra,
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('regex budget', () => {
  // (a+)+$ backtracks exponentially on a run of 'a' that is not at the end.
  const hostile = base({
    pre_tokenizer: { type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false },
  });
  const text = `${'a'.repeat(460)}!`;

  it('a catastrophically backtracking Split pattern is a RegexLimitError on the sync and async paths', async () => {
    const t = await Tokenizer.fromJSON(hostile);
    try {
      for (const call of [() => t.encode(text), () => t.count(text)]) {
        let thrown: unknown;
        try {
          call();
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(RegexLimitError);
        expect((thrown as RegexLimitError).code).toBe('ERR_TOKENIZER_REGEX_LIMIT');
        expect((thrown as Error).message).toMatch(/pre_tokenizer.*pattern\.Regex/);
      }
      const err = await rejection(t.countBatch([text, 'ab']));
      expect(err).toBeInstanceOf(RegexLimitError);
      // The tokenizer stays usable.
      expect(t.count('ab')).toBeGreaterThan(0);
    } finally {
      t.dispose();
    }
  });

  it("10,000,000 spaces through llama3's pattern tokenize, and decode back", async () => {
    const t = await Tokenizer.fromFile(lenmlFile('llama3'));
    try {
      const spaces = ' '.repeat(10_000_000);
      const ids = t.encode(spaces, { addSpecialTokens: false });
      expect(ids.length).toBeGreaterThan(0);
      expect(t.count(spaces, { addSpecialTokens: false })).toBe(ids.length);
      expect(t.decode(ids)).toBe(spaces);
    } finally {
      t.dispose();
    }
  });
});

it('RegexLimitError is a tokmeter error', () => {
  expect(new RegexLimitError('ERR_TOKENIZER_REGEX_LIMIT', 'x')).toBeInstanceOf(TokmeterError);
});
