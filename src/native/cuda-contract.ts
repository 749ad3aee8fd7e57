/**
 * The CUDA slice of the native addon (native/addon/js_cuda.cc), part of
 * src/native/binding.ts's NativeAddon type; src/cuda/index.ts is the only module that uses it.
 */
export interface NativeCudaStatus {
  plugin: {
    loaded: boolean;
    path: string | null;
    error: string | null;
    interfaceVersion: number;
    candidates: { path: string; source: string }[];
  };
  provider: { directory: string | null; cudaProvider: boolean; sharedProvider: boolean };
  libraries: { name: string; role: string; loadable: boolean; error: string | null }[];
  devices: { index: number; name: string; computeCapability: string; totalMemory: number; freeMemory: number }[];
  deviceError: string | null;
  driverVersion: number;
  ready: boolean;
}

export interface NativeCudaPreflight {
  deviceId: number;
  deviceName: string;
  pluginPath: string;
}

export interface NativeCudaApi {
  cudaStatus(ortLibraryPath?: string | null): Promise<NativeCudaStatus>;
  cudaPreflight(deviceId: number): Promise<NativeCudaPreflight>;
}
