import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('native hygiene', () => {
  it('collects unclosed sessions and survives worker threads terminated mid-run', () => {
    const child = path.join(import.meta.dirname, '..', 'fixtures', 'hygiene-child.ts');
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', child], { encoding: 'utf8' });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean };
    expect(result.ok).toBe(true);
  });
});
