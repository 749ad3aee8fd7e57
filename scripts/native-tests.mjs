#!/usr/bin/env node
// Builds and runs the plain C++ unit tests (no Node headers): native/CMakeLists.txt gathers native/<part>/test/.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build-native');
const parts = ['util', 'engine', 'tokenizer', 'grammar', 'link'].filter((p) =>
  fs.existsSync(path.join(root, 'native', p, 'test', 'CMakeLists.txt')),
);
if (parts.length === 0) {
  console.log('native tests: no native/<part>/test/CMakeLists.txt yet');
  process.exit(0);
}
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
const jobs = String(Math.max(1, Math.min(2, (await import('node:os')).availableParallelism())));
try {
  run('cmake', ['-S', 'native', '-B', buildDir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo']);
  run('cmake', ['--build', buildDir, '-j', jobs]);
  run('ctest', ['--test-dir', buildDir, '--output-on-failure']);
} catch {
  process.exit(1);
}
