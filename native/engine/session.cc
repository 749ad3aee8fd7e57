#include "session.h"

#include <cstring>
#include <filesystem>
#include <sstream>
#include <unordered_set>

#include "../util/error.h"
#include "ort_runtime.h"

namespace tokmeter::engine {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape, const std::vector<std::string>* names = nullptr) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out << ", ";
    if (shape[i] < 0 && names != nullptr && i < names->size() && !(*names)[i].empty())
      out << (*names)[i];
    else if (shape[i] < 0)
      out << '?';
    else
      out << shape[i];
  }
  out << ']';
  return out.str();
}

std::string NameList(const std::vector<TensorInfo>& infos) {
  std::string out;
  for (const auto& info : infos) {
    if (!out.empty()) out += ", ";
    out += info.name;
  }
  return out;
}

TensorInfo DescribeTypeInfo(std::string name, const Ort::TypeInfo& type_info) {
  TensorInfo info;
  info.name = std::move(name);
  const ONNXType kind = type_info.GetONNXType();
  if (kind != ONNX_TYPE_TENSOR) {
    info.dtypeName = kind == ONNX_TYPE_SEQUENCE ? "sequence" : kind == ONNX_TYPE_MAP ? "map" : "non-tensor";
    return info;
  }
  auto tensor = type_info.GetTensorTypeAndShapeInfo();
  const auto element = tensor.GetElementType();
  info.dtype = FromOrtType(element);
  info.dtypeName = OrtTypeName(element);
  info.shape = tensor.GetShape();
  std::vector<const char*> symbolic(info.shape.size(), nullptr);
  tensor.GetSymbolicDimensions(symbolic.data(), symbolic.size());
  for (const char* s : symbolic) info.dimNames.emplace_back(s != nullptr ? s : "");
  return info;
}

}  // namespace

DType FromOrtType(ONNXTensorElementDataType type) noexcept {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DType::kFloat32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DType::kFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DType::kFloat64;
    default: return DType::kUnsupported;
  }
}

ONNXTensorElementDataType ToOrtType(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DType::kFloat16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DType::kBool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DType::kInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DType::kUint8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DType::kFloat64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    default: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
}

const char* OrtTypeName(ONNXTensorElementDataType type) noexcept {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return "string";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return "uint16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return "uint32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return "uint64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64: return "complex64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128: return "complex128";
    default: return DTypeName(FromOrtType(type));
  }
}

Ort::SessionOptions MakeOrtSessionOptions(const SessionOptions& options) {
  Ort::SessionOptions ort;
  if (options.intraOpThreads > 0) ort.SetIntraOpNumThreads(options.intraOpThreads);
  if (options.interOpThreads > 0) ort.SetInterOpNumThreads(options.interOpThreads);
  GraphOptimizationLevel level = ORT_ENABLE_ALL;
  if (options.graphOptimizationLevel == 0)
    level = ORT_DISABLE_ALL;
  else if (options.graphOptimizationLevel == 1)
    level = ORT_ENABLE_BASIC;
  else if (options.graphOptimizationLevel == 2)
    level = ORT_ENABLE_EXTENDED;
  ort.SetGraphOptimizationLevel(level);
  // ORT's intra-op pool threads spin between parallel sections and between Runs by default. Here they share the
  // cores with the inference thread (sampling, the next step's binding), the JS thread and the tokenizer pool: with
  // spinning on, the engine's time outside Run per step was 5.3-8.6% for int8 at batch 1 on an idle 2-core machine
  // (1.8-2.8% off) and decoding under load ran 2.7-3.4x slower; idle decode speed showed no difference beyond the
  // run-to-run noise. TOKMETER_ORT_SESSION_CONFIG=session.intra_op.allow_spinning=1 turns it back on.
  ort.AddConfigEntry("session.intra_op.allow_spinning", "0");
  return ort;
}

Session::Session(std::unique_ptr<Ort::Session> session) : session_(std::move(session)) {
  Ort::AllocatorWithDefaultOptions allocator;
  for (size_t i = 0; i < session_->GetInputCount(); ++i) {
    inputs_.push_back(
        DescribeTypeInfo(session_->GetInputNameAllocated(i, allocator).get(), session_->GetInputTypeInfo(i)));
  }
  for (size_t i = 0; i < session_->GetOutputCount(); ++i) {
    outputs_.push_back(
        DescribeTypeInfo(session_->GetOutputNameAllocated(i, allocator).get(), session_->GetOutputTypeInfo(i)));
  }
}

std::shared_ptr<Session> Session::FromFile(const std::string& path, const SessionOptions& options) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw Error(codes::kModelNotFound, "model file not found: " + path);
  }
  if (std::filesystem::is_directory(status)) {
    throw Error(codes::kModelInvalid, "expected an .onnx file, got a directory: " + path);
  }
  auto& runtime = OrtRuntime::Get();
  try {
    auto session = std::make_unique<Ort::Session>(runtime.env(), path.c_str(), MakeOrtSessionOptions(options));
    return std::shared_ptr<Session>(new Session(std::move(session)));
  } catch (const Ort::Exception& e) {
    throw Error(codes::kModelInvalid, "cannot load ONNX model " + path + ": " + e.what());
  }
}

std::shared_ptr<Session> Session::FromBytes(const void* data, size_t size, const SessionOptions& options) {
  if (size == 0) throw Error(codes::kModelInvalid, "cannot load ONNX model from an empty buffer");
  auto& runtime = OrtRuntime::Get();
  try {
    auto session = std::make_unique<Ort::Session>(runtime.env(), data, size, MakeOrtSessionOptions(options));
    return std::shared_ptr<Session>(new Session(std::move(session)));
  } catch (const Ort::Exception& e) {
    throw Error(codes::kModelInvalid, std::string("cannot load ONNX model from bytes: ") + e.what());
  }
}

void Session::Validate(const std::vector<TensorView>& feeds) const {
  std::unordered_set<std::string> seen;
  for (const auto& feed : feeds) {
    if (!seen.insert(feed.name).second) {
      throw Error(codes::kInvalidArgument, "input '" + feed.name + "' is given twice");
    }
    const TensorInfo* info = nullptr;
    for (const auto& candidate : inputs_)
      if (candidate.name == feed.name) info = &candidate;
    if (info == nullptr) {
      throw Error(codes::kUnknownInput,
                  "unknown input '" + feed.name + "'; the model's inputs are: " + NameList(inputs_));
    }
    if (info->dtype != feed.dtype) {
      throw Error(codes::kDtypeMismatch,
                  "input '" + feed.name + "' expects " + info->dtypeName + ", got " + DTypeName(feed.dtype));
    }
    if (info->shape.size() != feed.shape.size()) {
      throw Error(codes::kShapeMismatch,
                  "input '" + feed.name + "' expects rank " + std::to_string(info->shape.size()) + " " +
                      ShapeString(info->shape, &info->dimNames) + ", got " + ShapeString(feed.shape));
    }
    for (size_t d = 0; d < feed.shape.size(); ++d) {
      if (feed.shape[d] < 0) {
        throw Error(codes::kShapeMismatch,
                    "input '" + feed.name + "' has a negative dimension: " + ShapeString(feed.shape));
      }
      if (info->shape[d] >= 0 && info->shape[d] != feed.shape[d]) {
        throw Error(codes::kShapeMismatch, "input '" + feed.name + "' expects shape " +
                                               ShapeString(info->shape, &info->dimNames) + ", got " +
                                               ShapeString(feed.shape) + " (dimension " + std::to_string(d) + ")");
      }
    }
    const auto count = ElementCount(feed.shape);
    if (!count || *count * DTypeSize(feed.dtype) != feed.byteLength) {
      throw Error(codes::kShapeMismatch, "input '" + feed.name + "' has " +
                                             std::to_string(feed.byteLength / DTypeSize(feed.dtype)) +
                                             " elements but shape " + ShapeString(feed.shape) + " needs " +
                                             (count ? std::to_string(*count) : std::string("too many")));
    }
  }
  for (const auto& info : inputs_) {
    if (!seen.count(info.name)) {
      throw Error(codes::kMissingInput, "missing input '" + info.name + "' (" + info.dtypeName + " " +
                                            ShapeString(info.shape, &info.dimNames) + ")");
    }
  }
}

std::vector<OwnedTensor> Session::Run(const std::vector<TensorView>& feeds,
                                      const std::vector<std::string>& outputNames) {
  Validate(feeds);
  std::vector<std::string> names = outputNames;
  if (names.empty()) {
    for (const auto& info : outputs_) names.push_back(info.name);
  }
  for (const auto& name : names) {
    bool known = false;
    for (const auto& info : outputs_) known = known || info.name == name;
    if (!known)
      throw Error(codes::kUnknownOutput,
                  "unknown output '" + name + "'; the model's outputs are: " + NameList(outputs_));
  }

  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> values;
  std::vector<const char*> input_names;
  values.reserve(feeds.size());
  for (const auto& feed : feeds) {
    // ORT reads but never writes inputs; the const_cast is the C API's signature, not a mutation.
    values.push_back(Ort::Value::CreateTensor(memory, const_cast<void*>(feed.data), feed.byteLength, feed.shape.data(),
                                              feed.shape.size(), ToOrtType(feed.dtype)));
    input_names.push_back(feed.name.c_str());
  }
  std::vector<const char*> output_names;
  for (const auto& name : names) output_names.push_back(name.c_str());

  std::vector<Ort::Value> results;
  try {
    results = session_->Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                            output_names.data(), output_names.size());
  } catch (const Ort::Exception& e) {
    throw Error(codes::kInference, std::string("inference failed: ") + e.what());
  }

  std::vector<OwnedTensor> out;
  out.reserve(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    auto info = results[i].GetTensorTypeAndShapeInfo();
    OwnedTensor tensor;
    tensor.name = names[i];
    tensor.dtype = FromOrtType(info.GetElementType());
    if (tensor.dtype == DType::kUnsupported) {
      throw Error(codes::kInference, "output '" + names[i] + "' has type " + OrtTypeName(info.GetElementType()) +
                                         ", which tokmeter cannot return");
    }
    tensor.shape = info.GetShape();
    const size_t bytes = info.GetElementCount() * DTypeSize(tensor.dtype);
    tensor.bytes.resize(bytes);
    if (bytes) std::memcpy(tensor.bytes.data(), results[i].GetTensorRawData(), bytes);
    out.push_back(std::move(tensor));
  }
  return out;
}

}  // namespace tokmeter::engine
