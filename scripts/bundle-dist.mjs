#!/usr/bin/env node
// After `tsc --emitDeclarationOnly` (which writes the .d.ts files the package's types come from), bundles the
// package's entries — 'tokmeter', 'tokmeter/server', 'tokmeter/dashboard', 'tokmeter/scale' and the CLI — from the
// same sources with esbuild: the only JavaScript in dist/. The entries share one set of chunks (dist/chunks/), so a
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

const result = await build({
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
  metafile: true,
});

// dist/ holds the bundles and tsc's declarations only: any other .js or .js.map (per-file output of an older build)
// would ship in the package unused.
const outputs = new Set(Object.keys(result.metafile.outputs).map((f) => path.resolve(root, f)));
for (const entry of fs.readdirSync(path.join(root, 'dist'), { recursive: true, withFileTypes: true })) {
  const file = path.join(entry.parentPath ?? entry.path, entry.name);
  if (entry.isFile() && /\.js(\.map)?$/.test(entry.name) && !outputs.has(file)) fs.rmSync(file);
}
