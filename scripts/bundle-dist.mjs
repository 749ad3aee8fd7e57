#!/usr/bin/env node
// After `tsc` (which writes dist/ file by file, with the .d.ts files the package's types come from), bundles the
// package's entries — 'tokmeter', 'tokmeter/server', 'tokmeter/dashboard', 'tokmeter/scale' and the CLI — over the
// same sources with esbuild, replacing their dist/ files. The entries share one set of chunks (dist/chunks/), so a
// module common to two entries is loaded once and its classes stay one class (instanceof holds across entries), and
// npm packages stay external. Why: a process imports one file and a few chunks instead of ~60 modules, which is most
// of what `import { Tokenizer } from 'tokmeter'` costs (bench/import/run.ts --dist).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entries = ['index.ts', 'server/index.ts', 'dashboard/index.ts', 'scale/index.ts', 'cli/index.ts'];

// Chunk names carry a content hash: drop the previous build's.
fs.rmSync(path.join(root, 'dist', 'chunks'), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: entries.map((e) => path.join('src', e)),
  outbase: 'src',
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: false,
  logLevel: 'warning',
});
