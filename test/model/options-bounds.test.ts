/**
 * The option table (src/usage/generate-options.ts) against every layer that checks options: each numeric option's
 * bounds, just inside and just outside, go to the engine directly (the addon, no TypeScript check in between), to
 * `Model.generate` and to the HTTP server (by the API's field name). All three take the table's decisions; the
 * library and the server with its messages.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelConfig } from '../../src/model/config.js';
import type { NativeModel, NativeModelApi } from '../../src/native/model-contract.js';
import { ensureRuntime } from '../../src/runtime.js';
import type { RunningServer } from '../../src/server/index.js';
import { GENERATE_OPTIONS, type NumberOption, type OptionSpec } from '../../src/usage/generate-options.js';
import { makeTestModel, tempDir } from './helpers.js';
import { startTestServer } from '../server/helpers.js';

/** The smallest positive float32: the first topP / repetitionPenalty the engine does not see as 0. */
const F32_MIN = 1.401298464324817e-45;

interface Case {
  name: string;
  value: number;
  inside: boolean;
}

/** Just inside and just outside each bound (steps that survive the engine's float32 rounding). */
function cases(name: string, o: NumberOption): Case[] {
  const step = o.kind === 'integer' ? 1 : 0.001;
  const out: Case[] = [];
  if (o.minExclusive) {
    out.push({ name, value: o.min, inside: false });
    out.push({ name, value: o.kind === 'integer' ? o.min + 1 : F32_MIN, inside: true });
    if (o.float32) out.push({ name, value: Number.MIN_VALUE, inside: false }); // 0 once in float32
  } else {
    out.push({ name, value: o.min, inside: true });
    out.push({ name, value: o.min - step, inside: false });
  }
  out.push({ name, value: o.max, inside: true });
  out.push({ name, value: o.max + step, inside: false });
  if (o.kind === 'integer') out.push({ name, value: o.min + 0.5, inside: false });
  return out;
}

const NUMERIC = (Object.entries(GENERATE_OPTIONS) as [string, OptionSpec][]).filter(
  (e): e is [string, NumberOption] => e[1].kind === 'number' || e[1].kind === 'integer',
);
const CASES = NUMERIC.flatMap(([name, o]) => cases(name, o));

let tmp: ReturnType<typeof tempDir>;
let native: NativeModel;
let server: RunningServer;

beforeAll(async () => {
  tmp = tempDir('options-bounds');
  const dir = await makeTestModel(tmp.dir, 'tiny');
  const config = await readModelConfig(dir);
  const addon = ensureRuntime().addon as unknown as NativeModelApi;
  native = await addon.loadModel({
    dir,
    dtype: 'fp32',
    threads: 1,
    prefixCache: false,
    kvCacheBytes: 0,
    maxQueue: 0,
    maxBatch: 1,
    prefillChunk: 256,
    device: 'cpu',
    deviceId: 0,
    config: config.native,
  });
  server = await startTestServer({ model: dir, ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}` });
});

afterAll(async () => {
  await native?.dispose();
  await server?.close();
  tmp?.cleanup();
});

/** The engine's own decision: generate() throws synchronously on a value it refuses. */
async function engineAccepts(c: Case): Promise<boolean> {
  const key = c.name === 'highWaterMark' ? 'window' : c.name;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let handle;
  try {
    handle = native.generate({ prompt: Uint32Array.of(1, 2, 3), maxNewTokens: 1, [key]: c.value }, (e) => {
      if (e.done) done();
    });
  } catch {
    return false;
  }
  handle.abort();
  await finished;
  return true;
}

const label = (c: Case): string => `${c.name}=${c.value}`;

describe('the option table is what every layer enforces', () => {
  it('the engine takes the table decision for every bound of every option', async () => {
    for (const c of CASES) expect(await engineAccepts(c), label(c)).toBe(c.inside);
  });

  it('Model.generate takes the table decision, with its message', async () => {
    const model = server.model;
    for (const c of CASES) {
      const options = { maxNewTokens: 1, [c.name]: c.value };
      if (c.inside) {
        const g = model.generate('Hi', options);
        g.abort();
        await g.result;
      } else {
        expect(() => model.generate('Hi', options), label(c)).toThrow(
          new RegExp(`^expected an? (number|integer) .* for ${c.name}, got `),
        );
      }
    }
    expect(() => model.generate('Hi', { temperature: 3 })).toThrow(
      'expected a number in [0, 2] for temperature, got 3',
    );
    expect(() => model.generate('Hi', { topP: 1e-50 })).toThrow('expected a number in (0, 1] for topP, got 1e-50');
    expect(() => model.generate('Hi', { stop: Array.from({ length: 17 }, (_, i) => `s${i}`) })).toThrow(
      'expected at most 16 strings for stop, got 17',
    );
  });

  it('the server takes the same decisions by the API field names', async () => {
    const post = async (
      body: Record<string, unknown>,
    ): Promise<{ status: number; error?: Record<string, unknown> }> => {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: server.model.name, prompt: 'Hi', max_tokens: 1, ...body }),
      });
      const json = (await res.json()) as { error?: Record<string, unknown> };
      return { status: res.status, ...(json.error ? { error: json.error } : {}) };
    };
    for (const c of CASES) {
      const field = (GENERATE_OPTIONS[c.name as keyof typeof GENERATE_OPTIONS] as NumberOption).http;
      if (field === undefined) continue;
      const r = await post({ [field]: c.value });
      // A refusal of the option names its field; anything else (200, or a context length refusal for a huge
      // max_tokens) means the option itself was accepted.
      const refused = r.status === 400 && r.error?.code === 'invalid_request' && r.error.param === field;
      expect(refused, `${field}=${c.value}: ${JSON.stringify(r)}`).toBe(!c.inside);
      if (refused)
        expect(r.error!.message).toMatch(new RegExp(`^expected an? (number|integer) .* for '${field}', got `));
    }
    const hot = await post({ temperature: 3 });
    expect(hot.error).toMatchObject({ message: "expected a number in [0, 2] for 'temperature', got 3" });
    expect((await post({ stop: Array.from({ length: 16 }, (_, i) => `s${i}`) })).status).toBe(200);
    expect((await post({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) })).error).toMatchObject({
      param: 'stop',
      message: "expected at most 16 strings for 'stop', got 17",
    });
  });
});
