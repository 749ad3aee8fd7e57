#include "ort_runtime.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

#include "../util/error.h"

namespace tokmeter::engine {
namespace {

std::mutex g_load_mutex;
std::atomic<OrtRuntime*> g_runtime{nullptr};

using GetApiBaseFn = const OrtApiBase* (*)();

}  // namespace

OrtRuntime::OrtRuntime(std::string path, std::string version, void* handle)
    : path_(std::move(path)), version_(std::move(version)), handle_(handle) {
  // Warnings only: ORT's info-level logging is noise for a library user.
  env_ = std::make_unique<Ort::Env>(ORT_LOGGING_LEVEL_ERROR, "tokmeter");
}

OrtRuntime& OrtRuntime::Load(const std::string& libraryPath) {
  std::lock_guard<std::mutex> lock(g_load_mutex);
  if (OrtRuntime* existing = g_runtime.load()) return *existing;

  // RTLD_LOCAL keeps ORT's bundled symbols (protobuf, abseil) out of the global namespace of the Node process.
  void* handle = dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw Error(codes::kRuntimeNotFound, "cannot load ONNX Runtime from " + libraryPath + ": " +
                                             (why != nullptr ? why : "unknown dlopen error"));
  }
  auto get_api_base = reinterpret_cast<GetApiBaseFn>(dlsym(handle, "OrtGetApiBase"));
  if (get_api_base == nullptr) {
    throw Error(codes::kRuntimeNotFound, libraryPath + " is not an ONNX Runtime library (no OrtGetApiBase symbol)");
  }
  const OrtApiBase* base = get_api_base();
  std::string version = base->GetVersionString != nullptr ? base->GetVersionString() : "unknown";
  const OrtApi* api = base->GetApi(kRequiredOrtApiVersion);
  if (api == nullptr) {
    throw Error(codes::kRuntimeVersion,
                "ONNX Runtime " + version + " at " + libraryPath + " is too old: tokmeter needs API version " +
                    std::to_string(kRequiredOrtApiVersion) + " (ONNX Runtime 1." +
                    std::to_string(kRequiredOrtApiVersion) +
                    " or newer). Set ONNXRUNTIME_DIR to a newer runtime or remove it to use the bundled one.");
  }
  Ort::InitApi(api);
  try {
    auto* runtime = new OrtRuntime(libraryPath, version, handle);  // a process-lifetime singleton, never freed
    g_runtime.store(runtime);
    return *runtime;
  } catch (const Ort::Exception& e) {
    throw Error(codes::kRuntimeNotFound, std::string("ONNX Runtime failed to initialise: ") + e.what());
  }
}

OrtRuntime& OrtRuntime::Get() {
  OrtRuntime* runtime = g_runtime.load();
  if (runtime == nullptr) {
    throw Error(codes::kRuntimeNotLoaded, "ONNX Runtime is not loaded yet (call loadRuntime first)");
  }
  return *runtime;
}

bool OrtRuntime::IsLoaded() noexcept { return g_runtime.load() != nullptr; }

}  // namespace tokmeter::engine
