// `tokmeter serve` flags map onto startServer options; options that need each other are refused before anything
// starts.
import { expect, it } from 'vitest';
import { serveOptions } from '../../src/cli/serve.js';
import { startServer } from '../../src/server/index.js';
import { TokmeterTypeError } from '../../src/errors.js';

it('passes the engine and Redis flags through', () => {
  const o = serveOptions({
    model: 'm',
    port: 0,
    host: '127.0.0.1',
    maxBatch: 4,
    kvCacheBytes: 64 << 20,
    redis: 'redis://127.0.0.1:6379',
    redisEvents: 'redis://127.0.0.1:6380',
  });
  expect(o).toMatchObject({
    maxBatch: 4,
    kvCacheBytes: 64 << 20,
    redis: 'redis://127.0.0.1:6379',
    redisEvents: 'redis://127.0.0.1:6380',
  });
  expect(serveOptions({ model: 'm', port: 0, host: 'h' })).not.toHaveProperty('maxBatch');
  expect(serveOptions({ model: 'm', port: 0, host: 'h', device: 'cuda', deviceId: 1 })).toMatchObject({
    device: 'cuda',
    deviceId: 1,
  });
  expect(serveOptions({ model: 'm', port: 0, host: 'h' })).not.toHaveProperty('device');
});

it('passes the request clocks and chat bounds through', () => {
  const o = serveOptions({
    model: 'm',
    port: 0,
    host: 'h',
    headersTimeout: 2000,
    requestTimeout: 9000,
    maxChatMessages: 64,
    maxChatBytes: 4096,
    trustProxy: 'loopback, 10.0.0.0/8',
  });
  expect(o).toMatchObject({
    headersTimeoutMs: 2000,
    requestTimeoutMs: 9000,
    maxChatMessages: 64,
    maxChatContentBytes: 4096,
    trustProxy: ['loopback', '10.0.0.0/8'],
  });
  expect(serveOptions({ model: 'm', port: 0, host: 'h' })).not.toHaveProperty('headersTimeoutMs');
});

it('refuses redisEvents without redis', async () => {
  await expect(startServer({ model: '/nonexistent', redisEvents: 'redis://127.0.0.1:6380' })).rejects.toThrow(
    TokmeterTypeError,
  );
});

it('turns the prefix cache on unless --no-prefix-cache; its bound, --always-include-usage and --max-choices pass through', async () => {
  const { Command } = await import('commander');
  const { registerServe } = await import('../../src/cli/serve.js');
  const parse = (args: string[]) => {
    const program = new Command();
    registerServe(program);
    const serve = program.commands.find((c) => c.name() === 'serve')!;
    let flags: Parameters<typeof serveOptions>[0] | undefined;
    serve.action((f: Parameters<typeof serveOptions>[0]) => {
      flags = f;
    });
    program.parse(['node', 'tokmeter', 'serve', '-m', 'dir', ...args]);
    return serveOptions(flags!);
  };
  expect(parse([])).toMatchObject({ prefixCache: true });
  expect(parse([])).not.toHaveProperty('alwaysIncludeUsage');
  expect(parse(['--no-prefix-cache'])).toMatchObject({ prefixCache: false });
  expect(parse(['--prefix-cache-bytes', '1048576'])).toMatchObject({ prefixCache: true, prefixCacheBytes: 1 << 20 });
  expect(parse(['--always-include-usage', '--max-choices', '4'])).toMatchObject({
    alwaysIncludeUsage: true,
    maxChoices: 4,
  });
});
