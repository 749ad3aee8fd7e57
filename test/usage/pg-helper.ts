/**
 * PostgreSQL for tests. `TOKMETER_TEST_PG_URL` names the server (scripts/start-postgres.sh prints it). When it is
 * unset the Postgres tests are skipped with a printed reason, except under CI=true where that is a failure.
 * `pgServer('stop' | 'start')` is the one place that stops/starts the server (override with TOKMETER_TEST_PG_CTL,
 * a command that receives stop|start as its last argument).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const PG_URL = process.env.TOKMETER_TEST_PG_URL;
export const IN_CI = process.env.CI === 'true';
export const PG_SKIP_REASON = PG_URL
  ? undefined
  : 'TOKMETER_TEST_PG_URL is not set; run `export TOKMETER_TEST_PG_URL=$(scripts/start-postgres.sh)` to run the PostgreSQL tests';

if (!PG_URL && !IN_CI) console.warn(`[skip] PostgreSQL ledger tests: ${PG_SKIP_REASON}`);

const SCRIPT = fileURLToPath(new URL('../../scripts/start-postgres.sh', import.meta.url));

export function pgServer(action: 'stop' | 'start'): void {
  const custom = process.env.TOKMETER_TEST_PG_CTL;
  if (custom) execFileSync('sh', ['-c', `${custom} ${action}`], { stdio: 'inherit' });
  else execFileSync('bash', [SCRIPT, action], { stdio: 'inherit' });
}

export async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export function uniqueTable(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}
