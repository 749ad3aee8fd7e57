// The glibc/libstdc++ floor check that `npm run test:pack` applies to every shipped binary: it must name the symbols
// of a library built to need a newer glibc, and pass the addon and runtime this checkout builds.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain JavaScript build script without type declarations
import { floorProblems } from '../../scripts/check-binary-floor.mjs';

const check = floorProblems as (file: string) => string[];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-floor-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function hasCompiler(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('binary floor check', () => {
  it.skipIf(!hasCompiler())('names the symbols of a library that needs a newer glibc', () => {
    const src = path.join(dir, 'new.c');
    fs.writeFileSync(
      src,
      '#include <stdlib.h>\n#include <pthread.h>\n' +
        'static void* run(void* p) { return p; }\n' +
        'unsigned draw(void) { return arc4random(); }\n' +
        'int spawn(void) { pthread_t t; return pthread_create(&t, 0, run, 0); }\n',
    );
    const lib = path.join(dir, 'libnew.so');
    execFileSync('cc', ['-shared', '-fPIC', '-o', lib, src, '-lpthread']);
    const problems = check(lib);
    // This machine's glibc decides which versions a fresh build binds to; on glibc >= 2.36 both are over the floor.
    const glibc = execFileSync('ldd', ['--version'], { encoding: 'utf8' }).match(/(\d+)\.(\d+)\s*$/m);
    if (glibc && Number(glibc[2]) >= 36) {
      expect(problems.join('\n')).toMatch(/arc4random@GLIBC_2\.36/);
      expect(problems.join('\n')).toMatch(/pthread_create@GLIBC_2\.34/);
    } else {
      expect(Array.isArray(problems)).toBe(true);
    }
  });

  it('passes the addon and the bundled runtime of this checkout', () => {
    const release = path.join(import.meta.dirname, '..', '..', 'build', 'Release');
    const files = ['tokmeter.node', 'libtokmeter-ort.so'].map((f) => path.join(release, f));
    for (const f of files) expect(fs.existsSync(f), f).toBe(true);
    for (const f of files) expect(check(f), f).toEqual([]);
  });
});
