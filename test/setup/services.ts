// vitest global setup: the PostgreSQL and Redis servers the tests use, started for this run on free ports in
// temporary folders and stopped at its end, so that a plain `npm test` runs every test CI runs. A server named by
// TOKMETER_TEST_PG_URL / TOKMETER_TEST_REDIS_URL is used as it is. Where a server's binaries are missing, the run says
// so in one line at its start and one at its end, with the command that installs them; under CI=true that is an error.
import type { TestProject } from 'vitest/node';
// @ts-expect-error: a plain JavaScript script without type declarations
import * as services from '../../scripts/test-services.mjs';

interface Started {
  url: string;
  ctl?: string;
  stop(): void;
}
const { startPostgres, startRedis, PG_INSTALL_HINT, REDIS_INSTALL_HINT } = services as {
  startPostgres(): Promise<Started | null>;
  startRedis(): Promise<Started | null>;
  PG_INSTALL_HINT: string;
  REDIS_INSTALL_HINT: string;
};

const started: Started[] = [];
const skipped: string[] = [];

/** Starts a service; a failure to start is reported like a missing binary, with the reason. */
async function attempt(name: string, start: () => Promise<Started | null>, missing: string): Promise<Started | null> {
  try {
    const s = await start();
    if (s) started.push(s);
    else skipped.push(`${name} tests (${missing})`);
    return s;
  } catch (err) {
    skipped.push(`${name} tests (it failed to start: ${(err as Error).message.split('\n')[0]})`);
    return null;
  }
}

export async function setup(_project: TestProject): Promise<void> {
  if (!process.env.TOKMETER_TEST_PG_URL) {
    const pg = await attempt('PostgreSQL', startPostgres, `no PostgreSQL binaries; install: ${PG_INSTALL_HINT}`);
    if (pg) {
      process.env.TOKMETER_TEST_PG_URL = pg.url;
      process.env.TOKMETER_TEST_PG_CTL ??= pg.ctl;
    }
  }
  if (!process.env.TOKMETER_TEST_REDIS_URL) {
    const redis = await attempt('Redis', startRedis, `no redis-server; install: ${REDIS_INSTALL_HINT}`);
    if (redis) process.env.TOKMETER_TEST_REDIS_URL = redis.url;
  }
  if (skipped.length > 0) {
    const line = `[services] skipping ${skipped.join('; ')}`;
    if (process.env.CI === 'true') throw new Error(`CI=true needs every service: ${line}`);
    console.warn(line);
  }
}

export function teardown(): void {
  for (const s of started.reverse()) {
    try {
      s.stop();
    } catch (err) {
      console.warn(`[services] stopping ${s.url} failed: ${(err as Error).message}`);
    }
  }
  if (skipped.length > 0) console.warn(`[services] skipped ${skipped.join('; ')}`);
}
