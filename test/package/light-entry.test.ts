// The package's entry loads no web server, database driver or message client: each import runs in a fresh process
// where those packages cannot be loaded at all (test/fixtures/forbid-modules.mjs: an ESM resolve hook and a
// CommonJS Module._load guard), and the process then lists every package in its CommonJS cache. The import time is
// a benchmark (bench/import/run.ts), not asserted here.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '..', '..');
const HEAVY = ['fastify', 'pg', 'ioredis', 'kafkajs', 'better-sqlite3'];

const probe = `
const m = await import(process.argv[1]);
const { createRequire } = await import('node:module');
const pkgs = new Set();
for (const k of Object.keys(createRequire(import.meta.url).cache)) {
  const p = k.match(/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/);
  if (p) pkgs.add(p[1]);
}
console.log(JSON.stringify({ exports: Object.keys(m), packages: [...pkgs] }));
`;

function importInFreshProcess(
  entry: string,
  forbid: string[] = HEAVY,
): {
  status: number | null;
  stderr: string;
  exports: string[];
  packages: string[];
} {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      pathToFileURL(path.join(root, 'test', 'fixtures', 'forbid-modules.mjs')).href,
      '--input-type=module',
      '-e',
      probe,
      pathToFileURL(path.join(root, entry)).href,
    ],
    { cwd: root, encoding: 'utf8', env: { ...process.env, TOKMETER_FORBID: forbid.join(',') } },
  );
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const parsed = last.startsWith('{') ? (JSON.parse(last) as { exports: string[]; packages: string[] }) : null;
  return { status: r.status, stderr: r.stderr, exports: parsed?.exports ?? [], packages: parsed?.packages ?? [] };
}

describe('the light entry', () => {
  it("'tokmeter' (src/index.ts) loads none of fastify, pg, ioredis, kafkajs, better-sqlite3", () => {
    const r = importInFreshProcess('src/index.ts');
    expect(r.stderr).not.toMatch(/forbidden module/);
    expect(r.status).toBe(0);
    expect(r.packages.filter((p) => HEAVY.includes(p))).toEqual([]);
    // The README's imports still come from the entry.
    expect(r.exports).toEqual(
      expect.arrayContaining([
        'Tokenizer',
        'Model',
        'Meter',
        'SqliteLedger',
        'PostgresLedger',
        'PriceTable',
        'Session',
      ]),
    );
  });

  it('the chat-template engine is loaded on the first render, not by the import', () => {
    const r = importInFreshProcess('src/index.ts', ['@huggingface/jinja']);
    expect(r.stderr).not.toMatch(/forbidden module/);
    expect(r.status).toBe(0);
  });

  it('the tokenizer module alone loads none of them either', () => {
    const r = importInFreshProcess('src/tokenizer/index.ts');
    expect(r.status).toBe(0);
    expect(r.packages.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it("the guard works: 'tokmeter/server' fails naming fastify and the module that imports it", () => {
    const r = importInFreshProcess('src/server/index.ts');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/forbidden module fastify imported by .*src\/server\//);
  });
});
