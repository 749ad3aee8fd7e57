/** `tokmeter serve`: the OpenAI-compatible server over one model folder. */
import type { Command } from 'commander';
import { startServer, type RunningServer, type StartOptions } from '../server/index.js';
import { action, intArg, onceSignal } from './util.js';

export interface ServeFlags {
  model: string;
  port: number;
  host: string;
  ledger?: string;
  redis?: string;
  redisFailOpen?: boolean;
  spoolDir?: string;
  keys?: string;
  prices?: string;
  threads?: number;
  maxBodyBytes?: number;
  defaultMaxTokens?: number;
  maxInputTokens?: number;
  maxConcurrent?: number;
  log?: boolean;
  adminKey?: string;
}

export function serveOptions(f: ServeFlags): StartOptions {
  const adminKey = f.adminKey ?? process.env.TOKMETER_ADMIN_KEY;
  return {
    model: f.model,
    port: f.port,
    host: f.host,
    ...(f.ledger !== undefined ? { ledger: f.ledger } : {}),
    ...(f.redis !== undefined ? { redis: f.redis, redisFailOpen: f.redisFailOpen ?? false } : {}),
    ...(f.spoolDir !== undefined ? { spoolDir: f.spoolDir } : {}),
    ...(f.keys !== undefined ? { keys: f.keys } : {}),
    ...(f.prices !== undefined ? { prices: f.prices } : {}),
    ...(f.threads !== undefined ? { threads: f.threads } : {}),
    ...(f.maxBodyBytes !== undefined ? { maxBodyBytes: f.maxBodyBytes } : {}),
    ...(f.defaultMaxTokens !== undefined ? { defaultMaxTokens: f.defaultMaxTokens } : {}),
    ...(f.maxInputTokens !== undefined ? { maxInputTokens: f.maxInputTokens } : {}),
    ...(f.maxConcurrent !== undefined ? { maxConcurrent: f.maxConcurrent } : {}),
    logger: f.log ?? false,
    ...(adminKey ? { adminKey } : {}),
  };
}

/** Serves until SIGINT/SIGTERM, then shuts down gracefully (admitted requests finish and are recorded). */
export async function serveUntilSignal(server: RunningServer): Promise<void> {
  const sig = await onceSignal();
  process.stderr.write(`tokmeter: ${sig}, shutting down (finishing requests, flushing the ledger)\n`);
  await server.close();
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve a model folder over the OpenAI HTTP API (chat/completions, completions, models, tokenize, usage, metrics)',
    )
    .requiredOption('-m, --model <dir>', 'model folder (config.json, tokenizer.json, onnx/model.onnx)')
    .option('-p, --port <n>', 'port (0 = any free port)', intArg(0, 65535), 8000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--ledger <spec>', 'usage ledger: sqlite:PATH or postgres://...')
    .option('--redis <url>', 'shared limits + usage events in Redis (many servers); --ledger = the billing PostgreSQL')
    .option('--redis-fail-open', 'with --redis: admit without shared limits while Redis is down (default: 503)')
    .option('--spool-dir <dir>', 'local spool of a postgres ledger (default .tokmeter/spool)')
    .option('--keys <file>', 'API keys file (sha256 hashes → tenants with limits); without it the server is open')
    .option('--prices <file>', 'price table JSON; without it the model is priced at 0')
    .option('--threads <n>', 'ONNX Runtime threads', intArg(1, 1024))
    .option('--max-body-bytes <n>', 'request body limit (413 above)', intArg(1))
    .option('--default-max-tokens <n>', 'max_tokens when a request gives none (default 256)', intArg(1))
    .option('--max-input-tokens <n>', 'prompt tokens per request (default: the context window)', intArg(1))
    .option('--max-concurrent <n>', 'generations admitted at once (503 above)', intArg(1))
    .option('--log', 'log every request (pino JSON lines on stdout)')
    .option('--admin-key <key>', 'opens the usage dashboard at /dashboard (16+ characters; or TOKMETER_ADMIN_KEY)')
    .action(
      action('serve', async (f: ServeFlags) => {
        const options = serveOptions(f);
        const server = await startServer(options);
        process.stdout.write(`tokmeter: serving ${server.model.name} at ${server.url}/v1\n`);
        if (options.adminKey) process.stdout.write(`tokmeter: usage dashboard at ${server.url}/dashboard\n`);
        await serveUntilSignal(server);
      }),
    );
}
