/**
 * The HTTP edge below the routes: the node server's timeouts, OpenAI-shaped answers to what never reaches a route
 * (a malformed request, headers too large, a client too slow to send its request, a wrong method) and the
 * methods each path allows. Statuses and bodies come from the one error table (errors.ts).
 *
 * Timeouts bound receiving a request only: `headersTimeoutMs` from the connection (or, on a kept-alive one, from
 * the next request's first byte) to the end of the headers, `requestTimeoutMs` to the end of the body. Node stops both clocks once the
 * request is in, so a response that takes minutes (a long generation, streamed or not) is never cut by them. A
 * client that sends nothing, or its headers a byte at a time, gets a 408 and its connection is closed.
 * `connectionTimeoutMs` is an idle-socket timeout that counts while a response is being made too: it is off by
 * default, since a non-streamed generation writes nothing until it ends.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions, RouteOptions } from 'fastify';
import { TokmeterTypeError } from '../errors.js';
import { ApiError, toHttpError } from '../http/errors.js';

export interface HttpTimeouts {
  /** Most ms to receive a request's headers (408 and close after). Default 5,000; 0 = no limit. */
  headersTimeoutMs?: number;
  /** Most ms to receive a whole request, body included (408 and close after). Default 30,000; 0 = no limit. */
  requestTimeoutMs?: number;
  /** Idle-socket timeout in ms, responses included. Default 0 (none). */
  connectionTimeoutMs?: number;
}

function ms(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TokmeterTypeError(`expected an integer number of milliseconds >= 0 for ${name}, got ${String(v)}`);
  }
  return v;
}

/** Fastify server options that set the node server's timeouts. */
export function timeoutOptions(
  o: HttpTimeouts,
): Pick<FastifyServerOptions, 'requestTimeout' | 'connectionTimeout'> & { http: http.ServerOptions } {
  const headers = ms(o.headersTimeoutMs, 'headersTimeoutMs', 5_000);
  const request = ms(o.requestTimeoutMs, 'requestTimeoutMs', 30_000);
  const connection = ms(o.connectionTimeoutMs, 'connectionTimeoutMs', 0);
  if (headers > 0 && request > 0 && headers > request) {
    throw new TokmeterTypeError(`headersTimeoutMs (${headers}) must not exceed requestTimeoutMs (${request})`);
  }
  // Node checks the clocks every connectionsCheckingInterval ms (30 s by default, which let a slow client hold a
  // connection that long whatever the timeouts said).
  const shortest = Math.min(...[headers, request].filter((t) => t > 0), 2_000);
  return {
    requestTimeout: request,
    connectionTimeout: connection,
    http: { headersTimeout: headers, requestTimeout: request, connectionsCheckingInterval: Math.max(10, shortest / 2) },
  };
}

/**
 * Fastify's `clientErrorHandler`: errors of the HTTP parser and the request timeouts, before any route. Writes an
 * OpenAI-shaped response when the socket can still take one, then closes the connection (what node does).
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inProgress?.headersSent === true) {
    socket.destroy();
    return;
  }
  const h = toHttpError(
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError(err.code, 'the request headers are too large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ApiError(err.code, 'the request was not received in time; the connection is closed')
        : new ApiError('ERR_MALFORMED_HTTP', `malformed HTTP request (${err.code ?? 'parse error'})`),
  );
  const body = JSON.stringify(h.body);
  const headers = Object.entries({
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
    ...h.headers,
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const head = `HTTP/1.1 ${h.status} ${http.STATUS_CODES[h.status] ?? 'Error'}\r\n${headers}\r\n`;
  socket.end(head + body, () => socket.destroy()); // closed once written, whether or not the client reads on
}

/**
 * The methods each registered path answers, from fastify's `onRoute` hook, so that an unmatched request can be told
 * apart: a path that exists with other methods is a 405 with `Allow`, anything else a 404.
 */
export class RouteMethods {
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];
  private readonly byUrl = new Map<string, Set<string>>();

  /** Fastify `onRoute` hook (register it before the routes). */
  readonly onRoute = (r: RouteOptions): void => {
    const url = r.url;
    let methods = this.byUrl.get(url);
    if (!methods) {
      methods = new Set();
      this.byUrl.set(url, methods);
      const source = url
        .split('/')
        .map((part) =>
          part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/');
      this.routes.push({ pattern: new RegExp(`^${source}$`), methods });
    }
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) methods.add(m.toUpperCase());
  };

  /** The methods `path` (without its query) answers; empty when no route has this path. */
  allowed(path: string): string[] {
    const out = new Set<string>();
    for (const r of this.routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m);
    return [...out].sort();
  }
}
