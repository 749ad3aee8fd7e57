/**
 * Server benchmark: requests/s and p50/p99 latency of short completions over HTTP, and the server's overhead over
 * calling the Model in-process, measured in the same run (STYLE.md §18).
 *
 *   npx tsx bench/server/run.ts [--size demo|tiny] [--threads 2] [--requests 40] [--seconds 5] [--tokens 16]
 *
 * Rows (time to first text, concurrency 1, interleaved rounds so drift hits every path alike). All paths run on
 * the same Model object in the same process (the server's child process; see server-child.ts), so the difference is
 * the server's work, not a second model competing for the cores:
 *   model in-process     Model.generate() in the server process; first chunk with text
 *   meter in-process     the same through Meter.wrap(asMeterable(model)) (limits, pricing, no ledger)
 *   HTTP, server side    POST /v1/completions stream:true (SQLite ledger): from the request's arrival in the server
 *                        (headers parsed) to its first SSE event with text handed to the socket (server-child's trace)
 *   HTTP, client side    the same request seen by this process: fetch → first SSE data event with text (adds the
 *                        loopback and this process's own scheduling)
 * Overheads are the median of per-round differences (each round runs all paths on one prompt), which cancels the
 * drift a shared machine adds; the p50 columns are the plain distributions. A last line splits the server side:
 * arrival → Model.generate() (body read, parsing, validation, Meter admission and the prompt's encoding), the engine
 * (compared with the in-process run of the same round), and first text → socket.
 * Then non-streaming /v1/completions at concurrency 1, 4, 8 for a fixed time: requests/s, p50, p99.
 * Every request has its own prompt (a numbered suffix): identical greedy requests would be answered by the server's
 * response cache and measure nothing. The model is made under .models/<size> if missing (seeded weights).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeModel, type SizeName } from '../../src/modelgen/index.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: 'demo' },
    threads: { type: 'string', default: '2' },
    requests: { type: 'string', default: '40' },
    seconds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '16' },
  },
});
const SIZE = values.size as SizeName;
const THREADS = Number(values.threads);
const N = Number(values.requests);
const SECONDS = Number(values.seconds);
const TOKENS = Number(values.tokens);
const PROMPT = 'The quick brown fox jumps over the lazy dog. Write a short story about metering tokens:';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const fmt = (ms: number) => ms.toFixed(2).padStart(8);

async function firstSse(url: string, body: object): Promise<{ ttft: number; total: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let ttft = -1;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    if (ttft < 0 && /"text":"[^"]/.test(buf)) ttft = performance.now() - t0;
  }
  if (!buf.includes('data: [DONE]')) throw new Error(`stream did not finish: ${buf.slice(-200)}`);
  return { ttft, total: performance.now() - t0 };
}

async function main(): Promise<void> {
  const dir = path.resolve('.models', SIZE);
  if (!existsSync(path.join(dir, 'config.json'))) {
    console.error(`making the ${SIZE} model in ${dir}`);
    await makeModel({ size: SIZE, out: dir });
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tokmeter-bench-server-'));
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'server-child.ts'),
      dir,
      String(THREADS),
      `sqlite:${path.join(tmp, 'usage.db')}`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (let w = waiters[0]; w; w = waiters[0]) {
      const m = w.re.exec(out);
      if (!m) break;
      out = out.slice(m.index + m[0].length);
      waiters.shift();
      w.resolve(m);
    }
  });
  const next = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve) => {
      waiters.push({ re, resolve });
      child.stdout.emit('data', Buffer.alloc(0));
    });
  child.once('exit', (c) => {
    if (c !== 0 && c !== null) console.error(`server exited ${c}`);
  });
  const url = (await next(/READY (\S+)\n/))[1]!;
  const inChild = async (kind: 'direct' | 'metered', prompt: string): Promise<number> => {
    child.stdin.write(`${kind} ${JSON.stringify(prompt)} ${TOKENS}\n`);
    return Number((await next(kind === 'direct' ? /DIRECT (\S+)\n/ : /METERED (\S+)\n/))[1]);
  };
  /** Per streamed request since the last call: [total, before, engine, after, handler, body] (server-child.ts). */
  const serverTrace = async (): Promise<number[][]> => {
    child.stdin.write('trace\n');
    return JSON.parse((await next(/TRACE (.*)\n/))[1]!) as number[][];
  };
  const name = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'))._name_or_path ?? path.basename(dir);
  const model = { name: String(name) };
  const body = { model: model.name, prompt: PROMPT, max_tokens: TOKENS, temperature: 0, stream: true };
  try {
    // Warm-up: both sides.
    for (let i = 0; i < 3; i++) {
      await inChild('direct', `${PROMPT} [${i}]`);
      await inChild('metered', `${PROMPT} <${i}>`);
      await firstSse(url, { ...body, prompt: `${PROMPT} [${i}]` });
    }
    const scrape = async (): Promise<{ sum: number; count: number }> => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
      return {
        sum: num(/tokmeter_time_to_first_token_seconds_sum\{[^}]*stream="true"[^}]*\} (\S+)/) * 1000,
        count: num(/tokmeter_time_to_first_token_seconds_count\{[^}]*stream="true"[^}]*\} (\S+)/),
      };
    };
    const before = await scrape();
    await serverTrace(); // drop the warm-up
    const direct: number[] = [];
    const viaMeter: number[] = [];
    const http: number[] = [];
    const httpTotal: number[] = [];
    // One round = the three paths on the same prompt; the order rotates per round so that whatever the previous
    // request left running (the server's ledger write, other processes) does not always precede the same path.
    const paths: (() => Promise<void>)[] = [];
    let prompt = '';
    paths.push(async () => void direct.push(await inChild('direct', prompt)));
    paths.push(async () => void viaMeter.push(await inChild('metered', prompt)));
    paths.push(async () => {
      const h = await firstSse(url, { ...body, prompt });
      http.push(h.ttft);
      httpTotal.push(h.total);
    });
    for (let i = 0; i < N; i++) {
      prompt = `${PROMPT} (${i})`;
      for (let k = 0; k < 3; k++) await paths[(i + k) % 3]!();
    }
    const traced = await serverTrace();
    if (traced.length !== N) throw new Error(`expected ${N} traced requests, got ${traced.length}`);
    const serverSideTimes = traced.map((t) => t[0]!);
    const p50d = pct(direct, 50);
    console.log(`\n${SIZE} model, ${THREADS} threads, ${TOKENS} new tokens, ${N} requests each (concurrency 1)`);
    console.log('time to first text (ms)       p50       p99    overhead: median of per-round differences');
    for (const [name, xs] of [
      ['model in-process', direct],
      ['meter in-process', viaMeter],
      ['HTTP, server side', serverSideTimes],
      ['HTTP, client side (SSE)', http],
    ] as const) {
      const over = pct(
        xs.map((x, i) => x - direct[i]!),
        50,
      );
      console.log(
        `${name.padEnd(24)}${fmt(pct(xs, 50))}  ${fmt(pct(xs, 99))}    ${over >= 0 ? '+' : ''}${over.toFixed(2)} ms (${((over / p50d) * 100).toFixed(1)}% of the in-process p50)`,
      );
    }
    console.log(`HTTP request total, p50 ${pct(httpTotal, 50).toFixed(2)} ms`);
    const col = (k: number) => traced.map((t) => t[k]!);
    const engineOver = pct(
      col(2).map((x, i) => x - direct[i]!),
      50,
    );
    console.log(
      `HTTP server side split, p50 ms: arrival → generate() ${pct(col(1), 50).toFixed(2)} (of which arrival → ` +
        `handler ${pct(col(4), 50).toFixed(2)}, arrival → body read ${pct(col(5), 50).toFixed(2)}), engine ` +
        `${pct(col(2), 50).toFixed(2)} (${engineOver >= 0 ? '+' : ''}${engineOver.toFixed(2)} vs in-process, paired), ` +
        `first text → socket ${pct(col(3), 50).toFixed(2)}`,
    );
    // The server's own view (its TTFT histogram: request arrival → first token) over the timed requests: splits the
    // HTTP path's extra time into work inside the server and the loopback + client side.
    const after = await scrape();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const serverSide = (after.sum - before.sum) / (after.count - before.count);
    console.log(
      `means (ms): model in-process ${mean(direct).toFixed(2)}, meter in-process ${mean(viaMeter).toFixed(2)}, ` +
        `HTTP server-side (arrival → first token) ${serverSide.toFixed(2)}, HTTP client-side ${mean(http).toFixed(2)}`,
    );
    console.log(
      `server work over the model: ${(serverSide - mean(direct)).toFixed(2)} ms ` +
        `(${(((serverSide - mean(direct)) / mean(direct)) * 100).toFixed(1)}% of TTFT); ` +
        `loopback + client: ${(mean(http) - serverSide).toFixed(2)} ms`,
    );

    console.log('\nnon-streaming /v1/completions, fixed time per row');
    console.log('concurrency   req/s     p50 ms    p99 ms   errors');
    const plain = { ...body, stream: false };
    let unique = 0;
    for (const conc of [1, 4, 8]) {
      const lat: number[] = [];
      let errors = 0;
      const end = performance.now() + SECONDS * 1000;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (performance.now() < end) {
            const s = performance.now();
            const res = await fetch(`${url}/v1/completions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ ...plain, prompt: `${PROMPT} {${unique++}}` }),
            });
            await res.arrayBuffer();
            if (res.status !== 200) errors++;
            else lat.push(performance.now() - s);
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `${String(conc).padStart(11)}${(lat.length / secs).toFixed(1).padStart(8)}  ${fmt(pct(lat, 50))}  ${fmt(pct(lat, 99))}   ${errors}`,
      );
    }
  } finally {
    child.stdin.end();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
