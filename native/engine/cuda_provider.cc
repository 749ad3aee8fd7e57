#include "cuda_provider.h"

#include <regex>
#include <string>
#include <unordered_map>

#include "../util/error.h"
#include "cuda_plugin.h"
#include "ort_runtime.h"

namespace tokmeter::engine {
namespace {

std::string Dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// What installs each library the CUDA provider needs.
std::string FixFor(const std::string& lib, const std::string& providerDir) {
  if (lib.rfind("libonnxruntime_providers", 0) == 0)
    return "the ONNX Runtime CUDA provider is not installed beside " + providerDir +
           ": build with `TOKMETER_CUDA=1 npm run build`, which fetches the CUDA 13 provider of ONNX Runtime 1.29.0 "
           "(com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, via `node scripts/fetch-onnxruntime.mjs --cuda`) and "
           "puts "
           "it beside the runtime, or set ONNXRUNTIME_DIR to a GPU build of ONNX Runtime";
  if (lib.rfind("libcuda.so", 0) == 0)
    return "the NVIDIA driver is not installed (libcuda.so.1 comes with the driver, version 580 or newer for CUDA 13)";
  std::string what;
  if (lib.rfind("libcublasLt", 0) == 0 || lib.rfind("libcublas", 0) == 0)
    what = "cuBLAS for CUDA 13 (e.g. the libcublas-13-0 package, or pip nvidia-cublas)";
  else if (lib.rfind("libcudart", 0) == 0)
    what = "the CUDA 13 runtime (e.g. the cuda-cudart-13-0 package, or pip nvidia-cuda-runtime)";
  else if (lib.rfind("libcurand", 0) == 0)
    what = "cuRAND for CUDA 13 (e.g. the libcurand-13-0 package, or pip nvidia-curand)";
  else if (lib.rfind("libcudnn", 0) == 0)
    what = "cuDNN 9 for CUDA 13";
  else if (lib.rfind("libcufft", 0) == 0)
    what = "cuFFT for CUDA 13";
  else
    what = "the library";
  return "install " + what + " and make it findable (ldconfig, or LD_LIBRARY_PATH before Node starts)";
}

}  // namespace

std::string DescribeCudaProviderFailure(const std::string& rawMessage, const std::string& ortLibraryPath) {
  std::string ortMessage = rawMessage;
  while (!ortMessage.empty() && (ortMessage.back() == '\n' || ortMessage.back() == ' ')) ortMessage.pop_back();
  const std::string dir = ortLibraryPath.empty() ? std::string("libonnxruntime.so.1") : Dirname(ortLibraryPath);
  // "libcublasLt.so.13: cannot open shared object file: No such file or directory" (dlerror through ORT).
  static const std::regex kMissing(R"(([A-Za-z0-9_.+-]+\.so[0-9.]*): cannot open shared object file)");
  std::smatch m;
  if (std::regex_search(ortMessage, m, kMissing)) {
    std::string lib = m[1].str();
    const size_t slash = lib.find_last_of('/');
    if (slash != std::string::npos) lib = lib.substr(slash + 1);
    return "CUDA is unavailable: " + lib + " cannot be loaded — " + FixFor(lib, dir) +
           ". (ONNX Runtime: " + ortMessage + ")";
  }
  if (ortMessage.find("not enabled in this build") != std::string::npos ||
      ortMessage.find("CUDA execution provider is not enabled") != std::string::npos)
    return "CUDA is unavailable: the ONNX Runtime library " + ortLibraryPath +
           " was built without the CUDA execution provider — use the bundled onnxruntime-node 1.29.0 library or set "
           "ONNXRUNTIME_DIR to a GPU build. (ONNX Runtime: " +
           ortMessage + ")";
  if (ortMessage.find("no CUDA-capable device") != std::string::npos ||
      ortMessage.find("cudaErrorNoDevice") != std::string::npos)
    return "CUDA is unavailable: no CUDA GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES). (ONNX Runtime: " +
           ortMessage + ")";
  if (ortMessage.find("CUDA driver version is insufficient") != std::string::npos ||
      ortMessage.find("cudaErrorInsufficientDriver") != std::string::npos)
    return "CUDA is unavailable: the NVIDIA driver is missing or older than CUDA 13 needs (driver 580 or newer). "
           "(ONNX Runtime: " +
           ortMessage + ")";
  return "";
}

void AppendCudaProvider(Ort::SessionOptions& options, const CudaProviderOptions& cuda) {
  const std::string ortPath = OrtRuntime::Get().path();
  if (cuda.deviceId < 0)
    throw Error(codes::kInvalidArgument, "expected a deviceId >= 0, got " + std::to_string(cuda.deviceId));
  try {
    Ort::CUDAProviderOptions v2;  // OrtCUDAProviderOptionsV2, released by the wrapper
    std::unordered_map<std::string, std::string> kv = {
        {"device_id", std::to_string(cuda.deviceId)},
        {"use_tf32", cuda.useTf32 ? "1" : "0"},
        {"do_copy_in_default_stream", "1"},
        {"cudnn_conv_algo_search", "HEURISTIC"},
    };
    if (cuda.gpuMemLimit > 0) kv["gpu_mem_limit"] = std::to_string(cuda.gpuMemLimit);
    v2.Update(kv);
    if (cuda.userComputeStream != nullptr) v2.UpdateWithValue("user_compute_stream", cuda.userComputeStream);
    options.AppendExecutionProvider_CUDA_V2(*v2);
  } catch (const Ort::Exception& e) {
    const std::string described = DescribeCudaProviderFailure(e.what(), ortPath);
    if (!described.empty()) throw Error(kDeviceUnavailable, described);
    throw Error(codes::kInternal, std::string("ONNX Runtime could not add the CUDA execution provider: ") + e.what());
  }
}

}  // namespace tokmeter::engine
