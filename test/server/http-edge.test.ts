/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies read off the wire are checked by the assertions */
/**
 * The HTTP edge, over a fake engine (no model load): every error before or beside a route is OpenAI-shaped
 * (malformed URL, malformed request, headers too large, wrong method with Allow, unknown route, body too large,
 * bad JSON); slow clients are dropped while slow responses are not; wrong metrics keys are throttled per client
 * address; chat requests are bounded before the chat template runs.
 */
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, ServerMetrics, type AppOptions } from '../../src/server/index.js';
import type { Tokenizer } from '../../src/tokenizer/index.js';
import { Meter } from '../../src/usage/index.js';
import { ADMIN_KEY, sqliteMeter, tempDir } from '../dashboard/helpers.js';
import { FakeModel } from '../usage/fixtures/fake-model.js';

const METRICS_KEY = 'tm-edge-metrics-key-0123456789';

/** A tokenizer that only counts how often the chat template was asked for (the routes here never need more). */
function countingTokenizer(): Tokenizer & { templates: number } {
  const t = {
    templates: 0,
    vocabSize: 100,
    applyChatTemplate: () => {
      t.templates++;
      return 'rendered';
    },
    encode: () => Uint32Array.of(1, 2, 3),
    decode: () => 'text',
  };
  return t as unknown as Tokenizer & { templates: number };
}

interface Edge {
  app: FastifyInstance;
  model: FakeModel;
  tokenizer: Tokenizer & { templates: number };
  port: number;
  close(): Promise<void>;
}

async function edgeApp(o: Partial<AppOptions> & { stepMs?: number } = {}): Promise<Edge> {
  const model = new FakeModel({ stopAfter: 20, ...(o.stepMs !== undefined ? { stepMs: o.stepMs } : {}) });
  const meter = new Meter({ prices: { demo: { inputPer1M: 0, outputPer1M: 0 } } });
  const tokenizer = countingTokenizer();
  const app = await buildApp({ model, tokenizer, meter, metrics: new ServerMetrics(), ...o });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    app,
    model,
    tokenizer,
    port,
    close: async () => {
      await app.close();
      await meter.close();
    },
  };
}

/** The OpenAI error shape: exactly {error: {message, type, param, code}}. */
function expectErrorShape(json: any, fields: { type?: string; code?: string | null; param?: string | null }) {
  expect(Object.keys(json)).toEqual(['error']);
  expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof json.error.message).toBe('string');
  expect(json.error.message.length).toBeGreaterThan(0);
  expect(json.error).toMatchObject(fields);
}

/** Writes `data` on a raw socket and resolves with all the server sent once it closed the connection. */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.write(data);
  });
}

function parseResponse(text: string): { status: number; headers: Record<string, string>; json: any } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, json: JSON.parse(body) };
}

describe('errors outside the routes are OpenAI-shaped', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await edgeApp({ maxBodyBytes: 1024 });
  });
  afterAll(() => edge?.close());

  it('400 invalid_url for a URL the router cannot decode', async () => {
    const r = await fetch(`http://127.0.0.1:${edge.port}/v1/%zz`);
    expect(r.status).toBe(400);
    expectErrorShape(await r.json(), { type: 'invalid_request_error', code: 'invalid_url' });
  });

  it('400 malformed_request for bytes that are not HTTP, and the connection closes', async () => {
    const r = parseResponse(await raw(edge.port, 'NOT HTTP AT ALL\r\n\r\n'));
    expect(r.status).toBe(400);
    expectErrorShape(r.json, { code: 'malformed_request' });
  });

  it('431 for request headers over the limit', async () => {
    const big = `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`;
    const r = parseResponse(await raw(edge.port, big));
    expect(r.status).toBe(431);
    expectErrorShape(r.json, { type: 'invalid_request_error', code: 'request_headers_too_large' });
  });

  it('405 with Allow for a wrong method on an existing path; 404 for an unknown path', async () => {
    const cases: [string, string, string][] = [
      ['GET', '/v1/chat/completions', 'POST'],
      ['PUT', '/v1/completions', 'POST'],
      ['POST', '/v1/models', 'GET, HEAD'],
      ['DELETE', '/v1/models/demo', 'GET, HEAD'],
      ['POST', '/health', 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const r = await fetch(`http://127.0.0.1:${edge.port}${url}?x=1`, { method });
      expect(r.status, `${method} ${url}`).toBe(405);
      expect(r.headers.get('allow')).toBe(allow);
      const json = (await r.json()) as any;
      expectErrorShape(json, { type: 'invalid_request_error', code: 'method_not_allowed', param: null });
      expect(json.error.message).toContain(allow.split(',')[0]);
    }
    for (const [method, url] of [
      ['POST', '/v1/embeddings'],
      ['GET', '/v1/usage/extra'],
      ['POST', '/v1/chat/completions/extra'],
    ] as const) {
      const missing = await fetch(`http://127.0.0.1:${edge.port}${url}`, { method });
      expect(missing.status, `${method} ${url}`).toBe(404);
      expect(missing.headers.get('allow')).toBeNull();
      expectErrorShape(await missing.json(), { code: 'not_found' });
    }
  });

  it('413 for a body over the limit, 400 for bad JSON', async () => {
    const post = (body: string) =>
      fetch(`http://127.0.0.1:${edge.port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    const big = await post(JSON.stringify({ model: 'demo', prompt: 'x'.repeat(4096) }));
    expect(big.status).toBe(413);
    expectErrorShape(await big.json(), { code: 'request_too_large' });
    const bad = await post('{"model": ');
    expect(bad.status).toBe(400);
    expectErrorShape(await bad.json(), { code: 'invalid_json' });
  });

  it('/health is liveness only', async () => {
    const r = await fetch(`http://127.0.0.1:${edge.port}/health`);
    expect(await r.json()).toEqual({ status: 'ok' });
  });
});

describe('slow clients', () => {
  let edge: Edge;
  beforeAll(async () => {
    // Short clocks so the test is quick; a generation lasts well beyond both.
    edge = await edgeApp({ headersTimeoutMs: 300, requestTimeoutMs: 600, stepMs: 60 });
  });
  afterAll(() => edge?.close());

  it('a client sending its headers a byte at a time is answered 408 and disconnected', async () => {
    const request = `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'s'.repeat(400)}\r\n\r\n`;
    const s = net.connect(edge.port, '127.0.0.1');
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => undefined); // a write after the server closed: the expected outcome
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    let sent = 0;
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    while (!isClosed && sent < request.length) {
      s.write(request[sent++]!);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(isClosed).toBe(true); // closed before the whole request was sent
    expect(sent).toBeLessThan(request.length);
    const r = parseResponse(out);
    expect(r.status).toBe(408);
    expectErrorShape(r.json, { code: 'request_timeout' });
  });

  it('a kept-alive connection may idle between requests; a request dripped on it is cut', async () => {
    const s = net.connect(edge.port, '127.0.0.1');
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => undefined);
    let isClosed = false;
    s.once('close', () => (isClosed = true));
    const responses = () => out.split(/(?=HTTP\/1\.1 )/).filter(Boolean);
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((r) => setTimeout(r, 20));
    };
    const health = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
    s.write(health);
    await until(() => responses().length === 1);
    await new Promise((r) => setTimeout(r, 1000)); // idle for longer than both clocks
    expect(isClosed).toBe(false);
    s.write(health);
    await until(() => responses().length === 2);
    expect(responses().map((r) => parseResponse(r).status)).toEqual([200, 200]);
    for (let i = 0; !isClosed && i < health.length; i++) {
      s.write(health[i]!);
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(() => isClosed);
    expect(parseResponse(responses()[2]!).status).toBe(408);
  });

  it('a client that connects and sends nothing is disconnected', async () => {
    const out = await raw(edge.port, '');
    expect(parseResponse(out).status).toBe(408);
  });

  it('a streamed and a non-streamed generation outlast the request clocks', async () => {
    const post = (stream: boolean) =>
      fetch(`http://127.0.0.1:${edge.port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', prompt: 'a b c', max_tokens: 20, stream }),
      });
    const streamed = await post(true);
    expect(streamed.status).toBe(200);
    const text = await streamed.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(text.match(/tok\d+/g)).toHaveLength(20);
    const whole = await post(false);
    expect(whole.status).toBe(200);
    expect(((await whole.json()) as any).choices[0].text.match(/tok\d+/g)).toHaveLength(20);
  });

  it('refuses clocks that cannot work together', async () => {
    await expect(edgeApp({ headersTimeoutMs: 2000, requestTimeoutMs: 1000 })).rejects.toThrow(/headersTimeoutMs/);
    await expect(edgeApp({ headersTimeoutMs: -1 })).rejects.toThrow(/headersTimeoutMs/);
  });
});

describe('shutting down', () => {
  it('a request arriving while the server closes gets an OpenAI-shaped 503; the one in flight finishes', async () => {
    const edge = await edgeApp({ stepMs: 40 });
    const s = net.connect(edge.port, '127.0.0.1');
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const body = JSON.stringify({ model: 'demo', prompt: 'a b', max_tokens: 10 });
    s.write(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await new Promise((r) => setTimeout(r, 100)); // the generation is running
    const closing = edge.close();
    await new Promise((r) => setTimeout(r, 50));
    s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await closing;
    await closed;
    const responses = out.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(parseResponse(responses[0]!).status).toBe(200);
    const late = parseResponse(responses[1]!);
    expect(late.status).toBe(503);
    expectErrorShape(late.json, { type: 'server_error', code: 'shutting_down' });
  });
});

describe('wrong metrics keys', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await edgeApp({ metricsKey: METRICS_KEY, keyThrottle: { perClient: 3 } });
  });
  afterAll(() => edge?.close());

  const scrape = (key: string, remoteAddress: string) =>
    edge.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${key}` }, remoteAddress });

  it('are throttled per client address: 429 with Retry-After, the right key elsewhere still scrapes', async () => {
    const attacker = '203.0.113.9';
    for (let i = 0; i < 3; i++) expect((await scrape(`${METRICS_KEY}-${i}`, attacker)).statusCode).toBe(401);
    const locked = await scrape(METRICS_KEY, attacker);
    expect(locked.statusCode).toBe(429);
    const retry = Number(locked.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expectErrorShape(locked.json(), { type: 'rate_limit_error', code: 'too_many_failed_attempts' });
    expect((await scrape(METRICS_KEY, '198.51.100.30')).statusCode).toBe(200);
    // Behind a trusted proxy, the forwarded address is the client.
    const proxied = await edgeApp({ metricsKey: METRICS_KEY, keyThrottle: { perClient: 1 }, trustProxy: 'loopback' });
    try {
      const via = (key: string, client: string) =>
        proxied.app.inject({
          url: '/metrics',
          headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': client },
          remoteAddress: '127.0.0.1',
        });
      expect((await via('wrong-wrong-wrong-wrong', '203.0.113.50')).statusCode).toBe(401);
      expect((await via(METRICS_KEY, '203.0.113.50')).statusCode).toBe(429);
      expect((await via(METRICS_KEY, '203.0.113.51')).statusCode).toBe(200);
    } finally {
      await proxied.close();
    }
    // A missing key is not a guess: it does not count.
    const none = await edge.app.inject({ url: '/metrics', remoteAddress: '198.51.100.31' });
    expect(none.statusCode).toBe(401);
  });
});

describe('one budget of wrong operator keys', () => {
  it('wrong admin keys on /metrics count against dashboard sign-in from the same address', async () => {
    const tmp = tempDir('edge-dash');
    const { meter } = sqliteMeter(tmp.dir);
    await meter.ledger!.open();
    const app = await buildApp({
      model: new FakeModel({ name: 'small' }),
      tokenizer: countingTokenizer(),
      meter,
      metrics: new ServerMetrics(),
      dashboard: { adminKey: ADMIN_KEY }, // also the metrics key
      keyThrottle: { perClient: 2 },
    });
    try {
      const attacker = '203.0.113.60';
      for (let i = 0; i < 2; i++) {
        const r = await app.inject({
          url: '/metrics',
          headers: { authorization: 'Bearer wrong-wrong-wrong-wrong' },
          remoteAddress: attacker,
        });
        expect(r.statusCode).toBe(401);
      }
      const login = (remoteAddress: string) =>
        app.inject({ method: 'POST', url: '/dashboard/login', payload: { key: ADMIN_KEY }, remoteAddress });
      expect((await login(attacker)).statusCode).toBe(429);
      expect((await login('198.51.100.60')).statusCode).toBe(303);
    } finally {
      await app.close();
      await meter.close();
      tmp.cleanup();
    }
  });
});

describe('chat bounds, before the chat template', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await edgeApp({ maxChatContentBytes: 64 });
  });
  afterAll(() => edge?.close());

  const post = (url: string, body: object) => edge.app.inject({ method: 'POST', url, payload: body });
  const many = (n: number) => Array.from({ length: n }, () => ({ role: 'user', content: 'hi' }));

  it('refuses more messages than the limit (default 2,048) naming the field, without rendering', async () => {
    const before = edge.model.countCalls;
    const r = await post('/v1/chat/completions', { model: 'demo', messages: many(2049) });
    expect(r.statusCode).toBe(400);
    expectErrorShape(r.json(), {
      type: 'invalid_request_error',
      code: 'array_above_max_length',
      param: 'messages',
    });
    expect(r.json().error.message).toContain('2048');
    const t = await post('/tokenize', { messages: many(30_000) });
    expect(t.statusCode).toBe(400);
    expectErrorShape(t.json(), { code: 'array_above_max_length', param: 'messages' });
    expect(edge.model.countCalls).toBe(before);
    expect(edge.tokenizer.templates).toBe(0);
    const ok = await post('/v1/chat/completions', { model: 'demo', messages: many(2), max_tokens: 1 });
    expect(ok.statusCode).toBe(200);
  });

  it('refuses message contents over the byte limit naming the field, without rendering', async () => {
    const before = edge.model.countCalls;
    const messages = [
      { role: 'system', content: 'x'.repeat(40) },
      { role: 'user', content: [{ type: 'text', text: 'é'.repeat(20) }] }, // 40 bytes: 80 in all
    ];
    const r = await post('/v1/chat/completions', { model: 'demo', messages });
    expect(r.statusCode).toBe(400);
    expectErrorShape(r.json(), { type: 'invalid_request_error', code: 'input_too_long', param: 'messages' });
    const t = await post('/tokenize', { messages });
    expectErrorShape(t.json(), { code: 'input_too_long', param: 'messages' });
    expect(edge.model.countCalls).toBe(before);
    expect(edge.tokenizer.templates).toBe(0);
  });

  it('a configured message limit applies; nonsense limits are refused', async () => {
    const small = await edgeApp({ maxChatMessages: 3 });
    try {
      const r = await small.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: { model: 'demo', messages: many(4) },
      });
      expect(r.json().error).toMatchObject({ code: 'array_above_max_length', param: 'messages' });
    } finally {
      await small.close();
    }
    await expect(edgeApp({ maxChatMessages: 0 })).rejects.toThrow(/maxChatMessages/);
  });
});
