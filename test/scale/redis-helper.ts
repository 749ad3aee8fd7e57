/**
 * Redis for tests. `TOKMETER_TEST_REDIS_URL` names the server (scripts/start-redis.sh prints it). When it is unset
 * the Redis tests are skipped with a printed reason, except under CI=true where that is a failure.
 * Tests that stop or restart Redis never touch that server: `privateRedis()` starts a throwaway one (AOF on) on
 * its own port with scripts/start-redis.sh.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REDIS_URL = process.env.TOKMETER_TEST_REDIS_URL;
export const PG_URL = process.env.TOKMETER_TEST_PG_URL;
export const IN_CI = process.env.CI === 'true';
export const REDIS_SKIP_REASON = REDIS_URL
  ? undefined
  : 'TOKMETER_TEST_REDIS_URL is not set; run `export TOKMETER_TEST_REDIS_URL=$(scripts/start-redis.sh | tail -n1)` to run the Redis tests';
export const PG_SKIP_REASON = PG_URL
  ? undefined
  : 'TOKMETER_TEST_PG_URL is not set; run `export TOKMETER_TEST_PG_URL=$(scripts/start-postgres.sh)`';

/** Run the Redis tests: the URL is set, or CI demands them (they then fail loudly if it is missing). */
export const RUN_REDIS = REDIS_URL !== undefined || IN_CI;
export const RUN_REDIS_PG = (REDIS_URL !== undefined && PG_URL !== undefined) || IN_CI;
if (!REDIS_URL && !IN_CI) console.warn(`[skip] Redis scale-out tests: ${REDIS_SKIP_REASON}`);
if (REDIS_URL && !PG_URL && !IN_CI) console.warn(`[skip] Redis + PostgreSQL billing tests: ${PG_SKIP_REASON}`);

export const SCRIPT = fileURLToPath(new URL('../../scripts/start-redis.sh', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function redisUrl(): string {
  if (!REDIS_URL) throw new Error(`CI=true but ${REDIS_SKIP_REASON}`);
  return REDIS_URL;
}

export function pgUrl(): string {
  if (!PG_URL) throw new Error(`CI=true but ${PG_SKIP_REASON}`);
  return PG_URL;
}

/** A throwaway Redis (AOF on) on its own port; `ctl('stop'|'start')`, `dispose()` stops it and removes its data. */
export function privateRedis(): { url: string; ctl(action: 'stop' | 'start' | 'restart'): void; dispose(): void } {
  const port = String(20000 + ((process.pid * 7 + Math.floor(Math.random() * 20000)) % 20000));
  const dir = mkdtempSync(path.join(tmpdir(), 'tm-redis-'));
  const env = { ...process.env, TOKMETER_REDIS_PORT: port, TOKMETER_REDIS_DIR: dir };
  const ctl = (action: 'stop' | 'start' | 'restart') =>
    execFileSync('bash', [SCRIPT, action], { stdio: ['ignore', 'ignore', 'inherit'], env });
  ctl('start');
  return {
    url: `redis://127.0.0.1:${port}`,
    ctl,
    dispose() {
      ctl('stop');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function uniquePrefix(name: string): string {
  return `tmtest:${name}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
