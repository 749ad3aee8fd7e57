// CudaPlugin — loads libtokmeter_cuda.so (native/cuda, built only with TOKMETER_CUDA=1) at run time and hands out
// its versioned function table (native/cuda/interface.h). Plain C++: no N-API, no CUDA headers, no CUDA link; the CPU
// addon compiles this file and never touches CUDA unless a model is loaded with device 'cuda'.
//
// Where the plug-in is looked for: TOKMETER_CUDA_PLUGIN (a file: if set and unusable, that is the error — no
// fallback), else libtokmeter_cuda.so beside the loaded tokmeter.node (where `TOKMETER_CUDA=1 npm run build` puts
// it). Every failure is a tokmeter::Error with code ERR_DEVICE_UNAVAILABLE whose message names the missing piece and
// the fix: plug-in not built, not a plug-in, interface version mismatch, no NVIDIA driver, no GPU, bad deviceId.
//
// Lifetime: a process-wide singleton like OrtRuntime: loaded once on first success, never unloaded (the
// CUDA runtime inside it owns driver state for the life of the process). A failed load is not cached: a later call
// tries again (e.g. after the user sets TOKMETER_CUDA_PLUGIN).
// Thread affinity: Load()/Require() may be called from any thread (serialised by a mutex); api() is lock-free.
//
// Call sites (the engine's device 'cuda' path): CudaDevice (cuda_device.h) requires the device, creates the stream
// that ORT computes on (AppendCudaProvider's user_compute_stream, cuda_provider.h), allocates and moves the KV cache
// (device_alloc, copy_2d, memset_2d) and owns the sampler (reset_slot per sequence, sample per step with the CPU
// Sampler's uniforms). CausalLm binds KV as "Cuda" tensors and leaves the logits to ORT on the device; only ids and
// log-probabilities reach the host.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "cuda/interface.h"

namespace tokmeter::engine {

inline constexpr const char* kDeviceUnavailable = "ERR_DEVICE_UNAVAILABLE";
inline constexpr const char* kCudaPluginFile = "libtokmeter_cuda.so";
inline constexpr const char* kCudaPluginEnv = "TOKMETER_CUDA_PLUGIN";

class CudaPlugin {
 public:
  // Loads the plug-in (once) and checks its interface version. Throws ERR_DEVICE_UNAVAILABLE.
  static const CudaPlugin& Load();
  // Load() plus: a driver, at least one GPU, and deviceId < the number of GPUs. Throws ERR_DEVICE_UNAVAILABLE.
  static const CudaPlugin& Require(int deviceId);

  // The places Load() tries, in order, each with where it came from ("TOKMETER_CUDA_PLUGIN", "beside the addon").
  struct Candidate {
    std::string path;
    std::string source;
  };
  static std::vector<Candidate> Candidates();

  const TokmeterCudaInterface& api() const noexcept { return *api_; }
  const std::string& path() const noexcept { return path_; }
  // Throws ERR_DEVICE_UNAVAILABLE for NO_DRIVER/NO_DEVICE, ERR_INVALID_ARGUMENT for INVALID_ARGUMENT, else ERR_INTERNAL
  // ("<what>: <last_error()>"); returns for status 0.
  void Check(int status, const char* what) const;

  CudaPlugin(const CudaPlugin&) = delete;
  CudaPlugin& operator=(const CudaPlugin&) = delete;

 private:
  friend class CudaPluginLoader;  // cuda_plugin.cc: the only place that constructs one
  CudaPlugin(std::string path, const TokmeterCudaInterface* api) : path_(std::move(path)), api_(api) {}
  std::string path_;
  const TokmeterCudaInterface* api_;
};

// What cudaStatus() reports (native/addon/js_cuda.cc): every piece, probed without throwing or crashing on a machine
// without any of them.
struct CudaLibraryProbe {
  std::string name;  // e.g. "libcublasLt.so.13"
  std::string role;  // e.g. "cuBLASLt (needed by the ONNX Runtime CUDA provider)"
  bool loadable = false;
  std::string error;  // dlerror() when not loadable
};
struct CudaDeviceProbe {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  size_t totalMemory = 0, freeMemory = 0;
};
struct CudaStatusReport {
  std::vector<CudaPlugin::Candidate> pluginCandidates;
  bool pluginLoaded = false;
  std::string pluginPath;
  std::string pluginError;  // the ERR_DEVICE_UNAVAILABLE message when not loaded
  uint32_t interfaceVersion = 0;
  std::string providerDirectory;            // beside libonnxruntime.so.1 (empty when unknown)
  bool providerLibrary = false;             // libonnxruntime_providers_cuda.so present there
  bool providerSharedLibrary = false;       // libonnxruntime_providers_shared.so present there
  std::vector<CudaLibraryProbe> libraries;  // driver, CUDA runtime, cuBLAS, cuBLASLt, cuRAND
  int deviceCount = 0;
  std::vector<CudaDeviceProbe> devices;
  std::string deviceError;  // why no device is usable (empty when deviceCount > 0)
  int driverVersion = 0;
  // Every piece present, the libraries the provider loads included (so `ready` agrees with the problems cudaStatus()
  // lists: a missing libcublasLt.so.13 would otherwise read as ready and fail only at Model.load).
  bool ready() const noexcept {
    if (!pluginLoaded || !providerLibrary || !providerSharedLibrary || deviceCount <= 0) return false;
    for (const auto& library : libraries)
      if (!library.loadable) return false;
    return true;
  }
};

// Probes everything; never throws. `ortLibraryPath` is the libonnxruntime.so.1 in use (or "" if not known yet).
CudaStatusReport ProbeCuda(const std::string& ortLibraryPath);

}  // namespace tokmeter::engine
