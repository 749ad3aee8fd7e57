/**
 * The server's own work per streamed request, with the engine taken out: server-child.ts runs the real server
 * (fastify, auth, validation, Meter admission and pricing, SQLite ledger, SSE) over the real Model's tokenizer and
 * chat template, but its generate() yields its tokens at once. Measured in the server process (its trace), so the
 * loopback and this client process's scheduling are not in the number:
 *
 *   npx tsx bench/server/overhead.ts [--size demo] [--requests 400] [--ledger sqlite|none] [--cpu-prof DIR]
 *                                    [--gap-ms 0]
 *
 * `--cpu-prof DIR` writes the server process's V8 CPU profile (node --cpu-prof) into DIR. `--gap-ms 50` idles between
 * requests, as the server does while a real engine decodes: the same work then runs from cold caches.
 *
 * Rows: completion and chat requests, stream: true, max_tokens 4. Columns: arrival (headers parsed) → first SSE
 * event with text handed to the socket, p10, p50 and p90, and process CPU (all threads) per request. On a loaded
 * machine p10 is the steadiest figure of the work itself (the median also holds preemption by other processes). The prompt is
 * encoded once in both rows as the real Model.generate() would, so this is an upper bound of what the server adds to
 * time to first token: compare it with the in-process time to first text that run.ts prints.
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
    requests: { type: 'string', default: '400' },
    ledger: { type: 'string', default: 'sqlite' },
    'cpu-prof': { type: 'string' },
    'gap-ms': { type: 'string', default: '0' },
  },
});
const SIZE = values.size as SizeName;
const N = Number(values.requests);
const GAP_MS = Number(values['gap-ms']);
const PROMPT = 'The quick brown fox jumps over the lazy dog. Write a short story about metering tokens:';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const dir = path.resolve('.models', SIZE);
if (!existsSync(path.join(dir, 'config.json'))) await makeModel({ size: SIZE, out: dir });
const name = String(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'))._name_or_path ?? SIZE);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tokmeter-bench-overhead-'));
const ledger = values.ledger === 'none' ? '-' : `sqlite:${path.join(tmp, 'usage.db')}`;
const child = spawn(
  process.execPath,
  [
    ...(values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${values['cpu-prof']}`] : []),
    '--import',
    'tsx',
    path.join(import.meta.dirname, 'server-child.ts'),
    dir,
    '1',
    ledger,
    'instant',
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
let out = '';
const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
const check = (): void => {
  for (let w = waiters[0]; w; w = waiters[0]) {
    const m = w.re.exec(out);
    if (!m) break;
    out = out.slice(m.index + m[0].length);
    waiters.shift();
    w.resolve(m);
  }
};
child.stdout.on('data', (d: Buffer) => {
  out += d.toString();
  check();
});
const next = (re: RegExp): Promise<RegExpExecArray> =>
  new Promise((resolve) => {
    waiters.push({ re, resolve });
    check();
  });
const ask = async (cmd: 'trace' | 'cpu'): Promise<string> => {
  child.stdin.write(`${cmd}\n`);
  return (await next(cmd === 'trace' ? /TRACE (.*)\n/ : /CPU (\S+)\n/))[1]!;
};

const url = (await next(/READY (\S+)\n/))[1]!;
async function request(kind: 'completion' | 'chat', i: number): Promise<void> {
  const text = `${PROMPT} (${i})`;
  const body =
    kind === 'chat'
      ? { model: name, messages: [{ role: 'user', content: text }], max_tokens: 4, temperature: 0, stream: true }
      : { model: name, prompt: text, max_tokens: 4, temperature: 0, stream: true };
  const res = await fetch(`${url}/v1/${kind === 'chat' ? 'chat/' : ''}completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const t = await res.text();
  if (res.status !== 200 || !t.includes('data: [DONE]')) throw new Error(`HTTP ${res.status}: ${t.slice(0, 300)}`);
}

try {
  console.log(`\nserver's own work per streamed request (instant engine, ${SIZE} tokenizer, ledger ${values.ledger})`);
  console.log('request        arrival → first text event, ms: p10     p50     p90    CPU ms/request (all threads)');
  let unique = 0;
  const splits: string[] = [];
  for (const kind of ['completion', 'chat'] as const) {
    for (let i = 0; i < 50; i++) await request(kind, unique++); // warm-up
    await ask('trace');
    await ask('cpu');
    for (let i = 0; i < N; i++) {
      if (GAP_MS > 0) await new Promise((r) => setTimeout(r, GAP_MS));
      await request(kind, unique++);
    }
    const cpu = Number(await ask('cpu'));
    const rows = JSON.parse(await ask('trace')) as number[][];
    const col = (k: number): number[] => rows.map((t) => t[k]!);
    const times = col(0);
    console.log(
      `${kind.padEnd(15)}${' '.repeat(32)}${[10, 50, 90].map((p) => pct(times, p).toFixed(3).padStart(7)).join(' ')}    ${(cpu / N).toFixed(3)}`,
    );
    splits.push(`${kind.padEnd(15)}${[5, 4, 1, 3].map((k) => pct(col(k), 50).toFixed(3).padStart(9)).join('')}`);
  }
  console.log('\nsplit, p50 ms from arrival:  body read  handler  generate()  + first text → socket');
  for (const line of splits) console.log(line);
} finally {
  child.stdin.end();
  await new Promise((r) => child.once('exit', r));
  rmSync(tmp, { recursive: true, force: true });
}
