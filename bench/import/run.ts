/**
 * Import cost of the package's entries: what `import { Tokenizer } from 'tokmeter'` costs a process that only counts
 * tokens, beside `tokmeter/server`, `tokmeter/scale` and the tokenizer module alone.
 *
 *   npx tsx bench/import/run.ts [--runs 9] [--dist]
 *
 * Each entry is imported by a fresh `node` process (no tsx), `--runs` times; the table shows the median and the
 * fastest import time, the process's resident memory after the import, and which of the heavy packages (fastify,
 * pg, ioredis, kafkajs, better-sqlite3, prom-client) it loaded. By default the sources are transpiled file by file
 * with esbuild into build-import-bench/ (what tsc emits, without type checking); `--dist` measures dist/ instead
 * (`npm run build:ts` first). Nothing here is asserted by a test: test/package/light-entry.test.ts checks only which
 * packages load.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { transformSync } from 'esbuild';

const root = path.join(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 9;
const useDist = args.includes('--dist');
const HEAVY = ['fastify', 'pg', 'ioredis', 'kafkajs', 'better-sqlite3', 'prom-client'];

function transpile(): string {
  const out = path.join(root, 'build-import-bench');
  fs.rmSync(out, { recursive: true, force: true });
  const src = path.join(root, 'src');
  for (const rel of fs.readdirSync(src, { recursive: true }) as string[]) {
    if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
    const { code } = transformSync(fs.readFileSync(path.join(src, rel), 'utf8'), {
      loader: 'ts',
      format: 'esm',
      target: 'node20',
      sourcefile: rel,
    });
    const file = path.join(out, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, code);
  }
  return out;
}

const base = useDist ? path.join(root, 'dist') : transpile();
if (!fs.existsSync(path.join(base, 'index.js'))) {
  console.error(`${base}/index.js is missing: run \`npm run build:ts\` first, or drop --dist`);
  process.exit(1);
}

// The child: time the import, then list the packages in the CommonJS cache (every heavy package here is CommonJS,
// also when it is reached through `import`).
const probe = `
const t0 = performance.now();
await import(process.argv[1]);
const ms = performance.now() - t0;
const { createRequire } = await import('node:module');
const pkgs = new Set();
for (const k of Object.keys(createRequire(import.meta.url).cache)) {
  const m = k.match(/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/);
  if (m) pkgs.add(m[1]);
}
console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss, pkgs: [...pkgs] }));
`;

const entries: [string, string][] = [
  ['tokenizer module (src/tokenizer)', 'tokenizer/index.js'],
  ["'tokmeter' (the entry)", 'index.js'],
  ["'tokmeter/scale'", 'scale/index.js'],
  ["'tokmeter/server'", 'server/index.js'],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `import time, ${runs} fresh processes per entry (${useDist ? 'dist/' : 'esbuild-transpiled src/'}), node ${process.version}`,
);
console.log('entry                               median ms   min ms   RSS MB   heavy packages loaded');
for (const [name, rel] of entries) {
  const file = path.join(base, rel);
  const ms: number[] = [];
  const rss: number[] = [];
  let pkgs: string[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe, file], {
      cwd: root,
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { ms: number; rss: number; pkgs: string[] };
    ms.push(r.ms);
    rss.push(r.rss / 2 ** 20);
    pkgs = r.pkgs;
  }
  const heavy = HEAVY.filter((p) => pkgs.includes(p));
  console.log(
    `${name.padEnd(36)}${median(ms).toFixed(1).padStart(9)}${Math.min(...ms)
      .toFixed(1)
      .padStart(9)}${median(rss).toFixed(0).padStart(9)}   ${heavy.length ? heavy.join(', ') : 'none'}`,
  );
}
