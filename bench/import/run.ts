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
 * (`npm run build:ts` first). The CPU column is the process's CPU time during the import, which a busy machine
 * inflates far less than the wall time. `--against REV` also transpiles REV's src/ (a git revision) and runs the two
 * trees alternately, printing each entry's ratio to REV: the figure to trust when other work shares the machine.
 * Nothing here is asserted by a test: test/package/light-entry.test.ts checks only which packages load.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { transformSync } from 'esbuild';

const root = path.join(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 9;
const useDist = args.includes('--dist');
const againstArg = args.indexOf('--against');
const against = againstArg >= 0 ? args[againstArg + 1] : undefined;
const HEAVY = ['fastify', 'pg', 'ioredis', 'kafkajs', 'better-sqlite3', 'prom-client'];

function transpile(src = path.join(root, 'src'), out = path.join(root, 'build-import-bench')): string {
  fs.rmSync(out, { recursive: true, force: true });
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
// REV's sources, transpiled beside the current ones (inside the repository, so that packages resolve the same way).
let baseline: string | undefined;
if (against) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-import-'));
  try {
    execFileSync('bash', ['-c', `git archive ${JSON.stringify(against)} src | tar -x -C ${JSON.stringify(tmp)}`], {
      cwd: root,
    });
    baseline = transpile(path.join(tmp, 'src'), path.join(root, 'build-import-bench-against'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
if (!fs.existsSync(path.join(base, 'index.js'))) {
  console.error(`${base}/index.js is missing: run \`npm run build:ts\` first, or drop --dist`);
  process.exit(1);
}

// The child: time the import, then list the packages in the CommonJS cache (every heavy package here is CommonJS,
// also when it is reached through `import`).
const probe = `
const c0 = process.cpuUsage();
const t0 = performance.now();
await import(process.argv[1]);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
const { createRequire } = await import('node:module');
const pkgs = new Set();
for (const k of Object.keys(createRequire(import.meta.url).cache)) {
  const m = k.match(/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/);
  if (m) pkgs.add(m[1]);
}
console.log(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage().rss, pkgs: [...pkgs] }));
`;

const entries: [string, string][] = [
  ['tokenizer module (src/tokenizer)', 'tokenizer/index.js'],
  ["'tokmeter' (the entry)", 'index.js'],
  ["'tokmeter/scale'", 'scale/index.js'],
  ["'tokmeter/server'", 'server/index.js'],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number, w = 9) => x.toFixed(1).padStart(w);

interface Probe {
  ms: number;
  cpuMs: number;
  rss: number;
  pkgs: string[];
}
function probeOnce(file: string): Probe {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe, file], {
    cwd: root,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Probe;
}

console.log(
  `import time, ${runs} fresh processes per entry (${useDist ? 'dist/' : 'esbuild-transpiled src/'}), node ${process.version}` +
    (against ? `, alternating with ${against}'s src/` : ''),
);
console.log(
  'entry                               median ms   min ms   CPU ms   RSS MB' +
    (against ? `   ${'vs REV (wall, CPU)'.padEnd(20)}` : '   ') +
    'heavy packages loaded',
);
for (const [name, rel] of entries) {
  const runsOf: Probe[] = [];
  const baseRuns: Probe[] = [];
  for (let i = 0; i < runs; i++) {
    runsOf.push(probeOnce(path.join(base, rel)));
    if (baseline) baseRuns.push(probeOnce(path.join(baseline, rel)));
  }
  const ms = runsOf.map((r) => r.ms);
  const cpu = runsOf.map((r) => r.cpuMs);
  const heavy = HEAVY.filter((p) => runsOf[runsOf.length - 1]!.pkgs.includes(p));
  const vs = baseline
    ? `   ${`${(median(ms) / median(baseRuns.map((r) => r.ms))).toFixed(2)}x, ${(
        median(cpu) / median(baseRuns.map((r) => r.cpuMs))
      ).toFixed(2)}x`.padEnd(20)}`
    : '   ';
  console.log(
    `${name.padEnd(36)}${fmt(median(ms))}${fmt(Math.min(...ms))}${fmt(median(cpu))}${fmt(
      median(runsOf.map((r) => r.rss / 2 ** 20)),
      9,
    ).replace(/\.\d$/, '  ')}${vs}${heavy.length ? heavy.join(', ') : 'none'}`,
  );
}
