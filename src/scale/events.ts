/**
 * The usage event: one accepted UsageRecord wrapped in a CloudEvents-1.0-style JSON envelope (docs/EVENTS.md).
 *
 * Versioning: the schema version is part of `type` (`dev.tokmeter.usage.v1`). Additive changes (new optional fields
 * in `data`) keep v1; anything else is a new type, and consumers refuse types they do not know rather than guess.
 * `id` is the record's idempotency id, so every consumer can deduplicate on it (the billing worker does, through
 * the ledger's primary key). `data.cost` is a decimal string of pico-units (exact; JSON numbers are not).
 *
 * Serialisation is shared by every sink (Redis Streams, Kafka): `encodeUsageEvent` / `decodeUsageEvent`.
 */
import { TokmeterTypeError } from '../errors.js';
import { recordToJson, validateRecord, type UsageRecord, type UsageRecordJson } from '../usage/index.js';

export const USAGE_EVENT_TYPE = 'dev.tokmeter.usage.v1';
export const CLOUDEVENTS_SPECVERSION = '1.0';
export const DATA_CONTENT_TYPE = 'application/json';

export interface UsageEvent {
  specversion: typeof CLOUDEVENTS_SPECVERSION;
  /** The record's idempotency id. */
  id: string;
  /** Which deployment / server produced it, as a URI reference (e.g. `tokmeter://eu-1/server-a`). */
  source: string;
  type: typeof USAGE_EVENT_TYPE;
  /** RFC 3339 time the request was admitted (= data.timestamp). */
  time: string;
  /** The API key / tenant billed (= data.key). */
  subject: string;
  datacontenttype: typeof DATA_CONTENT_TYPE;
  data: UsageRecordJson;
}

const ENVELOPE_FIELDS = new Set(['specversion', 'id', 'source', 'type', 'time', 'subject', 'datacontenttype', 'data']);

export function toUsageEvent(record: UsageRecord, source: string): UsageEvent {
  return {
    specversion: CLOUDEVENTS_SPECVERSION,
    id: record.id,
    source,
    type: USAGE_EVENT_TYPE,
    time: new Date(record.timestamp).toISOString(),
    subject: record.key,
    datacontenttype: DATA_CONTENT_TYPE,
    data: recordToJson(record),
  };
}

/** One event as bytes on the wire (UTF-8 JSON, one object, no trailing newline). */
export function encodeUsageEvent(record: UsageRecord, source: string): string {
  return JSON.stringify(toUsageEvent(record, source));
}

/**
 * Parse and validate one event. Throws TokmeterTypeError (code ERR_INVALID_EVENT) naming what is wrong: unknown
 * specversion or type, unknown envelope fields, envelope fields that disagree with the record, an invalid record.
 */
export function decodeUsageEvent(text: string | Buffer): { event: UsageEvent; record: UsageRecord } {
  let o: unknown;
  try {
    o = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch (err) {
    throw new TokmeterTypeError(`usage event: not JSON (${(err as Error).message})`, 'ERR_INVALID_EVENT');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new TokmeterTypeError('usage event: expected a JSON object', 'ERR_INVALID_EVENT');
  }
  const e = o as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (!ENVELOPE_FIELDS.has(k)) throw new TokmeterTypeError(`usage event: unknown field '${k}'`, 'ERR_INVALID_EVENT');
  }
  if (e.specversion !== CLOUDEVENTS_SPECVERSION) {
    throw new TokmeterTypeError(
      `usage event: unsupported specversion ${JSON.stringify(e.specversion)} (expected '1.0')`,
      'ERR_INVALID_EVENT',
    );
  }
  if (e.type !== USAGE_EVENT_TYPE) {
    throw new TokmeterTypeError(
      `usage event: unsupported type ${JSON.stringify(e.type)} (this consumer reads '${USAGE_EVENT_TYPE}')`,
      'ERR_INVALID_EVENT',
    );
  }
  if (e.datacontenttype !== undefined && e.datacontenttype !== DATA_CONTENT_TYPE) {
    throw new TokmeterTypeError(
      `usage event: unsupported datacontenttype ${JSON.stringify(e.datacontenttype)}`,
      'ERR_INVALID_EVENT',
    );
  }
  if (typeof e.source !== 'string' || e.source === '') {
    throw new TokmeterTypeError('usage event: expected a non-empty string for source', 'ERR_INVALID_EVENT');
  }
  let record: UsageRecord;
  try {
    record = validateRecord(e.data);
  } catch (err) {
    throw new TokmeterTypeError(`usage event: invalid data: ${(err as Error).message}`, 'ERR_INVALID_EVENT');
  }
  if (e.id !== record.id) {
    throw new TokmeterTypeError(
      `usage event: id ${JSON.stringify(e.id)} differs from data.id ${JSON.stringify(record.id)}`,
      'ERR_INVALID_EVENT',
    );
  }
  if (e.subject !== undefined && e.subject !== record.key) {
    throw new TokmeterTypeError('usage event: subject differs from data.key', 'ERR_INVALID_EVENT');
  }
  if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) {
    throw new TokmeterTypeError('usage event: expected an RFC 3339 string for time', 'ERR_INVALID_EVENT');
  }
  return { event: e as unknown as UsageEvent, record };
}
