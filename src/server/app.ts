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
  BudgetExceededError,
  formatPico,
  RateLimitError,
  reportToJson,
  type Meter,
  type MeterableModel,
  type MeteredModel,
  type Admission,
  type MeteredResult,
  type MeteredRun,
} from '../usage/index.js';
import { isDashboardUrl, liveStatsFromMetrics, registerDashboard, type RecentRecords } from '../dashboard/index.js';
import { ApiError, MethodNotAllowedError, toHttpError } from '../http/errors.js';
import { clientErrorHandler, RouteMethods, timeoutOptions, type HttpTimeouts } from './http.js';
import type { Caller, KeyStore } from './keys.js';
import type { ServerMetrics } from './metrics.js';
import {
  completionBody,
  logprobsFormatter,
  meteringOf,
  streamChunk,
  tokenLogprobs,
  toolCallDelta,
  usageChunk,
  type ChatLogprobs,
  type CompletionLogprobs,
  type Kind,
  type TokenLogprobs,
} from './openai-format.js';
import {
  checkChatLimits,
  DEFAULT_LIMITS,
  parseChatRequest,
  parseCompletionRequest,
  parseDetokenizeRequest,
  parseTokenizeRequest,
  parseUsageQuery,
  type ChatLimits,
  type RequestLimits,
  type SamplingRequest,
} from './requests.js';
import { newResponseId, parseResponsesRequest, responseBody, streamResponse } from './responses.js';
import { SseWriter } from './sse.js';
import { chatForTemplate, constraintError, planGeneration, readOutput, type GenerationPlan } from './structured.js';
import { ToolCallStream, type ToolStreamEvent } from '../tools/index.js';
import { FailureThrottle, type ThrottleOptions } from '../http/throttle.js';
import { choicesMaxTokens, choicesModel, type ChoiceChunk, type ChoicesResult } from './choices.js';

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
  /** Send the usage chunk on every stream, even when the request has no `stream_options.include_usage`. */
  alwaysIncludeUsage?: boolean;
  /** Most choices per request (`n`, or a completion's batched `prompt`); more is a 400. Default 8. */
  maxChoices?: number;
  /**
   * max_tokens of a request with several choices that gives none (capped by the room its longest prompt leaves);
   * one-choice requests get the Meter's default. Default 256, as `startServer`'s.
   */
  defaultMaxTokens?: number;
}

/** Which route a generation came through. */
type Route = Kind | 'response';

/** The choice a chunk belongs to (chunks of one-choice requests carry none). */
const indexOf = (chunk: object): number => (chunk as Partial<ChoiceChunk>).index ?? 0;

/**
 * A refusal that no wait can turn into an admission (the request alone is larger than the key's tokens per minute,
 * or its maximum cost larger than a budget), restated in the API's terms as a 400: a 429 would make clients retry
 * a request that can never succeed. Other errors are returned as they are.
 */
function neverAdmissible(err: unknown, r: SamplingRequest, maxParam: string, currency: string): unknown {
  const given =
    r.maxTokens === undefined ? `${maxParam} (not given: the server's default)` : `${maxParam} = ${r.maxTokens}`;
  if (err instanceof RateLimitError && !Number.isFinite(err.retryAfterMs)) {
    if (err.limit === 'rpm') {
      return new ApiError(
        'ERR_REQUEST_OVER_LIMIT',
        'this key may make no requests (its limit is 0 requests per minute)',
      );
    }
    const a = err.amounts;
    return new ApiError(
      'ERR_REQUEST_OVER_LIMIT',
      `this request may use ${a ? `${a.requested} tokens` : 'more tokens'} (its prompt plus ${given}), more than ` +
        `this key may use in a minute${a ? ` (${a.limit} tokens)` : ''}; no wait can admit it: lower ${maxParam} ` +
        'or shorten the prompt',
      maxParam,
    );
  }
  if (err instanceof BudgetExceededError && err.requested > err.budget) {
    return new ApiError(
      'ERR_REQUEST_OVER_LIMIT',
      `this request may cost up to ${formatPico(err.requested)} ${currency} (its prompt plus ${given} at this ` +
        `model's prices), more than this key's whole ${err.period} budget of ${formatPico(err.budget)} ${currency}; ` +
        `lower ${maxParam} or shorten the prompt`,
      maxParam,
    );
  }
  return err;
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
  const limits: RequestLimits = {
    ...DEFAULT_LIMITS,
    ...checkChatLimits(o),
    ...(o.maxChoices !== undefined ? { maxChoices: o.maxChoices } : {}),
  };
  let active = 0;

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
    const url = req.routeOptions.url;
    const promptParam = url === '/v1/completions' ? 'prompt' : url === '/v1/responses' ? 'input' : 'messages';
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
    const r = parseTokenizeRequest(req.body, limits);
    checkModel(r.model);
    meter.limiter.admit(caller.tenant, 0);
    let ids: Uint32Array;
    if (typeof r.input === 'string') ids = tokenizer.encode(r.input, { addSpecialTokens: r.addSpecialTokens });
    else {
      const template = (): string | undefined => tokenizer.chatTemplate(r.tools ? { tools: r.tools.tools } : {});
      const chat = chatForTemplate(r.input, r.tools, template).input as Exclude<typeof r.input, string>;
      const opts = { addGenerationPrompt: r.addGenerationPrompt, ...(chat.tools ? { tools: chat.tools } : {}) };
      ids = tokenizer.encode(tokenizer.applyChatTemplate(chat.messages, opts), { addSpecialTokens: false });
    }
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
  app.post('/v1/responses', (req, reply) => generation('response', req, reply));

  function parse(route: Route, body: unknown): SamplingRequest {
    if (route === 'chat') return parseChatRequest(body, limits);
    if (route === 'completion') return parseCompletionRequest(body, limits);
    return parseResponsesRequest(body);
  }

  async function generation(route: Route, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const state = states.get(req);
    const t0 = state?.arrived ?? performance.now(); // arrival: body parsing and validation count as overhead too
    const caller = state?.caller ?? OPEN_CALLER;
    const r = parse(route, req.body);
    checkModel(r.model);
    for (const id of Object.keys(r.samplers.logitBias ?? {})) {
      if (Number(id) >= tokenizer.vocabSize) {
        throw new ApiError(
          'ERR_INVALID_REQUEST',
          `token id ${id} of 'logit_bias' is outside the vocabulary of ${tokenizer.vocabSize} tokens`,
          `logit_bias.${id}`,
        );
      }
    }
    // Tools and structured outputs: the prompt's shape, the output's constraint, how the output is read back.
    const plan = planGeneration(r, () => tokenizer.chatTemplate(r.tools ? { tools: r.tools.tools } : {}));
    // Fields outside the API that were ignored: named to the client and in the log, never silently.
    const extraHeaders: Record<string, string> = {};
    if (r.ignored.length > 0) {
      extraHeaders['x-tokmeter-ignored'] = r.ignored.join(',');
      req.log.warn({ ignored: r.ignored, route: req.routeOptions.url }, 'ignored unknown request fields');
    }
    const choices = r.inputs.length * r.n;
    if (active >= maxConcurrent) {
      throw new ApiError(
        'ERR_OVERLOADED',
        `the server is at its limit of ${maxConcurrent} concurrent generations`,
        null,
        1000,
      );
    }
    active++; // counted from here, so concurrent admissions cannot overshoot maxConcurrent
    const id = route === 'response' ? newResponseId() : `${route === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
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
    let admission: Admission;
    try {
      // Several choices: one metered generation that runs them all (choices.ts), billed as one record. The Meter
      // reserves every choice's max_tokens; its byte limit sees all the prompts.
      let target = metered;
      let input = plan.input;
      let maxNewTokens = r.maxTokens;
      if (choices > 1) {
        const inputs = r.inputs.length === 1 ? [plan.input] : r.inputs;
        const each = choicesMaxTokens(model, inputs, r.maxTokens, o.defaultMaxTokens ?? 256);
        target = meter.wrap(choicesModel(model, inputs, r.n, seed));
        input = inputs.every((p) => typeof p === 'string') ? inputs.join('') : plan.input;
        maxNewTokens = each * choices;
      }
      run = target.generate(input, {
        key: caller.tenant,
        requestId: id,
        signal: ac.signal,
        ...(maxNewTokens !== undefined ? { maxNewTokens } : {}),
        // Only reproducible requests may be answered from the cache, and it keeps one answer without
        // log-probabilities.
        // The response cache is keyed on the prompt alone, so a constrained output is not taken from it.
        cache: (r.seed !== undefined || !sampled) && !r.logprobs && choices === 1 && !plan.constraint,
        ...(r.logprobs ? { logprobs: true } : {}),
        ...(r.topLogprobs > 0 ? { topLogprobs: r.topLogprobs } : {}),
        ...(r.temperature !== undefined ? { temperature: r.temperature } : {}),
        ...(r.topP !== undefined ? { topP: r.topP } : {}),
        ...r.samplers,
        ...(seed !== undefined ? { seed } : {}),
        ...(r.stop ? { stop: r.stop } : {}),
        ...(plan.constraint ? { constraint: plan.constraint } : {}),
      });
      admission = await run.admitted;
    } catch (err) {
      active--;
      metrics.forget(id);
      reply.raw.off('close', onClose);
      throw neverAdmissible(
        constraintError(err, plan),
        r,
        route === 'response' ? 'max_output_tokens' : 'max_tokens',
        meter.prices.currency,
      );
    }
    extraHeaders['x-tokmeter-cache'] = admission.cacheHit ? 'hit' : 'miss';
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
        reply.hijack();
        const sse = new SseWriter(reply.raw);
        const headers = { 'x-request-id': head.id, ...extraHeaders };
        if (route === 'response')
          await streamResponse(sse, headers, r, plan, run, head, firstToken, abortedError, tokenizer);
        else await stream(route, r, plan, sse, headers, run, head, firstToken);
        return reply;
      }
      const lp: TokenLogprobs[][] = Array.from({ length: choices }, () => []);
      let res: MeteredResult;
      try {
        for await (const chunk of run) {
          if (chunk.tokens.length > 0) firstToken();
          if (r.logprobs && chunk.logprobs) lp[indexOf(chunk)]!.push(tokenLogprobs(chunk, chunk.logprobs));
        }
        res = await run.result;
      } catch (err) {
        throw constraintError(err, plan); // the constraint compiles off the event loop: its errors come here
      }
      if (res.finishReason === 'abort') throw abortedError(ac.signal.aborted);
      const m = meteringOf(res);
      void reply.headers({ 'x-request-id': id, ...extraHeaders, 'x-tokmeter-cost': `${m.cost} ${m.currency}` });
      if (route === 'response') {
        const logprobs = r.logprobs ? (logprobsFormatter('chat', tokenizer)(lp[0]!) as ChatLogprobs) : undefined;
        return responseBody(head, r, readOutput(plan, res.text, res.finishReason), res.usage, logprobs);
      }
      const each = choices > 1 ? (res as MeteredResult & ChoicesResult).choices : [res];
      return completionBody(
        route,
        head,
        each.map((c, i) => {
          const out = readOutput(plan, c.text, c.finishReason);
          return {
            text: out.content,
            finishReason: out.finishReason,
            logprobs: r.logprobs ? logprobsFormatter(route, tokenizer)(lp[i]!) : null,
            ...(out.toolCalls ? { toolCalls: out.toolCalls } : {}),
          };
        }),
        res.usage,
      );
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
    plan: GenerationPlan,
    sse: SseWriter,
    headers: Record<string, string>,
    run: ReturnType<MeteredModel['generate']>,
    head: { id: string; created: number; model: string },
    firstToken: () => void,
  ): Promise<void> {
    const includeUsage = r.includeUsage || o.alwaysIncludeUsage === true;
    const choices = r.inputs.length * r.n;
    // A chat stream's opening role delta leaves with the headers, in one write (one packet, one wake-up of the
    // client) while the engine works on the prompt; with several choices, each opens with its own.
    sse.start(headers, kind === 'chat' ? streamChunk(kind, head, { role: true }, includeUsage) : undefined);
    for (let index = 1; kind === 'chat' && index < choices; index++) {
      await sse.data(streamChunk(kind, head, { index, role: true }, includeUsage));
    }
    let res: MeteredResult;
    const formatters = Array.from({ length: choices }, () => logprobsFormatter(kind, tokenizer));
    // With tools, each choice's text goes through a tool-call stream: calls come out as delta.tool_calls.
    const format = plan.format;
    const calls = format ? Array.from({ length: choices }, () => new ToolCallStream(format)) : undefined;
    const send = async (index: number, events: ToolStreamEvent[], logprobs?: ChatLogprobs | CompletionLogprobs) => {
      let lp = logprobs ? { logprobs } : {};
      for (const e of events) {
        const delta = toolCallDelta(e);
        const part = e.kind === 'content' ? { text: e.text } : delta ? { toolCalls: [delta] } : undefined;
        if (!part) continue;
        await sse.data(streamChunk(kind, head, { index, ...part, ...lp }, includeUsage));
        lp = {};
      }
      if (logprobs && 'logprobs' in lp)
        await sse.data(streamChunk(kind, head, { index, text: '', logprobs }, includeUsage));
    };
    try {
      for await (const chunk of run) {
        if (chunk.tokens.length > 0) firstToken();
        const index = indexOf(chunk);
        // With logprobs, every token is reported, also one whose text is held back (a stop-string prefix, EOS).
        const logprobs =
          r.logprobs && chunk.logprobs && chunk.tokens.length > 0
            ? formatters[index]!([tokenLogprobs(chunk, chunk.logprobs)])
            : undefined;
        await send(
          index,
          calls ? calls[index]!.push(chunk.text) : chunk.text === '' ? [] : [{ kind: 'content', text: chunk.text }],
          logprobs,
        );
      }
      res = await run.result;
      if (calls && res.finishReason !== 'abort') {
        for (const [index, c] of calls.entries()) await send(index, c.end());
      }
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
    const ends = choices > 1 ? (res as MeteredResult & ChoicesResult).choices : [res];
    for (const [index, c] of ends.entries()) {
      const finishReason = calls && calls[index]!.callsComplete ? 'tool_calls' : c.finishReason;
      await sse.data(streamChunk(kind, head, { index, finishReason }, includeUsage));
    }
    if (includeUsage) await sse.data(usageChunk(kind, head, res.usage, meteringOf(res)));
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
