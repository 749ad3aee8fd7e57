/**
 * The server under test, in its own process: `startServer` on an ephemeral port; prints `READY <url>`.
 * It also runs the in-process baselines on the very same Model, on request over stdin, so both sides share the
 * process, the model, its threads and the machine's conditions:
 *   `direct <json prompt> <maxNewTokens>`  → `DIRECT <ms to first token>`   (model.generate)
 *   `metered <json prompt> <maxNewTokens>` → `METERED <ms to first token>`  (Meter.wrap(asMeterable(model)), no ledger)
 */
import { createInterface } from 'node:readline';
import { asMeterable, startServer } from '../../src/server/index.js';
import { Meter } from '../../src/usage/index.js';

const [modelDir, threads, ledger] = process.argv.slice(2);
const server = await startServer({
  model: modelDir!,
  port: 0,
  host: '127.0.0.1',
  threads: Number(threads),
  ...(ledger ? { ledger } : {}),
  maxConcurrent: 1024,
  defaultMetrics: false,
});
const meter = new Meter({
  prices: { [server.model.name]: { inputPer1M: 0, outputPer1M: 0 } },
  cache: false,
  limits: { maxInputTokens: Number.MAX_SAFE_INTEGER },
});
const metered = meter.wrap(asMeterable(server.model));
process.stdout.write(`READY ${server.url}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const m = /^(direct|metered) (".*") (\d+)$/.exec(line);
  if (!m) continue;
  const prompt = JSON.parse(m[2]!) as string;
  const maxNewTokens = Number(m[3]);
  const t0 = performance.now();
  let first = -1;
  if (m[1] === 'direct') {
    const run = server.model.generate(prompt, { maxNewTokens, temperature: 0 });
    for await (const c of run) if (first < 0 && c.tokens.length > 0) first = performance.now() - t0;
    await run.result;
  } else {
    const run = metered.generate(prompt, { key: 'bench', maxNewTokens, temperature: 0 });
    for await (const c of run) if (first < 0 && c.tokens.length > 0) first = performance.now() - t0;
    await run.result;
  }
  process.stdout.write(`${m[1]!.toUpperCase()} ${first}\n`);
}
await meter.close();
await server.close();
