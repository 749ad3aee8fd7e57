// loadRuntime(path) and versions(): the JS face of engine::OrtRuntime. JS thread only.
#pragma once
#include <napi.h>

namespace tokmeter::addon {
void InitRuntime(Napi::Env env, Napi::Object exports);
}
