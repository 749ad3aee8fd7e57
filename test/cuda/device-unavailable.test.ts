/**
 * Device 'cuda' on a machine that lacks some piece (this CI machine: no GPU, no driver, usually no plug-in) fails
 * with DeviceUnavailableError naming the piece and its fix, and never crashes the process. On a machine with all
 * pieces the same calls succeed, and the test checks that instead.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceUnavailableError, cudaStatus, requireCuda } from '../../src/cuda/index.js';
import { TokmeterTypeError } from '../../src/errors.js';
import { machineCudaStatus } from './helpers.js';

const savedPlugin = process.env.TOKMETER_CUDA_PLUGIN;
afterEach(() => {
  if (savedPlugin === undefined) delete process.env.TOKMETER_CUDA_PLUGIN;
  else process.env.TOKMETER_CUDA_PLUGIN = savedPlugin;
});

// First in the file (a fresh process per file): the plug-in must not be loaded yet, since a loaded plug-in stays
// loaded and the variable is read only by a load.
describe('TOKMETER_CUDA_PLUGIN', () => {
  it('a path that does not exist is named in the error (no fallback to the plug-in beside the addon)', async () => {
    process.env.TOKMETER_CUDA_PLUGIN = '/nonexistent/dir/libtokmeter_cuda.so';
    const err = await requireCuda().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceUnavailableError);
    expect((err as DeviceUnavailableError).code).toBe('ERR_DEVICE_UNAVAILABLE');
    expect((err as Error).message).toContain('/nonexistent/dir/libtokmeter_cuda.so');
    expect((err as Error).message).toContain('TOKMETER_CUDA_PLUGIN');
    const status = await cudaStatus();
    expect(status.plugin.loaded).toBe(false);
    expect(status.plugin.candidates).toEqual([
      { path: '/nonexistent/dir/libtokmeter_cuda.so', source: 'TOKMETER_CUDA_PLUGIN' },
    ]);
  });
});

describe('cudaStatus()', () => {
  it('reports every piece without throwing, consistently', async () => {
    const s = await cudaStatus();
    expect(s.libraries.map((l) => l.name)).toEqual([
      'libcuda.so.1',
      'libcudart.so.13',
      'libcublas.so.13',
      'libcublasLt.so.13',
      'libcurand.so.10',
    ]);
    for (const lib of s.libraries) {
      if (lib.loadable) expect(lib.error).toBeNull();
      else expect(lib.error).toContain(lib.name); // dlerror() names the file it could not open
    }
    expect(s.plugin.candidates.length).toBeGreaterThan(0);
    if (s.plugin.loaded) {
      expect(s.plugin.path).toMatch(/libtokmeter_cuda\.so$/);
      expect(s.plugin.interfaceVersion).toBe(2); // TOKMETER_CUDA_INTERFACE_VERSION (native/cuda/interface.h)
    } else {
      expect(s.plugin.error).toMatch(/libtokmeter_cuda\.so|TOKMETER_CUDA_PLUGIN/);
    }
    // No driver → no devices; the device error then names the driver.
    const driver = s.libraries[0]!;
    if (!driver.loadable) {
      expect(s.devices).toEqual([]);
      expect(s.ready).toBe(false);
      if (s.plugin.loaded) expect(s.deviceError).toMatch(/libcuda\.so\.1/);
    }
    expect(s.ready).toBe(s.problems.length === 0);
    if (!s.ready) console.log(`cudaStatus(): not ready here:\n  - ${s.problems.join('\n  - ')}`);
  });
});

describe('requireCuda()', () => {
  it('names what is missing and how to fix it, or succeeds where everything is present', async () => {
    const s = await machineCudaStatus();
    const result = await requireCuda({ deviceId: 0 }).then(
      (ok) => ({ ok }),
      (err: unknown) => ({ err }),
    );
    if (s.ready) {
      expect('ok' in result && result.ok.deviceName.length > 0).toBe(true);
      return;
    }
    expect('err' in result).toBe(true);
    const err = (result as { err: unknown }).err;
    expect(err).toBeInstanceOf(DeviceUnavailableError);
    const message = (err as Error).message;
    console.log(`requireCuda() here: ${message}`);
    if (!s.plugin.loaded) expect(message).toContain('TOKMETER_CUDA=1 npm run build');
    else if (!s.libraries[0]!.loadable) expect(message).toContain('libcuda.so.1');
    if (s.provider.directory && !s.provider.cudaProvider) expect(message).toContain('libonnxruntime_providers');
    for (const lib of s.libraries.slice(1)) {
      // The provider reports the first library its loader misses; at least one missing one must be named.
      if (!lib.loadable && s.provider.cudaProvider && s.provider.sharedProvider) {
        expect(s.libraries.slice(1).some((l) => !l.loadable && message.includes(l.name))).toBe(true);
        break;
      }
    }
  });

  it('a device id beyond the visible GPUs is a DeviceUnavailableError; a bad one a TypeError', async () => {
    await expect(requireCuda({ deviceId: -1 })).rejects.toBeInstanceOf(TokmeterTypeError);
    await expect(requireCuda({ deviceId: 1.5 })).rejects.toBeInstanceOf(TokmeterTypeError);
    await expect(requireCuda({ deviceId: 1000 })).rejects.toBeInstanceOf(DeviceUnavailableError);
  });

  it('survives many failing calls in a row (no crash, no leak of state)', async () => {
    const s = await machineCudaStatus();
    if (s.ready) return;
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => requireCuda()));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DeviceUnavailableError);
    }
  });
});
