// OrtRuntime — the process-wide ONNX Runtime: the dlopen'ed library, the initialised C++ API and one Ort::Env.
//
// Why run-time loading: the addon has no link-time dependency on libonnxruntime, so one prebuilt .node works with
// the bundled runtime or with whatever runtime a user points to (ONNXRUNTIME_DIR, e.g. a GPU build). The TypeScript
// layer resolves the library's path (src/runtime.ts) and calls Load() once before anything else.
//
// Lifetime: a documented singleton. Load() is idempotent: a second call with any path returns the
// runtime already loaded; the library is never unloaded (ORT's own threads and statics outlive any unload point).
// Thread affinity: Load() may be called from any thread; it is serialised by a mutex. Get() is lock-free after load.
// Every translation unit that uses the ORT C++ API is compiled with ORT_API_MANUAL_INIT (set by both build files).
#pragma once

#include <onnxruntime_cxx_api.h>

#include <memory>
#include <string>

namespace tokmeter::engine {

// The ORT API version tokmeter is compiled against (1.29 → 29). Older runtimes return no API table for it.
inline constexpr uint32_t kRequiredOrtApiVersion = ORT_API_VERSION;

class OrtRuntime {
 public:
  // Loads the library at `libraryPath` (dlopen), checks that it provides API version kRequiredOrtApiVersion, calls
  // Ort::InitApi and creates the Env. Throws tokmeter::Error ERR_RUNTIME_NOT_FOUND (cannot open: names the path and
  // dlerror) or ERR_RUNTIME_VERSION (too old: names both versions).
  static OrtRuntime& Load(const std::string& libraryPath);

  // The loaded runtime. Throws ERR_RUNTIME_NOT_LOADED if Load() has not succeeded yet.
  static OrtRuntime& Get();
  static bool IsLoaded() noexcept;

  const std::string& path() const noexcept { return path_; }
  const std::string& version() const noexcept { return version_; }
  Ort::Env& env() noexcept { return *env_; }

  OrtRuntime(const OrtRuntime&) = delete;
  OrtRuntime& operator=(const OrtRuntime&) = delete;

 private:
  OrtRuntime(std::string path, std::string version, void* handle);
  std::string path_;
  std::string version_;
  void* handle_;  // dlopen handle, intentionally never closed
  std::unique_ptr<Ort::Env> env_;
};

}  // namespace tokmeter::engine
