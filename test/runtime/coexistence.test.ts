// tokmeter's bundled ONNX Runtime and onnxruntime-node of another version in one process, in both load orders. Each
// order runs in a fresh process: which library the dynamic linker hands out depends on what is already loaded.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const child = path.join(import.meta.dirname, '..', 'fixtures', 'coexistence-child.ts');

function runChild(order: string): Record<string, unknown> {
  const env = { ...process.env };
  delete env.TOKMETER_ORT_LIBRARY;
  delete env.ONNXRUNTIME_DIR;
  const out = execFileSync(process.execPath, ['--import', 'tsx', child, order], { env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('tokmeter beside onnxruntime-node 1.30 in one process', () => {
  for (const order of ['tokmeter-first', 'other-first']) {
    it(`runs a model with both runtimes (${order})`, () => {
      const r = runChild(order);
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      for (const key of ['ours', 'other', 'oursAgain', 'otherAgain']) expect(r[key]).toEqual([11, 22, 33]);
      expect(r.oursVersion).toBe('1.29.0');
      expect(r.otherVersion).toBe('1.30.0');
      expect(path.basename(String(r.oursPath))).toBe('libtokmeter-ort.so');
    });
  }
});
