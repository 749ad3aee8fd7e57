#!/usr/bin/env node
// Puts ONNX Runtime 1.29.0 where the native build can find it, using the npm registry only, once per machine.
//
// Layout produced (the layout of ONNX Runtime's own release archives):
//   <cache>/onnxruntime-1.29.0/include/*.h          C/C++ headers, from com.github.asus4.onnxruntime@0.4.9
//   <cache>/onnxruntime-1.29.0/lib/libonnxruntime.so.1   from onnxruntime-node@1.29.0 (a build that can load CUDA)
//   <cache>/onnxruntime-1.29.0/lib/libtokmeter-ort.so    the same library under a private soname: the copy the addon
//                                                        ships and loads (see scripts/elf.mjs for why)
//   with --cuda, also lib/libonnxruntime_providers_{cuda,shared}.so from com.github.asus4.onnxruntime.linux-x64-gpu
//
// <cache> is $TOKMETER_CACHE_DIR, else $XDG_CACHE_HOME/tokmeter, else ~/.cache/tokmeter.
// If ONNXRUNTIME_DIR is set, nothing is fetched: that folder (with include/ and lib/) is used as it is.
//
// Usage: node scripts/fetch-onnxruntime.mjs [--cuda] [--print-dir | --print-include | --print-lib] [--quiet]
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyWithSoname } from './elf.mjs';

export const ORT_VERSION = '1.29.0';
/** File name and soname of the bundled runtime; src/runtime.ts looks for it beside the addon. */
export const PRIVATE_ORT_NAME = 'libtokmeter-ort.so';
const HEADERS_PKG = 'com.github.asus4.onnxruntime@0.4.9';
const HEADERS_DIR_IN_PKG =
  'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers';
const RUNTIME_PKG = `onnxruntime-node@${ORT_VERSION}`;
const RUNTIME_LIB_IN_PKG = 'package/bin/napi-v6/linux/x64/libonnxruntime.so.1';
const CUDA_PKG = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
const CUDA_LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];
// Every header of the framework folder (they include each other); these must be among them.
const REQUIRED_HEADERS = ['onnxruntime_c_api.h', 'onnxruntime_cxx_api.h', 'onnxruntime_cxx_inline.h'];
const HEADERS_DONE = '.complete';

const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet') || [...args].some((a) => a.startsWith('--print'));
const log = (msg) => {
  if (!quiet) process.stderr.write(`[fetch-onnxruntime] ${msg}\n`);
  else if (process.env.TOKMETER_VERBOSE) process.stderr.write(`[fetch-onnxruntime] ${msg}\n`);
};

export function cacheRoot() {
  if (process.env.TOKMETER_CACHE_DIR) return path.resolve(process.env.TOKMETER_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tokmeter');
}

function packTarball(spec, dest) {
  fs.mkdirSync(dest, { recursive: true });
  const existing = fs.readdirSync(dest).find((f) => f.endsWith('.tgz') && f.startsWith(tarballPrefix(spec)));
  if (existing) return path.join(dest, existing);
  log(`downloading ${spec} from the npm registry (once)`);
  const out = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', dest], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const name = out.trim().split('\n').pop();
  return path.join(dest, name);
}

function tarballPrefix(spec) {
  const at = spec.lastIndexOf('@');
  const name = spec.slice(0, at).replace(/^@/, '').replace('/', '-');
  return `${name}-${spec.slice(at + 1)}`;
}

function extract(tarball, members, destDir) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-ort-'));
  try {
    execFileSync('tar', ['-xzf', tarball, '-C', tmp, '--wildcards', ...members], { stdio: 'inherit' });
    fs.mkdirSync(destDir, { recursive: true });
    for (const m of members) {
      const src = path.join(tmp, m);
      fs.copyFileSync(src, path.join(destDir, path.basename(m)));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function localRuntimeLib() {
  // Prefer the copy npm already installed (devDependency) over a second download.
  try {
    const require = createRequire(import.meta.url);
    const pkgJson = require.resolve('onnxruntime-node/package.json');
    const version = JSON.parse(fs.readFileSync(pkgJson, 'utf8')).version;
    if (version !== ORT_VERSION) return null;
    const lib = path.join(path.dirname(pkgJson), 'bin/napi-v6/linux/x64/libonnxruntime.so.1');
    return fs.existsSync(lib) ? lib : null;
  } catch {
    return null;
  }
}

export function ensureOnnxRuntime({ cuda = false } = {}) {
  if (process.env.ONNXRUNTIME_DIR) {
    const dir = path.resolve(process.env.ONNXRUNTIME_DIR);
    if (!fs.existsSync(path.join(dir, 'include', 'onnxruntime_cxx_api.h'))) {
      throw new Error(`ONNXRUNTIME_DIR=${dir} has no include/onnxruntime_cxx_api.h (expected include/ and lib/)`);
    }
    return dir;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `tokmeter fetches ONNX Runtime automatically for linux-x64 only; on ${process.platform}-${process.arch} ` +
        'set ONNXRUNTIME_DIR to an ONNX Runtime >= 1.29 release folder (with include/ and lib/)',
    );
  }
  const root = cacheRoot();
  const dir = path.join(root, `onnxruntime-${ORT_VERSION}`);
  const tarballs = path.join(root, 'tarballs');
  const inc = path.join(dir, 'include');
  const lib = path.join(dir, 'lib');

  if (!fs.existsSync(path.join(inc, HEADERS_DONE))) {
    const tgz = packTarball(HEADERS_PKG, tarballs);
    log(`extracting headers from ${path.basename(tgz)}`);
    const list = execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
    const members = list.filter((p) => p.startsWith(`${HEADERS_DIR_IN_PKG}/`) && p.endsWith('.h'));
    for (const h of REQUIRED_HEADERS) {
      if (!members.includes(`${HEADERS_DIR_IN_PKG}/${h}`)) throw new Error(`${HEADERS_PKG} has no ${h}`);
    }
    extract(tgz, members, inc);
    fs.writeFileSync(path.join(inc, HEADERS_DONE), `${HEADERS_PKG}\n`);
    fs.rmSync(tgz); // 150 MB that is never needed again
  }
  if (!fs.existsSync(path.join(lib, 'libonnxruntime.so.1'))) {
    const local = localRuntimeLib();
    fs.mkdirSync(lib, { recursive: true });
    if (local) {
      log(`copying ${local}`);
      fs.copyFileSync(local, path.join(lib, 'libonnxruntime.so.1'));
    } else {
      const tgz = packTarball(RUNTIME_PKG, tarballs);
      extract(tgz, [RUNTIME_LIB_IN_PKG], lib);
      fs.rmSync(tgz);
    }
  }
  if (!fs.existsSync(path.join(lib, PRIVATE_ORT_NAME))) {
    log(`writing ${PRIVATE_ORT_NAME} (libonnxruntime.so.1 under a private soname)`);
    copyWithSoname(path.join(lib, 'libonnxruntime.so.1'), path.join(lib, PRIVATE_ORT_NAME), PRIVATE_ORT_NAME);
  }
  if (cuda && !CUDA_LIBS.every((l) => fs.existsSync(path.join(lib, l)))) {
    const tgz = packTarball(CUDA_PKG, tarballs);
    log(`extracting CUDA provider libraries from ${path.basename(tgz)}`);
    const list = execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
    const members = CUDA_LIBS.map((l) => {
      const m = list.find((p) => p.endsWith(`/${l}`));
      if (!m) throw new Error(`${CUDA_PKG} has no ${l}`);
      return m;
    });
    extract(tgz, members, lib);
    fs.rmSync(tgz);
  }
  return dir;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('fetch-onnxruntime.mjs')) {
  try {
    const dir = ensureOnnxRuntime({ cuda: args.has('--cuda') });
    if (args.has('--print-include')) process.stdout.write(path.join(dir, 'include'));
    else if (args.has('--print-lib')) process.stdout.write(path.join(dir, 'lib'));
    else if (args.has('--print-dir')) process.stdout.write(dir);
    else log(`ONNX Runtime ${ORT_VERSION} ready in ${dir}`);
  } catch (err) {
    process.stderr.write(`[fetch-onnxruntime] ${err.message}\n`);
    process.exit(1);
  }
}
