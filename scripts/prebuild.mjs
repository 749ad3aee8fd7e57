#!/usr/bin/env node
// `npm run build:prebuilds`: prebuildify (N-API, stripped) through node-gyp/binding.gyp → prebuilds/<platform>-<arch>/,
// then bundles libonnxruntime.so.1 beside the .node file, where src/runtime.ts looks first after the env overrides.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureOnnxRuntime } from './fetch-onnxruntime.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ortDir = ensureOnnxRuntime();
execFileSync('npx', ['--no-install', 'prebuildify', '--napi', '--strip', '--target', process.versions.node], {
  cwd: root,
  stdio: 'inherit',
});
const out = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const lib = path.join(ortDir, 'lib', 'libonnxruntime.so.1');
fs.copyFileSync(lib, path.join(out, 'libonnxruntime.so.1'));
for (const f of fs.readdirSync(out)) {
  console.log(`prebuilds/${path.basename(out)}/${f}  ${(fs.statSync(path.join(out, f)).size / 1e6).toFixed(1)} MB`);
}
