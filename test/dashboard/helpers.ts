/** Dashboard test helpers: a Meter over a SQLite ledger in a temp dir, and a dashboard on a bare fastify app. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerDashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { Meter, SqliteLedger, type MeterOptions } from '../../src/usage/index.js';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
export const CHROMIUM = '/usr/bin/chromium';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tokmeter-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sqliteMeter(dir: string, o: Partial<MeterOptions> = {}): { meter: Meter; ledger: SqliteLedger } {
  const ledger = new SqliteLedger(path.join(dir, 'usage.db'));
  const meter = new Meter({
    prices: {
      version: 'test',
      currency: 'USD',
      models: {
        small: { inputPer1M: '0.50', cachedInputPer1M: '0.25', outputPer1M: '1.50' },
        large: { inputPer1M: '3.00', cachedInputPer1M: '1.00', outputPer1M: '15.00' },
      },
    },
    ledger,
    cache: false,
    ...o,
  });
  return { meter, ledger };
}

export async function dashboardApp(
  o: Omit<DashboardOptions, 'adminKey'> & { adminKey?: string },
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await registerDashboard(app, { adminKey: ADMIN_KEY, ...o });
  await app.ready();
  return app;
}

/**
 * Whether the e2e tests can run: Debian's chromium at /usr/bin/chromium and playwright-core installed. Returns the
 * reason to skip, or undefined. Under CI=true a missing browser is a failure, not a skip.
 */
export async function browserSkipReason(): Promise<string | undefined> {
  let reason: string | undefined;
  if (!existsSync(CHROMIUM)) reason = `${CHROMIUM} is missing (apt-get install -y chromium)`;
  else {
    try {
      await import('playwright-core');
    } catch {
      reason = 'playwright-core is not installed';
    }
  }
  if (reason && process.env.CI === 'true') throw new Error(`dashboard e2e cannot run under CI: ${reason}`);
  if (reason) console.warn(`[dashboard e2e] skipped: ${reason}`);
  return reason;
}

export async function launchChromium(userDataDir: string) {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
