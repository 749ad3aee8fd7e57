/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * A bounded load run on loopback: N concurrent streaming clients (official openai client) for a fixed short time.
 * One tenant has a low requests-per-minute limit, so its 429s are deliberate; nothing else may fail. Every completed
 * request has exactly one ledger record, and the ledger's token sums equal the usage the clients saw.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import type { SqliteLedger } from '../../src/usage/index.js';
import { makeChatTinyModel, startTestServer, tempDir, writeKeysFile } from './helpers.js';

const CLIENTS = 6;
const DURATION_MS = 3000;
const FREE = { key: 'tm-load-free-0000000000', id: 'free', tenant: 'free' };
const CAPPED = { key: 'tm-load-capped-00000000', id: 'capped', tenant: 'capped' };

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;

beforeAll(async () => {
  tmp = tempDir('server-load');
  const model = await makeChatTinyModel(tmp.dir);
  server = await startTestServer({
    model,
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
    keys: writeKeysFile(tmp.dir, [FREE, CAPPED], { capped: { requestsPerMinute: 3 } }),
    publicMetrics: true, // a scraper on the loopback, without a key
  });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

interface Seen {
  id: string;
  tenant: string;
  prompt: number;
  completion: number;
  text: string;
}

it(`${CLIENTS} concurrent streaming clients for ${DURATION_MS} ms: only deliberate 429s, one record per request`, async () => {
  const completed: Seen[] = [];
  const errors: unknown[] = [];
  let refused = 0;
  const deadline = Date.now() + DURATION_MS;
  const worker = async (i: number): Promise<void> => {
    const who = i === 0 ? CAPPED : FREE; // one client on the capped tenant
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: who.key, maxRetries: 0 });
    // The capped client goes on past the deadline until its 4th request was refused (on a slow machine three
    // requests can take the whole run): the 429 is deliberate and must be seen.
    for (let n = 0; Date.now() < deadline || (who === CAPPED && refused === 0); n++) {
      try {
        const chat = n % 2 === 0;
        const common = {
          model: 'tiny',
          max_tokens: 4 + ((i + n) % 5),
          stream: true as const,
          stream_options: { include_usage: true },
        };
        const stream = chat
          ? await client.chat.completions.create({
              ...common,
              messages: [{ role: 'user', content: `client ${i} request ${n}` }],
            })
          : await client.completions.create({ ...common, prompt: `client ${i} request ${n}` });
        let id = '';
        let text = '';
        let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
        for await (const c of stream as AsyncIterable<any>) {
          id = c.id;
          text += chat ? (c.choices[0]?.delta?.content ?? '') : (c.choices[0]?.text ?? '');
          if (c.usage) usage = c.usage;
        }
        if (!usage) throw new Error(`request ${id} ended without a usage chunk`);
        completed.push({
          id,
          tenant: who.tenant,
          prompt: usage.prompt_tokens,
          completion: usage.completion_tokens,
          text,
        });
      } catch (err) {
        if (err instanceof OpenAI.RateLimitError && who === CAPPED) {
          refused++;
          await new Promise((r) => setTimeout(r, 100));
        } else errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => worker(i)));

  expect(errors).toEqual([]);
  expect(refused).toBeGreaterThan(0);
  expect(completed.filter((c) => c.tenant === 'capped')).toHaveLength(3);
  expect(completed.length).toBeGreaterThan(CLIENTS);

  await server.meter.flush();
  const ledger = server.ledger as SqliteLedger;
  expect(await ledger.count()).toBe(completed.length);
  const ids = new Set(await ledger.ids());
  expect(ids.size).toBe(completed.length);
  for (const c of completed) expect(ids.has(c.id), c.id).toBe(true);
  for (const c of completed.slice(0, 20)) {
    const r = await ledger.get(c.id);
    expect({ key: r!.key, prompt: r!.promptTokens, completion: r!.completionTokens }).toEqual({
      key: c.tenant,
      prompt: c.prompt,
      completion: c.completion,
    });
  }
  const report = await server.meter.report({ groupBy: 'key' });
  const sum = (rows: typeof report, f: 'promptTokens' | 'completionTokens') => rows.reduce((a, r) => a + r[f], 0);
  expect(sum(report, 'promptTokens')).toBe(completed.reduce((a, c) => a + c.prompt, 0));
  expect(sum(report, 'completionTokens')).toBe(completed.reduce((a, c) => a + c.completion, 0));
  expect(report.find((r) => r.group === 'capped')!.requests).toBe(3);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(/tokmeter_queue_depth 0/);
  expect(metrics).toMatch(/tokmeter_generations_in_flight 0/);
});
