/**
 * Server test helpers: a tiny model made by the model maker into a temp dir, with a small chat template added to
 * its tokenizer_config.json (the tiny preset has none), and a server on 127.0.0.1 with an ephemeral port.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeModel } from '../../src/modelgen/index.js';
import { hashKey, startServer, type RunningServer, type StartOptions } from '../../src/server/index.js';

/** A minimal chat template in the Llama-2 style (system/user/assistant headers, BOS first). */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{{ '[' + m['role'] + '] ' + m['content'] + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '[assistant] ' }}{% endif %}";

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tokmeter-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Makes the tiny model in `root/tiny` and gives it a chat template. */
export async function makeChatTinyModel(root: string): Promise<string> {
  const out = path.join(root, 'tiny');
  await makeModel({ size: 'tiny', out });
  const cfgPath = path.join(out, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  cfg.chat_template = CHAT_TEMPLATE;
  writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  return out;
}

export interface TestKey {
  key: string;
  id: string;
  tenant: string;
}

/** Writes a keys file for `keys` with tenant limits; returns its path. */
export function writeKeysFile(dir: string, keys: TestKey[], tenants: Record<string, unknown> = {}): string {
  const file = path.join(dir, `keys-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { tenants, keys: keys.map((k) => ({ id: k.id, tenant: k.tenant, sha256: hashKey(k.key) })) },
      null,
      2,
    ),
  );
  return file;
}

export async function startTestServer(o: Omit<StartOptions, 'port' | 'host'>): Promise<RunningServer> {
  return startServer({ threads: 1, defaultMetrics: false, ...o, port: 0, host: '127.0.0.1' });
}
