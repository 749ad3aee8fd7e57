#!/usr/bin/env node
// `npm start`: the demo — makes the demo model under .models/demo if it is missing, then serves it with the
// OpenAI-compatible server and an SQLite usage ledger, printing how to call it (src/cli/demo.ts).
import { spawnSync } from 'node:child_process';

const demo = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'demo', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(demo.status ?? 1);
