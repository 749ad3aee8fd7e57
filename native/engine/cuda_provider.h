// ONNX Runtime's CUDA execution provider for a session: appends it to Ort::SessionOptions and turns every way that
// can fail into tokmeter::Error ERR_DEVICE_UNAVAILABLE with the missing library named and the fix spelled out.
// Plain C++ (ORT C++ API only; no CUDA headers, no N-API).
//
// Where ORT finds the provider: libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so beside the
// libonnxruntime.so.1 in use (scripts/fetch-onnxruntime.mjs --cuda puts the CUDA 13 build of 1.29.0 there; or
// ONNXRUNTIME_DIR names a GPU build). The provider needs libcudart.so.13, libcublas.so.13, libcublasLt.so.13,
// libcurand.so.10 and the driver's libcuda.so.1 on the loader's path.
//
// Thread affinity: none (call on the model's load worker). Requires OrtRuntime::Get() to have succeeded.
//
// Call site: CausalLm::Load with device 'cuda', after CudaDevice::Open (cuda_device.h), passing its stream.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstddef>
#include <string>

namespace tokmeter::engine {

struct CudaProviderOptions {
  int deviceId = 0;
  // A cudaStream_t (as void*) that ORT computes on; nullptr lets ORT create its own. Sharing the sampler's stream
  // orders the graph's logits before the sampling kernels without a host synchronisation.
  void* userComputeStream = nullptr;
  size_t gpuMemLimit = 0;  // bytes for ORT's arena; 0 = no limit
  bool useTf32 = false;    // fp32 matmuls in TF32 (faster, ~1e-3 relative error): off so CPU parity holds
};

// Appends the CUDA execution provider (OrtCUDAProviderOptionsV2). Throws ERR_DEVICE_UNAVAILABLE (provider or CUDA
// library missing, no GPU) or ERR_INTERNAL (anything else ORT reports, with its message).
void AppendCudaProvider(Ort::SessionOptions& options, const CudaProviderOptions& cuda);

// The message AppendCudaProvider gives for an ORT failure text; `ortLibraryPath` locates the provider folder.
// Returns "" when the text is not a missing-library / missing-device failure. Exposed for unit tests.
std::string DescribeCudaProviderFailure(const std::string& ortMessage, const std::string& ortLibraryPath);

}  // namespace tokmeter::engine
