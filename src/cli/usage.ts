/**
 * `tokmeter usage`: usage reports from a ledger (table, --json or --csv). A reader: it never opens the spool, so it
 * runs beside a live server; records still waiting in the spool are counted and named, not reported. `--flush`
 * makes it a writer that first writes what a crashed server left in its spool.
 */
import type { Command } from 'commander';
import { openLedger } from '../server/index.js';
import { reportToCsv, reportToJson, type GroupBy } from '../usage/index.js';
import { action } from './util.js';

interface UsageFlags {
  ledger: string;
  spoolDir?: string;
  groupBy: string;
  from?: string;
  to?: string;
  key?: string;
  model?: string;
  currency: string;
  json?: boolean;
  csv?: boolean;
  flush?: boolean;
}

function time(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t))
    throw new Error(`expected an ISO date or epoch milliseconds for --${flag}, got ${JSON.stringify(v)}`);
  return t;
}

export function registerUsage(program: Command): void {
  program
    .command('usage')
    .description('usage report from a ledger (the database only; safe beside a running server), by key, model or day')
    .requiredOption('--ledger <spec>', 'sqlite:PATH or postgres://...')
    .option(
      '--spool-dir <dir>',
      'spool of a postgres ledger, read to count records not yet written (default .tokmeter/spool)',
    )
    .option('-g, --group-by <what>', 'key | model | day', 'key')
    .option('--from <date>', 'inclusive start (ISO date or epoch ms)')
    .option('--to <date>', 'exclusive end (ISO date or epoch ms)')
    .option('--key <tenant>', 'only this key (tenant)')
    .option('--model <name>', 'only this model')
    .option('--currency <code>', 'currency label of the costs', 'USD')
    .option('--json', 'JSON rows')
    .option('--csv', 'CSV rows')
    .option(
      '--flush',
      'first write the records waiting in a spool that no process owns (a crashed server); refused while one does',
    )
    .action(
      action('usage', async (f: UsageFlags) => {
        if (!['key', 'model', 'day'].includes(f.groupBy))
          throw new Error(`expected key, model or day for --group-by, got ${JSON.stringify(f.groupBy)}`);
        if (f.json && f.csv) throw new Error('--json and --csv conflict');
        // A reader unless told to flush: then a writer, which takes the spool only when no live process owns it.
        const ledger = openLedger(f.ledger, f.spoolDir, { readOnly: !f.flush });
        try {
          const from = time(f.from, 'from');
          const to = time(f.to, 'to');
          const rows = await ledger.report({
            groupBy: f.groupBy as GroupBy,
            ...(from !== undefined ? { from } : {}),
            ...(to !== undefined ? { to } : {}),
            ...(f.key !== undefined ? { key: f.key } : {}),
            ...(f.model !== undefined ? { model: f.model } : {}),
          });
          // After the report: a record moving from the spool to the database meanwhile is then in the report.
          const pending = await ledger.spoolPending();
          const note =
            pending.records === 0
              ? ''
              : `(${pending.records} more record${pending.records === 1 ? '' : 's'} accepted but not in the ` +
                `database yet, in the spool ${pending.dir}: ${
                  pending.ownerPid !== undefined
                    ? `process ${pending.ownerPid} is writing them`
                    : 'no process owns it; the next server on this ledger, or usage --flush, writes them'
                })\n`;
          if (f.csv || f.json) {
            process.stdout.write(
              f.csv ? reportToCsv(rows, f.currency) : `${JSON.stringify(reportToJson(rows, f.currency))}\n`,
            );
            process.stderr.write(note);
            return;
          }
          const json = reportToJson(rows, f.currency);
          const head = [f.groupBy, 'requests', 'prompt', 'cached', 'completion', 'total', 'cost'];
          const body = json.map((r) =>
            [
              r.group,
              r.requests,
              r.promptTokens,
              r.cachedTokens,
              r.completionTokens,
              r.totalTokens,
              `${r.cost} ${r.currency}`,
            ].map(String),
          );
          const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
          const fmt = (cells: string[]): string =>
            cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
          process.stdout.write(`${[fmt(head), ...body.map(fmt)].join('\n')}\n`);
          if (rows.length === 0) process.stdout.write('(no usage recorded)\n');
          process.stdout.write(note);
        } finally {
          await ledger.close();
        }
      }),
    );
}
