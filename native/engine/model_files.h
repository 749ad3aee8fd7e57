// Model files — which ONNX file of a model folder to load for a `dtype`, named as transformers.js names them:
//   fp32 → onnx/model.onnx, fp16 → model_fp16.onnx, int8 → model_int8.onnx, uint8 → model_uint8.onnx,
//   q8 → model_quantized.onnx, q4 → model_q4.onnx, q4f16 → model_q4f16.onnx, bnb4 → model_bnb4.onnx.
// External data (model*.onnx_data, ...) sits beside the file; ONNX Runtime opens it relative to the model path.
// Plain C++ (std::filesystem), unit-tested without ORT.
#pragma once

#include <string>
#include <vector>

namespace tokmeter::engine {

// The dtypes tokmeter knows, in the order listed in errors.
const std::vector<std::string>& KnownModelDtypes();
// "onnx/model_q4.onnx" for "q4"; throws ERR_INVALID_ARGUMENT for an unknown dtype.
std::string ModelFileFor(const std::string& dtype);
// The existing file for `dtype` under `dir`, or ERR_MODEL_NOT_FOUND naming the file looked for and the dtypes the
// folder does have.
std::string ResolveModelFile(const std::string& dir, const std::string& dtype);

}  // namespace tokmeter::engine
