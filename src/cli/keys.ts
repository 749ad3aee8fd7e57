/** `tokmeter keys add`: makes an API key, prints it once, stores only its sha256 in the keys file. */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { hashKey, newApiKey, parseKeysFile, type KeysFile } from '../server/index.js';
import { action } from './util.js';

interface AddFlags {
  file: string;
  tenant: string;
  id?: string;
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage the API keys file of `tokmeter serve --keys`');
  keys
    .command('add')
    .description('create a key for a tenant; the key is printed once, the file keeps its sha256')
    .requiredOption('-f, --file <path>', 'keys file (created if missing)')
    .requiredOption('-t, --tenant <name>', 'tenant billed for the key')
    .option('--id <name>', 'a name for the key (default <tenant>-<n>)')
    .action(
      action('keys add', async (f: AddFlags) => {
        const file: KeysFile = existsSync(f.file)
          ? parseKeysFile(JSON.parse(readFileSync(f.file, 'utf8')))
          : { keys: [] };
        let id = f.id;
        for (let n = file.keys.length + 1; id === undefined || file.keys.some((k) => k.id === id); n++) {
          if (f.id !== undefined) throw new Error(`a key named '${f.id}' already exists in ${f.file}`);
          id = `${f.tenant}-${n}`;
        }
        const key = newApiKey();
        const next: KeysFile = { ...file, keys: [...file.keys, { id, tenant: f.tenant, sha256: hashKey(key) }] };
        parseKeysFile(next); // the same validation the server applies (names, duplicates)
        const tmp = `${f.file}.tmp-${process.pid}`;
        writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
        renameSync(tmp, f.file);
        process.stderr.write(`added key '${id}' for tenant '${f.tenant}' to ${f.file}; it is shown only once:\n`);
        process.stdout.write(`${key}\n`);
      }),
    );
}
