/**
 * `tokmeter demo` (what `npm start` runs): makes the demo model under .models/demo if it is missing, serves it with
 * an SQLite ledger, and prints how to call it with curl and with the openai client, and the dashboard's address with
 * an admin key made for this run.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { makeModel } from '../modelgen/index.js';
import { startServer } from '../server/index.js';
import { serveUntilSignal } from './serve.js';
import { action, intArg, onceSignal } from './util.js';

interface DemoFlags {
  dir: string;
  port: number;
  host: string;
  ledger: string;
  threads?: number;
}

export function demoInstructions(url: string, model: string, ledger: string, adminKey?: string): string {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 32 });
  return `
tokmeter demo: serving '${model}' (random weights: the text is gibberish, the token accounting is exact)

  curl ${url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '${body}'

  curl -N ${url}/v1/completions -H 'content-type: application/json' \\
    -d '${JSON.stringify({ model, prompt: 'Once upon a time', max_tokens: 32, stream: true, stream_options: { include_usage: true } })}'

  // node, with the official client (npm i openai)
  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${url}/v1', apiKey: 'demo' });
  const r = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 32 });
  console.log(r.choices[0].message.content, r.usage);

  Dashboard (usage as charts): ${url}/dashboard${adminKey ? `   admin key for this run: ${adminKey}` : ''}

  Also: GET ${url}/v1/models, POST ${url}/tokenize, GET ${url}/v1/usage, GET ${url}/metrics, GET ${url}/health
  Usage so far: tokmeter usage --ledger ${ledger}     Stop: Ctrl-C
`;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('make the demo model if missing and serve it with an SQLite ledger (what npm start runs)')
    .option('--dir <dir>', 'demo model folder', path.join('.models', 'demo'))
    .option('-p, --port <n>', 'port', intArg(0, 65535), 8000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--ledger <spec>', 'usage ledger', `sqlite:${path.join('.models', 'demo-usage.db')}`)
    .option('--threads <n>', 'ONNX Runtime threads', intArg(1, 1024))
    .action(
      action('demo', async (f: DemoFlags) => {
        if (!existsSync(path.join(f.dir, 'config.json'))) {
          process.stderr.write(`tokmeter demo: making the demo model in ${f.dir} (once)\n`);
          await makeModel({ size: 'demo', out: f.dir, log: (l) => process.stderr.write(`  ${l}\n`) });
        }
        // A fresh admin key each run signs in to the dashboard; it is printed below and never stored.
        const adminKey = randomBytes(18).toString('base64url');
        const server = await startServer({
          model: f.dir,
          port: f.port,
          host: f.host,
          ledger: f.ledger,
          // The demo's API is open (no keys file), and so are its metrics: said here, on purpose.
          publicMetrics: true,
          adminKey,
          ...(f.threads !== undefined ? { threads: f.threads } : {}),
        });
        const signal = onceSignal();
        process.stdout.write(demoInstructions(server.url, server.model.name, f.ledger, adminKey));
        await serveUntilSignal(server, signal);
      }),
    );
}
