/**
 * `startServer()`: what `tokmeter serve` runs — load a model folder, open the ledger, read prices and keys, build
 * the Meter and the app, listen. `close()` stops listening, lets admitted requests finish and record their usage,
 * flushes the ledger and releases the model.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { recentRecordsForSpec } from '../dashboard/index.js';
import { TokmeterTypeError } from '../errors.js';
import { Model, type ModelDtype } from '../model/index.js';
import { createRedisServices, type RedisServices } from '../scale/services.js';
import { Meter, PostgresLedger, PriceTable, SqliteLedger, type Ledger, type SpooledLedger } from '../usage/index.js';
import { buildApp } from './app.js';
import type { HttpTimeouts } from './http.js';
import { KeyStore } from './keys.js';
import { ServerMetrics } from './metrics.js';
import { asMeterable } from './model-adapter.js';
import type { ChatLimits } from './requests.js';

/**
 * Also: `headersTimeoutMs` (5 s), `requestTimeoutMs` (30 s), `connectionTimeoutMs` (off) bound receiving a request
 * (http.ts); `maxChatMessages` (2,048) and `maxChatContentBytes` (1 MiB) bound a chat before its template runs.
 */
export interface StartOptions extends HttpTimeouts, ChatLimits {
  /** Model folder (Hugging Face / Optimum layout). */
  model: string;
  port?: number;
  host?: string;
  /** `sqlite:PATH` or a `postgres://` URL; none = usage is metered but not stored. */
  ledger?: string;
  /**
   * `redis://…`: shared limits and usage events through Redis (src/scale). `ledger` must then be the PostgreSQL
   * the billing workers write (read for /v1/usage and budget seeding) or absent.
   */
  redis?: string;
  /** With `redis`: admit requests without shared limits while Redis is unreachable (default: refuse, 503). */
  redisFailOpen?: boolean;
  /** Spool directory for a Postgres ledger (default `.tokmeter/spool` under the working directory). */
  spoolDir?: string;
  /** API keys file (keys.ts); none = an open server billing tenant 'default'. */
  keys?: string;
  /** Price table JSON (src/usage/prices.ts); none = the model at price 0. */
  prices?: string;
  threads?: number;
  /** Which onnx/model*.onnx of the folder to load, by transformers.js dtype (Model.load dtype; default fp32). */
  dtype?: ModelDtype;
  /** 'cpu' (default) or 'cuda' (Model.load device; DeviceUnavailableError names what is missing). */
  device?: 'cpu' | 'cuda';
  /** CUDA device index (device 'cuda'). */
  deviceId?: number;
  /** Most generations stepped together in one batch (Model.load maxBatch; default 16). */
  maxBatch?: number;
  /** KV-cache memory budget of the running batch and the prefix cache (Model.load kvCacheBytes). */
  kvCacheBytes?: number;
  /**
   * Keep prompts' KV for reuse by later prompts that share a prefix (Model.load prefixCache): repeated system
   * prompts are then reported as `cached_tokens` and billed at the cached-input price. Default true.
   */
  prefixCache?: boolean;
  /** Most KV bytes the prefix cache keeps, within kvCacheBytes. Default: what running generations leave. */
  prefixCacheBytes?: number;
  /** Send the usage chunk on every stream, even without `stream_options.include_usage`. Default false. */
  alwaysIncludeUsage?: boolean;
  /** Most choices per request (`n`, or a completion's batched `prompt` array); more is a 400. Default 8. */
  maxChoices?: number;
  /** With `redis`: a separate Redis for usage events (appendfsync always); `redis` then holds only the limits. */
  redisEvents?: string;
  maxBodyBytes?: number;
  /** max_tokens when a request gives none (the Meter caps it by the room the prompt leaves). Default 256. */
  defaultMaxTokens?: number;
  /** Prompt tokens per request, below the context window. Default: only the context window limits it. */
  maxInputTokens?: number;
  maxConcurrent?: number;
  logger?: boolean;
  /** Admin key of the usage dashboard at /dashboard; without one the dashboard is off (it needs `ledger`). */
  adminKey?: string;
  /**
   * Bearer key of GET /metrics (16+ characters). Default: `adminKey`. Without either, /metrics answers 401 unless
   * `publicMetrics` is set: metrics name every tenant and key, so they are never open by default.
   */
  metricsKey?: string;
  /** Serve GET /metrics without a key. Excludes `metricsKey`. */
  publicMetrics?: boolean;
  /** Collect process metrics (CPU, memory, event loop) too. Default true. */
  defaultMetrics?: boolean;
  /** Reverse proxies whose X-Forwarded-For to believe (addresses, CIDR ranges, 'loopback'); see buildApp. */
  trustProxy?: string | string[];
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  model: Model;
  meter: Meter;
  ledger: Ledger | undefined;
  metrics: ServerMetrics;
  close(): Promise<void>;
}

/**
 * Parses `sqlite:PATH` / `postgres://...`. `readOnly`: a reader (reports) that never takes the spool, so it runs
 * beside the server that owns it.
 */
export function openLedger(spec: string, spoolDir?: string, options: { readOnly?: boolean } = {}): SpooledLedger {
  const readOnly = options.readOnly ?? false;
  if (spec.startsWith('sqlite:')) {
    const file = spec.slice('sqlite:'.length);
    if (file === '') throw new TokmeterTypeError(`expected sqlite:PATH for the ledger, got ${JSON.stringify(spec)}`);
    return new SqliteLedger(path.resolve(file), { readOnly });
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    return new PostgresLedger(spec, {
      spoolDir: path.resolve(spoolDir ?? path.join('.tokmeter', 'spool')),
      readOnly,
    });
  }
  throw new TokmeterTypeError(`expected sqlite:PATH or postgres://... for the ledger, got ${JSON.stringify(spec)}`);
}

/** The options of `o` named in `names` that are set. */
function pick<T extends object, K extends keyof T>(o: T, names: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const n of names) if (o[n] !== undefined) out[n] = o[n];
  return out;
}

export async function startServer(o: StartOptions): Promise<RunningServer> {
  if (o.publicMetrics && o.metricsKey !== undefined) {
    throw new TokmeterTypeError('metricsKey and publicMetrics exclude each other: choose one');
  }
  if (o.redisEvents !== undefined && o.redis === undefined) {
    throw new TokmeterTypeError(
      'redisEvents needs redis: the events Redis is the second of two (--redis-events with --redis)',
    );
  }
  const keys = o.keys !== undefined ? KeyStore.fromFile(o.keys) : undefined;
  const model = await Model.load(o.model, {
    device: o.device ?? 'cpu',
    ...(o.deviceId !== undefined ? { deviceId: o.deviceId } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.dtype !== undefined ? { dtype: o.dtype } : {}),
    ...(o.maxBatch !== undefined ? { maxBatch: o.maxBatch } : {}),
    ...(o.kvCacheBytes !== undefined ? { kvCacheBytes: o.kvCacheBytes } : {}),
    prefixCache: o.prefixCache ?? true,
    ...(o.prefixCacheBytes !== undefined ? { prefixCacheBytes: o.prefixCacheBytes } : {}),
  });
  let ledger: Ledger | undefined;
  let meter: Meter | undefined;
  let redis: RedisServices | undefined;
  try {
    const prices =
      o.prices !== undefined
        ? PriceTable.fromFile(o.prices)
        : PriceTable.fromJSON({ version: 'unpriced', models: { [model.name]: { inputPer1M: 0, outputPer1M: 0 } } });
    if (!prices.has(model.name)) {
      throw new TokmeterTypeError(`the price table ${o.prices} has no price for the model '${model.name}'`);
    }
    const metrics = new ServerMetrics({ defaultMetrics: o.defaultMetrics ?? true });
    if (o.redis !== undefined) {
      redis = await createRedisServices(o.redis, {
        spoolDir: path.resolve(o.spoolDir ?? path.join('.tokmeter', 'spool')),
        failOpen: o.redisFailOpen ?? false,
        ...(o.redisEvents !== undefined ? { eventsUrl: o.redisEvents } : {}),
        registry: metrics.registry,
        ...(o.ledger !== undefined ? { postgres: o.ledger } : {}),
      });
      ledger = redis.sink;
    } else {
      ledger = o.ledger !== undefined ? openLedger(o.ledger, o.spoolDir) : undefined;
    }
    await ledger?.open();
    meter = new Meter({
      prices,
      limits: {
        maxInputTokens: o.maxInputTokens ?? Number.MAX_SAFE_INTEGER,
        defaultMaxNewTokens: o.defaultMaxTokens ?? 256,
        ...(keys ? keys.meterLimits() : {}),
      },
      ...(ledger ? { ledger } : {}),
      ...(redis ? { limiter: redis.limiter } : {}),
      onRecord: (r) => metrics.onRecord(r),
    });
    const app = await buildApp({
      model: asMeterable(model),
      tokenizer: model.tokenizer,
      meter,
      metrics,
      ...(keys ? { keys } : {}),
      ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
      ...(o.maxConcurrent !== undefined ? { maxConcurrent: o.maxConcurrent } : {}),
      ...pick(o, [
        'trustProxy',
        'headersTimeoutMs',
        'requestTimeoutMs',
        'connectionTimeoutMs',
        'maxChatMessages',
        'maxChatContentBytes',
      ]),
      ...(o.alwaysIncludeUsage ? { alwaysIncludeUsage: true } : {}),
      ...(o.defaultMaxTokens !== undefined ? { defaultMaxTokens: o.defaultMaxTokens } : {}),
      ...(o.maxChoices !== undefined ? { maxChoices: o.maxChoices } : {}),
      ...(o.logger !== undefined ? { logger: o.logger } : {}),
      ...(o.metricsKey !== undefined ? { metricsKey: o.metricsKey } : {}),
      ...(o.publicMetrics ? { publicMetrics: true } : {}),
      ...(o.adminKey
        ? { dashboard: { adminKey: o.adminKey, records: o.ledger ? recentRecordsForSpec(o.ledger) : undefined } }
        : {}),
    });
    await app.listen({ port: o.port ?? 8000, host: o.host ?? '127.0.0.1' });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : o.port;
    const host = o.host ?? '127.0.0.1';
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const m = meter;
    let closing: Promise<void> | undefined;
    return {
      url,
      app,
      model,
      meter: m,
      ledger,
      metrics,
      close() {
        closing ??= (async () => {
          await app.close();
          await m.close({ timeoutMs: 10_000 });
          await redis?.close();
          await model.dispose();
        })();
        return closing;
      },
    };
  } catch (err) {
    if (meter) await meter.close().catch(() => undefined);
    else await ledger?.close().catch(() => undefined);
    await redis?.close().catch(() => undefined);
    await model.dispose();
    throw err;
  }
}
