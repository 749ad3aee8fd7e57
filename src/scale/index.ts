/** Public surface of src/scale: the many-servers path (the `tokmeter/scale` entry). */
export { type Limiter, type LimitGrant, type LimitRequest, LimiterUnavailableError } from '../usage/index.js';
export { RedisLimiter, type RedisLimiterOptions, type UnavailablePolicy } from './redis-limiter.js';
export {
  USAGE_EVENT_TYPE,
  CLOUDEVENTS_SPECVERSION,
  toUsageEvent,
  encodeUsageEvent,
  decodeUsageEvent,
  type UsageEvent,
} from './events.js';
export { EventSinkLedger, type EventTransport, type OutgoingEvent, type EventSinkOptions } from './event-sink.js';
export { RedisStreamSink, DEFAULT_STREAM, type RedisStreamSinkOptions } from './redis-sink.js';
export { KafkaSink, DEFAULT_TOPIC, type KafkaSinkOptions, type KafkaProducerLike } from './kafka-sink.js';
export { BillingDb, type BillingDbOptions } from './billing-db.js';
export {
  BillingWorker,
  startBillingWorker,
  DEFAULT_GROUP,
  type BillingWorkerOptions,
  type BillingWorkerStats,
} from './billing-worker.js';
export { createRedisServices, type RedisServices, type RedisServicesOptions } from './services.js';
export type { LogFn, LogLevel } from './log.js';
