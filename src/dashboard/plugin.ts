/**
 * `registerDashboard(app, options)`: the usage dashboard as routes on the server's fastify instance.
 *
 *   GET  /dashboard                 the page (401 + a sign-in form without the admin key: no data)
 *   POST /dashboard/login           form or JSON { key } → session cookie, 303 to /dashboard (401 wrong; 429 + Retry-After
 *                                   when the client's address sent too many wrong keys)
 *   POST /dashboard/logout          ends the session
 *   GET  /dashboard/assets/app.js   the bundled page script (uPlot inside; no CDN) — admin only
 *   GET  /dashboard/assets/app.css  styles (public: the sign-in form uses them; no data)
 *   GET  /dashboard/api/summary     ?from&to&key&model&limit → totals, series, keys table, latest records
 *   GET  /dashboard/api/models      ?from&to&key → usage by model (the model list and table; loaded after first render)
 *   GET  /dashboard/api/live        live figures of this server
 *
 * Off unless an admin key is configured (nothing is registered, so /dashboard is a 404). The routes live in their
 * own fastify scope (their own body parser and error handler); the server must let `isDashboardUrl()` routes past
 * its API-key hook, since the dashboard has its own key.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TokmeterTypeError } from '../errors.js';
import { ApiError, toHttpError } from '../http/errors.js';
import type { Ledger, Meter } from '../usage/index.js';
import { DashboardAuth, SESSION_COOKIE, type AuthOptions } from './auth.js';
import { buildModels, buildSummary, DashboardQueryError, parseSummaryQuery } from './data.js';
import { CSP, dashboardPage, loginPage } from './html.js';
import type { LiveSource } from './live.js';
import { recentRecordsFor, type RecentRecords } from '../usage/index.js';
import { DASHBOARD_CSS, DASHBOARD_JS } from './vendor/assets.js';

export const DASHBOARD_PREFIX = '/dashboard';

export interface DashboardOptions extends AuthOptions {
  /** The admin key; undefined or '' leaves the dashboard off. At least 16 characters. */
  adminKey: string | undefined;
  /** The server's Meter: every number comes from `meter.report()` (as /v1/usage) and its ledger's `spend()`. */
  meter: Meter;
  /** The Meter's ledger (optional; must be `meter.ledger` when given). */
  ledger?: Ledger;
  /** Live figures of the running server (e.g. `liveStatsFromMetrics(metrics)`); without it the page says so. */
  live?: LiveSource;
  /** Source of the latest records; default: the SQLite ledger's file. */
  records?: RecentRecords;
  /** Tenants listed in the keys table even without usage in the period. */
  tenants?: () => Iterable<string>;
}

export function isDashboardUrl(url: string | undefined): boolean {
  return url !== undefined && (url === DASHBOARD_PREFIX || url.startsWith(`${DASHBOARD_PREFIX}/`));
}

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

/** Registers the dashboard when an admin key is configured; resolves to whether it did. Call before `app.ready()`. */
export async function registerDashboard(app: FastifyInstance, o: DashboardOptions): Promise<boolean> {
  if (o.adminKey === undefined || o.adminKey === '') return false;
  if (!o.meter?.ledger) throw new TokmeterTypeError('the dashboard needs a Meter with a ledger (start with --ledger)');
  if (o.ledger !== undefined && o.ledger !== o.meter.ledger) {
    throw new TokmeterTypeError("the dashboard's ledger must be the Meter's ledger (the one /v1/usage reports from)");
  }
  const auth = new DashboardAuth(o.adminKey, o);
  const meter = o.meter;
  const now = o.now ?? Date.now;
  const records = o.records ?? recentRecordsFor(meter.ledger);
  const prefix = DASHBOARD_PREFIX;

  await app.register(
    async (scope) => {
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: 4096 },
        (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      scope.addHook('onClose', async () => {
        o.live?.stop?.();
        await records?.close();
      });
      // Errors are OpenAI-shaped, from the server's one table (src/http/errors.ts), as on the API routes.
      const sendError = (reply: FastifyReply, err: unknown): FastifyReply => {
        const h = toHttpError(err);
        return secure(reply).status(h.status).headers(h.headers).header('cache-control', 'no-store').send(h.body);
      };
      scope.setErrorHandler((err, req, reply) => {
        if (err instanceof DashboardQueryError) {
          return sendError(reply, new ApiError('ERR_INVALID_QUERY', err.message, err.field));
        }
        if (toHttpError(err).status >= 500) req.log.error({ err }, 'dashboard request failed');
        return sendError(reply, err);
      });

      const denied = (req: FastifyRequest, reply: FastifyReply, html: boolean): FastifyReply => {
        if (html) {
          return secure(reply)
            .status(401)
            .header('cache-control', 'no-store')
            .type('text/html; charset=utf-8')
            .send(loginPage(prefix, undefined));
        }
        void reply.header('www-authenticate', 'Bearer realm="tokmeter-dashboard"');
        return sendError(reply, new ApiError('ERR_DASHBOARD_AUTH', 'the dashboard needs the admin key'));
      };
      const throttled = (reply: FastifyReply, retryAfterMs: number): FastifyReply =>
        secure(reply)
          .status(429)
          .header('cache-control', 'no-store')
          .header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
      const guard =
        (html: boolean) =>
        async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
          const a = auth.authorize(req);
          if (a === 'ok') return;
          if (a === 'denied') {
            await denied(req, reply, html);
            return;
          }
          await sendError(
            reply,
            new ApiError('ERR_AUTH_THROTTLED', 'too many wrong keys from this address; try again later', null, a),
          );
        };

      scope.get('/', { onRequest: guard(true) }, async (_req, reply) =>
        secure(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(dashboardPage(prefix)),
      );

      scope.post('/login', async (req, reply) => {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const r = auth.login(body.key, req.ip);
        secure(reply).header('cache-control', 'no-store');
        if (r.result === 'throttled') {
          const message = 'Too many failed sign-ins from this address; try again later.';
          return throttled(reply, r.retryAfterMs).type('text/html; charset=utf-8').send(loginPage(prefix, message));
        }
        if (r.result === 'wrong') {
          return reply.status(401).type('text/html; charset=utf-8').send(loginPage(prefix, 'Wrong admin key.'));
        }
        const attrs = [
          `${SESSION_COOKIE}=${r.token}`,
          `Path=${prefix}`,
          'HttpOnly',
          'SameSite=Strict',
          `Max-Age=${Math.floor(auth.sessionTtlMs / 1000)}`,
          ...(req.protocol === 'https' ? ['Secure'] : []),
        ];
        return reply.status(303).header('set-cookie', attrs.join('; ')).header('location', prefix).send();
      });

      scope.post('/logout', async (req, reply) => {
        auth.logout(req);
        return secure(reply)
          .status(303)
          .header('set-cookie', `${SESSION_COOKIE}=; Path=${prefix}; HttpOnly; SameSite=Strict; Max-Age=0`)
          .header('location', prefix)
          .send();
      });

      scope.get('/assets/app.css', async (_req, reply) =>
        secure(reply).header('cache-control', 'no-cache').type('text/css; charset=utf-8').send(DASHBOARD_CSS),
      );
      scope.get('/assets/app.js', { onRequest: guard(false) }, async (_req, reply) =>
        secure(reply)
          .header('cache-control', 'private, no-cache')
          .type('text/javascript; charset=utf-8')
          .send(DASHBOARD_JS),
      );

      scope.get('/api/summary', { onRequest: guard(false) }, async (req, reply) => {
        const q = parseSummaryQuery(req.query, now());
        const summary = await buildSummary({ meter, records, now, ...(o.tenants ? { tenants: o.tenants } : {}) }, q);
        return secure(reply).header('cache-control', 'no-store').send(summary);
      });

      scope.get('/api/models', { onRequest: guard(false) }, async (req, reply) => {
        const models = await buildModels(meter, parseSummaryQuery(req.query, now()));
        return secure(reply).header('cache-control', 'no-store').send(models);
      });

      scope.get('/api/live', { onRequest: guard(false) }, async (_req, reply) => {
        secure(reply).header('cache-control', 'no-store');
        const ledger = meter.ledger!.stats();
        const live = o.live ? await o.live() : null;
        return reply.send({
          at: now(),
          live,
          ledger: { pending: ledger.pending, connected: ledger.connected, lastError: ledger.lastError ?? null },
        });
      });
    },
    { prefix },
  );
  return true;
}
