/**
 * Logging and metrics shared by src/scale. A log line is one JSON object (pino-compatible shape: level, time, msg);
 * callers may pass their own `log` function (the server passes its logger). Metrics go to a prom-client Registry
 * given by the caller (the server's), or to a private one.
 */
import { Counter, Histogram, Registry } from 'prom-client';

export type LogLevel = 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const LEVELS: Record<LogLevel, number> = { info: 30, warn: 40, error: 50 };

export const stderrLog: LogFn = (level, msg, fields) => {
  process.stderr.write(
    `${JSON.stringify({ level: LEVELS[level], time: Date.now(), name: 'tokmeter-scale', msg, ...fields })}\n`,
  );
};

/** get-or-create, so several limiters/sinks/workers can share one registry. */
function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function limiterMetrics(registry: Registry) {
  return {
    unavailable: metric(
      registry,
      'tokmeter_limiter_redis_unavailable_total',
      () =>
        new Counter({
          name: 'tokmeter_limiter_redis_unavailable_total',
          help: 'Limiter operations that could not reach Redis, by operation and by what the policy did (admitted = fail open, refused = fail closed, lost = a settlement or charge that was dropped)',
          labelNames: ['op', 'outcome'] as const,
          registers: [registry],
        }),
    ),
    refusals: metric(
      registry,
      'tokmeter_limiter_refusals_total',
      () =>
        new Counter({
          name: 'tokmeter_limiter_refusals_total',
          help: 'Requests refused by the shared limiter, by limit (rpm, tpm, budget)',
          labelNames: ['limit'] as const,
          registers: [registry],
        }),
    ),
    latency: metric(
      registry,
      'tokmeter_limiter_admit_seconds',
      () =>
        new Histogram({
          name: 'tokmeter_limiter_admit_seconds',
          help: 'Time the shared limiter adds to admission (one Redis round trip)',
          buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25],
          registers: [registry],
        }),
    ),
  };
}

export function sinkMetrics(registry: Registry) {
  return {
    sent: metric(
      registry,
      'tokmeter_events_sent_total',
      () =>
        new Counter({
          name: 'tokmeter_events_sent_total',
          help: 'Usage events handed to the event transport (Redis Streams, Kafka), by transport',
          labelNames: ['transport'] as const,
          registers: [registry],
        }),
    ),
    errors: metric(
      registry,
      'tokmeter_events_send_errors_total',
      () =>
        new Counter({
          name: 'tokmeter_events_send_errors_total',
          help: 'Failed event batches (retried from the spool), by transport',
          labelNames: ['transport'] as const,
          registers: [registry],
        }),
    ),
  };
}

export function workerMetrics(registry: Registry) {
  return {
    written: metric(
      registry,
      'tokmeter_billing_events_total',
      () =>
        new Counter({
          name: 'tokmeter_billing_events_total',
          help: 'Events processed by the billing worker, by outcome (committed, duplicate-in-batch, invalid, reclaimed, trimmed)',
          labelNames: ['outcome'] as const,
          registers: [registry],
        }),
    ),
    errors: metric(
      registry,
      'tokmeter_billing_errors_total',
      () =>
        new Counter({
          name: 'tokmeter_billing_errors_total',
          help: 'Billing worker errors (Redis or PostgreSQL), by where they happened',
          labelNames: ['where'] as const,
          registers: [registry],
        }),
    ),
  };
}

export { Registry };
