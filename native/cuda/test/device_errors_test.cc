// The engine's device-'cuda' entry points on whatever machine runs the test: CudaPlugin (native/engine/cuda_plugin.cc)
// and AppendCudaProvider (native/engine/cuda_provider.cc) with the real ONNX Runtime 1.29 library.
//
// Usage: cuda_device_errors_test <libonnxruntime.so.1> <libtokmeter_cuda.so>
// The expectations follow from what is on the machine, probed independently with dlopen/stat:
//   - plug-in: TOKMETER_CUDA_PLUGIN pointing at nothing / at a non-plug-in / at the real plug-in; Require(0) succeeds
//     only with a driver and a GPU, else ERR_DEVICE_UNAVAILABLE naming libcuda.so.1 or the missing GPU;
//   - provider: with the provider libraries beside ORT and every CUDA library loadable, appending succeeds; with the
//     provider missing the error names libonnxruntime_providers_cuda.so and the fetch script; with a CUDA library
//     missing it names that library (e.g. libcublasLt.so.13).
#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "engine/cuda_plugin.h"
#include "engine/cuda_provider.h"
#include "engine/ort_runtime.h"
#include "util/error.h"

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                                             \
  do {                                                               \
    if (!(cond)) {                                                   \
      ++g_failures;                                                  \
      std::printf("  FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                      \
      std::printf("\n");                                             \
    }                                                                \
  } while (0)

bool Exists(const std::string& p) {
  struct stat st{};
  return stat(p.c_str(), &st) == 0;
}
bool Loadable(const char* lib) {
  void* h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL);
  if (h) dlclose(h);
  return h != nullptr;
}
bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs fn; returns the tokmeter::Error's code and message ("" code when nothing was thrown).
std::pair<std::string, std::string> Catch(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const tokmeter::Error& e) {
    return {e.code(), e.what()};
  } catch (const std::exception& e) {
    return {"<std::exception>", e.what()};
  }
  return {"", ""};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::printf("usage: %s <libonnxruntime.so.1> <libtokmeter_cuda.so>\n", argv[0]);
    return 2;
  }
  const std::string ort = argv[1], plugin = argv[2];
  using tokmeter::engine::CudaPlugin;

  // 1. Plug-in location errors (these never cache: a failed Load() is retried).
  setenv("TOKMETER_CUDA_PLUGIN", "/nonexistent/libtokmeter_cuda.so", 1);
  auto [code1, msg1] = Catch([] { CudaPlugin::Load(); });
  CHECK(code1 == "ERR_DEVICE_UNAVAILABLE" && Contains(msg1, "/nonexistent/libtokmeter_cuda.so") &&
            Contains(msg1, "TOKMETER_CUDA_PLUGIN"),
        "%s: %s", code1.c_str(), msg1.c_str());
  setenv("TOKMETER_CUDA_PLUGIN", ort.c_str(), 1);  // a real library, but not a plug-in
  auto [code2, msg2] = Catch([] { CudaPlugin::Load(); });
  CHECK(code2 == "ERR_DEVICE_UNAVAILABLE" && Contains(msg2, "not a tokmeter CUDA plug-in"), "%s: %s", code2.c_str(),
        msg2.c_str());
  unsetenv("TOKMETER_CUDA_PLUGIN");
  auto [code3, msg3] = Catch([] { CudaPlugin::Load(); });  // beside this test binary: nothing there
  CHECK(code3 == "ERR_DEVICE_UNAVAILABLE" && Contains(msg3, "TOKMETER_CUDA=1 npm run build"), "%s: %s", code3.c_str(),
        msg3.c_str());
  std::printf("ok   plug-in location errors\n");

  // 2. The real plug-in, and the device check.
  setenv("TOKMETER_CUDA_PLUGIN", plugin.c_str(), 1);
  auto [code4, msg4] = Catch([] { CudaPlugin::Load(); });
  CHECK(code4.empty(), "loading %s: %s %s", plugin.c_str(), code4.c_str(), msg4.c_str());
  const bool driver = Loadable("libcuda.so.1");
  auto [code5, msg5] = Catch([] { CudaPlugin::Require(0); });
  int gpus = 0;
  if (code5.empty()) {
    CudaPlugin::Load().api().device_count(&gpus);
    CHECK(driver && gpus > 0, "Require(0) succeeded without driver/GPU");
    auto [code6, msg6] = Catch([gpus] { CudaPlugin::Require(gpus); });
    CHECK(code6 == "ERR_DEVICE_UNAVAILABLE" && Contains(msg6, "GPU(s) visible"), "%s: %s", code6.c_str(), msg6.c_str());
  } else {
    CHECK(code5 == "ERR_DEVICE_UNAVAILABLE", "%s: %s", code5.c_str(), msg5.c_str());
    if (!driver)
      CHECK(Contains(msg5, "libcuda.so.1"), "no driver here, message must name libcuda.so.1: %s", msg5.c_str());
    std::printf("     (no GPU here: %s)\n", msg5.c_str());
  }
  const auto report = tokmeter::engine::ProbeCuda(ort);
  CHECK(report.pluginLoaded && report.interfaceVersion == TOKMETER_CUDA_INTERFACE_VERSION, "probe: %s",
        report.pluginError.c_str());
  CHECK(report.deviceCount == gpus, "probe device count %d vs %d", report.deviceCount, gpus);
  CHECK(report.libraries.size() == 5 && report.libraries[0].loadable == driver, "probe libraries");
  std::printf("ok   plug-in load and device check\n");

  // 3. The CUDA execution provider through the real ONNX Runtime.
  tokmeter::engine::OrtRuntime::Load(ort);
  const std::string dir = ort.substr(0, ort.find_last_of('/'));
  const bool provider =
      Exists(dir + "/libonnxruntime_providers_cuda.so") && Exists(dir + "/libonnxruntime_providers_shared.so");
  const char* needed[] = {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcuda.so.1"};
  std::string missing;
  for (const char* lib : needed)
    if (!Loadable(lib)) missing += std::string(missing.empty() ? "" : " ") + lib;
  Ort::SessionOptions so;
  auto [code7, msg7] = Catch([&] { tokmeter::engine::AppendCudaProvider(so, {}); });
  std::printf("     provider %s, missing CUDA libraries: [%s]\n     AppendCudaProvider: %s %s\n",
              provider ? "present" : "absent", missing.c_str(), code7.empty() ? "ok" : code7.c_str(), msg7.c_str());
  if (!provider) {
    CHECK(code7 == "ERR_DEVICE_UNAVAILABLE" && Contains(msg7, "libonnxruntime_providers") &&
              Contains(msg7, "fetch-onnxruntime.mjs --cuda"),
          "%s: %s", code7.c_str(), msg7.c_str());
  } else if (!missing.empty()) {
    bool named = false;
    for (const char* lib : needed)
      if (!Loadable(lib) && Contains(msg7, std::string(lib) + " cannot be loaded")) named = true;
    CHECK(code7 == "ERR_DEVICE_UNAVAILABLE" && named, "must name one of [%s]: %s %s", missing.c_str(), code7.c_str(),
          msg7.c_str());
  } else if (gpus > 0) {
    CHECK(code7.empty(), "everything is present, yet: %s %s", code7.c_str(), msg7.c_str());
  } else {
    // Libraries present but no GPU: ORT may fail now or at session creation; if now, it must be a device error.
    CHECK(code7.empty() || code7 == "ERR_DEVICE_UNAVAILABLE", "%s: %s", code7.c_str(), msg7.c_str());
  }
  // The message mapper on ORT's known texts.
  const std::string m1 = tokmeter::engine::DescribeCudaProviderFailure(
      "Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared "
      "object file: No such file or directory",
      "/x/lib/libonnxruntime.so.1");
  CHECK(Contains(m1, "libcublasLt.so.13 cannot be loaded") && Contains(m1, "cuBLAS"), "%s", m1.c_str());
  const std::string m2 = tokmeter::engine::DescribeCudaProviderFailure(
      "/x/lib/libonnxruntime_providers_cuda.so: cannot open shared object file: No such file or directory",
      "/x/lib/libonnxruntime.so.1");
  CHECK(Contains(m2, "libonnxruntime_providers_cuda.so cannot be loaded") && Contains(m2, "/x/lib"), "%s", m2.c_str());
  CHECK(tokmeter::engine::DescribeCudaProviderFailure("some other failure", "").empty(), "unrelated text mapped");
  std::printf("%s CUDA execution provider\n", g_failures ? "FAIL" : "ok  ");
  std::printf("%d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
