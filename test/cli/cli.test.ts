/**
 * The `tokmeter` command, run for real in child processes (node --import tsx src/cli/index.ts): make-model, count
 * (stdin, files, globs, --json), generate (streamed and --json, with a ledger), usage, keys add, serve and demo
 * (started, called over HTTP, stopped with SIGTERM).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { hashKey } from '../../src/server/index.js';
import { gpuSkipReason } from '../cuda/helpers.js';
import { makeChatTinyModel, startTestServer, tempDir } from '../server/helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI = ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'index.ts')];

function tokmeter(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a long-running command, waits for `ready` in stdout, returns the text so far and a stopper. */
async function startLong(args: string[], ready: RegExp, cwd = ROOT) {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready in time: ${out} ${err}`)), 90_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out} ${err}`)));
  });
  const stop = () =>
    new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  return { match, out: () => out, err: () => err, stop };
}

let tmp: ReturnType<typeof tempDir>;
let model: string;

beforeAll(async () => {
  tmp = tempDir('cli');
  model = await makeChatTinyModel(tmp.dir);
});

afterAll(() => tmp?.cleanup());

describe('tokmeter', () => {
  it('make-model writes the tiny model with a chat template; a second run without --force refuses', async () => {
    const out = path.join(tmp.dir, 'made');
    const r = tokmeter(['make-model', '--size', 'tiny', '--out', out, '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${out}\n`);
    // Llama 3's tokenizer and chat template by default, as the demo: chat works against the model as made.
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.tokmeter_modelgen).toMatchObject({ size: 'tiny', tokenizer: 'llama3' });
    expect(config.num_hidden_layers).toBe(2);
    const server = await startTestServer({ model: out });
    try {
      const chat = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'made', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 3 }),
      });
      expect(chat.status, await chat.clone().text()).toBe(200);
      const body = (await chat.json()) as { usage: { completion_tokens: number; prompt_tokens: number } };
      expect(body.usage.completion_tokens).toBeGreaterThan(0);
      expect(body.usage.prompt_tokens).toBeGreaterThan(5); // the template's headers are counted
    } finally {
      await server.close();
    }
    const again = tokmeter(['make-model', '--size', 'tiny', '--out', out, '--quiet']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/^tokmeter make-model: /);
    expect(tokmeter(['make-model', '--size', 'huge', '--out', out]).status).toBe(1);
    // --tokenizer still chooses: Llama 2's has no chat template
    const l2 = path.join(tmp.dir, 'made-llama2');
    expect(tokmeter(['make-model', '--size', 'tiny', '--tokenizer', 'llama2', '--out', l2, '--quiet']).status).toBe(0);
    expect(JSON.parse(readFileSync(path.join(l2, 'config.json'), 'utf8')).tokmeter_modelgen.tokenizer).toBe('llama2');
    expect(JSON.parse(readFileSync(path.join(l2, 'tokenizer_config.json'), 'utf8')).chat_template).toBeUndefined();
  });

  it('count: stdin, files and globs, per file and total, --json; exact against the Tokenizer', async () => {
    const docs = path.join(tmp.dir, 'docs');
    mkdirSync(path.join(docs, 'sub'), { recursive: true });
    const texts: Record<string, string> = {
      'a.md': 'Hello world, this is tokmeter.',
      'b.md': '你好, 世界! Tokens are counted exactly.\n'.repeat(20),
      'sub/c.md': 'deep file',
      'skip.txt': 'not matched',
    };
    for (const [f, t] of Object.entries(texts)) writeFileSync(path.join(docs, f), t);
    const tok = await Tokenizer.fromPretrained(model);
    const expected = (f: string) => tok.count(texts[f]!, { addSpecialTokens: false });

    const stdin = tokmeter(['count', '--model', model], texts['a.md']);
    expect(stdin.status).toBe(0);
    expect(stdin.stdout).toBe(`${expected('a.md')}\t-\n`);

    const files = tokmeter(['count', '--model', model, '--json', path.join(docs, 'a.md'), `${docs}/**/*.md`]);
    expect(files.status, files.stderr).toBe(0);
    const json = JSON.parse(files.stdout);
    expect(json.files.map((f: { path: string }) => path.relative(docs, f.path))).toEqual(['a.md', 'b.md', 'sub/c.md']);
    for (const f of json.files) expect(f.tokens).toBe(expected(path.relative(docs, f.path)));
    expect(json.total).toEqual({
      files: 3,
      bytes: json.files.reduce((a: number, f: { bytes: number }) => a + f.bytes, 0),
      tokens: expected('a.md') + expected('b.md') + expected('sub/c.md'),
    });

    const special = tokmeter(['count', '--model', model, '--special', path.join(docs, 'a.md')]);
    expect(special.stdout.split('\n')[0]).toBe(`${tok.count(texts['a.md']!)}\t${path.join(docs, 'a.md')}`);
    // Large inputs (>= 200 files) get a progress bar on stderr (forced here: stderr is not a terminal).
    const many = path.join(tmp.dir, 'many');
    mkdirSync(many);
    for (let i = 0; i < 210; i++)
      writeFileSync(path.join(many, `f${String(i).padStart(3, '0')}.txt`), `file number ${i}`);
    const bar = tokmeter(['count', '--model', model, '--progress', '--batch-files', '50', '--json', `${many}/*.txt`]);
    expect(bar.status, bar.stderr).toBe(0);
    expect(bar.stderr).toMatch(/counting .* 210\/210 files/);
    const manyJson = JSON.parse(bar.stdout);
    expect(manyJson.total.files).toBe(210);
    expect(manyJson.files[7].tokens).toBe(tok.count('file number 7', { addSpecialTokens: false }));
    tok.dispose();

    const missing = tokmeter(['count', '--model', model, path.join(docs, 'nope.md')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no such file');
    const two = tokmeter(['count', '--model', model, '--encoding', 'o200k_base', path.join(docs, 'a.md')]);
    expect(two.status).toBe(1);
    expect(two.stderr).toContain('exactly one of');
  });

  it('generate streams text and prints usage; --json with a ledger records it; usage reports it', () => {
    const db = path.join(tmp.dir, 'cli-usage.db');
    const streamed = tokmeter(['generate', '--model', model, '-n', '6', '-t', '0', 'Hello', 'there']);
    expect(streamed.status, streamed.stderr).toBe(0);
    expect(streamed.stderr).toMatch(/^usage: prompt \d+, completion 6, total \d+ \(cached 0\), finish length\n$/);
    const json = tokmeter(
      ['generate', '--model', model, '-n', '6', '-t', '0', '--json', '--ledger', `sqlite:${db}`, '--key', 'me'],
      'Hello there',
    );
    expect(json.status, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(out.usage).toMatchObject({ completionTokens: 6 });
    expect(`${out.text}\n`).toBe(streamed.stdout); // same greedy text, streamed vs. collected
    const chat = tokmeter([
      'generate',
      '--model',
      model,
      '-n',
      '3',
      '--chat',
      '--system',
      'be brief',
      '--json',
      '--ledger',
      `sqlite:${db}`,
      '--key',
      'me',
      'hi',
    ]);
    expect(chat.status, chat.stderr).toBe(0);

    const report = tokmeter(['usage', '--ledger', `sqlite:${db}`, '--group-by', 'key', '--json']);
    expect(report.status, report.stderr).toBe(0);
    const rows = JSON.parse(report.stdout);
    const chatUsage = JSON.parse(chat.stdout).usage;
    expect(rows).toEqual([
      expect.objectContaining({
        group: 'me',
        requests: 2,
        promptTokens: out.usage.promptTokens + chatUsage.promptTokens,
        completionTokens: 9,
      }),
    ]);
    const table = tokmeter(['usage', '--ledger', `sqlite:${db}`, '--group-by', 'model']);
    expect(table.stdout).toMatch(/^model\s+requests\s+prompt\s+cached\s+completion\s+total\s+cost\n/);
    expect(table.stdout).toMatch(/\ntiny\s+2\s/);
    expect(tokmeter(['usage', '--ledger', `sqlite:${db}`, '--group-by', 'week']).status).toBe(1);
  });

  it('generate --device cuda reaches Model.load: it runs on a GPU machine, else names what is missing', async () => {
    const bad = tokmeter(['generate', '--model', model, '--device', 'tpu', 'Hi']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("expected 'cpu' or 'cuda'");
    const cuda = tokmeter(['generate', '--model', model, '-n', '2', '-t', '0', '--device', 'cuda', 'Hi']);
    if ((await gpuSkipReason()) === null) {
      expect(cuda.status, cuda.stderr).toBe(0);
    } else {
      expect(cuda.status).toBe(1);
      expect(cuda.stderr).toMatch(/CUDA|plug-in|libcuda/);
    }
  });

  it('keys add prints a key once and stores only its sha256', () => {
    const file = path.join(tmp.dir, 'keys.json');
    const r = tokmeter(['keys', 'add', '--file', file, '--tenant', 'acme']);
    expect(r.status, r.stderr).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^tm-[A-Za-z0-9_-]{43}$/);
    const stored = readFileSync(file, 'utf8');
    expect(stored).not.toContain(key);
    expect(JSON.parse(stored).keys).toEqual([{ id: 'acme-1', tenant: 'acme', sha256: hashKey(key) }]);
    const dup = tokmeter(['keys', 'add', '--file', file, '--tenant', 'acme', '--id', 'acme-1']);
    expect(dup.status).toBe(1);
  });

  it('serve: listens, authenticates with the keys file, shuts down on SIGTERM', async () => {
    const file = path.join(tmp.dir, 'keys.json');
    const key = tokmeter(['keys', 'add', '--file', file, '--tenant', 'acme', '--id', 'serve']).stdout.trim();
    const db = path.join(tmp.dir, 'serve-usage.db');
    const metricsKey = 'cli-metrics-key-0123456789';
    const s = await startLong(
      [
        'serve',
        '--model',
        model,
        '--port',
        '0',
        '--threads',
        '1',
        '--keys',
        file,
        '--ledger',
        `sqlite:${db}`,
        '--metrics-key',
        metricsKey,
      ],
      /serving tiny at (http:\/\/\S+)\/v1\n/,
    );
    const url = s.match[1]!;
    try {
      expect((await fetch(`${url}/health`)).status).toBe(200);
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      expect((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
      expect((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${metricsKey}` } })).status).toBe(200);
      const r = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'tiny', prompt: 'hi', max_tokens: 3 }),
      });
      expect(r.status).toBe(200);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    const report = JSON.parse(tokmeter(['usage', '--ledger', `sqlite:${db}`, '--json']).stdout);
    expect(report).toEqual([expect.objectContaining({ group: 'acme', requests: 1, completionTokens: 3 })]);
  });

  it('demo: serves an existing model folder with an SQLite ledger and prints curl and openai examples', async () => {
    const db = path.join(tmp.dir, 'demo.db');
    const s = await startLong(
      ['demo', '--dir', model, '--port', '0', '--threads', '1', '--ledger', `sqlite:${db}`],
      /Stop: Ctrl-C\n/,
    );
    try {
      const text = s.out();
      expect(text).toContain('curl http://127.0.0.1:');
      expect(text).toContain("import OpenAI from 'openai'");
      const url = /baseURL: '(http:\/\/[^']+)\/v1'/.exec(text)![1]!;
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 2 }),
      });
      expect(r.status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(200); // the demo serves its metrics without a key
      // The printed dashboard address and this run's admin key sign in.
      const dash = /Dashboard \(usage as charts\): (http:\/\/\S+\/dashboard)\s+admin key for this run: (\S+)/.exec(
        text,
      );
      expect(dash).not.toBeNull();
      const login = await fetch(`${dash![1]!}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: dash![2] }),
        redirect: 'manual',
      });
      expect(login.status).toBe(303);
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      const page = await fetch(dash![1]!, { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<html');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
