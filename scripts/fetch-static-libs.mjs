#!/usr/bin/env node
// Makes the two C libraries the addon links statically, PCRE2 (8-bit) and utf8proc, available to the native build
// without root and without any network but the package registries.
//
// - When the compiler already finds them (`pcre2.h`, `utf8proc.h` and the static `libpcre2-8.a`, `libutf8proc.a`,
//   e.g. from the Debian packages libpcre2-dev and libutf8proc-dev), nothing is fetched and the system's copies are
//   used.
// - Otherwise the Debian packages are downloaded with `apt-get download` (which needs only apt's package lists, not
//   root), unpacked into <cache>/static-libs/{include,lib}, once per machine, and that folder is used.
// - STATIC_LIBS_DIR=<folder with include/ and lib/> overrides both.
//
// <cache> is the same cache as ONNX Runtime's ($TOKMETER_CACHE_DIR, else $XDG_CACHE_HOME/tokmeter, else
// ~/.cache/tokmeter).
//
// Usage: node scripts/fetch-static-libs.mjs [--print-include | --print-lib | --print-ldflags] [--quiet]
//   --print-include prints the include folder to add (empty when the system's headers are used)
//   --print-lib     prints the library folder to add (empty when the system's libraries are used)
//   --print-ldflags prints `-L<library folder>` (empty when the system's libraries are used)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cacheRoot } from './fetch-onnxruntime.mjs';

const LIBS = [
  { deb: 'libpcre2-dev', header: 'pcre2.h', archive: 'libpcre2-8.a', define: '-DPCRE2_CODE_UNIT_WIDTH=8' },
  { deb: 'libutf8proc-dev', header: 'utf8proc.h', archive: 'libutf8proc.a', define: '' },
];
const DONE = '.complete';

const args = new Set(process.argv.slice(2));
const printing = [...args].some((a) => a.startsWith('--print'));
const log = (msg) => {
  if (!printing && !args.has('--quiet')) process.stderr.write(`[fetch-static-libs] ${msg}\n`);
};

function compiler() {
  return process.env.CXX || 'c++';
}

/** True when the compiler finds the header and the static archive on its default paths. */
function systemHas(lib) {
  try {
    execFileSync(compiler(), ['-E', '-x', 'c++', '-', '-o', '/dev/null', lib.define].filter(Boolean), {
      input: `#include <${lib.header}>\n`,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const found = execFileSync(compiler(), [`-print-file-name=${lib.archive}`], { encoding: 'utf8' }).trim();
    return path.isAbsolute(found) && fs.existsSync(found);
  } catch {
    return false;
  }
}

function howToInstall() {
  return (
    'Install them from your system (Debian/Ubuntu: apt-get install libpcre2-dev libutf8proc-dev; ' +
    'Fedora/RHEL: dnf install pcre2-devel utf8proc-devel, with static libraries; Alpine: apk add pcre2-dev ' +
    'utf8proc-dev), or set STATIC_LIBS_DIR to a folder with include/{pcre2.h,utf8proc.h} and ' +
    'lib/{libpcre2-8.a,libutf8proc.a}.'
  );
}

function unpackDeb(deb, dest) {
  try {
    execFileSync('dpkg-deb', ['-x', deb, dest], { stdio: 'inherit' });
    return;
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  // No dpkg-deb: a .deb is an ar archive holding data.tar.{xz,zst,gz}.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-deb-'));
  try {
    execFileSync('ar', ['x', path.resolve(deb)], { cwd: tmp, stdio: 'inherit' });
    const data = fs.readdirSync(tmp).find((f) => f.startsWith('data.tar'));
    if (!data) throw new Error(`${deb} has no data.tar member`);
    execFileSync('tar', ['-xf', path.join(tmp, data), '-C', dest], { stdio: 'inherit' });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function findFile(dir, name) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === name) return path.join(entry.parentPath ?? entry.path, entry.name);
  }
  return null;
}

/** Downloads and unpacks the Debian packages into <cache>/static-libs; returns that folder. */
function fetchDebs(missing) {
  const dir = path.join(cacheRoot(), 'static-libs');
  if (fs.existsSync(path.join(dir, DONE))) return dir;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-static-libs-'));
  try {
    log(
      `${missing.map((l) => l.header).join(' and ')} not found on this system; fetching ${missing.map((l) => l.deb).join(' ')} with apt-get download (once)`,
    );
    try {
      execFileSync('apt-get', ['download', '-q', ...LIBS.map((l) => l.deb)], {
        cwd: work,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (err) {
      const why = err.code === 'ENOENT' ? 'apt-get is not available' : String(err.stderr || err.message).trim();
      throw new Error(
        `the native build needs PCRE2 and utf8proc, and fetching them failed (${why}). ${howToInstall()}`,
        { cause: err },
      );
    }
    const root = path.join(work, 'root');
    fs.mkdirSync(root);
    for (const deb of fs.readdirSync(work).filter((f) => f.endsWith('.deb'))) unpackDeb(path.join(work, deb), root);
    const staged = path.join(work, 'staged');
    fs.mkdirSync(path.join(staged, 'include'), { recursive: true });
    fs.mkdirSync(path.join(staged, 'lib'), { recursive: true });
    for (const lib of LIBS) {
      for (const [name, sub] of [
        [lib.header, 'include'],
        [lib.archive, 'lib'],
      ]) {
        const file = findFile(root, name);
        if (!file) throw new Error(`${lib.deb} has no ${name}. ${howToInstall()}`);
        fs.copyFileSync(file, path.join(staged, sub, name));
      }
    }
    fs.writeFileSync(path.join(staged, DONE), `${LIBS.map((l) => l.deb).join(' ')}\n`);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staged, dir); // whole or not at all: a killed install leaves no half folder behind
    return dir;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The folder with include/ and lib/ to add to the build, or null when the system's copies are used. */
export function ensureStaticLibs() {
  if (process.env.STATIC_LIBS_DIR) {
    const dir = path.resolve(process.env.STATIC_LIBS_DIR);
    for (const lib of LIBS) {
      if (!fs.existsSync(path.join(dir, 'include', lib.header)) || !fs.existsSync(path.join(dir, 'lib', lib.archive))) {
        throw new Error(`STATIC_LIBS_DIR=${dir} lacks include/${lib.header} or lib/${lib.archive}`);
      }
    }
    return dir;
  }
  const missing = LIBS.filter((lib) => !systemHas(lib));
  if (missing.length === 0) return null;
  return fetchDebs(missing);
}

if (process.argv[1]?.endsWith('fetch-static-libs.mjs')) {
  try {
    const dir = ensureStaticLibs();
    if (args.has('--print-include')) process.stdout.write(dir ? path.join(dir, 'include') : '');
    else if (args.has('--print-lib')) process.stdout.write(dir ? path.join(dir, 'lib') : '');
    else if (args.has('--print-ldflags')) process.stdout.write(dir ? `-L${path.join(dir, 'lib')}` : '');
    else log(dir ? `PCRE2 and utf8proc ready in ${dir}` : 'PCRE2 and utf8proc: using the system copies');
  } catch (err) {
    process.stderr.write(`[fetch-static-libs] ${err.message}\n`);
    process.exit(1);
  }
}
