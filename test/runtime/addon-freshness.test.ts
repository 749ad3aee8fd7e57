// scripts/install.mjs rebuilds a source build that is older than the native sources (a checkout after `git pull`),
// and leaves prebuilds and current builds alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without type declarations
import { staleSources } from '../../scripts/addon-freshness.mjs';

const stale = staleSources as (root: string, addon: string, limit?: number) => string[];
let root: string;

function write(rel: string, mtimeSec: number): string {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rel);
  fs.utimesSync(file, mtimeSec, mtimeSec);
  return file;
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-fresh-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

it('names the native sources changed after a source build', () => {
  write('native/engine/a.cc', 1000);
  write('native/tokenizer/b.h', 1000);
  write('CMakeLists.txt', 1000);
  const addon = write('build/Release/tokmeter.node', 2000);
  expect(stale(root, addon)).toEqual([]);

  write('native/tokenizer/b.h', 3000);
  write('binding.gyp', 3000);
  expect(stale(root, addon)).toEqual(['native/tokenizer/b.h', 'binding.gyp']);
  expect(stale(root, addon, 1)).toEqual(['native/tokenizer/b.h']);
});

it('never calls a prebuild or a missing addon stale', () => {
  write('native/engine/a.cc', 3000);
  const prebuild = write('prebuilds/linux-x64/tokmeter.node', 2000);
  expect(stale(root, prebuild)).toEqual([]);
  expect(stale(root, path.join(root, 'build/Release/missing.node'))).toEqual([]);
});
