/**
 * KafkaSink: the same usage events (events.ts) on a Kafka topic, for billing pipelines that already run Kafka.
 * Shares serialisation, batching, spool and retries with the Redis sink (event-sink.ts); only the transport
 * differs. Messages use the CloudEvents Kafka binding in structured mode: value = the event JSON, header
 * `content-type: application/cloudevents+json`, plus `ce_id` and `ce_type` headers for routing; the message key
 * is the API key, so one tenant's events stay in one partition, in order. The producer is idempotent with
 * acks = all (-1).
 *
 * UNTESTED AGAINST A LIVE BROKER: no Kafka broker can run where tokmeter is built, so only serialisation and
 * batching are tested (with a stand-in producer). Try it against your cluster before relying on it.
 */
import type { Producer, ProducerRecord } from 'kafkajs';
import { Kafka } from 'kafkajs';
import { TokmeterTypeError } from '../errors.js';
import { EventSinkLedger, type EventSinkOptions, type EventTransport, type OutgoingEvent } from './event-sink.js';
import { USAGE_EVENT_TYPE } from './events.js';

export const DEFAULT_TOPIC = 'tokmeter.usage';

/** The part of a kafkajs Producer the sink uses (tests pass a stand-in). */
export type KafkaProducerLike = Pick<Producer, 'connect' | 'send' | 'disconnect'>;

export interface KafkaSinkOptions extends EventSinkOptions {
  /** Broker addresses (host:port) — or pass `producer`. */
  brokers?: string[];
  clientId?: string;
  topic?: string;
  /** A ready kafkajs producer (or a stand-in); the sink connects and disconnects it. */
  producer?: KafkaProducerLike;
}

export function toKafkaMessages(events: OutgoingEvent[]): ProducerRecord['messages'] {
  return events.map((e) => ({
    key: e.key,
    value: e.value,
    headers: { 'content-type': 'application/cloudevents+json', ce_id: e.id, ce_type: USAGE_EVENT_TYPE },
  }));
}

export class KafkaTransport implements EventTransport {
  readonly name = 'kafka';
  private connected = false;

  constructor(
    private readonly producer: KafkaProducerLike,
    readonly topic: string,
  ) {}

  async connect(): Promise<void> {
    if (this.connected) return;
    await this.producer.connect();
    this.connected = true;
  }

  async send(events: OutgoingEvent[]): Promise<void> {
    await this.producer.send({ topic: this.topic, acks: -1, messages: toKafkaMessages(events) });
  }

  async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    await this.producer.disconnect();
  }
}

export class KafkaSink extends EventSinkLedger {
  constructor(options: KafkaSinkOptions) {
    let producer = options.producer;
    if (!producer) {
      if (!Array.isArray(options.brokers) || options.brokers.length === 0) {
        throw new TokmeterTypeError('KafkaSink: expected brokers (host:port strings) or a producer');
      }
      producer = new Kafka({ clientId: options.clientId ?? 'tokmeter', brokers: options.brokers }).producer({
        idempotent: true,
        maxInFlightRequests: 1,
      });
    }
    super(new KafkaTransport(producer, options.topic ?? DEFAULT_TOPIC), options);
  }

  override async close(options?: { timeoutMs?: number }): Promise<void> {
    await super.close(options);
    await this.transport.disconnect().catch(() => undefined);
  }
}
