/**
 * KafkaSink: serialisation and batching only, with a stand-in producer. It is NOT tested against a live broker
 * (none can run here); see docs/EVENTS.md.
 */
import { describe, expect, it } from 'vitest';
import type { ProducerRecord } from 'kafkajs';
import { decodeUsageEvent } from '../../src/scale/events.js';
import { KafkaSink, type KafkaProducerLike } from '../../src/scale/kafka-sink.js';
import { record, tempDir } from './helpers.js';

function standIn(failFirst = 0) {
  const sent: ProducerRecord[] = [];
  let failures = failFirst;
  const calls = { connect: 0, disconnect: 0 };
  const producer: KafkaProducerLike = {
    connect: async () => {
      calls.connect++;
    },
    disconnect: async () => {
      calls.disconnect++;
    },
    send: async (r: ProducerRecord) => {
      if (failures > 0) {
        failures--;
        throw new Error('KafkaJSConnectionError: broker down');
      }
      sent.push(r);
      return [];
    },
  };
  return { producer, sent, calls };
}

describe('KafkaSink (stand-in producer; untested against a live broker)', () => {
  it('sends each record once as a structured CloudEvent keyed by tenant, in batches of at most batchSize', async () => {
    const { producer, sent, calls } = standIn();
    const sink = new KafkaSink({
      producer,
      topic: 'usage',
      spoolDir: tempDir(),
      batchSize: 40,
      source: 'tokmeter://t/1',
    });
    const records = Array.from({ length: 100 }, (_, i) => record(i));
    await sink.append(records);
    await sink.flush({ timeoutMs: 10_000 });
    expect(sent.every((b) => b.topic === 'usage' && b.acks === -1)).toBe(true);
    expect(sent.map((b) => b.messages.length)).toEqual([40, 40, 20]);
    const msgs = sent.flatMap((b) => b.messages);
    expect(msgs.map((m) => decodeUsageEvent(m.value as string).record)).toEqual(records);
    for (const [i, m] of msgs.entries()) {
      expect(m.key).toBe(records[i]!.key);
      expect(m.headers).toEqual({
        'content-type': 'application/cloudevents+json',
        ce_id: records[i]!.id,
        ce_type: 'dev.tokmeter.usage.v1',
      });
      expect(JSON.parse(m.value as string).source).toBe('tokmeter://t/1');
    }
    await sink.close();
    expect(calls).toEqual({ connect: 1, disconnect: 1 });
  });

  it('keeps events in the spool and resends the batch when the broker fails', async () => {
    const { producer, sent } = standIn(2);
    const errors: string[] = [];
    const sink = new KafkaSink({
      producer,
      spoolDir: tempDir(),
      retryMinMs: 5,
      onError: (e) => errors.push(e.message),
    });
    const records = Array.from({ length: 7 }, (_, i) => record(1000 + i));
    await sink.append(records);
    await sink.flush({ timeoutMs: 10_000 });
    expect(errors).toHaveLength(2);
    expect(sent.flatMap((b) => b.messages).map((m) => decodeUsageEvent(m.value as string).record.id)).toEqual(
      records.map((r) => r.id),
    );
    expect(sink.stats().pending).toBe(0);
    await sink.close();
  });

  it('requires brokers or a producer', () => {
    expect(() => new KafkaSink({ spoolDir: tempDir() })).toThrow(/brokers/);
  });
});
