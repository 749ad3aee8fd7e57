/**
 * Server benchmark: requests/s and p50/p99 latency of short completions over HTTP, and the server's overhead over
 * calling the Model in-process, measured in the same run.
 *
 *   npx tsx bench/server/run.ts [--size demo|tiny] [--threads 2] [--requests 40] [--seconds 5] [--tokens 16]
 *                               [--warmup 100] [--client raw|fetch|both] [--cpu-prof DIR]
 *
 * Rows (time to first text, concurrency 1, interleaved rounds so drift hits every path alike). All paths run on
 * the same Model object in the same process (the server's child process; see server-child.ts), so the difference is
 * the server's work, not a second model competing for the cores:
 *   model in-process     Model.generate() in the server process; first chunk with text
 *   meter in-process     the same through Meter.wrap(asMeterable(model)) (limits, pricing, no ledger)
 *   HTTP, server side    POST /v1/completions stream:true (SQLite ledger): from the request's arrival in the server
 *                        (headers parsed) to its first SSE event with text handed to the socket (server-child's trace)
 *   HTTP, client side    the same request seen by this process: request sent → first SSE data event with text (adds
 *                        the loopback and this process's own scheduling)
 * The HTTP rows come once per client (`--client both`, the default): `raw` is a minimal keep-alive socket client
 * (RawClient below) whose own CPU barely competes with the engine on a small machine, as a client on another host;
 * `fetch` is undici, whose work on the response headers runs while the engine computes the first token. The
 * server-side rows are server timestamps either way; what the client does shows up only as a slower engine.
 * Overheads are the median of per-round differences (each round runs all paths on prompts of the same length),
 * which cancels the drift a shared machine adds; the p50 columns are the plain distributions. A split line per
 * client: arrival → Model.generate() (body read, parsing, validation, Meter admission and the prompt's encoding),
 * the engine (compared with the in-process run of the same round), and first text → socket.
 * `--warmup N` (100) short requests per client first, so that V8 has optimized the server's request path;
 * `--warmup 3` measures a server that has just started. `--seconds 0` skips the non-streaming rows.
 * Then non-streaming /v1/completions at concurrency 1, 4, 8 for a fixed time: requests/s, p50, p99.
 * Every request has its own prompt (a numbered suffix): identical greedy requests would be answered by the server's
 * response cache and measure nothing. The model is made under .models/<size> if missing (seeded weights).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
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
    warmup: { type: 'string', default: '100' },
    client: { type: 'string', default: 'both' },
    'cpu-prof': { type: 'string' },
  },
});
const SIZE = values.size as SizeName;
const THREADS = Number(values.threads);
const N = Number(values.requests);
const SECONDS = Number(values.seconds);
const TOKENS = Number(values.tokens);
const WARMUP = Number(values.warmup);
if (!['raw', 'fetch', 'both'].includes(values.client!)) throw new Error('--client: raw, fetch or both');
const CLIENTS = (values.client === 'both' ? ['raw', 'fetch'] : [values.client]) as ('raw' | 'fetch')[];
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
    if (ttft < 0 && FIRST_TEXT.test(buf)) ttft = performance.now() - t0;
  }
  if (!buf.includes('data: [DONE]')) throw new Error(`stream did not finish: ${buf.slice(-200)}`);
  return { ttft, total: performance.now() - t0 };
}

const FIRST_TEXT = /"text":"[^"]/;

/**
 * A minimal HTTP/1.1 client on one keep-alive socket: the request leaves in one write and the response is only
 * scanned (status line, first text, the chunked terminator), so the client's own CPU competes as little as possible
 * with the engine on a small shared machine (fetch's undici parsing and WHATWG streams cost hundreds of µs per
 * response, while the engine runs). A client on another machine costs the server nothing.
 */
class RawClient {
  private onData: ((d: Buffer) => void) | undefined;

  private constructor(
    private readonly sock: net.Socket,
    private readonly host: string,
  ) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData?.(d));
  }

  static connect(url: string): Promise<RawClient> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const sock = net.connect(Number(u.port), u.hostname, () => resolve(new RawClient(sock, u.host)));
      sock.once('error', reject);
    });
  }

  stream(route: string, body: object): Promise<{ ttft: number; total: number }> {
    const payload = JSON.stringify(body);
    const req =
      `POST ${route} HTTP/1.1\r\nhost: ${this.host}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
    return new Promise((resolve, reject) => {
      let buf = '';
      let ttft = -1;
      const t0 = performance.now();
      this.onData = (d) => {
        buf += d.toString('utf8');
        if (ttft < 0 && FIRST_TEXT.test(buf)) ttft = performance.now() - t0;
        if (!buf.endsWith('\r\n0\r\n\r\n')) return;
        const total = performance.now() - t0;
        this.onData = undefined;
        if (!buf.startsWith('HTTP/1.1 200')) reject(new Error(`HTTP: ${buf.slice(0, 300)}`));
        else if (!buf.includes('data: [DONE]')) reject(new Error(`stream did not finish: ${buf.slice(-200)}`));
        else resolve({ ttft, total });
      };
      this.sock.write(req);
    });
  }

  close(): void {
    this.sock.destroy();
  }
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
      ...(values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-interval=50', `--cpu-prof-dir=${values['cpu-prof']}`] : []),
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
  const raw = await RawClient.connect(url);
  const httpStream = (client: 'raw' | 'fetch', b: object) =>
    client === 'raw' ? raw.stream('/v1/completions', b) : firstSse(url, b);
  try {
    // Warm-up: both sides, long enough for V8 to optimize the server's request path (a server that has run for a
    // while); `--warmup 3` shows a freshly started one. Short generations: the engine is not what is warmed.
    for (let i = 0; i < 3; i++) {
      await inChild('direct', `${PROMPT} [${i}]`);
      await inChild('metered', `${PROMPT} <${i}>`);
    }
    for (let i = 0; i < WARMUP; i++) {
      const last = i >= WARMUP - 3;
      const b = { ...body, prompt: `${PROMPT} [${i}]`, max_tokens: last ? TOKENS : 2 };
      for (const c of CLIENTS) await httpStream(c, { ...b, prompt: `${b.prompt} ${c}` });
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
    const http = { raw: [] as number[], fetch: [] as number[] };
    const httpTotal = { raw: [] as number[], fetch: [] as number[] };
    const order: ('raw' | 'fetch')[] = []; // which client made each traced request, in order
    // One round = every path on the same prompt; the order rotates per round so that whatever the previous
    // request left running (the server's ledger write, other processes) does not always precede the same path.
    const paths: (() => Promise<void>)[] = [];
    let prompt = '';
    // Each path gets its own one-letter suffix (the same length in tokens): two HTTP requests with one prompt would
    // be answered by the server's response cache.
    paths.push(async () => void direct.push(await inChild('direct', `${prompt} d`)));
    paths.push(async () => void viaMeter.push(await inChild('metered', `${prompt} m`)));
    for (const c of CLIENTS) {
      paths.push(async () => {
        order.push(c);
        const h = await httpStream(c, { ...body, prompt: `${prompt} ${c[0]}` });
        http[c].push(h.ttft);
        httpTotal[c].push(h.total);
      });
    }
    for (let i = 0; i < N; i++) {
      prompt = `${PROMPT} (${i})`;
      for (let k = 0; k < paths.length; k++) await paths[(i + k) % paths.length]!();
    }
    const traced = await serverTrace();
    if (traced.length !== order.length)
      throw new Error(`expected ${order.length} traced requests, got ${traced.length}`);
    const p50d = pct(direct, 50);
    console.log(
      `\n${SIZE} model, ${THREADS} threads, ${TOKENS} new tokens, ${N} requests each (concurrency 1), ` +
        `${WARMUP} warm-up requests per HTTP client, load average ${os.loadavg()[0]!.toFixed(2)}`,
    );
    console.log('time to first text (ms)            p50       p99    overhead: median of per-round differences');
    const rows: [string, number[]][] = [
      ['model in-process', direct],
      ['meter in-process', viaMeter],
    ];
    const byClient = (c: 'raw' | 'fetch') => traced.filter((_, i) => order[i] === c);
    for (const c of CLIENTS) rows.push([`HTTP, server side (${c} client)`, byClient(c).map((t) => t[0]!)]);
    for (const c of CLIENTS) rows.push([`HTTP, client side (${c} client)`, http[c]]);
    for (const [name, xs] of rows) {
      const over = pct(
        xs.map((x, i) => x - direct[i]!),
        50,
      );
      console.log(
        `${name.padEnd(29)}${fmt(pct(xs, 50))}  ${fmt(pct(xs, 99))}    ${over >= 0 ? '+' : ''}${over.toFixed(2)} ms (${((over / p50d) * 100).toFixed(1)}% of the in-process p50)`,
      );
    }
    for (const c of CLIENTS) {
      const t = byClient(c);
      const col = (k: number) => t.map((r) => r[k]!);
      const engineOver = pct(
        col(2).map((x, i) => x - direct[i]!),
        50,
      );
      console.log(
        `HTTP server side split (${c} client), p50 ms: arrival → generate() ${pct(col(1), 50).toFixed(2)} (of which ` +
          `arrival → handler ${pct(col(4), 50).toFixed(2)}, arrival → body read ${pct(col(5), 50).toFixed(2)}), ` +
          `engine ${pct(col(2), 50).toFixed(2)} (${engineOver >= 0 ? '+' : ''}${engineOver.toFixed(2)} vs ` +
          `in-process, paired), first text → socket ${pct(col(3), 50).toFixed(2)}; request total p50 ` +
          `${pct(httpTotal[c], 50).toFixed(2)}`,
      );
    }
    // The server's own view (its TTFT histogram: request arrival → first token) over the timed requests: splits the
    // HTTP path's extra time into work inside the server and the loopback + client side.
    const after = await scrape();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const serverSide = (after.sum - before.sum) / (after.count - before.count);
    const allHttp = [...http.raw, ...http.fetch];
    console.log(
      `means (ms): model in-process ${mean(direct).toFixed(2)}, meter in-process ${mean(viaMeter).toFixed(2)}, ` +
        `HTTP server-side (arrival → first token) ${serverSide.toFixed(2)}, HTTP client-side ${mean(allHttp).toFixed(2)}`,
    );
    console.log(
      `server work over the model: ${(serverSide - mean(direct)).toFixed(2)} ms ` +
        `(${(((serverSide - mean(direct)) / mean(direct)) * 100).toFixed(1)}% of TTFT); ` +
        `loopback + client: ${(mean(allHttp) - serverSide).toFixed(2)} ms`,
    );

    if (SECONDS <= 0) return;
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
    raw.close();
    child.stdin.end(); // the child closes its server and exits (and writes its --cpu-prof profile)
    const exited = new Promise((r) => child.once('exit', r));
    const kill = setTimeout(() => child.kill('SIGTERM'), 10_000);
    await exited;
    clearTimeout(kill);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
