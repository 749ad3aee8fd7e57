/**
 * Shared by the CUDA tests: whether this machine can run CUDA (asked through cudaStatus(), never assumed), and a
 * skip reason that the tests print, so a GPU-less run says what it did not test and why.
 */
import { cudaStatus, type CudaStatus } from '../../src/cuda/index.js';

let cached: Promise<CudaStatus> | undefined;
export function machineCudaStatus(): Promise<CudaStatus> {
  cached ??= cudaStatus();
  return cached;
}

/** null when a GPU test can run here, else the reason it cannot (printed by the caller). */
export async function gpuSkipReason(): Promise<string | null> {
  const s = await machineCudaStatus();
  if (s.ready) return null;
  return `no usable CUDA GPU here: ${s.problems.join('; ')}`;
}
