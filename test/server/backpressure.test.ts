/**
 * Backpressure through the whole server: 64 SSE clients that stop reading. The server writes until a client's
 * socket is full, then stops taking chunks from the metered run, which stops taking them from the engine, which parks
 * the sequence (it keeps its KV and batch slot, nothing else runs for it). So what a stalled request costs in memory
 * is bounded by its socket plus the engine's window, whatever max_tokens it asked for. Closing the connections
 * aborts everything; every request is recorded once.
 *
 * The clients are raw sockets in one python3 process with a small receive buffer and segment size, so a socket is
 * full after a few dozen KB (Node cannot set SO_RCVBUF on a TCP socket; on loopback a default socket absorbs MBs).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel } from '../../src/modelgen/index.js';
import type { RunningServer } from '../../src/server/index.js';
import type { SqliteLedger } from '../../src/usage/index.js';
import { startTestServer, tempDir } from './helpers.js';

const CLIENTS = 64;
const MAX_BATCH = 4;
const CONTEXT = 16384;
const MAX_TOKENS = 15_000;

const hasPython = spawnSync('python3', ['-c', 'import socket'], { stdio: 'ignore' }).status === 0;

/** Opens N streaming requests, reads each one's headers, prints the request ids, then reads nothing until stdin ends. */
const SLOW_CLIENTS = String.raw`
import json, socket, sys
port, n, body = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
req = (b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.connect(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
ids = []
for s in socks:
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            raise SystemExit("connection closed before the headers")
        head += b
    lines = head.decode().split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise SystemExit("unexpected answer: " + head.decode() + s.recv(2000).decode())
    ids += [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("x-request-id:")]
print(json.dumps(ids), flush=True)
sys.stdin.read()
for s in socks:
    s.close()
`;

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;

beforeAll(async () => {
  if (!hasPython) return;
  tmp = tempDir('server-backpressure');
  const modelDir = path.join(tmp.dir, 'long');
  await makeModel({ size: 'tiny', context: CONTEXT, out: modelDir });
  server = await startTestServer({
    model: modelDir,
    maxBatch: MAX_BATCH,
    maxConcurrent: CLIENTS,
    ledger: `sqlite:${path.join(tmp.dir, 'usage.db')}`,
  });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

/** Starts `count` stalled streaming clients of `extra` body fields; resolves with their request ids. */
async function stalledClients(
  count: number,
  extra: Record<string, unknown> = {},
): Promise<{ ids: string[]; clients: ChildProcessWithoutNullStreams; exited: Promise<number | null> }> {
  // End-of-text is banned: sampled at temperature 1 from random weights, it would end a generation now and then,
  // and a request that finishes frees its slot for a queued one (the counts below expect every request to stay).
  const noEos = Object.fromEntries(server.model.tokenizer.eosTokenIds.map((id) => [String(id), -100]));
  const body = JSON.stringify({
    model: server.model.name,
    prompt: 'Once upon a time',
    max_tokens: MAX_TOKENS,
    temperature: 1,
    stream: true,
    logit_bias: noEos,
    ...extra,
  });
  const port = new URL(server.url).port;
  const clients = spawn('python3', ['-c', SLOW_CLIENTS, port, String(count), body]);
  let stderr = '';
  clients.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => clients.once('exit', resolve));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: clients.stdout }).once('line', resolve);
      void exited.then((code) => reject(new Error(`the clients exited (${code}): ${stderr}`)));
    });
    return { ids: JSON.parse(line) as string[], clients, exited };
  } catch (err) {
    clients.kill();
    throw err;
  }
}

describe.skipIf(!hasPython)('slow SSE readers', () => {
  it('park their sequences, hold bounded memory, and release everything when they go away', async () => {
    const { ids, clients, exited } = await stalledClients(CLIENTS);
    try {
      expect(new Set(ids).size).toBe(CLIENTS);

      // Every slot is held by a stalled reader, parked; the other requests wait in the engine's queue.
      await expect
        .poll(() => server.model.stats(), { timeout: 120_000, interval: 50 })
        .toMatchObject({ running: MAX_BATCH, parked: MAX_BATCH, queued: CLIENTS - MAX_BATCH });
      const parkedStats = server.model.stats();
      expect(parkedStats.lastBatch).toBeLessThanOrEqual(MAX_BATCH);

      // The readers go away: every generation is aborted, running or queued.
      clients.stdin.end();
      expect(await exited).toBe(0);
      await expect
        .poll(() => server.model.stats(), { timeout: 60_000, interval: 50 })
        .toMatchObject({ running: 0, parked: 0, queued: 0, prefilling: 0, kvReservedBytes: 0 });

      // Every request is recorded once, with the engine's count of what it processed.
      await server.meter.flush();
      const ledger = server.ledger as SqliteLedger;
      expect((await ledger.ids()).sort()).toEqual([...ids].sort());
      const records = await Promise.all(ids.map((id) => ledger.get(id)));
      let started = 0;
      for (const r of records) {
        expect(r).toBeDefined();
        expect(['abort', 'stop']).toContain(r!.finishReason);
        if (r!.completionTokens > 0) started++;
        // Bounded memory: a stalled request never ran further than its socket and the engine's window let it,
        // far below the max_tokens it asked for (without backpressure it would have generated all of them).
        expect(r!.completionTokens).toBeLessThan(MAX_TOKENS / 4);
      }
      // Only the requests that held a slot ever produced tokens (or the ones that took the slot of one that ended).
      expect(started).toBeGreaterThanOrEqual(MAX_BATCH);
      expect(started).toBeLessThan(CLIENTS);
    } finally {
      clients.kill();
    }
  }, 240_000);

  it('park every choice of an n > 1 request whose reader stops, and release them when it goes away', async () => {
    const requests = 2;
    const { ids, clients, exited } = await stalledClients(requests, { n: MAX_BATCH / requests });
    try {
      // Every choice of both requests holds a slot and is parked: nothing runs ahead into server memory.
      await expect
        .poll(() => server.model.stats(), { timeout: 120_000, interval: 50 })
        .toMatchObject({ running: MAX_BATCH, parked: MAX_BATCH, queued: 0 });
      clients.stdin.end();
      expect(await exited).toBe(0);
      await expect
        .poll(() => server.model.stats(), { timeout: 60_000, interval: 50 })
        .toMatchObject({ running: 0, parked: 0, queued: 0, prefilling: 0, kvReservedBytes: 0 });
      await server.meter.flush();
      const ledger = server.ledger as SqliteLedger;
      const records = await Promise.all(ids.map((id) => ledger.get(id)));
      for (const r of records) {
        expect(r).toBeDefined();
        expect(r!.completionTokens).toBeGreaterThan(0);
        expect(r!.completionTokens).toBeLessThan(MAX_TOKENS / 4);
      }
    } finally {
      clients.kill();
    }
  }, 240_000);
});
