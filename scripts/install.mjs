#!/usr/bin/env node
// The package's install step. Users on a platform with a prebuild (prebuilds/linux-x64) get nothing compiled and
// nothing downloaded. Otherwise the addon is built from source: with cmake-js in a development checkout (the main
// build, CMakeLists.txt), or with node-gyp (binding.gyp, shipped with npm) where cmake-js is not installed. A source
// build older than the native sources (a checkout after `git pull`) is rebuilt.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleSources } from './addon-freshness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function found() {
  try {
    return require('node-gyp-build').resolve(root);
  } catch {
    return null;
  }
}

const existing = found();
const stale = existing ? staleSources(root, existing) : [];
if (existing && stale.length === 0 && !process.env.TOKMETER_BUILD_FROM_SOURCE) {
  console.log(`tokmeter: using ${path.relative(root, existing)}`);
  process.exit(0);
}
if (stale.length > 0) {
  console.log(`tokmeter: ${path.relative(root, existing)} is older than ${stale.join(', ')}; rebuilding it`);
}
function cmakeJsPath() {
  try {
    return require.resolve('cmake-js/bin/cmake-js');
  } catch {
    return null; // not a development checkout: cmake-js is a devDependency
  }
}
const cmakeJs = cmakeJsPath();
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
try {
  if (cmakeJs) run(process.execPath, [cmakeJs, 'compile', '--out', 'build']);
  else run('npx', ['--no-install', 'node-gyp', 'rebuild']);
} catch {
  console.error(
    'tokmeter: building the native addon from source failed (see above). A source build needs a C++20 compiler and ' +
      'cmake (or node-gyp); ONNX Runtime, PCRE2 and utf8proc are fetched from the package registries when missing.',
  );
  process.exit(1);
}
