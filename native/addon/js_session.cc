#include "js_session.h"

#include <cstring>
#include <filesystem>

#include "../util/error.h"
#include "js_addon_data.h"
#include "js_async.h"
#include "js_convert.h"
#include "js_errors.h"

namespace tokmeter::addon {
namespace {

constexpr const char* kClassName = "NativeSession";

Napi::Array DescribeAll(Napi::Env env, const std::vector<engine::TensorInfo>& infos) {
  Napi::Array out = Napi::Array::New(env, infos.size());
  for (uint32_t i = 0; i < infos.size(); ++i) {
    const auto& info = infos[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", info.name);
    o.Set("type", info.dtypeName);
    Napi::Array dims = Napi::Array::New(env, info.shape.size());
    for (uint32_t d = 0; d < info.shape.size(); ++d) {
      if (info.shape[d] >= 0)
        dims.Set(d, Napi::Number::New(env, static_cast<double>(info.shape[d])));
      else if (d < info.dimNames.size() && !info.dimNames[d].empty())
        dims.Set(d, info.dimNames[d]);
      else
        dims.Set(d, env.Null());
    }
    o.Set("dims", dims);
    out.Set(i, o);
  }
  return out;
}

engine::SessionOptions ToSessionOptions(const Napi::Value& value) {
  engine::SessionOptions options;
  if (value.IsUndefined() || value.IsNull()) return options;
  if (!value.IsObject()) ThrowTypeError(value.Env(), "expected an object for session options");
  auto o = value.As<Napi::Object>();
  options.intraOpThreads = static_cast<int>(OptionalInteger(o, "intraOpThreads", 0, 0, 1024));
  options.interOpThreads = static_cast<int>(OptionalInteger(o, "interOpThreads", 0, 0, 1024));
  options.graphOptimizationLevel = static_cast<int>(OptionalInteger(o, "graphOptimizationLevel", 99, 0, 99));
  return options;
}

class CreateSessionWorker : public PromiseWorker {
 public:
  CreateSessionWorker(Napi::Env env, const Napi::Value& source, engine::SessionOptions options)
      : PromiseWorker(env, "tokmeter:createSession"), options_(options) {
    if (source.IsString()) {
      path_ = source.As<Napi::String>().Utf8Value();
    } else if (source.IsTypedArray() && source.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
      auto bytes = source.As<Napi::Uint8Array>();
      data_ = bytes.Data();
      size_ = bytes.ByteLength();
      buffer_ = Napi::Persistent(source.As<Napi::Object>());  // keep the bytes alive while the worker reads them
    } else {
      ThrowTypeError(env, "expected a file path (string) or model bytes (Uint8Array) for the session source");
    }
  }

 protected:
  void Work() override {
    session_ = data_ != nullptr || path_.empty() ? engine::Session::FromBytes(data_, size_, options_)
                                                 : engine::Session::FromFile(path_, options_);
    std::error_code ec;
    bytes_ = data_ != nullptr ? size_ : std::filesystem::file_size(path_, ec);
  }
  Napi::Value Resolve(Napi::Env env) override {
    auto external = Napi::External<std::shared_ptr<engine::Session>>::New(env, &session_);
    Napi::Object object =
        AddonData::Of(env).Constructor(kClassName).New({external, Napi::Number::New(env, static_cast<double>(bytes_))});
    return object;
  }

 private:
  engine::SessionOptions options_;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;
  Napi::ObjectReference buffer_;
  std::shared_ptr<engine::Session> session_;
};

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<engine::Session> session, const Napi::Value& feeds,
            std::vector<std::string> outputNames)
      : PromiseWorker(env, "tokmeter:sessionRun"), session_(std::move(session)), output_names_(std::move(outputNames)) {
    if (!feeds.IsArray()) ThrowTypeError(env, "expected an array of feeds");
    auto array = feeds.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value item = array.Get(i);
      if (!item.IsObject()) ThrowTypeError(env, "expected each feed to be an object {name, type, dims, data}");
      auto feed = item.As<Napi::Object>();
      engine::TensorView view;
      view.name = ToString(feed.Get("name"), "feed.name");
      const std::string type = ToString(feed.Get("type"), "feed.type");
      auto dtype = engine::DTypeFromName(type);
      if (!dtype) ThrowTypeError(env, "unsupported tensor type '" + type + "' for input '" + view.name + "'");
      view.dtype = *dtype;
      view.shape = ToDims(feed.Get("dims"), "feed.dims");
      Napi::Value data = feed.Get("data");
      if (!data.IsTypedArray()) ThrowTypeError(env, "expected a typed array for the data of input '" + view.name + "'");
      auto typed = data.As<Napi::TypedArray>();
      view.data = static_cast<const uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset();
      view.byteLength = typed.ByteLength();
      refs_.push_back(Napi::Persistent(data.As<Napi::Object>()));  // borrowed until this worker is destroyed
      views_.push_back(std::move(view));
    }
  }

 protected:
  void Work() override { results_ = session_->Run(views_, output_names_); }
  Napi::Value Resolve(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (uint32_t i = 0; i < results_.size(); ++i) {
      auto& tensor = results_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", tensor.name);
      o.Set("type", engine::DTypeName(tensor.dtype));
      Napi::Array dims = Napi::Array::New(env, tensor.shape.size());
      for (uint32_t d = 0; d < tensor.shape.size(); ++d)
        dims.Set(d, Napi::Number::New(env, static_cast<double>(tensor.shape[d])));
      o.Set("dims", dims);
      auto buffer = Napi::ArrayBuffer::New(env, tensor.bytes.size());
      if (!tensor.bytes.empty()) std::memcpy(buffer.Data(), tensor.bytes.data(), tensor.bytes.size());
      std::vector<uint8_t>().swap(tensor.bytes);
      o.Set("data", buffer);
      out.Set(i, o);
    }
    return out;
  }

 private:
  std::shared_ptr<engine::Session> session_;
  std::vector<std::string> output_names_;
  std::vector<engine::TensorView> views_;
  std::vector<Napi::ObjectReference> refs_;
  std::vector<engine::OwnedTensor> results_;
};

}  // namespace

void JsSession::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, kClassName,
                                   {
                                       InstanceMethod<&JsSession::Inputs>("inputs"),
                                       InstanceMethod<&JsSession::Outputs>("outputs"),
                                       InstanceMethod<&JsSession::Run>("run"),
                                       InstanceMethod<&JsSession::Close>("close"),
                                   });
  AddonData::Of(env).constructors[kClassName] = Napi::Persistent(cls);
  exports.Set("createSession", Napi::Function::New<&JsSession::CreateSession>(env, "createSession"));
}

JsSession::JsSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsSession>(info) {
  // Only CreateSessionWorker constructs sessions; a direct `new` from JS gets a TypeError.
  if (info.Length() < 1 || !info[0].IsExternal()) {
    ThrowTypeError(info.Env(), "NativeSession cannot be constructed directly; use createSession()");
  }
  session_ = *info[0].As<Napi::External<std::shared_ptr<engine::Session>>>().Data();
  if (info.Length() > 1 && info[1].IsNumber()) {
    external_bytes_ = info[1].As<Napi::Number>().Int64Value();
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_bytes_);
  }
}

JsSession::~JsSession() {
  // Finalizers may run during environment teardown, when adjusting V8's counters is no longer allowed; the memory
  // itself is released by the shared_ptr either way.
  session_.reset();
}

Napi::Value JsSession::CreateSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info[0].IsString()) ToPath(info[0], "the model path");
    auto* worker = new CreateSessionWorker(env, info[0], ToSessionOptions(info[1]));
    worker->Queue();
    return worker->Promise();
  });
}

std::shared_ptr<engine::Session> JsSession::Require(Napi::Env env) const {
  if (!session_) throw MakeJsError(env, codes::kSessionClosed, "the session is closed");
  return session_;
}

Napi::Value JsSession::Inputs(const Napi::CallbackInfo& info) {
  return DescribeAll(info.Env(), Require(info.Env())->inputs());
}
Napi::Value JsSession::Outputs(const Napi::CallbackInfo& info) {
  return DescribeAll(info.Env(), Require(info.Env())->outputs());
}

Napi::Value JsSession::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto session = Require(env);
    std::vector<std::string> names;
    if (!info[1].IsUndefined()) names = ToStringArray(info[1], "outputNames");
    auto* worker = new RunWorker(env, std::move(session), info[0], std::move(names));
    worker->Queue();
    return worker->Promise();
  });
}

Napi::Value JsSession::Close(const Napi::CallbackInfo& info) {
  if (session_) {
    session_.reset();
    if (external_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -external_bytes_);
    external_bytes_ = 0;
  }
  return info.Env().Undefined();
}

void InitSession(Napi::Env env, Napi::Object exports) { JsSession::Init(env, exports); }

}  // namespace tokmeter::addon
