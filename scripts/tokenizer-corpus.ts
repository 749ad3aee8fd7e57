/**
 * The tokenizer parity/bench corpus: real text found on this machine (package READMEs and sources, Debian docs,
 * translated messages from /usr/share/locale in many scripts, our own C++), plus generated hard cases. Deterministic
 * for a given machine; bounded in size (`maxBytes`).
 *
 *   npx tsx scripts/tokenizer-corpus.ts [--stats]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Doc {
  name: string;
  text: string;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function listSorted(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function readText(file: string, limit: number): string | undefined {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size === 0) return undefined;
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(Math.min(st.size, limit));
    fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    if (buf.includes(0)) return undefined;
    // Cut back to a UTF-8 boundary; Node's decoder would otherwise add U+FFFD.
    let end = buf.length;
    while (end > 0 && (buf[end - 1]! & 0xc0) === 0x80) end--;
    if (end > 0 && buf[end - 1]! >= 0xc0) end--;
    return buf.subarray(0, buf.length === st.size ? buf.length : end).toString('utf8');
  } catch {
    return undefined;
  }
}

/** msgstr strings of a GNU .mo file. */
function moStrings(file: string): string[] {
  const b = fs.readFileSync(file);
  if (b.length < 28) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0x950412de;
  if (!le && b.readUInt32BE(0) !== 0x950412de) return [];
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const n = u32(8),
    trans = u32(16);
  const out: string[] = [];
  for (let i = 1; i < n; i++) {
    const len = u32(trans + i * 8),
      off = u32(trans + i * 8 + 4);
    if (off + len > b.length) break;
    out.push(
      b
        .subarray(off, off + len)
        .toString('utf8')
        .replace(/\0/g, '\n'),
    );
  }
  return out;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Generated hard cases (kept moderate in size so the reference finishes quickly). */
export function hardCases(): Doc[] {
  const docs: Doc[] = [];
  const add = (name: string, text: string) => docs.push({ name: `hard/${name}`, text });
  add('empty', '');
  add('space', ' ');
  add('emoji-zwj', '👩‍👩‍👧‍👦 family 👨🏽‍💻 coder 🏳️‍🌈 flag 🧑🏿‍🤝‍🧑🏻 people 👁️‍🗨️');
  add('skin-tones', '👍🏻👍🏼👍🏽👍🏾👍🏿 ✋🏽 👋🏿👋 🤌🏼');
  add(
    'combining',
    'e\u0301\u0302\u0303 a\u0308 Z\u0351\u0352\u0357\u035b\u0363a\u0364l\u0365g\u0366o Å Å 한국어 한국어 ñ ñ',
  );
  // Where normalization forms compose across characters of class 0: Hangul jamo (and U+11A7, the T base, which is
  // not a T jamo), Indic and Myanmar two-part vowels, kana voicing marks, precomposed letters with marks to reorder,
  // singletons and compatibility characters.
  add(
    'normalization-edges',
    '\uAC00\u11A7 \u1100\u1161\u11A7 \u1100\u1161\u11A8 \uAC00\u11A8 \u1100\u1100\u1161 \u0B47\u0B3E \u0B47\u0B57 ' +
      '\u0CC6\u0CD5 \u0CC6\u0CC2\u0CD5 \u0DD9\u0DCF \u0DD9\u0DDF \u1025\u102E \u304B\u3099 \u30CF\u309A ' +
      '\u00E9\u0323 e\u0323\u0301 \u1E9B\u0323 \u2126 \u212B \uFB01 \u00BD \u2460 \uFF21 \u0041\u030A\u0301',
  );
  add('zalgo', 'H̵̢̛̖̗̘̙̜̝̞̟̠̤̥̦̩̪̫̬̭̮̯̰̱̲̳̹̺̻̼ͅe̸̡̢̧̨̛̖̗̘̙̜̝̞̟̠̣̤̥̦̩̪̫̬̭̮̯̰̱̲̳̹̺̻̼ͅͅl̶l̷o̴');
  add('long-spaces', ' '.repeat(3000) + 'x' + ' '.repeat(1000));
  add('long-newlines', '\n'.repeat(2000) + 'a\r\n\r\n\r\n' + '\t'.repeat(500) + ' \n \n ');
  add('mixed-ws', 'a \u00a0b\u2028c\u2029d\u0085e\u180ef\ufeffg\u3000h\u200bi\u2000\u2001\u200aj \t\n\r\u000b\u000ck');
  add('digits', '1234567890'.repeat(300) + ' ' + '٣٤٥٦' + ' ' + '１２３' + ' 3.14159 1,000,000 0x1F');
  add('long-word', 'a'.repeat(20000));
  add('long-word2', 'abcdefghij'.repeat(2000));
  add('long-word-cjk', '中'.repeat(5000));
  add('long-punct', '!?'.repeat(3000) + '....' + '-'.repeat(2000));
  add('lone-surrogates', 'a\ud800b\udfffc\ud83d\ude00d\ude00\ud83d');
  add('contractions', "I'M DON'T you're WE'VE she'll HE'D it's ſ'S 'S' ''s' 'T'RE'");
  add(
    'special-tokens',
    'x<|endoftext|>y <s>z</s> <|im_start|>user\nhi<|im_end|> <|begin_of_text|> <unk> <|endofprompt|>',
  );
  add('code', 'function f(x){return x**2;}\n\tif (a && b) { console.log(`${a}`); }\n#include <vector>\nint main(){}');
  add('urls', 'https://example.com/a/b?c=d&e=f#g user@mail.org C:\\path\\to\\file.txt /usr/local/bin');
  add('rtl', 'مرحبا بالعالم שלום עולם ‏‎ ‫embedded‬');
  add('indic', 'नमस्ते दुनिया ক্ষ্ম தமிழ் ಕನ್ನಡ ไทย ພາສາລາວ ဗမာ ខ្មែរ');
  add('math', '∀x∈ℝ: x²≥0 ∑ᵢ₌₁ⁿ i = n(n+1)/2 ½ ⅓ ﬁ ﬂ ℌ ℍ 𝔸𝔹 𝕏');
  add('control', 'a\u0000b\u0001c\u001fd\u007fe\u0080f');
  add('max-codepoints', '\u{10ffff}\u{e0001}\u{e0020}\u{f0000}\ufffd\ufffe');
  // Letters, digits and marks added in Unicode 14-16 (Kawi, Garay, Todhri, Gurung Khema, Kirat Rai, CJK Ext. H/I,
  // Cyrillic TJE) after spaces, punctuation, letters, digits and newlines; the Unicode 17 ones (Sidetic, Tolong Siki)
  // are not letters yet for the reference. (Not U+1E030..U+1E06D, Cyrillic modifier letters of Unicode 15: NFKC
  // maps them to Cyrillic letters, and the NFKC tables of utf8proc, which normalizers use, do not have them yet.)
  const newest = [
    0x11f04, 0x11f00, 0x11f50, 0x10d4a, 0x10d41, 0x105c0, 0x16100, 0x16d40, 0x16d70, 0x1c89, 0x31350, 0x2ebf0, 0x1e5d0,
    0x10940, 0x11db0, 0x1e4d0, 0x11b00, 0x1df25,
  ].map((c) => String.fromCodePoint(c));
  add(
    'newest-unicode',
    newest.map((c) => `a${c}b ${c}${c}1 .${c} \n${c} x'${c} A${c}a ${c}\u0301 1${c}`).join(' ') + ' ' + newest.join(''),
  );
  add(
    'combining-runs',
    'A' + '\u0301'.repeat(500) + ' ' + '\u0301'.repeat(300) + 'ABC\u0301DEF' + '\u0300a'.repeat(200),
  );
  add('upper-mark-runs', 'ABCDEFG\u0301HIJ ' + '\u0301ABCDEFGHIJ'.repeat(50) + " DON'T\u0301S " + 'Ǆǅǆ'.repeat(100));
  add('long-runs', ' '.repeat(5000) + '1'.repeat(5000) + '!'.repeat(5000) + '\n'.repeat(5000) + '\r\n'.repeat(2000));
  add('space-newline-runs', ' \n'.repeat(3000) + '\u3000\u2028'.repeat(1000) + ' \t x');
  const rnd = mulberry32(7);
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0xa0, 0x24f],
    [0x300, 0x36f],
    [0x370, 0x3ff],
    [0x400, 0x4ff],
    [0x590, 0x6ff],
    [0x900, 0x97f],
    [0xe00, 0xe7f],
    [0x1100, 0x11ff],
    [0x2000, 0x206f],
    [0x3000, 0x30ff],
    [0x4e00, 0x9fff],
    [0xac00, 0xd7a3],
    [0xfe00, 0xfe0f],
    [0x1f300, 0x1faff],
    [0x10000, 0x1ffff],
  ];
  for (let d = 0; d < 60; d++) {
    let s = '';
    const len = 1 + Math.floor(rnd() * 200);
    for (let i = 0; i < len; i++) {
      const r = ranges[Math.floor(rnd() * ranges.length)]!;
      const cp = r[0] + Math.floor(rnd() * (r[1] - r[0] + 1));
      s += rnd() < 0.15 ? ' ' : String.fromCodePoint(cp);
    }
    add(`random-${d}`, s);
  }
  return docs;
}

const LANGS = [
  'ja',
  'zh_CN',
  'zh_TW',
  'ko',
  'ru',
  'uk',
  'ar',
  'he',
  'fa',
  'hi',
  'bn',
  'ta',
  'th',
  'el',
  'vi',
  'ka',
  'hy',
  'am',
  'km',
  'my',
  'de',
  'fr',
  'es',
  'pl',
  'tr',
  'cs',
  'pt_BR',
  'sv',
  'fi',
  'hu',
  'ro',
  'eo',
  'ml',
  'te',
  'gu',
  'pa',
  'si',
  'lo',
  'mn',
  'ne',
  'be',
  'bg',
  'sr',
  'lt',
  'ga',
];

export function realDocs(maxBytes: number, maxDocBytes = 16_000): Doc[] {
  const docs: Doc[] = [];
  let total = 0;
  const push = (name: string, text: string | undefined, budget: number): boolean => {
    if (!text || total >= budget) return false;
    const t = text.slice(0, maxDocBytes);
    docs.push({ name, text: t });
    total += Buffer.byteLength(t);
    return true;
  };
  // 1. Translated messages: every script we can find (about a third of the budget).
  const moBudget = maxBytes * 0.35;
  for (const lang of LANGS) {
    const dir = path.join('/usr/share/locale', lang, 'LC_MESSAGES');
    let text = '';
    for (const f of listSorted(dir)) {
      if (!f.endsWith('.mo')) continue;
      try {
        text += moStrings(path.join(dir, f)).join('\n') + '\n';
      } catch {
        /* unreadable: skip */
      }
      if (text.length > maxDocBytes) break;
    }
    push(`locale/${lang}`, text.slice(0, 6000), moBudget);
  }
  // 2. Package READMEs (English prose, markdown, code blocks).
  const nm = path.join(root, 'node_modules');
  const pkgDirs: string[] = [];
  for (const p of listSorted(nm)) {
    if (p.startsWith('.')) continue;
    if (p.startsWith('@')) for (const q of listSorted(path.join(nm, p))) pkgDirs.push(path.join(nm, p, q));
    else pkgDirs.push(path.join(nm, p));
  }
  const readmeBudget = maxBytes * 0.65;
  for (const d of pkgDirs) {
    const f = listSorted(d).find((x) => /^readme(\.md)?$/i.test(x));
    if (f) push(`readme/${path.relative(nm, d)}`, readText(path.join(d, f), maxDocBytes), readmeBudget);
  }
  // 3. Debian docs.
  const docBudget = maxBytes * 0.8;
  for (const p of listSorted('/usr/share/doc'))
    push(`doc/${p}`, readText(path.join('/usr/share/doc', p, 'copyright'), maxDocBytes), docBudget);
  // 4. Source code: ours and installed packages'.
  const srcs = [
    ...listSorted(path.join(root, 'native/tokenizer')).map((f) => path.join(root, 'native/tokenizer', f)),
    path.join(nm, '@huggingface/jinja/dist/index.js'),
    path.join(nm, 'typescript/lib/lib.es5.d.ts'),
    path.join(nm, 'node-addon-api/napi.h'),
    '/usr/include/pcre2.h',
    '/usr/include/utf8proc.h',
  ];
  for (const f of srcs)
    if (/\.(cc|h|js|ts)$/.test(f)) push(`src/${path.basename(f)}`, readText(f, maxDocBytes), maxBytes);
  return docs;
}

export function buildCorpus(opts: { maxBytes?: number } = {}): Doc[] {
  return [...realDocs(opts.maxBytes ?? 1_500_000), ...hardCases()];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const docs = buildCorpus();
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d.text), 0);
  console.log(`${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB`);
  if (process.argv.includes('--stats')) for (const d of docs) console.log(d.name, Buffer.byteLength(d.text));
}
