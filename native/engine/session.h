// Session — one loaded ONNX graph that runs on CPU (or another execution provider later). Plain C++: no N-API.
//
// Lifetime: held by std::shared_ptr. The JS wrapper drops its reference on close(); work in flight holds its own
// reference, so the ORT session is destroyed only after the last Run() returns.
// Thread affinity: none. Run() may be called from several threads at once (ORT sessions are thread-safe for Run);
// construction and Run() are blocking and must not be called on the JS thread.
// Errors: tokmeter::Error with codes ERR_MODEL_NOT_FOUND, ERR_MODEL_INVALID, ERR_UNKNOWN_INPUT, ERR_MISSING_INPUT,
// ERR_UNKNOWN_OUTPUT, ERR_DTYPE_MISMATCH, ERR_SHAPE_MISMATCH, ERR_INFERENCE.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace tokmeter::engine {

struct SessionOptions {
  int intraOpThreads = 0;  // 0: ORT's default (one per physical core)
  int interOpThreads = 0;
  int graphOptimizationLevel = 99;  // 0 none, 1 basic, 2 extended, 99 all
};

class Session {
 public:
  static std::shared_ptr<Session> FromFile(const std::string& path, const SessionOptions& options);
  static std::shared_ptr<Session> FromBytes(const void* data, size_t size, const SessionOptions& options);

  const std::vector<TensorInfo>& inputs() const noexcept { return inputs_; }
  const std::vector<TensorInfo>& outputs() const noexcept { return outputs_; }

  // Validates the feeds against the graph's inputs (names, dtypes, ranks, fixed dims, byte lengths), runs the graph
  // and returns the requested outputs (all outputs when outputNames is empty) as owned tensors.
  std::vector<OwnedTensor> Run(const std::vector<TensorView>& feeds, const std::vector<std::string>& outputNames);

 private:
  explicit Session(std::unique_ptr<Ort::Session> session);
  void Validate(const std::vector<TensorView>& feeds) const;

  std::unique_ptr<Ort::Session> session_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
};

Ort::SessionOptions MakeOrtSessionOptions(const SessionOptions& options);

// Maps between ORT element types and tokmeter's DType.
DType FromOrtType(ONNXTensorElementDataType type) noexcept;
ONNXTensorElementDataType ToOrtType(DType dtype) noexcept;
const char* OrtTypeName(ONNXTensorElementDataType type) noexcept;

}  // namespace tokmeter::engine
