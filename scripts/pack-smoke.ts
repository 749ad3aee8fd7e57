// Proves the published package works without a compiler and on old systems:
//   1. copies the checkout to a temp folder and runs `npm run build:prebuilds` there (node-gyp via binding.gyp — the second
//      build of the same sources — stripped, with ONNX Runtime bundled as libtokmeter-ort.so), then `npm pack`;
//   2. installs the tarball into an empty project, with source builds disabled and no compiler on PATH;
//   3. checks every binary in the tarball against the supported floor (glibc 2.28, GLIBCXX_3.4.22: see
//      scripts/check-binary-floor.mjs), naming each symbol over it;
//   4. runs a smoke test there: load an ONNX model, run it, check the result and where ONNX Runtime came from.
// Usage: npx tsx scripts/pack-smoke.ts [--keep]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addModel } from '../test/fixtures/session-models.js';
// @ts-expect-error: a plain JavaScript build script without type declarations
import { FLOORS, floorProblems } from './check-binary-floor.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-pack-'));
const keep = process.argv.includes('--keep');
const step = (msg: string) => console.log(`\n[pack-smoke] ${msg}`);
const run = (cmd: string, args: string[], opts: Parameters<typeof execFileSync>[2] = {}) =>
  execFileSync(cmd, args, { stdio: 'inherit', ...opts });

try {
  step(`copying the checkout to ${tmp}/pkg`);
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root })
    .toString()
    .split('\0')
    .filter((f) => f && fs.existsSync(path.join(root, f)));
  const pkg = path.join(tmp, 'pkg');
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(pkg, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(pkg, f));
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));

  step('npm run build:prebuilds (node-gyp, binding.gyp)');
  run('npm', ['run', 'build:prebuilds'], { cwd: pkg });
  step('npm pack');
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', tmp], { cwd: pkg, encoding: 'utf8' });
  const tarball = path.join(tmp, packed.trim().split('\n').pop()!);
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const need of [
    'package/prebuilds/linux-x64/tokmeter.node',
    'package/prebuilds/linux-x64/libtokmeter-ort.so',
    'package/dist/index.js',
    'package/dist/index.d.ts',
  ]) {
    if (!listing.includes(need)) throw new Error(`the tarball lacks ${need}`);
  }
  console.log(
    `${path.basename(tarball)}: ${(fs.statSync(tarball).size / 1e6).toFixed(1)} MB, ${listing.length - 1} files`,
  );

  step(`the glibc/libstdc++ floor of every shipped binary (glibc ${FLOORS.GLIBC}, GLIBCXX ${FLOORS.GLIBCXX})`);
  const unpacked = path.join(tmp, 'unpacked');
  fs.mkdirSync(unpacked);
  run('tar', ['-xzf', tarball, '-C', unpacked]);
  const binaries = listing.filter((f) => /\.(node|so)(\.\d+)*$/.test(f));
  if (binaries.length === 0) throw new Error('the tarball ships no binaries');
  const over: string[] = [];
  for (const f of binaries) {
    const problems = (floorProblems as (file: string) => string[])(path.join(unpacked, f));
    console.log(`${f}: ${problems.length === 0 ? 'ok' : `${problems.length} symbol(s) over the floor`}`);
    over.push(...problems.map((p) => `${f}: ${p}`));
  }
  if (over.length > 0) throw new Error(`shipped binaries need a newer system than supported:\n  ${over.join('\n  ')}`);

  step('a model for the smoke test');
  const modelPath = path.join(tmp, 'add.onnx');
  fs.writeFileSync(modelPath, addModel());

  step('installing the tarball into an empty project, no compiler on PATH');
  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({
      name: 'smoke',
      version: '1.0.0',
      private: true,
      type: 'module',
      allowScripts: { tokmeter: true },
    }),
  );
  // Only node and npm on PATH: a source build (which would need c++, make, cmake or python) cannot happen.
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const npmCli =
    process.env.npm_execpath ?? fs.realpathSync(execFileSync('which', ['npm'], { encoding: 'utf8' }).trim());
  fs.symlinkSync(npmCli, path.join(bin, 'npm'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: bin,
    npm_config_build_from_source: 'false',
    CC: '/nonexistent',
    CXX: '/nonexistent',
  };
  delete env.ONNXRUNTIME_DIR;
  delete env.TOKMETER_ORT_LIBRARY;
  env.TOKMETER_CACHE_DIR = path.join(tmp, 'empty-cache'); // the build cache must not be what makes it work
  run(path.join(bin, 'npm'), ['install', '--no-audit', '--no-fund', tarball], { cwd: app, env });

  step('smoke test');
  fs.writeFileSync(
    path.join(app, 'smoke.mjs'),
    `import { Session, tensor, versions } from 'tokmeter';
import assert from 'node:assert/strict';
const v = versions();
console.log(v);
assert.equal(v.onnxruntime, '1.29.0');
assert.match(v.onnxruntimePath, /node_modules\\/tokmeter\\/prebuilds\\/linux-x64\\/libtokmeter-ort\\.so$/);
const s = await Session.load(${JSON.stringify(modelPath)});
const out = await s.run({ a: tensor('float32', new Float32Array([1, 2, 3]), [1, 3]), b: tensor('float32', new Float32Array([4, 5, 6]), [1, 3]) });
assert.deepEqual(Array.from(out.sum.data), [5, 7, 9]);
await s.close();
console.log('smoke ok: the packed tokmeter loaded a model and ran it with its bundled runtime');
`,
  );
  run(path.join(bin, 'node'), ['smoke.mjs'], { cwd: app, env });
} finally {
  if (keep) console.log(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
}
