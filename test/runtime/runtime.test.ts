import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const child = path.join(import.meta.dirname, '..', 'fixtures', 'runtime-child.ts');
let dir: string;

interface ChildResult {
  ok: boolean;
  versions: { onnxruntime: string | null; onnxruntimePath: string | null };
  name?: string;
  code?: string;
  message?: string;
}

function runChild(env: Record<string, string>): ChildResult {
  const clean = { ...process.env };
  delete clean.TOKMETER_ORT_LIBRARY;
  delete clean.ONNXRUNTIME_DIR;
  const out = execFileSync(process.execPath, ['--import', 'tsx', child], {
    env: { ...clean, ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-runtime-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ONNX Runtime loading', () => {
  it('loads the runtime beside the addon by default', () => {
    const r = runChild({});
    expect(r.ok).toBe(true);
    expect(r.versions.onnxruntime).toBe('1.29.0');
  });

  it('a missing library names every place it looked and how to fix it', () => {
    const missing = path.join(dir, 'nope', 'libonnxruntime.so.1');
    const r = runChild({ TOKMETER_ORT_LIBRARY: missing });
    expect(r.ok).toBe(false);
    expect(r.versions.onnxruntime).toBeNull();
    expect(r.code).toBe('ERR_RUNTIME_NOT_FOUND');
    expect(r.name).toBe('RuntimeLoadError');
    expect(r.message).toContain(missing);
    expect(r.message).toContain('ONNXRUNTIME_DIR');
    const viaDir = runChild({ ONNXRUNTIME_DIR: dir });
    expect(viaDir.code).toBe('ERR_RUNTIME_NOT_FOUND');
    expect(viaDir.message).toContain(path.join(dir, 'lib', 'libonnxruntime.so.1'));
  });

  it('a library that is not ONNX Runtime, or not a library at all, is refused with the reason', () => {
    const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6'].find((p) =>
      fs.existsSync(p),
    );
    if (libm) {
      const r = runChild({ TOKMETER_ORT_LIBRARY: libm });
      expect(r.code).toBe('ERR_RUNTIME_NOT_FOUND');
      expect(r.message).toContain('not an ONNX Runtime library');
    }
    const junk = path.join(dir, 'junk.so');
    fs.writeFileSync(junk, 'not an ELF file');
    const r = runChild({ TOKMETER_ORT_LIBRARY: junk });
    expect(r.code).toBe('ERR_RUNTIME_NOT_FOUND');
    expect(r.message).toContain(junk);
  });

  it('a runtime that is too old says which version it found and which is needed', () => {
    const fake = path.join(dir, 'lib', 'libonnxruntime.so.1');
    fs.mkdirSync(path.dirname(fake), { recursive: true });
    execFileSync('cc', [
      '-shared',
      '-fPIC',
      '-o',
      fake,
      path.join(import.meta.dirname, '..', 'fixtures', 'fake-old-ort.c'),
    ]);
    const r = runChild({ ONNXRUNTIME_DIR: dir });
    expect(r.code).toBe('ERR_RUNTIME_VERSION');
    expect(r.name).toBe('RuntimeLoadError');
    expect(r.message).toContain('1.20.0');
    expect(r.message).toContain('1.29');
    expect(r.message).toContain('ONNXRUNTIME_DIR');
  });
});
