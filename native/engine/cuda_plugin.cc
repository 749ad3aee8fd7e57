#include "cuda_plugin.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>

#include "../util/error.h"

namespace tokmeter::engine {
namespace {

std::mutex g_plugin_mutex;
std::atomic<CudaPlugin*> g_plugin{nullptr};

const char* kBuildHint =
    "tokmeter was built without its CUDA plug-in: rebuild with `TOKMETER_CUDA=1 npm run build` (needs the CUDA 13 "
    "toolkit's nvcc; the library lands beside tokmeter.node), or set TOKMETER_CUDA_PLUGIN to the path of "
    "libtokmeter_cuda.so";

bool FileExists(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// The folder of the binary that contains this code (tokmeter.node), found through dladdr.
std::string OwnDirectory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&OwnDirectory), &info) == 0 || info.dli_fname == nullptr) return "";
  return Dirname(info.dli_fname);
}

std::string DlError() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown dlopen error";
}

CudaPlugin* TryLoad(const CudaPlugin::Candidate& c, std::string* error);

}  // namespace

std::vector<CudaPlugin::Candidate> CudaPlugin::Candidates() {
  std::vector<Candidate> out;
  if (const char* env = std::getenv(kCudaPluginEnv); env != nullptr && *env != '\0') {
    out.push_back({env, kCudaPluginEnv});
    return out;  // a named location that does not work is an error, never a silent fallback
  }
  const std::string own = OwnDirectory();
  if (!own.empty()) out.push_back({own + "/" + kCudaPluginFile, "beside the addon"});
  return out;
}

class CudaPluginLoader {
 public:
  static CudaPlugin* Make(std::string path, const TokmeterCudaInterface* api) {
    return new CudaPlugin(std::move(path), api);  // a process-lifetime singleton, never freed
  }
};

const CudaPlugin& CudaPlugin::Load() {
  if (CudaPlugin* p = g_plugin.load()) return *p;
  std::lock_guard<std::mutex> lock(g_plugin_mutex);
  if (CudaPlugin* p = g_plugin.load()) return *p;
  const std::vector<Candidate> candidates = Candidates();
  if (candidates.empty()) throw Error(kDeviceUnavailable, std::string("cannot locate the CUDA plug-in. ") + kBuildHint);
  std::string errors;
  for (const Candidate& c : candidates) {
    std::string error;
    if (CudaPlugin* p = TryLoad(c, &error)) {
      g_plugin.store(p);
      return *p;
    }
    errors += (errors.empty() ? "" : "; ") + error;
  }
  throw Error(kDeviceUnavailable, errors);
}

const CudaPlugin& CudaPlugin::Require(int deviceId) {
  const CudaPlugin& plugin = Load();
  if (deviceId < 0) throw Error(codes::kInvalidArgument, "expected a deviceId >= 0, got " + std::to_string(deviceId));
  int count = 0;
  plugin.Check(plugin.api().device_count(&count), "CUDA device query");
  if (deviceId >= count)
    throw Error(kDeviceUnavailable,
                "CUDA device " + std::to_string(deviceId) + " is not available: " + std::to_string(count) +
                    " GPU(s) visible (device ids 0.." + std::to_string(count - 1) + "; check CUDA_VISIBLE_DEVICES)");
  return plugin;
}

void CudaPlugin::Check(int status, const char* what) const {
  if (status == TOKMETER_CUDA_OK) return;
  const std::string message = std::string(what) + ": " + api_->last_error();
  switch (status) {
    case TOKMETER_CUDA_NO_DRIVER:
    case TOKMETER_CUDA_NO_DEVICE: throw Error(kDeviceUnavailable, message);
    case TOKMETER_CUDA_INVALID_ARGUMENT: throw Error(codes::kInvalidArgument, message);
    default: throw Error(codes::kInternal, message);
  }
}

namespace {

CudaPlugin* TryLoad(const CudaPlugin::Candidate& c, std::string* error) {
  if (!FileExists(c.path)) {
    *error = "the CUDA plug-in " + c.path + " (" + c.source + ") does not exist. " +
             (c.source == kCudaPluginEnv ? std::string("Fix TOKMETER_CUDA_PLUGIN or unset it.") : kBuildHint);
    return nullptr;
  }
  dlerror();
  void* handle = dlopen(c.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    *error = "cannot load the CUDA plug-in " + c.path + " (" + c.source + "): " + DlError() +
             ". Rebuild it with `TOKMETER_CUDA=1 npm run build`.";
    return nullptr;
  }
  auto get = reinterpret_cast<TokmeterCudaGetInterfaceFn>(dlsym(handle, TOKMETER_CUDA_GET_INTERFACE_SYMBOL));
  if (get == nullptr) {
    dlclose(handle);
    *error = c.path + " (" + c.source +
             ") is not a tokmeter CUDA plug-in (no " TOKMETER_CUDA_GET_INTERFACE_SYMBOL " symbol)";
    return nullptr;
  }
  const TokmeterCudaInterface* api = get(TOKMETER_CUDA_INTERFACE_VERSION);
  if (api == nullptr || api->version != TOKMETER_CUDA_INTERFACE_VERSION ||
      api->struct_size < sizeof(TokmeterCudaInterface)) {
    // The handle stays open: the plug-in may have initialised state; it is tiny and this is an error path.
    *error = "the CUDA plug-in " + c.path + " (" + c.source + ") does not provide interface version " +
             std::to_string(TOKMETER_CUDA_INTERFACE_VERSION) +
             (api != nullptr ? " (it provides version " + std::to_string(api->version) + ")" : std::string()) +
             ": it was built from another tokmeter version. Rebuild both with `TOKMETER_CUDA=1 npm run build`.";
    return nullptr;
  }
  return CudaPluginLoader::Make(c.path, api);  // the handle is never closed (see the header)
}

CudaLibraryProbe ProbeLibrary(const char* name, const char* role) {
  CudaLibraryProbe p;
  p.name = name;
  p.role = role;
  dlerror();
  void* h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
  if (h != nullptr) {
    p.loadable = true;
    dlclose(h);
  } else {
    p.error = DlError();
  }
  return p;
}

}  // namespace

CudaStatusReport ProbeCuda(const std::string& ortLibraryPath) {
  CudaStatusReport r;
  r.pluginCandidates = CudaPlugin::Candidates();
  try {
    const CudaPlugin& plugin = CudaPlugin::Load();
    r.pluginLoaded = true;
    r.pluginPath = plugin.path();
    r.interfaceVersion = plugin.api().version;
    int count = 0;
    if (plugin.api().device_count(&count) == TOKMETER_CUDA_OK) {
      r.deviceCount = count;
      for (int i = 0; i < count; ++i) {
        TokmeterCudaDeviceInfo info{};
        CudaDeviceProbe d;
        d.index = i;
        if (plugin.api().device_info(i, &info) == TOKMETER_CUDA_OK) {
          d.name = info.name;
          d.major = info.major;
          d.minor = info.minor;
          d.totalMemory = info.total_memory;
          d.freeMemory = info.free_memory;
          r.driverVersion = info.driver_version;
        }
        r.devices.push_back(std::move(d));
      }
    } else {
      r.deviceError = plugin.api().last_error();
    }
  } catch (const Error& e) {
    r.pluginError = e.what();
    r.deviceError = "unknown: the CUDA plug-in, which queries the GPUs, is not loaded";
  }
  if (!ortLibraryPath.empty()) {
    r.providerDirectory = Dirname(ortLibraryPath);
    r.providerLibrary = FileExists(r.providerDirectory + "/libonnxruntime_providers_cuda.so");
    r.providerSharedLibrary = FileExists(r.providerDirectory + "/libonnxruntime_providers_shared.so");
  }
  r.libraries.push_back(ProbeLibrary("libcuda.so.1", "NVIDIA driver"));
  r.libraries.push_back(ProbeLibrary("libcudart.so.13", "CUDA 13 runtime (ONNX Runtime CUDA provider)"));
  r.libraries.push_back(ProbeLibrary("libcublas.so.13", "cuBLAS 13 (ONNX Runtime CUDA provider)"));
  r.libraries.push_back(ProbeLibrary("libcublasLt.so.13", "cuBLASLt 13 (ONNX Runtime CUDA provider)"));
  r.libraries.push_back(ProbeLibrary("libcurand.so.10", "cuRAND (ONNX Runtime CUDA provider)"));
  return r;
}

}  // namespace tokmeter::engine
