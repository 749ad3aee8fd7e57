/**
 * End to end: the real server (tiny model, SQLite ledger, keys, prices) takes traffic through its HTTP API, and
 * headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) signs in to the dashboard and reads
 * its cards, charts, tables and CSV export, which must equal /v1/usage for each tenant. A wrong key sees nothing.
 * Saves test-output/dashboard.png.
 *
 * Until the server registers the dashboard itself (`adminKey` in startServer), the dashboard is served by a second
 * fastify instance over the server's own Meter, ledger and metrics; the test says which it used.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Summary } from '../../src/dashboard/index.js';
import type { RunningServer } from '../../src/server/index.js';
import { csvLine, recordCells, RECORD_CSV_HEADER } from '../../src/usage/report.js';
import { makeChatTinyModel, startTestServer, writeKeysFile } from '../server/helpers.js';
import { ADMIN_KEY, browserSkipReason, launchChromium, tempDir } from './helpers.js';

// Browser globals inside page.evaluate() callbacks: the test project is typed without the DOM library.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, window: any, getComputedStyle: any;
type HTMLOptionElement = any;
type HTMLCanvasElement = any;
type HTMLInputElement = any;

const skip = await browserSkipReason();
const ALICE = { key: 'tm-alice-e2e-0123456789abcdefghijkl', id: 'alice-ci', tenant: 'acme' };
const BOB = { key: 'tm-bob-e2e-0123456789abcdefghijklmn', id: 'bob-ci', tenant: 'beta' };
const OUT = path.resolve('test-output');

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;
let dashUrl: string;
let browser: BrowserContext;
let page: Page;
let requests = 0;

async function chat(key: string, content: string, stream = false): Promise<void> {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({
      model: 'tiny',
      messages: [{ role: 'user', content }],
      max_tokens: 6,
      temperature: 0,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  await res.text();
  requests++;
}

interface UsageTotals {
  requests: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  totalTokens: number;
  costPico: bigint;
}

/** /v1/usage for one tenant's key over [from, to), summed over its rows. */
async function v1Usage(key: string, from: number, to: number): Promise<UsageTotals> {
  const res = await fetch(`${server.url}/v1/usage?group_by=model&from=${from}&to=${to}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data: Record<string, number | string>[] };
  const t: UsageTotals = {
    requests: 0,
    promptTokens: 0,
    cachedTokens: 0,
    completionTokens: 0,
    totalTokens: 0,
    costPico: 0n,
  };
  for (const r of body.data) {
    t.requests += r.requests as number;
    t.promptTokens += r.promptTokens as number;
    t.cachedTokens += r.cachedTokens as number;
    t.completionTokens += r.completionTokens as number;
    t.totalTokens += r.totalTokens as number;
    t.costPico += BigInt(r.costPico as string);
  }
  return t;
}

const add = (a: UsageTotals, b: UsageTotals): UsageTotals => ({
  requests: a.requests + b.requests,
  promptTokens: a.promptTokens + b.promptTokens,
  cachedTokens: a.cachedTokens + b.cachedTokens,
  completionTokens: a.completionTokens + b.completionTokens,
  totalTokens: a.totalTokens + b.totalTokens,
  costPico: a.costPico + b.costPico,
});

/** Raw values (data-value) and shown text of the cells with data-field under `selector`. */
async function fields(selector: string): Promise<Record<string, { value: string; text: string }>> {
  return page.$$eval(`${selector} [data-field]`, (els) =>
    Object.fromEntries(
      els.map((e) => [
        e.getAttribute('data-field'),
        { value: e.getAttribute('data-value') ?? '', text: e.textContent ?? '' },
      ]),
    ),
  );
}

function expectShown(
  f: Record<string, { value: string; text: string }>,
  t: UsageTotals,
  what: string,
  withCost = true,
): void {
  for (const k of ['promptTokens', 'cachedTokens', 'completionTokens'] as const) {
    expect(Number(f[k]!.value), `${what} ${k}`).toBe(t[k]);
    expect(Number(f[k]!.text.replace(/,/g, '')), `${what} ${k} as shown`).toBe(t[k]);
  }
  if (withCost) expect(f.costPico!.value, `${what} cost`).toBe(t.costPico.toString());
}

async function rendered(n: number): Promise<void> {
  await page.waitForFunction((k) => Number(document.body.dataset.rendered || 0) >= k, n, { timeout: 20_000 });
}

describe.skipIf(skip !== undefined)('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    tmp = tempDir('dashboard-e2e');
    const model = await makeChatTinyModel(tmp.dir);
    const prices = path.join(tmp.dir, 'prices.json');
    writeFileSync(
      prices,
      JSON.stringify({
        version: 'e2e',
        currency: 'USD',
        models: { tiny: { inputPer1M: '2.00', cachedInputPer1M: '1.00', outputPer1M: '8.00' } },
      }),
    );
    const keys = writeKeysFile(tmp.dir, [ALICE, BOB], {
      acme: { tokensPerMinute: 100_000, requestsPerMinute: 600, budget: { day: '1.00' } },
      beta: { requestsPerMinute: 600 },
    });
    server = await startTestServer({
      model,
      ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
      keys,
      prices,
      adminKey: ADMIN_KEY,
    });
    dashUrl = server.url;
    // Traffic through the real API: both tenants, a stream, and a repeated reproducible request (response cache).
    await chat(ALICE.key, 'hello there');
    await chat(ALICE.key, 'count to three', true);
    await chat(ALICE.key, 'hello there'); // same request, temperature 0: may be served from the response cache
    await chat(BOB.key, 'what is a token?');
    await chat(BOB.key, 'bill me', true);
    await server.meter.flush();
    browser = await launchChromium(path.join(tmp.dir, 'chromium-profile'));
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    tmp?.cleanup();
  });

  it('a wrong key sees nothing (401, the sign-in form, no data)', async () => {
    const first = await page.goto(`${dashUrl}/dashboard`);
    expect(first!.status()).toBe(401);
    await page.fill('#admin-key', 'not-the-admin-key-123456');
    const [res] = await Promise.all([page.waitForNavigation(), page.press('#admin-key', 'Enter')]);
    expect(res!.status()).toBe(401);
    await expect(page.textContent('#login-error')).resolves.toContain('Wrong admin key');
    const text = await page.textContent('body');
    expect(text).not.toMatch(/acme|beta|tiny|tokens/i);
    for (const url of [
      '/dashboard/api/summary',
      '/dashboard/api/models',
      '/dashboard/api/live',
      '/dashboard/assets/app.js',
    ]) {
      const r = await fetch(`${dashUrl}${url}`, { headers: { authorization: 'Bearer not-the-admin-key-123456' } });
      expect(r.status, url).toBe(401);
      expect(await r.text()).not.toMatch(/acme|beta|promptTokens/);
    }
  });

  it('signs in; cards, charts, keys table and records equal /v1/usage', async () => {
    // No script error and no CSP violation from here on (the page has no inline script or style).
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.fill('#admin-key', ADMIN_KEY);
    const [res] = await Promise.all([page.waitForNavigation(), page.press('#admin-key', 'Enter')]);
    expect(res!.status()).toBe(200);
    await rendered(1);
    const s = (await page.evaluate(
      () => (window as unknown as { __dashboard: { summary: Summary } }).__dashboard.summary,
    )) as Summary;
    const acme = await v1Usage(ALICE.key, s.from, s.to);
    const beta = await v1Usage(BOB.key, s.from, s.to);
    const all = add(acme, beta);
    expect(all.requests).toBe(requests);
    expect(acme.costPico).toBeGreaterThan(0n);

    expectShown(await fields('#totals'), all, 'totals card');
    expect(Number((await fields('#totals')).requests!.value)).toBe(all.requests);
    expectShown(await fields('#cap-tokens'), all, 'tokens chart caption', false);
    expect((await fields('#cap-cost')).costPico!.value).toBe(all.costPico.toString());
    expectShown(await fields('#keys-table tr[data-key="acme"]'), acme, 'keys table acme');
    expectShown(await fields('#keys-table tr[data-key="beta"]'), beta, 'keys table beta');
    await page.waitForFunction(() => document.body.dataset.modelsRendered !== undefined, null, { timeout: 20_000 });
    expectShown(await fields('#models-table tr[data-model="tiny"]'), all, 'models table');
    expect(await page.$$eval('#f-model option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual([
      '',
      'tiny',
    ]);

    // What uPlot was given to draw sums to the same totals, and both charts drew onto a canvas.
    const drawn = await page.evaluate(() => {
      const d = (window as unknown as { __dashboard: { charts: { data: number[][] }[] } }).__dashboard;
      const sum = (xs: number[]) => xs.reduce((a, b) => a + (b ?? 0), 0);
      return {
        tokens: d.charts[0]!.data.slice(1).map(sum),
        canvases: [...document.querySelectorAll('.chart canvas')].map((c) => (c as HTMLCanvasElement).width),
      };
    });
    expect(drawn.tokens).toEqual([all.promptTokens, all.cachedTokens, all.completionTokens]);
    expect(drawn.canvases).toHaveLength(2);
    expect(Math.min(...drawn.canvases)).toBeGreaterThan(100);

    // Budgets and headroom in words, not only colour.
    await expect(page.textContent('#keys-table tr[data-key="acme"]')).resolves.toMatch(/day: [\d.]+ of 1\.00 USD/);
    await expect(page.textContent('#keys-table tr[data-key="acme"]')).resolves.toMatch(/of 100,000 tokens\/min left/);
    // Latest records: every request, each one a ledger record.
    expect(await page.$$eval('#recent-table tbody tr', (rows) => rows.length)).toBe(requests);
    // Live figures from the running server.
    await page.waitForSelector('#live dd[data-field="inFlight"]', { timeout: 10_000 });
    expect(await page.textContent('#live dd[data-field="inFlight"]')).toBe('0');

    const ms = Number(await page.evaluate(() => document.body.dataset.firstRenderMs));
    console.log(`[dashboard e2e] first render ${ms} ms after navigation (${requests} records)`);
    expect(problems).toEqual([]);
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });
  });

  it('is keyboard-usable: labelled controls, tab order, visible focus; filters by key', async () => {
    const unlabelled = await page.$$eval('#filters select, #filters input', (els) =>
      els.filter((e) => (e as HTMLInputElement).labels!.length === 0).map((e) => e.id),
    );
    expect(unlabelled).toEqual([]);
    await page.focus('body');
    const order: string[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      order.push(
        await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim() || ''),
      );
    }
    expect(order.slice(0, 7)).toEqual([
      'Skip to content',
      'logout',
      'f-period',
      'f-key',
      'f-model',
      'apply',
      'export-csv',
    ]);
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');

    // Choose key acme with the keyboard and apply with Enter.
    await page.focus('#f-key');
    await page.selectOption('#f-key', 'acme');
    await page.focus('#apply');
    await page.keyboard.press('Enter');
    await rendered(2);
    expect(page.url()).toContain('key=acme');
    const s = (await page.evaluate(
      () => (window as unknown as { __dashboard: { summary: Summary } }).__dashboard.summary,
    )) as Summary;
    expect(s.filters.key).toBe('acme');
    const acme = await v1Usage(ALICE.key, s.from, s.to);
    expectShown(await fields('#totals'), acme, 'totals filtered to acme');
    expectShown(await fields('#cap-tokens'), acme, 'chart filtered to acme', false);
    expect(await page.$$eval('#keys-table tbody tr', (rows) => rows.map((r) => r.getAttribute('data-key')))).toEqual([
      'acme',
    ]);
  });

  it('exports what is on screen as CSV', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
    const csv = readFileSync((await download.path())!, 'utf8');
    const s = (await page.evaluate(
      () => (window as unknown as { __dashboard: { summary: Summary } }).__dashboard.summary,
    )) as Summary;
    const lines = csv.split('\r\n');
    const totals = lines.find((l) => l.startsWith('totals,'))!.split(',');
    const t = s.totals;
    expect(totals).toEqual(
      [
        'totals',
        t.requests,
        t.cacheHits,
        t.promptTokens,
        t.cachedTokens,
        t.completionTokens,
        t.totalTokens,
        t.costPico,
        t.cost,
      ].map(String),
    );
    expect(lines).toContain(`key,${s.filters.key},model,all,currency,USD`);
    // The records section is written by the server's own record CSV code (bundled into the page).
    expect(s.recent!.length).toBeGreaterThan(0);
    expect(lines).toContain(csvLine(RECORD_CSV_HEADER));
    for (const r of s.recent!) expect(lines).toContain(csvLine(recordCells(r)));
    expect(lines.filter((l) => /^\d{4}-\d\d-\d\dT/.test(l))).toHaveLength(s.series.t.length);
  });
});
