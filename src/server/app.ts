/**
 * The OpenAI-compatible HTTP API (fastify), over a metered model:
 *
 *   POST /v1/chat/completions, /v1/completions   (JSON or SSE with `data: [DONE]`; stream_options.include_usage)
 *   GET  /v1/models                              POST /tokenize, /detokenize (vLLM-style, with counts)
 *   GET  /v1/usage  (the caller's tenant, from the ledger)   GET /metrics (Prometheus, own key)   GET /health
 *
 * Every error leaves through one handler and one table (errors.ts), those below the routes too (http.ts: malformed
 * requests, slow clients, wrong methods). Refusals (limits, budgets, context length) are known before the first
 * byte (`run.admitted`), so a stream only starts once the request was admitted. A client that goes away aborts its
 * generation through an AbortSignal; the Meter still records what was processed.
 */
import { createHash, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Tokenizer } from '../tokenizer/index.js';
import { TokmeterTypeError } from '../errors.js';
import {
  reportToJson,
  type Meter,
  type MeterableModel,
  type MeteredModel,
  type MeteredResult,
  type MeteredRun,
} from '../usage/index.js';
import { isDashboardUrl, liveStatsFromMetrics, registerDashboard, type RecentRecords } from '../dashboard/index.js';
import { ApiError, MethodNotAllowedError, toHttpError } from '../http/errors.js';
import { clientErrorHandler, RouteMethods, timeoutOptions, type HttpTimeouts } from './http.js';
import type { Caller, KeyStore } from './keys.js';
import type { ServerMetrics } from './metrics.js';
import { completionBody, streamChunk, usageChunk, type Kind } from './openai-format.js';
import {
  checkChatLimits,
  parseChatRequest,
  parseCompletionRequest,
  parseDetokenizeRequest,
  parseTokenizeRequest,
  parseUsageQuery,
  type ChatLimits,
  type SamplingRequest,
} from './requests.js';
import { SseWriter } from './sse.js';
import { FailureThrottle, type ThrottleOptions } from '../http/throttle.js';

export interface AppOptions extends HttpTimeouts, ChatLimits {
  /** The model as the metering seam sees it (a real Model goes through `asMeterable`). */
  model: MeterableModel;
  /** The model's tokenizer, for /tokenize and /detokenize. */
  tokenizer: Tokenizer;
  /** The Meter that admits, prices and records every generation (build it with `onRecord: metrics.onRecord`). */
  meter: Meter;
  metrics: ServerMetrics;
  /** API keys; without them the server is open and bills the tenant 'default'. */
  keys?: KeyStore;
  /** Request body limit in bytes (413 above). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Generations admitted at once; more get 503 server_overloaded with Retry-After. Default 64. */
  maxConcurrent?: number;
  logger?: boolean;
  /** The usage dashboard at /dashboard (src/dashboard): its admin key, and where it lists the latest records. */
  dashboard?: { adminKey: string; records?: RecentRecords };
  /**
   * Bearer key of GET /metrics (its series name every tenant and key, so tenants' API keys do not open it).
   * Default: the dashboard's admin key. Without either, /metrics answers 401 unless `publicMetrics` is set.
   */
  metricsKey?: string;
  /** Serve GET /metrics without a key (e.g. a scraper on a private network). Excludes `metricsKey`. */
  publicMetrics?: boolean;
  /**
   * Wrong metrics and admin keys allowed per client address (and in all) per minute before 429 (throttle.ts;
   * default 30 per address, 3,000 in all).
   */
  keyThrottle?: ThrottleOptions;
  /**
   * Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` to believe (fastify's `trustProxy`: addresses, CIDR
   * ranges or 'loopback'). Behind a reverse proxy, without it every client has the proxy's address, so the key
   * throttle counts them all as one client. Default: none.
   */
  trustProxy?: string | string[];
}

const OPEN_CALLER: Caller = { tenant: 'default', keyId: 'anonymous' };
/** Routes outside the API keys: /health is open; /metrics has its own key (metricsGuard). */
const PUBLIC_ROUTES = new Set(['/health', '/metrics']);
const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Per request: the caller, and when the request arrived (the time-to-first-token histogram starts there). */
interface RequestState {
  caller: Caller;
  arrived: number;
}

/**
 * Authorization of GET /metrics: a bearer key compared in constant time (both sides hashed first, so lengths do
 * not leak either), or nothing when the server was explicitly started with public metrics.
 */
function metricsGuard(
  o: Pick<AppOptions, 'metricsKey' | 'publicMetrics' | 'dashboard'>,
  throttle: FailureThrottle,
): (req: FastifyRequest) => void {
  if (o.publicMetrics && o.metricsKey !== undefined) {
    throw new TokmeterTypeError('metricsKey and publicMetrics exclude each other: choose one');
  }
  if (o.publicMetrics) return () => undefined;
  if (o.metricsKey !== undefined && (typeof o.metricsKey !== 'string' || o.metricsKey.length < 16)) {
    throw new TokmeterTypeError(`expected a metrics key of at least 16 characters, got ${o.metricsKey.length}`);
  }
  const key = o.metricsKey ?? o.dashboard?.adminKey; // the dashboard checks its admin key itself
  const want = key === undefined ? undefined : sha256(key);
  return (req) => {
    if (!want) {
      throw new ApiError(
        'ERR_MISSING_API_KEY',
        'GET /metrics needs a key and this server has none: start it with --metrics-key (or --admin-key), ' +
          'or with --public-metrics to serve metrics without a key',
      );
    }
    const h = req.headers.authorization;
    if (h === undefined || h === '') {
      throw new ApiError('ERR_MISSING_API_KEY', 'missing metrics key: send it as "Authorization: Bearer <key>"');
    }
    const wait = throttle.retryAfterMs(req.ip);
    if (wait > 0) {
      throw new ApiError('ERR_AUTH_THROTTLED', 'too many wrong keys from this address; try again later', null, wait);
    }
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m || !timingSafeEqual(sha256(m[1]!), want)) {
      throttle.fail(req.ip);
      throw new ApiError('ERR_INVALID_API_KEY', 'invalid metrics key');
    }
  };
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { model, tokenizer, meter, metrics, keys } = o;
  const metered: MeteredModel = meter.wrap(model);
  const maxConcurrent = o.maxConcurrent ?? 64;
  const created = Math.floor(Date.now() / 1000);
  const states = new WeakMap<FastifyRequest, RequestState>();
  // One budget of wrong keys per client address for every route behind an operator's key (/metrics, /dashboard).
  const throttle = new FailureThrottle(o.keyThrottle);
  const checkMetricsKey = metricsGuard(o, throttle);
  if (meter.ledger) metrics.observeLedger(meter.ledger);
  let active = 0;

  const chatLimits = checkChatLimits(o);
  const routeMethods = new RouteMethods();
  let closing = false;

  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.maxBodyBytes ?? 1024 * 1024,
    ...timeoutOptions(o),
    clientErrorHandler,
    // A URL the router cannot decode (`/v1/%zz`) or an over-long parameter: the one error table answers.
    frameworkErrors: (err, _req, reply) => {
      const h = toHttpError(err);
      void (reply as FastifyReply).status(h.status).headers(h.headers).send(h.body);
    },
    return503OnClosing: false, // answered by the onRequest hook below, OpenAI-shaped
    ...(o.trustProxy !== undefined ? { trustProxy: o.trustProxy } : {}),
  });
  app.addHook('onRoute', routeMethods.onRoute);
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  // Latency and status of every request, streams included (their response is written outside fastify).
  // A callback hook, not an async one: fastify then goes on to the body in the same tick (a throw is caught by
  // fastify's hook runner and reaches the error handler as with an async hook).
  app.addHook('onRequest', (req, reply, done) => {
    const t0 = performance.now();
    const url = req.routeOptions.url; // fastify builds this object on every access: read once
    const route = url ?? 'unmatched';
    reply.raw.once('close', () => {
      metrics.latency.observe({ route }, (performance.now() - t0) / 1000);
      metrics.requests.inc({ route, status: String(reply.raw.statusCode) });
    });
    if (closing) throw new ApiError('ERR_SHUTTING_DOWN', 'the server is shutting down; retry on another');
    // the dashboard has its own key
    if (url !== undefined && !PUBLIC_ROUTES.has(url) && !isDashboardUrl(url)) {
      states.set(req, { caller: authenticate(req), arrived: t0 });
    }
    done();
  });

  function authenticate(req: FastifyRequest): Caller {
    if (!keys) return OPEN_CALLER;
    const h = req.headers.authorization;
    if (h === undefined || h === '') {
      throw new ApiError('ERR_MISSING_API_KEY', 'missing API key: send it as "Authorization: Bearer <key>"');
    }
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    const caller = m ? keys.lookup(m[1]!) : undefined;
    if (!caller) throw new ApiError('ERR_INVALID_API_KEY', 'invalid API key');
    return caller;
  }

  const callerOf = (req: FastifyRequest): Caller => states.get(req)?.caller ?? OPEN_CALLER;

  app.setErrorHandler((err, req, reply) => {
    const promptParam = req.routeOptions.url === '/v1/completions' ? 'prompt' : 'messages';
    const h = toHttpError(err, promptParam);
    if (h.status >= 500) req.log.error({ err }, 'request failed');
    void reply.status(h.status).headers(h.headers).send(h.body);
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allow = routeMethods.allowed(path);
    const h = toHttpError(
      allow.length > 0 && !allow.includes(req.method)
        ? new MethodNotAllowedError(req.method, path, allow)
        : new ApiError('ERR_NOT_FOUND', `no route for ${req.method} ${path}`),
    );
    void reply.status(h.status).headers(h.headers).send(h.body);
  });

  // Liveness only: it needs no key, so it tells nothing about the model, the load or the ledger (/metrics does).
  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/metrics', async (req, reply) => {
    checkMetricsKey(req);
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: model.name, object: 'model', created, owned_by: 'tokmeter', max_model_len: model.contextLength }],
  }));

  app.get('/v1/models/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    if (id !== model.name)
      throw new ApiError(
        'ERR_UNKNOWN_MODEL',
        `model '${id}' is not served here; this server serves '${model.name}'`,
        'model',
      );
    return { id: model.name, object: 'model', created, owned_by: 'tokmeter', max_model_len: model.contextLength };
  });

  const checkModel = (name: string | undefined): void => {
    if (name !== undefined && name !== model.name) {
      throw new ApiError(
        'ERR_UNKNOWN_MODEL',
        `model '${name}' is not served here; this server serves '${model.name}'`,
        'model',
      );
    }
  };

  // Counting endpoints are not billed but count against the tenant's requests per minute.
  app.post('/tokenize', async (req) => {
    const caller = callerOf(req);
    const r = parseTokenizeRequest(req.body, chatLimits);
    checkModel(r.model);
    meter.limiter.admit(caller.tenant, 0);
    const ids =
      typeof r.input === 'string'
        ? tokenizer.encode(r.input, { addSpecialTokens: r.addSpecialTokens })
        : tokenizer.encode(
            tokenizer.applyChatTemplate(r.input.messages, { addGenerationPrompt: r.addGenerationPrompt }),
            {
              addSpecialTokens: false,
            },
          );
    return { count: ids.length, max_model_len: model.contextLength, tokens: Array.from(ids) };
  });

  app.post('/detokenize', async (req) => {
    const caller = callerOf(req);
    const r = parseDetokenizeRequest(req.body, tokenizer.vocabSize);
    checkModel(r.model);
    meter.limiter.admit(caller.tenant, 0);
    return { prompt: tokenizer.decode(r.tokens), count: r.tokens.length };
  });

  app.get('/v1/usage', async (req) => {
    const caller = callerOf(req);
    const q = parseUsageQuery(req.query);
    if (!meter.ledger) throw new ApiError('ERR_NOT_FOUND', 'this server keeps no ledger (start it with --ledger)');
    const rows = await meter.report({
      groupBy: q.groupBy,
      key: caller.tenant,
      ...(q.from !== undefined ? { from: q.from } : {}),
      ...(q.to !== undefined ? { to: q.to } : {}),
    });
    return {
      object: 'usage.report',
      tenant: caller.tenant,
      group_by: q.groupBy,
      currency: meter.prices.currency,
      data: reportToJson(rows, meter.prices.currency),
    };
  });

  app.post('/v1/chat/completions', (req, reply) => generation('chat', req, reply));
  app.post('/v1/completions', (req, reply) => generation('completion', req, reply));

  async function generation(kind: Kind, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const state = states.get(req);
    const t0 = state?.arrived ?? performance.now(); // arrival: body parsing and validation count as overhead too
    const caller = state?.caller ?? OPEN_CALLER;
    const r: SamplingRequest =
      kind === 'chat' ? parseChatRequest(req.body, chatLimits) : parseCompletionRequest(req.body);
    checkModel(r.model);
    if (active >= maxConcurrent) {
      throw new ApiError(
        'ERR_OVERLOADED',
        `the server is at its limit of ${maxConcurrent} concurrent generations`,
        null,
        1000,
      );
    }
    active++; // counted from here, so concurrent admissions cannot overshoot maxConcurrent
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const ac = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) ac.abort(new Error('client disconnected'));
    };
    reply.raw.once('close', onClose);
    // Without a seed, sampling differs per request as with OpenAI (the engine's default seed is fixed).
    const sampled = r.temperature !== 0;
    const seed = r.seed ?? (sampled ? randomInt(2 ** 31 - 1) : undefined);
    metrics.expect(id, caller.keyId);
    let run: MeteredRun;
    try {
      run = metered.generate(r.input, {
        key: caller.tenant,
        requestId: id,
        signal: ac.signal,
        ...(r.maxTokens !== undefined ? { maxNewTokens: r.maxTokens } : {}),
        cache: r.seed !== undefined || !sampled, // only reproducible requests may be answered from the cache
        ...(r.temperature !== undefined ? { temperature: r.temperature } : {}),
        ...(r.topP !== undefined ? { topP: r.topP } : {}),
        ...r.samplers,
        ...(seed !== undefined ? { seed } : {}),
        ...(r.stop ? { stop: r.stop } : {}),
      });
      await run.admitted;
    } catch (err) {
      active--;
      metrics.forget(id);
      reply.raw.off('close', onClose);
      throw err;
    }
    metrics.inFlight.inc();
    metrics.queueDepth.inc();
    let waiting = true;
    const firstToken = (): void => {
      if (!waiting) return;
      waiting = false;
      metrics.queueDepth.dec();
      metrics.ttft.observe({ model: model.name, stream: String(r.stream) }, (performance.now() - t0) / 1000);
    };
    const head = { id, created: Math.floor(Date.now() / 1000), model: model.name };
    try {
      if (r.stream) {
        await stream(kind, r, reply, run, head, firstToken);
        return reply;
      }
      for await (const chunk of run) if (chunk.tokens.length > 0) firstToken();
      const res = await run.result;
      if (res.finishReason === 'abort') throw abortedError(ac.signal.aborted);
      void reply.header('x-request-id', id);
      return completionBody(kind, head, res.text, res.finishReason, res.usage);
    } finally {
      if (waiting) {
        waiting = false;
        metrics.queueDepth.dec();
      }
      active--;
      metrics.inFlight.dec();
      reply.raw.off('close', onClose);
    }
  }

  function abortedError(clientGone: boolean): ApiError {
    return new ApiError(
      'ERR_GENERATION_ABORTED',
      clientGone ? 'the client went away' : 'the generation was aborted (the server is shutting down)',
    );
  }

  async function stream(
    kind: Kind,
    r: SamplingRequest,
    reply: FastifyReply,
    run: ReturnType<MeteredModel['generate']>,
    head: { id: string; created: number; model: string },
    firstToken: () => void,
  ): Promise<void> {
    reply.hijack();
    const sse = new SseWriter(reply.raw);
    // A chat stream's opening role delta leaves with the headers, in one write (one packet, one wake-up of the
    // client) while the engine works on the prompt.
    sse.start(
      { 'x-request-id': head.id },
      kind === 'chat' ? streamChunk(kind, head, { role: true }, r.includeUsage) : undefined,
    );
    let res: MeteredResult;
    try {
      for await (const chunk of run) {
        if (chunk.tokens.length > 0) firstToken();
        if (chunk.text !== '') await sse.data(streamChunk(kind, head, { text: chunk.text }, r.includeUsage));
      }
      res = await run.result;
    } catch (err) {
      // Headers are sent: the error goes in the stream, as OpenAI does; the Meter has recorded the usage.
      await sse.data(toHttpError(err, r.promptParam).body);
      sse.end();
      return;
    }
    if (res.finishReason === 'abort') {
      if (sse.open) await sse.data(toHttpError(abortedError(false)).body);
      sse.end();
      return;
    }
    await sse.data(streamChunk(kind, head, { finishReason: res.finishReason }, r.includeUsage));
    if (r.includeUsage) await sse.data(usageChunk(kind, head, res.usage));
    await sse.data('[DONE]');
    sse.end();
  }

  if (o.dashboard) {
    await registerDashboard(app, {
      ...o.dashboard,
      throttle,
      meter,
      live: liveStatsFromMetrics(metrics),
      tenants: () => (keys ? new Set(keys.file.keys.map((k) => k.tenant)) : [OPEN_CALLER.tenant]),
    });
  }
  await app.ready();
  return app;
}
