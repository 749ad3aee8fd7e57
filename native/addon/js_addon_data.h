// Per-environment data of the addon (worker_threads each get their own): class constructors registered by the
// Init<Part> functions. No JS object lives in a process-wide static.
#pragma once

#include <napi.h>

#include <string>
#include <unordered_map>

namespace tokmeter::addon {

struct AddonData {
  std::unordered_map<std::string, Napi::FunctionReference> constructors;

  static AddonData& Of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
  Napi::Function Constructor(const std::string& name) { return constructors.at(name).Value(); }
};

}  // namespace tokmeter::addon
