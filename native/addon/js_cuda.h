// cudaStatus(ortLibraryPath) and cudaPreflight(deviceId): the JS face of engine::ProbeCuda, engine::CudaPlugin and
// engine::AppendCudaProvider (native/engine/cuda_plugin.h, cuda_provider.h). Both run on a libuv worker (they dlopen
// large libraries) and settle a Promise. Registered from addon.cc; JS thread only.
#pragma once
#include <napi.h>

namespace tokmeter::addon {
void InitCuda(Napi::Env env, Napi::Object exports);
}
