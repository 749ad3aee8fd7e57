/**
 * CUDA support: what is present (`cudaStatus()`), the check Model.load runs for device 'cuda' (`requireCuda()`), and
 * the error it throws (`DeviceUnavailableError`, code ERR_DEVICE_UNAVAILABLE).
 *
 * The CUDA code itself is a separately built plug-in (native/cuda → libtokmeter_cuda.so, `TOKMETER_CUDA=1 npm run
 * build`) that the addon loads only when asked for device 'cuda'; nothing here loads CUDA on import, and every
 * function works — reporting what is missing — on a machine with no GPU, no driver and no plug-in.
 */
import { DeviceUnavailableError, TokmeterTypeError, mapNativeErrors, toTokmeterError } from '../errors.js';
import { loadAddon } from '../native/binding.js';
import { ensureRuntime, runtimeCandidates } from '../runtime.js';
import fs from 'node:fs';
import type { NativeCudaApi, NativeCudaPreflight, NativeCudaStatus } from '../native/cuda-contract.js';

export { DeviceUnavailableError } from '../errors.js';

export interface CudaStatus {
  /**
   * Everything a CUDA model needs is present: the plug-in, the ORT provider libraries, the CUDA libraries they load
   * (`libraries`) and at least one GPU. Always `problems.length === 0`.
   */
  ready: boolean;
  /** libtokmeter_cuda.so: loaded (so: built and its interface version matches), where, or why not. */
  plugin: NativeCudaStatus['plugin'];
  /** ONNX Runtime's CUDA execution provider libraries beside libonnxruntime.so.1 (null directory: runtime not found). */
  provider: NativeCudaStatus['provider'];
  /** The NVIDIA driver and the CUDA 13 libraries the provider needs, each with whether dlopen finds it. */
  libraries: NativeCudaStatus['libraries'];
  /** Visible GPUs (empty when there are none or the plug-in is not loaded; then `deviceError` says why). */
  devices: NativeCudaStatus['devices'];
  deviceError: string | null;
  /** e.g. 13000 for a CUDA 13.0 driver; 0 when unknown. */
  driverVersion: number;
  /** One line per missing piece with its fix (empty when ready). */
  problems: string[];
}

function cudaApi(): NativeCudaApi {
  const addon = loadAddon() as unknown as Partial<NativeCudaApi>;
  if (typeof addon.cudaStatus !== 'function' || typeof addon.cudaPreflight !== 'function') {
    throw new DeviceUnavailableError(
      'ERR_DEVICE_UNAVAILABLE',
      'this tokmeter addon has no CUDA support compiled in (native/addon/js_cuda.cc is not registered): rebuild with ' +
        '`npm run build` from a tokmeter version with CUDA support',
    );
  }
  return addon as NativeCudaApi;
}

/** The ONNX Runtime library that would be used, without loading it (null when none is found). */
function ortLibraryPath(): string | null {
  const candidates = runtimeCandidates();
  const explicit = candidates.filter((c) => c.source === 'TOKMETER_ORT_LIBRARY' || c.source === 'ONNXRUNTIME_DIR');
  const found = (explicit.length > 0 ? explicit : candidates).find((c) => fs.existsSync(c.path));
  return found ? found.path : null;
}

function problemsOf(s: NativeCudaStatus): string[] {
  const out: string[] = [];
  if (!s.plugin.loaded && s.plugin.error) out.push(s.plugin.error);
  if (s.provider.directory === null)
    out.push('ONNX Runtime (libonnxruntime.so.1) was not found, so its CUDA provider cannot be checked');
  else if (!s.provider.cudaProvider || !s.provider.sharedProvider)
    out.push(
      `the ONNX Runtime CUDA provider (libonnxruntime_providers_cuda.so, libonnxruntime_providers_shared.so) is not in ` +
        `${s.provider.directory}: build with \`TOKMETER_CUDA=1 npm run build\` (it fetches them and puts them beside ` +
        `the runtime) or set ONNXRUNTIME_DIR to a GPU build of ONNX Runtime`,
    );
  for (const lib of s.libraries)
    if (!lib.loadable) out.push(`${lib.name} (${lib.role}) cannot be loaded: ${lib.error ?? 'not found'}`);
  if (s.plugin.loaded && s.devices.length === 0) out.push(s.deviceError ?? 'no CUDA GPU is visible');
  return out;
}

/**
 * Reports which CUDA pieces are present. Never throws for a missing piece (only for a missing addon); safe on a
 * machine without a GPU. Runs off the event loop (it dlopens large libraries).
 */
export async function cudaStatus(): Promise<CudaStatus> {
  const api = mapNativeErrors(() => cudaApi());
  let status: NativeCudaStatus;
  try {
    status = await api.cudaStatus(ortLibraryPath());
  } catch (err) {
    throw toTokmeterError(err);
  }
  return {
    ready: status.ready,
    plugin: status.plugin,
    provider: status.provider,
    libraries: status.libraries,
    devices: status.devices,
    deviceError: status.deviceError,
    driverVersion: status.driverVersion,
    problems: problemsOf(status),
  };
}

/**
 * What `Model.load(dir, { device: 'cuda', deviceId })` checks before any work: the plug-in, the GPU `deviceId` and
 * ONNX Runtime's CUDA provider. Throws DeviceUnavailableError naming every missing piece and its fix.
 */
export async function requireCuda(options: { deviceId?: number } = {}): Promise<NativeCudaPreflight> {
  const deviceId = options.deviceId ?? 0;
  if (!Number.isInteger(deviceId) || deviceId < 0) {
    throw new TokmeterTypeError(`expected a non-negative integer for deviceId, got ${String(deviceId)}`);
  }
  const api = mapNativeErrors(() => cudaApi());
  mapNativeErrors(() => ensureRuntime());
  try {
    return await api.cudaPreflight(deviceId);
  } catch (err) {
    throw toTokmeterError(err);
  }
}
