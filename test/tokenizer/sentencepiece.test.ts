// SentencePiece-converted Unigram files (XLM-RoBERTa / T5 shape: Sequence[Precompiled, Replace(Regex " {2,}")],
// Metaspace, Unigram) against Hugging Face `tokenizers`. The files are compiled by scripts/tokenizer-spm-fixture.ts
// (an nmt_nfkc-style charsmap as a darts-clone double array, Llama 2's pieces with log-prob scores); the reference
// loading them is the oracle.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { buildCorpus, type Doc } from '../../scripts/tokenizer-corpus.js';
import { codepointBlocks } from '../../scripts/tokenizer-codepoints.js';
import { hfParity } from '../../scripts/tokenizer-parity.js';
import { compileCharsmap, probeBytes, writeSpmFixtures } from '../../scripts/tokenizer-spm-fixture.js';

const require = createRequire(import.meta.url);
const hf = require('tokenizers') as typeof import('tokenizers');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-spm-test-'));
let files: { xlmr: string; t5: string; probe: string };
beforeAll(() => {
  files = writeSpmFixtures(tmp);
}, 300_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Texts aimed at the normalizer: space runs, full-width forms, ligatures, CJK, combining marks, controls. */
function hostile(): Doc[] {
  const docs: Doc[] = [];
  const add = (name: string, text: string) => docs.push({ name: `spm/${name}`, text });
  add('space-runs', 'a  b   c    d \t  e\u3000\u3000f  \u00a0 \u00a0g     ');
  add('leading-trailing', '   leading and trailing   ');
  add('full-width', 'ＡＢＣ　ｄｅｆ　１２３！？　ﾊﾝｶｸ ｶﾀｶﾅ ｶﾞｷﾞｸﾞ');
  add('ligatures', 'ﬁnance ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ǆ ㍻ ㎏ ℃ № ™ ½ ⅓ ² ³ ⁴ ₅ ⑳ ㈱');
  add('cjk', '日本語のテキスト、中文文本。한국어 텍스트 𠀀𠀁 ㄱㄴㄷ 가각 가 각');
  add('combining', 'e\u0301 Ａ\u0301b Ａ\u0301\u0301 a\u0308\u0304 o\u0302\u0303\u0304 \u0301lead 한\u0301 👍\u0301');
  add(
    'controls',
    'a\u0000b\u0001c\u0008d\u000be\u000ef\u001fg\u007fh\u0080i\u008fj\u009fk\u00adl\u200bm\u200dn\ufeffo\ufffdp',
  );
  add('newlines', 'line1\r\nline2\rline3\nline4\u2028line5\u2029line6\u0085line7\r\n\r\n');
  add('meta-char', '▁ ▁▁ a▁b ▁▁▁x');
  add('emoji', '👩‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸🇫 👍🏽 #️⃣ 1️⃣');
  add('indic', 'क्षत्रिय क्\u200dष हिन्दी বাংলা தமிழ் ગુજરાતી ಕನ್ನಡ മലയാളം');
  add('arabic-hebrew', 'ﻻ ﷺ ﷽ العربية עִבְרִית');
  add('math', '𝐀𝐁𝐂 𝔄𝔅 𝟘𝟙𝟚 ℌ ℍ ⅈ ∮ ≠ ≤');
  // Conjoining jamo L + V: a 6-byte cluster that is a key, but only clusters under 6 bytes are looked up whole.
  add('jamo', '\u1100\u1161 \u1100\u1161\u11a8 \u1112\u1175x \u1100\u1161\u1100\u1161');
  add('specials', 'Hello <mask> world</s><s> <unk> <pad>x <mask>  <s>Ｈｉ</s>');
  add('mixed', 'Ｈｅｌｌｏ,  ｗｏｒｌｄ!!  ﬁne   ＴＥＸＴ\twith\ttabs  and ２　spaces');
  return docs;
}

describe('SentencePiece-converted Unigram files against the reference', () => {
  it('the reference loads the generated files and normalizes as their charsmap says', () => {
    const t = hf.Tokenizer.fromFile(files.xlmr);
    const n = t.getNormalizer()!;
    expect(n.normalizeString('ﬁ  Ａ\u3000b\u0001c')).toBe('fi A bc');
    // The whole grapheme cluster "Ａ" + U+0301 (5 bytes) is looked up; the shortest key prefixing it ("Ａ") decides.
    expect(n.normalizeString('Ａ\u0301x')).toBe('Ax');
  });

  for (const shape of ['xlmr', 't5'] as const) {
    it(`${shape}-shaped: equal ids on the corpus and hostile texts`, { timeout: 600_000 }, async () => {
      const docs = [...hostile(), ...buildCorpus({ maxBytes: 400_000 })];
      const r = await hfParity(`${shape}-shaped`, docs, { file: files[shape] });
      expect(r.mismatches).toEqual([]);
      expect(r.roundTripFailures).toEqual([]);
      expect(r.tokens).toBeGreaterThan(100_000);
    });
  }

  it(
    'every code point through the normalizer equals the reference normalizer (byte-exact probe)',
    { timeout: 600_000 },
    async () => {
      // The probe's ids spell our normalized text's UTF-8 bytes (id k >= 1 is byte k - 1); the reference side is its
      // normalizer's normalizeString (much faster than its encode).
      const refNormalizer = hf.Tokenizer.fromFile(files.probe).getNormalizer()!;
      const ours = await Tokenizer.fromFile(files.probe);
      const contexts = (c: string) => [
        c,
        `a${c}`,
        `${c}\u0301`,
        `Ａ${c}`,
        `${c}${c}`,
        `  ${c}  `,
        `\r${c}`,
        `${c}\u200d`,
      ];
      const ourBytes = (text: string) => probeBytes(ours.encode(text, { addSpecialTokens: false }));
      let checked = 0;
      try {
        for (const lines of codepointBlocks((c) => contexts(c).join('|'))) {
          checked += lines.length;
          const text = lines.join('\n');
          const want = Buffer.from(refNormalizer.normalizeString(text), 'utf8');
          if (!ourBytes(text).equals(want)) {
            // Narrow down to the first code point that differs, for a readable failure.
            for (const line of lines)
              expect(ourBytes(line).toString('utf8'), JSON.stringify(line)).toBe(refNormalizer.normalizeString(line));
          }
        }
      } finally {
        ours.dispose();
      }
      expect(checked).toBeGreaterThan(400_000);
    },
  );

  it('matches charsmaps whose keys overlap (shortest prefix wins, clusters under 6 bytes looked up whole)', async () => {
    const rules = new Map<string, string>([
      ['a', 'A'],
      ['ab', 'X'],
      ['e\u0301', 'é'],
      ['\u0301', ''],
      ['가', 'GA'],
      ['xyz', 'Q'],
      ['x', 'x1'],
      ['🇯', 'J'],
    ]);
    const charsmap = compileCharsmap(rules).toString('base64');
    const j = JSON.parse(fs.readFileSync(files.probe, 'utf8'));
    j.normalizer = { type: 'Precompiled', precompiled_charsmap: charsmap };
    const file = path.join(tmp, 'overlap.json');
    fs.writeFileSync(file, JSON.stringify(j));
    const ref = hf.Tokenizer.fromFile(file);
    const ours = await Tokenizer.fromFile(file);
    try {
      for (const s of [
        'ab',
        'abc',
        'a\u0301',
        'e\u0301',
        'e\u0301\u0301\u0301',
        '가\u0301',
        'xyz',
        'xy',
        '🇯🇵',
        '🇯🇵🇯',
        'b\u0301a',
      ]) {
        const r = Array.from((await ref.encode(s, null, { addSpecialTokens: false })).getIds());
        expect(Array.from(ours.encode(s, { addSpecialTokens: false })), JSON.stringify(s)).toEqual(r);
      }
    } finally {
      ours.dispose();
    }
  });

  it('rejects malformed Precompiled and Replace fields by name', async () => {
    const j = JSON.parse(fs.readFileSync(files.probe, 'utf8'));
    const withNormalizer = (normalizer: object) => Tokenizer.fromJSON({ ...j, normalizer });
    await expect(withNormalizer({ type: 'Precompiled', precompiled_charsmap: '***' })).rejects.toThrow(
      /normalizer\.precompiled_charsmap: not valid base64/,
    );
    await expect(withNormalizer({ type: 'Precompiled', precompiled_charsmap: 'AAA=' })).rejects.toThrow(
      /normalizer\.precompiled_charsmap: shorter than its 4-byte header/,
    );
    await expect(withNormalizer({ type: 'Precompiled', precompiled_charsmap: '/////w==' })).rejects.toThrow(
      /normalizer\.precompiled_charsmap: trie size/,
    );
    await expect(withNormalizer({ type: 'Precompiled' })).rejects.toThrow(/normalizer\.precompiled_charsmap/);
    await expect(withNormalizer({ type: 'Replace', pattern: { Regex: '(unclosed' }, content: ' ' })).rejects.toThrow(
      /normalizer\.pattern\.Regex/,
    );
  });
});
