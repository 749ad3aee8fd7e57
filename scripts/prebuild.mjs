#!/usr/bin/env node
// `npm run build:prebuilds`: prebuildify (N-API, stripped) through node-gyp/binding.gyp → prebuilds/<platform>-<arch>/,
// then bundles ONNX Runtime beside the .node file under its private soname (libtokmeter-ort.so), where
// src/runtime.ts looks first after the env overrides.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureOnnxRuntime, PRIVATE_ORT_NAME } from './fetch-onnxruntime.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ortDir = ensureOnnxRuntime();
execFileSync('npx', ['--no-install', 'prebuildify', '--napi', '--strip', '--target', process.versions.node], {
  cwd: root,
  stdio: 'inherit',
  // node-gyp compiles one file at a time unless told otherwise.
  env: { ...process.env, JOBS: process.env.JOBS ?? String(Math.min(2, os.availableParallelism())) },
});
const out = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.copyFileSync(path.join(ortDir, 'lib', PRIVATE_ORT_NAME), path.join(out, PRIVATE_ORT_NAME));
for (const f of fs.readdirSync(out)) {
  console.log(`prebuilds/${path.basename(out)}/${f}  ${(fs.statSync(path.join(out, f)).size / 1e6).toFixed(1)} MB`);
}
