/**
 * The real thing: two `tokmeter serve --redis` processes (tiny model from the model maker) share one Redis; one
 * tenant's TPM limit holds across both under concurrent HTTP load. Without the shared limiter each server would
 * admit up to the whole limit on its own, so the offered load (≈ 3× the limit) would overshoot.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeChatTinyModel, tempDir, writeKeysFile } from '../server/helpers.js';
import { runChild, type Child } from './child.js';
import { RUN_REDIS, redisUrl, ROOT } from './redis-helper.js';

const CLI = path.join(ROOT, 'src', 'cli', 'index.ts');
const MAX_TOKENS = 16;

describe.runIf(RUN_REDIS)('two tokmeter servers sharing Redis', () => {
  let tmp: ReturnType<typeof tempDir>;
  const servers: Child[] = [];
  const tenant = `acme-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const key = `sk-test-${Math.random().toString(36).slice(2)}`;
  let tpm = 0;
  const urls: string[] = [];

  beforeAll(async () => {
    tmp = tempDir('scale-serve');
    const model = await makeChatTinyModel(tmp.dir);
    tpm = 4 * (MAX_TOKENS + 8); // room for about four requests
    const keys = writeKeysFile(tmp.dir, [{ key, id: 'k1', tenant }], { [tenant]: { tokensPerMinute: tpm } });
    for (const name of ['a', 'b']) {
      const s = runChild(CLI, {}, [
        'serve',
        '--model',
        model,
        '--port',
        '0',
        '--threads',
        '1',
        '--keys',
        keys,
        '--redis',
        redisUrl(),
        '--spool-dir',
        path.join(tmp.dir, `spool-${name}`),
      ]);
      servers.push(s);
    }
    for (const s of servers) {
      const line = await s.waitLine(/serving .* at (http:\/\/\S+)\/v1/, 90_000);
      urls.push(/at (http:\/\/\S+)\/v1/.exec(line)![1]!);
    }
  }, 120_000);

  afterAll(async () => {
    for (const s of servers) {
      s.proc.kill('SIGTERM');
      await s.exited;
    }
    tmp?.cleanup();
  });

  it('admits at most the TPM limit in total', async () => {
    const one = async (url: string) => {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'tiny', prompt: 'hello there', max_tokens: MAX_TOKENS, temperature: 0 }),
      });
      const body = (await res.json()) as { usage?: { total_tokens: number } };
      return { status: res.status, tokens: body.usage?.total_tokens ?? 0 };
    };
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => one(urls[i % 2]!)));
    const ok = results.filter((r) => r.status === 200);
    expect(
      results.every((r) => r.status === 200 || r.status === 429),
      JSON.stringify(results),
    ).toBe(true);
    expect(ok.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 429).length).toBeGreaterThan(0);
    expect(ok.reduce((a, r) => a + r.tokens, 0)).toBeLessThanOrEqual(tpm);
  });
});
