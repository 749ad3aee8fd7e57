/**
 * `tokmeter billing-worker`: the consumer (src/scale/billing-worker.ts) that bills usage events from Redis into
 * PostgreSQL. Registered by src/cli/index.ts (`registerBillingWorker(program)`). Runs until SIGINT/SIGTERM, then finishes the batch in hand.
 */
import type { Command } from 'commander';
import { DEFAULT_GROUP, startBillingWorker } from '../scale/billing-worker.js';
import { DEFAULT_STREAM } from '../scale/redis-sink.js';
import { action, intArg, onceSignal } from './util.js';

interface Flags {
  redis: string;
  ledger: string;
  table?: string;
  stream: string;
  group: string;
  consumer?: string;
  batch: number;
  claimIdleMs: number;
}

export function registerBillingWorker(program: Command): void {
  program
    .command('billing-worker')
    .description('bill usage events from a Redis Stream into the PostgreSQL ledger (run as many as you like)')
    .requiredOption('--redis <url>', 'Redis holding the usage stream (redis://…)')
    .requiredOption('--ledger <url>', 'PostgreSQL ledger (postgres://…)')
    .option('--table <name>', 'ledger table', 'usage_records')
    .option('--stream <key>', 'stream key', DEFAULT_STREAM)
    .option('--group <name>', 'consumer group', DEFAULT_GROUP)
    .option('--consumer <name>', 'consumer name (default host-pid-random; unique per instance)')
    .option('--batch <n>', 'events per read and per transaction', intArg(1, 100_000), 500)
    .option('--claim-idle-ms <n>', 'take over events pending this long on a dead consumer', intArg(1), 30_000)
    .action(
      action('billing-worker', async (f: Flags) => {
        if (!/^postgres(ql)?:\/\//.test(f.ledger))
          throw new Error(`--ledger must be a postgres:// URL, got ${f.ledger}`);
        const w = await startBillingWorker({
          redis: f.redis,
          postgres: f.ledger,
          stream: f.stream,
          group: f.group,
          batchSize: f.batch,
          claimIdleMs: f.claimIdleMs,
          ...(f.table !== undefined ? { table: f.table } : {}),
          ...(f.consumer !== undefined ? { consumer: f.consumer } : {}),
        });
        // Handle signals before announcing readiness: a caller that stops the worker as soon as it reads the line
        // below must get the graceful stop.
        const signal = onceSignal();
        process.stderr.write(`tokmeter billing-worker: ${w.worker.consumer} reading ${f.stream} (group ${f.group})\n`);
        const sig = await Promise.race([signal, w.done.then(() => undefined)]);
        if (sig) process.stderr.write(`tokmeter billing-worker: ${sig}, finishing the batch in hand\n`);
        await w.stop();
      }),
    );
}
