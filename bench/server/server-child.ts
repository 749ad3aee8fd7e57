/**
 * The server under test, in its own process: `startServer` on an ephemeral port; prints `READY <url>`.
 * It also runs the in-process baselines on the very same Model, on request over stdin, so both sides share the
 * process, the model, its threads and the machine's conditions:
 *   `direct <json prompt> <maxNewTokens>`  → `DIRECT <ms to first text>`    (model.generate)
 *   `metered <json prompt> <maxNewTokens>` → `METERED <ms to first text>`   (Meter.wrap(asMeterable(model)), no ledger)
 * "First text" is the first chunk with non-empty text: the event an SSE client gets first (a token whose bytes are
 * held back as a partial UTF-8 character sends nothing), so all paths stop their clocks at the same point.
 *   `trace`                                → `TRACE <json array>` and clears it: per streamed HTTP request since the
 *                                            last `trace`, `[total, before, engine, after, handler, body]` in ms: total = from its
 *                                            arrival (the 'request' event: headers parsed) to its first SSE event
 *                                            with text handed to the socket; before = arrival → Model.generate()
 *                                            called; engine = that call → its first chunk with text (what `direct`
 *                                            measures); after = that chunk → the socket write; handler = arrival →
 *                                            the route handler calling the Meter (body read and parsed, key, checks);
 *                                            body = arrival → the request body's last byte read
 *   `cpu`                                  → `CPU <ms>`: process CPU time (all threads) since the last `cpu`
 * The trace times the server's own work without the loopback and the client process, which on a small shared
 * machine add milliseconds of scheduling noise to what the client sees.
 *
 * `server-child.ts DIR THREADS LEDGER|- instant` replaces the engine with an instant one (overhead.ts): generate()
 * still encodes the prompt as Model.generate does (unless given ids), then yields its tokens at once, so what is
 * left is the server's own work.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { Model } from '../../src/model/index.js';
import { asMeterable, startServer } from '../../src/server/index.js';
import { Meter, MeteredModel, type MeterableChunk, type GenerationRun } from '../../src/usage/index.js';

const [modelDir, threads, ledger, engine] = process.argv.slice(2);
const server = await startServer({
  model: modelDir!,
  port: 0,
  host: '127.0.0.1',
  threads: Number(threads),
  ...(ledger && ledger !== '-' ? { ledger } : {}),
  maxConcurrent: 1024,
  defaultMetrics: false,
  publicMetrics: true, // the harness scrapes the server's own TTFT histogram
});
const meter = new Meter({
  prices: { [server.model.name]: { inputPer1M: 0, outputPer1M: 0 } },
  cache: false,
  limits: { maxInputTokens: Number.MAX_SAFE_INTEGER },
});
const metered = meter.wrap(asMeterable(server.model));
if (engine === 'instant') {
  const model = server.model;
  const instant = (input: Parameters<Model['generate']>[0], o: { maxNewTokens?: number } = {}): GenerationRun => {
    const ids = typeof input === 'object' && 'tokens' in input ? input.tokens : model.encodePrompt(input);
    const n = o.maxNewTokens ?? 4;
    const usage = { promptTokens: ids.length, completionTokens: n, totalTokens: ids.length + n, cachedTokens: 0 };
    return {
      result: Promise.resolve({ text: 'x'.repeat(n), finishReason: 'length' as const, usage }),
      async *[Symbol.asyncIterator]() {
        for (let i = 0; i < n; i++) yield { text: 'x', tokens: Uint32Array.of(i) };
      },
    };
  };
  (model as unknown as { generate: typeof instant }).generate = instant;
}
let cpu = process.cpuUsage();
interface Traced {
  arrived: number;
  body: number;
  meter: number;
  generate: number;
  engineFirst: number;
  total: number;
}
let trace: Traced[] = [];
let current: Traced | undefined; // the HTTP request in flight (concurrency 1), until its first text is written
server.app.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
  const t: Traced = { arrived: performance.now(), body: -1, meter: -1, generate: -1, engineFirst: -1, total: -1 };
  req.once('end', () => (t.body = performance.now()));
  trace.push(t);
  current = t;
  const write = res.write;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    if (t.total < 0 && typeof chunk === 'string' && /"(text|content)":"[^"]/.test(chunk)) {
      t.total = performance.now() - t.arrived;
      if (current === t) current = undefined;
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
});
{
  // When the route handler hands the request to the Meter (body received and parsed, key checked, validated).
  const meterGenerate = MeteredModel.prototype.generate;
  MeteredModel.prototype.generate = function (this: MeteredModel, ...args: Parameters<MeteredModel['generate']>) {
    if (current && current.meter < 0) current.meter = performance.now();
    return meterGenerate.apply(this, args);
  };
  // Time the engine inside HTTP requests: when the server calls Model.generate() and when its first text arrives.
  const model = server.model as unknown as { generate: (...a: unknown[]) => GenerationRun };
  const generate = model.generate.bind(model);
  model.generate = (...args: unknown[]): GenerationRun => {
    const t = current;
    if (t && t.generate < 0) t.generate = performance.now();
    const run = generate(...args);
    if (!t) return run;
    // A plain iterator wrapper, not an async generator: the probe adds no microtask hops of its own.
    return {
      result: run.result,
      [Symbol.asyncIterator]() {
        const it = run[Symbol.asyncIterator]();
        const stamp = (r: IteratorResult<MeterableChunk>) => {
          if (t.engineFirst < 0 && !r.done && r.value.text !== '') t.engineFirst = performance.now();
          return r;
        };
        return { next: () => it.next().then(stamp), ...(it.return ? { return: () => it.return!() } : {}) };
      },
    };
  };
}
process.stdout.write(`READY ${server.url}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'cpu') {
    const c = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    process.stdout.write(`CPU ${(c.user + c.system) / 1000}\n`);
    continue;
  }
  if (line === 'trace') {
    const rows = trace
      .filter((t) => t.total >= 0 && t.generate >= 0 && t.engineFirst >= 0)
      .map((t) => [
        t.total,
        t.generate - t.arrived,
        t.engineFirst - t.generate,
        t.arrived + t.total - t.engineFirst,
        t.meter - t.arrived,
        t.body - t.arrived,
      ]);
    process.stdout.write(`TRACE ${JSON.stringify(rows)}\n`);
    trace = [];
    continue;
  }
  const m = /^(direct|metered) (".*") (\d+)$/.exec(line);
  if (!m) continue;
  const prompt = JSON.parse(m[2]!) as string;
  const maxNewTokens = Number(m[3]);
  const t0 = performance.now();
  let first = -1;
  if (m[1] === 'direct') {
    const run = server.model.generate(prompt, { maxNewTokens, temperature: 0 });
    for await (const c of run) if (first < 0 && c.text !== '') first = performance.now() - t0;
    await run.result;
  } else {
    const run = metered.generate(prompt, { key: 'bench', maxNewTokens, temperature: 0 });
    for await (const c of run) if (first < 0 && c.text !== '') first = performance.now() - t0;
    await run.result;
  }
  process.stdout.write(`${m[1]!.toUpperCase()} ${first}\n`);
}
await meter.close();
await server.close();
