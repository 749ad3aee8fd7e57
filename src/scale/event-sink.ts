/**
 * Event sinks: a Ledger that publishes every accepted usage record as a usage event (events.ts) to a transport —
 * Redis Streams (redis-sink.ts) or Kafka (kafka-sink.ts). Everything but the transport is shared: serialisation
 * (`encodeUsageEvent`), batching, retries with backoff and durability all come from SpooledLedger (src/usage):
 *
 *   meter → append() → local spool (fdatasync; `run.result` resolves: accepted) → batches of `batchSize`
 *         → transport.send(batch) → spool segment deleted once every event in it was sent.
 *
 * So a server killed with SIGKILL loses nothing it had accepted: on restart the spool is replayed and the events
 * are sent again (at-least-once; consumers deduplicate on the event id). While the transport is down, events
 * wait in the spool (bounded; past the bound the Meter refuses new requests with SpoolFullError).
 *
 * Reports and spend are not answered by the stream: pass `billing` (a BillingDb on the ledger the billing worker
 * writes) to serve `/v1/usage` and budget loads from the billed data.
 */
import type { Registry } from 'prom-client';
import { TokmeterTypeError } from '../errors.js';
import {
  LedgerError,
  SpooledLedger,
  type NormalizedReportQuery,
  type ReportRow,
  type SpooledLedgerOptions,
  type UsageRecord,
} from '../usage/index.js';
import type { BillingDb } from './billing-db.js';
import { encodeUsageEvent } from './events.js';
import { Registry as PromRegistry, sinkMetrics } from './log.js';

/** One serialised event as every transport receives it. */
export interface OutgoingEvent {
  /** Idempotency id (= record id = event id). */
  id: string;
  /** The API key billed (Kafka message key: keeps a tenant's events in one partition, in order). */
  key: string;
  /** The CloudEvents JSON (events.ts). */
  value: string;
}

export interface EventTransport {
  readonly name: string;
  connect(): Promise<void>;
  /** Send one batch; resolve only when the broker has it (Redis: replies received; Kafka: acks=all). */
  send(events: OutgoingEvent[]): Promise<void>;
  disconnect(): Promise<void>;
  /** Whether an error means the connection must be rebuilt before the next try. */
  isConnectionError?(err: Error): boolean;
}

export interface EventSinkOptions extends SpooledLedgerOptions {
  /** Local spool directory (required: events wait here while the transport is unreachable). */
  spoolDir: string;
  /** CloudEvents `source` of this server, e.g. 'tokmeter://prod/server-a' (default 'tokmeter://<hostname>/<pid>'). */
  source?: string;
  /** The billing database, for report() and spend(). */
  billing?: BillingDb;
  registry?: Registry;
}

/** Serialise a batch exactly as every transport sends it (exported for the tests of each transport). */
export function serializeBatch(records: UsageRecord[], source: string): OutgoingEvent[] {
  return records.map((r) => ({ id: r.id, key: r.key, value: encodeUsageEvent(r, source) }));
}

export function defaultSource(): string {
  return `tokmeter://${process.env.HOSTNAME || 'localhost'}/${process.pid}`;
}

export class EventSinkLedger extends SpooledLedger {
  readonly source: string;
  readonly registry: Registry;
  private readonly billing: BillingDb | undefined;
  private readonly metrics: ReturnType<typeof sinkMetrics>;

  constructor(
    readonly transport: EventTransport,
    options: EventSinkOptions,
  ) {
    if (!options || typeof options.spoolDir !== 'string' || options.spoolDir === '') {
      throw new TokmeterTypeError(`${transport.name} sink: options.spoolDir (a local directory) is required`);
    }
    super(options.spoolDir, { batchSize: 500, ...options });
    this.source = options.source ?? defaultSource();
    this.billing = options.billing;
    this.registry = options.registry ?? new PromRegistry();
    this.metrics = sinkMetrics(this.registry);
  }

  protected async connect(): Promise<void> {
    await this.transport.connect();
  }

  protected async writeBatch(records: UsageRecord[]): Promise<void> {
    try {
      await this.transport.send(serializeBatch(records, this.source));
    } catch (err) {
      this.metrics.errors.inc({ transport: this.transport.name });
      throw err;
    }
    this.metrics.sent.inc({ transport: this.transport.name }, records.length);
  }

  protected override isConnectionError(err: Error): boolean {
    return this.transport.isConnectionError?.(err) ?? true;
  }

  protected async disconnect(): Promise<void> {
    await this.transport.disconnect();
  }

  private needBilling(what: string): BillingDb {
    if (!this.billing) {
      throw new LedgerError(
        'ERR_LEDGER',
        `${what}: this ledger publishes usage events; pass { billing: new BillingDb(postgresUrl) } to read the billed totals`,
      );
    }
    return this.billing;
  }

  protected async queryReport(q: NormalizedReportQuery): Promise<ReportRow[]> {
    return this.needBilling('report').reportNow({ ...q, from: q.from, to: q.to });
  }

  protected async querySpend(key: string, from: number, to: number): Promise<bigint> {
    return this.needBilling('spend').spendNow(key, from, to);
  }

  async get(id: string): Promise<UsageRecord | undefined> {
    return this.needBilling('get').get(id);
  }

  async count(): Promise<number> {
    return this.needBilling('count').count();
  }

  override async close(options?: { timeoutMs?: number }): Promise<void> {
    await super.close(options);
    await this.billing?.close();
  }
}
