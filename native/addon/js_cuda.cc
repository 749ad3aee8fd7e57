#include "js_cuda.h"

#include <string>
#include <vector>

#include "../engine/cuda_plugin.h"
#include "../engine/cuda_provider.h"
#include "../engine/ort_runtime.h"
#include "../util/error.h"
#include "js_async.h"
#include "js_convert.h"
#include "js_errors.h"

namespace tokmeter::addon {
namespace {

class CudaStatusWorker final : public PromiseWorker {
 public:
  CudaStatusWorker(Napi::Env env, std::string ortPath)
      : PromiseWorker(env, "tokmeter:cudaStatus"), ort_(std::move(ortPath)) {}

 protected:
  void Work() override { report_ = engine::ProbeCuda(ort_); }
  Napi::Value Resolve(Napi::Env env) override {
    const auto& r = report_;
    Napi::Object out = Napi::Object::New(env);
    Napi::Array candidates = Napi::Array::New(env, r.pluginCandidates.size());
    for (size_t i = 0; i < r.pluginCandidates.size(); ++i) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("path", r.pluginCandidates[i].path);
      c.Set("source", r.pluginCandidates[i].source);
      candidates.Set(static_cast<uint32_t>(i), c);
    }
    Napi::Object plugin = Napi::Object::New(env);
    plugin.Set("loaded", r.pluginLoaded);
    plugin.Set("path", r.pluginLoaded ? Napi::Value(Napi::String::New(env, r.pluginPath)) : env.Null());
    plugin.Set("error", r.pluginLoaded ? env.Null() : Napi::Value(Napi::String::New(env, r.pluginError)));
    plugin.Set("interfaceVersion", Napi::Number::New(env, r.interfaceVersion));
    plugin.Set("candidates", candidates);
    out.Set("plugin", plugin);

    Napi::Object provider = Napi::Object::New(env);
    provider.Set("directory",
                 r.providerDirectory.empty() ? env.Null() : Napi::Value(Napi::String::New(env, r.providerDirectory)));
    provider.Set("cudaProvider", r.providerLibrary);
    provider.Set("sharedProvider", r.providerSharedLibrary);
    out.Set("provider", provider);

    Napi::Array libs = Napi::Array::New(env, r.libraries.size());
    for (size_t i = 0; i < r.libraries.size(); ++i) {
      Napi::Object l = Napi::Object::New(env);
      l.Set("name", r.libraries[i].name);
      l.Set("role", r.libraries[i].role);
      l.Set("loadable", r.libraries[i].loadable);
      l.Set("error", r.libraries[i].loadable ? env.Null() : Napi::Value(Napi::String::New(env, r.libraries[i].error)));
      libs.Set(static_cast<uint32_t>(i), l);
    }
    out.Set("libraries", libs);

    Napi::Array devices = Napi::Array::New(env, r.devices.size());
    for (size_t i = 0; i < r.devices.size(); ++i) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("index", r.devices[i].index);
      d.Set("name", r.devices[i].name);
      d.Set("computeCapability", std::to_string(r.devices[i].major) + "." + std::to_string(r.devices[i].minor));
      d.Set("totalMemory", Napi::Number::New(env, static_cast<double>(r.devices[i].totalMemory)));
      d.Set("freeMemory", Napi::Number::New(env, static_cast<double>(r.devices[i].freeMemory)));
      devices.Set(static_cast<uint32_t>(i), d);
    }
    out.Set("devices", devices);
    out.Set("deviceError", r.deviceError.empty() ? env.Null() : Napi::Value(Napi::String::New(env, r.deviceError)));
    out.Set("driverVersion", Napi::Number::New(env, r.driverVersion));
    out.Set("ready", r.ready());
    return out;
  }

 private:
  std::string ort_;
  engine::CudaStatusReport report_;
};

// What Model.load(dir, {device: 'cuda'}) checks before any ORT work: the plug-in and the GPU, then the ORT CUDA
// provider on a throwaway SessionOptions. Every missing piece goes into one ERR_DEVICE_UNAVAILABLE message.
class CudaPreflightWorker final : public PromiseWorker {
 public:
  CudaPreflightWorker(Napi::Env env, int deviceId) : PromiseWorker(env, "tokmeter:cudaPreflight"), device_(deviceId) {}

 protected:
  void Work() override {
    std::vector<std::string> problems;
    try {
      const auto& plugin = engine::CudaPlugin::Require(device_);
      plugin_path_ = plugin.path();
      TokmeterCudaDeviceInfo info{};
      if (plugin.api().device_info(device_, &info) == TOKMETER_CUDA_OK) device_name_ = info.name;
    } catch (const Error& e) {
      if (e.code() != engine::kDeviceUnavailable) throw;
      problems.push_back(e.what());
    }
    try {
      Ort::SessionOptions so;
      engine::AppendCudaProvider(so, {.deviceId = device_});
    } catch (const Error& e) {
      // Another failure is reported as it is, unless a device problem is already known (then it joins the list).
      if (e.code() != engine::kDeviceUnavailable && problems.empty()) throw;
      problems.push_back(e.what());
    }
    if (problems.empty()) return;
    std::string message = "device 'cuda' is unavailable";
    if (problems.size() == 1) {
      message += ": " + problems[0];
    } else {
      for (size_t i = 0; i < problems.size(); ++i) message += "\n  " + std::to_string(i + 1) + ". " + problems[i];
    }
    throw Error(engine::kDeviceUnavailable, message);
  }
  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("deviceId", device_);
    out.Set("deviceName", device_name_);
    out.Set("pluginPath", plugin_path_);
    return out;
  }

 private:
  int device_;
  std::string plugin_path_;
  std::string device_name_;
};

Napi::Value CudaStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::string ort;
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) ort = ToPath(info[0], "ortLibraryPath");
    auto* worker = new CudaStatusWorker(env, ort);
    worker->Queue();
    return worker->Promise();
  });
}

Napi::Value CudaPreflight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const int device = static_cast<int>(ToInteger(info[0], "deviceId", 0, 1024));
    engine::OrtRuntime::Get();  // ERR_RUNTIME_NOT_LOADED on the JS thread, before any work is queued
    auto* worker = new CudaPreflightWorker(env, device);
    worker->Queue();
    return worker->Promise();
  });
}

}  // namespace

void InitCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaStatus", Napi::Function::New<CudaStatus>(env, "cudaStatus"));
  exports.Set("cudaPreflight", Napi::Function::New<CudaPreflight>(env, "cudaPreflight"));
}

}  // namespace tokmeter::addon
