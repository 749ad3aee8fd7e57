/** `tokmeter serve`: the OpenAI-compatible server over one model folder. */
import type { Command } from 'commander';
import { startServer, type RunningServer, type StartOptions } from '../server/index.js';
import type { ModelDtype } from '../model/index.js';
import { action, deviceArg, intArg, onceSignal } from './util.js';

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
  dtype?: ModelDtype;
  device?: 'cpu' | 'cuda';
  deviceId?: number;
  maxBatch?: number;
  kvCacheBytes?: number;
  /** commander's `--no-prefix-cache`: false when given, true otherwise. */
  prefixCache?: boolean;
  prefixCacheBytes?: number;
  alwaysIncludeUsage?: boolean;
  maxChoices?: number;
  redisEvents?: string;
  maxBodyBytes?: number;
  defaultMaxTokens?: number;
  maxInputTokens?: number;
  maxConcurrent?: number;
  headersTimeout?: number;
  requestTimeout?: number;
  maxChatMessages?: number;
  maxChatBytes?: number;
  trustProxy?: string;
  log?: boolean;
  adminKey?: string;
  metricsKey?: string;
  publicMetrics?: boolean;
}

export function serveOptions(f: ServeFlags): StartOptions {
  const adminKey = f.adminKey ?? process.env.TOKMETER_ADMIN_KEY;
  const metricsKey = f.metricsKey ?? process.env.TOKMETER_METRICS_KEY;
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
    ...(f.dtype !== undefined ? { dtype: f.dtype } : {}),
    ...(f.device !== undefined ? { device: f.device } : {}),
    ...(f.deviceId !== undefined ? { deviceId: f.deviceId } : {}),
    ...(f.maxBatch !== undefined ? { maxBatch: f.maxBatch } : {}),
    ...(f.kvCacheBytes !== undefined ? { kvCacheBytes: f.kvCacheBytes } : {}),
    prefixCache: f.prefixCache ?? true,
    ...(f.prefixCacheBytes !== undefined ? { prefixCacheBytes: f.prefixCacheBytes } : {}),
    ...(f.alwaysIncludeUsage ? { alwaysIncludeUsage: true } : {}),
    ...(f.maxChoices !== undefined ? { maxChoices: f.maxChoices } : {}),
    ...(f.redisEvents !== undefined ? { redisEvents: f.redisEvents } : {}),
    ...(f.maxBodyBytes !== undefined ? { maxBodyBytes: f.maxBodyBytes } : {}),
    ...(f.defaultMaxTokens !== undefined ? { defaultMaxTokens: f.defaultMaxTokens } : {}),
    ...(f.maxInputTokens !== undefined ? { maxInputTokens: f.maxInputTokens } : {}),
    ...(f.maxConcurrent !== undefined ? { maxConcurrent: f.maxConcurrent } : {}),
    ...(f.headersTimeout !== undefined ? { headersTimeoutMs: f.headersTimeout } : {}),
    ...(f.requestTimeout !== undefined ? { requestTimeoutMs: f.requestTimeout } : {}),
    ...(f.maxChatMessages !== undefined ? { maxChatMessages: f.maxChatMessages } : {}),
    ...(f.maxChatBytes !== undefined ? { maxChatContentBytes: f.maxChatBytes } : {}),
    ...(f.trustProxy !== undefined ? { trustProxy: f.trustProxy.split(',').map((a) => a.trim()) } : {}),
    logger: f.log ?? false,
    ...(adminKey ? { adminKey } : {}),
    ...(metricsKey ? { metricsKey } : {}),
    ...(f.publicMetrics ? { publicMetrics: true } : {}),
  };
}

/**
 * Serves until SIGINT/SIGTERM, then shuts down gracefully (admitted requests finish and are recorded). Pass the
 * `onceSignal()` taken before printing that the server is ready: a signal sent as soon as a caller reads that line
 * must reach this handler, not the default one that kills the process.
 */
export async function serveUntilSignal(
  server: RunningServer,
  signal: Promise<NodeJS.Signals> = onceSignal(),
): Promise<void> {
  const sig = await signal;
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
    .option(
      '--redis-events <url>',
      'with --redis: a separate Redis for usage events (appendfsync always); --redis then holds only the limits',
    )
    .option('--redis-fail-open', 'with --redis: admit without shared limits while Redis is down (default: 503)')
    .option('--spool-dir <dir>', 'local spool of a postgres ledger (default .tokmeter/spool)')
    .option('--keys <file>', 'API keys file (sha256 hashes → tenants with limits); without it the server is open')
    .option('--prices <file>', 'price table JSON; without it the model is priced at 0')
    .option('--threads <n>', 'ONNX Runtime threads', intArg(1, 1024))
    .option('--dtype <dtype>', 'which onnx/model*.onnx to load: fp32 (default), fp16, q4, q4f16, int8, uint8, q8')
    .option('--device <device>', "'cpu' (default) or 'cuda' (KV cache and sampling on the GPU)", deviceArg)
    .option('--device-id <n>', 'CUDA device index (with --device cuda)', intArg(0, 1024))
    .option('--max-batch <n>', 'generations stepped together (continuous batching; default 16)', intArg(1, 1024))
    .option('--kv-cache-bytes <n>', 'KV-cache budget of the running batch + prefix cache (default 256 MiB)', intArg(1))
    .option(
      '--no-prefix-cache',
      "do not keep prompts' KV for reuse (default: kept, so repeated prefixes are cached_tokens at the cached price)",
    )
    .option(
      '--prefix-cache-bytes <n>',
      'most KV bytes the prefix cache keeps, within --kv-cache-bytes (default: what running generations leave)',
      intArg(1),
    )
    .option('--always-include-usage', 'send the usage chunk on every stream, even without stream_options')
    .option(
      '--max-choices <n>',
      'most choices per request (n, or a batched completions prompt; default 8)',
      intArg(1, 128),
    )
    .option('--max-body-bytes <n>', 'request body limit (413 above)', intArg(1))
    .option('--default-max-tokens <n>', 'max_tokens when a request gives none (default 256)', intArg(1))
    .option('--max-input-tokens <n>', 'prompt tokens per request (default: the context window)', intArg(1))
    .option('--max-concurrent <n>', 'generations admitted at once (503 above)', intArg(1))
    .option('--headers-timeout <ms>', "most ms to receive a request's headers (408 after; default 5000)", intArg(0))
    .option('--request-timeout <ms>', 'most ms to receive a whole request, body included (default 30000)', intArg(0))
    .option('--max-chat-messages <n>', 'messages per chat request (400 above; default 2048)', intArg(1))
    .option('--max-chat-bytes <n>', 'bytes of all message contents of a chat request (default 1 MiB)', intArg(1))
    .option(
      '--trust-proxy <list>',
      "reverse proxies whose X-Forwarded-For to believe: addresses, CIDR ranges or 'loopback', comma-separated",
    )
    .option('--log', 'log every request (pino JSON lines on stdout)')
    .option('--admin-key <key>', 'opens the usage dashboard at /dashboard (16+ characters; or TOKMETER_ADMIN_KEY)')
    .option(
      '--metrics-key <key>',
      'bearer key of GET /metrics (16+ characters; or TOKMETER_METRICS_KEY; default: the admin key)',
    )
    .option('--public-metrics', 'serve GET /metrics without a key (default: a key is required)')
    .action(
      action('serve', async (f: ServeFlags) => {
        const options = serveOptions(f);
        const server = await startServer(options);
        const signal = onceSignal();
        process.stdout.write(`tokmeter: serving ${server.model.name} at ${server.url}/v1\n`);
        if (options.adminKey) process.stdout.write(`tokmeter: usage dashboard at ${server.url}/dashboard\n`);
        if (!options.publicMetrics && !(options.metricsKey ?? options.adminKey)) {
          process.stdout.write('tokmeter: GET /metrics is closed (start with --metrics-key or --public-metrics)\n');
        }
        await serveUntilSignal(server, signal);
      }),
    );
}
