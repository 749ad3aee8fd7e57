/**
 * Prometheus metrics (prom-client), one Registry per server so several servers can live in one process (tests).
 * Token counters come from the usage records the Meter accepted (what is billed), never from response text.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Ledger, UsageRecord } from '../usage/index.js';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly promptTokens: Counter<'model' | 'tenant' | 'key'>;
  readonly completionTokens: Counter<'model' | 'tenant' | 'key'>;
  readonly cachedTokens: Counter<'model' | 'tenant' | 'key'>;
  readonly requests: Counter<'route' | 'status'>;
  readonly latency: Histogram<'route'>;
  readonly ttft: Histogram<'model' | 'stream'>;
  /** Admitted generations that have not produced their first token yet. */
  readonly queueDepth: Gauge;
  /** Admitted generations not finished yet. */
  readonly inFlight: Gauge;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const labels = ['model', 'tenant', 'key'] as const;
    this.promptTokens = new Counter({
      name: 'tokmeter_prompt_tokens_total',
      help: 'Prompt tokens processed (billed)',
      labelNames: labels,
      registers,
    });
    this.completionTokens = new Counter({
      name: 'tokmeter_completion_tokens_total',
      help: 'Completion tokens sampled (billed)',
      labelNames: labels,
      registers,
    });
    this.cachedTokens = new Counter({
      name: 'tokmeter_cached_tokens_total',
      help: 'Prompt tokens served from the prefix cache',
      labelNames: labels,
      registers,
    });
    this.requests = new Counter({
      name: 'tokmeter_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'tokmeter_http_request_duration_seconds',
      help: 'Request latency, from the request to the last byte',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.ttft = new Histogram({
      name: 'tokmeter_time_to_first_token_seconds',
      help: 'Time from the request to the first generated token',
      labelNames: ['model', 'stream'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'tokmeter_queue_depth',
      help: 'Admitted generations waiting for their first token',
      registers,
    });
    this.inFlight = new Gauge({
      name: 'tokmeter_generations_in_flight',
      help: 'Admitted generations not finished',
      registers,
    });
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'tokmeter_' });
  }

  private readonly keyIds = new Map<string, string>();
  private ledger: Pick<Ledger, 'stats'> | undefined;

  /**
   * The ledger's state as gauges, read at each scrape: records pending in the spool, spool bytes and bound,
   * records written and replayed since open, and whether the database is connected. Call once per ledger.
   */
  observeLedger(ledger: Pick<Ledger, 'stats'>): void {
    const first = this.ledger === undefined;
    this.ledger = ledger;
    if (!first) return;
    const current = (): Pick<Ledger, 'stats'> | undefined => this.ledger;
    const gauge = (name: string, help: string, read: (s: ReturnType<Ledger['stats']>) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const ledger = current();
          if (ledger) this.set(read(ledger.stats()));
        },
      });
    };
    gauge(
      'tokmeter_ledger_pending_records',
      'Usage records in the spool not yet confirmed by the database',
      (s) => s.pending,
    );
    gauge('tokmeter_ledger_spool_bytes', 'Bytes in the ledger spool', (s) => s.spoolBytes);
    gauge(
      'tokmeter_ledger_spool_max_bytes',
      'Bound of the ledger spool (503 ledger_unavailable above)',
      (s) => s.spoolMaxBytes,
    );
    gauge(
      'tokmeter_ledger_written_records',
      'Records the database confirmed since the ledger opened',
      (s) => s.written,
    );
    gauge(
      'tokmeter_ledger_replayed_records',
      'Records replayed from the spool when the ledger opened',
      (s) => s.replayed,
    );
    gauge('tokmeter_ledger_connected', 'Whether the ledger database is reachable (1) or not (0)', (s) =>
      s.connected ? 1 : 0,
    );
  }

  /** Remember which API key made request `requestId`, for the labels of its record. */
  expect(requestId: string, keyId: string): void {
    this.keyIds.set(requestId, keyId);
  }

  /** Meter `onRecord` hook: every accepted record (success, abort, engine error) counts its tokens once. */
  onRecord(record: UsageRecord): void {
    const keyId = this.keyIds.get(record.id) ?? 'unknown';
    this.keyIds.delete(record.id);
    const l = { model: record.model, tenant: record.key, key: keyId };
    this.promptTokens.inc(l, record.promptTokens);
    this.completionTokens.inc(l, record.completionTokens);
    this.cachedTokens.inc(l, record.cachedTokens);
  }

  /** A request that never produced a record (refused at admission). */
  forget(requestId: string): void {
    this.keyIds.delete(requestId);
  }
}
