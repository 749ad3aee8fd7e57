// Variant resolution (model_files.h) and graph discovery (graph_spec.h), without ONNX Runtime.
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "engine/graph_spec.h"
#include "engine/model_files.h"
#include "test/test_util.h"

using namespace tokmeter::engine;
namespace fs = std::filesystem;

TEST(resolves_variants_by_transformers_js_names) {
  CHECK_EQ(ModelFileFor("fp32"), std::string("onnx/model.onnx"));
  CHECK_EQ(ModelFileFor("fp16"), std::string("onnx/model_fp16.onnx"));
  CHECK_EQ(ModelFileFor("q4"), std::string("onnx/model_q4.onnx"));
  CHECK_EQ(ModelFileFor("q8"), std::string("onnx/model_quantized.onnx"));
  CHECK_ERROR(ModelFileFor("fp8"), "ERR_INVALID_ARGUMENT", "q4f16");
  const fs::path dir = fs::temp_directory_path() / ("tokmeter-engine-files-" + std::to_string(::getpid()));
  fs::create_directories(dir / "onnx");
  std::ofstream(dir / "onnx" / "model_q4.onnx") << "x";
  CHECK_EQ(ResolveModelFile(dir.string(), "q4"), (dir / "onnx" / "model_q4.onnx").string());
  CHECK_ERROR(ResolveModelFile(dir.string(), "fp32"), "ERR_MODEL_NOT_FOUND", "available: q4 (onnx/model_q4.onnx)");
  fs::remove_all(dir);
  CHECK_ERROR(ResolveModelFile(dir.string(), "fp16"), "ERR_MODEL_NOT_FOUND", "onnx/model_fp16.onnx");
}

namespace {
TensorInfo T(std::string name, DType dtype, std::vector<int64_t> shape) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.dtypeName = DTypeName(dtype);
  t.shape = std::move(shape);
  return t;
}
struct Graph {
  std::vector<TensorInfo> in, out;
};
Graph Llama(int layers, DType kv, bool positions) {
  Graph g;
  g.in.push_back(T("input_ids", DType::kInt64, {-1, -1}));
  g.in.push_back(T("attention_mask", DType::kInt64, {-1, -1}));
  if (positions) g.in.push_back(T("position_ids", DType::kInt64, {-1, -1}));
  g.out.push_back(T("logits", DType::kFloat32, {-1, -1, 100}));
  for (int i = 0; i < layers; ++i) {
    for (const char* k : {"key", "value"}) {
      g.in.push_back(T("past_key_values." + std::to_string(i) + "." + k, kv, {-1, 2, -1, 8}));
      g.out.push_back(T("present." + std::to_string(i) + "." + k, kv, {-1, 2, -1, 8}));
    }
  }
  return g;
}
ModelConfig Config() {
  ModelConfig c;
  c.contextLength = 64;
  return c;
}
}  // namespace

TEST(discovers_layers_heads_dtype_and_optional_inputs) {
  auto g = Llama(3, DType::kFloat16, false);
  GraphSpec s = DiscoverGraph(g.in, g.out, Config(), "m.onnx");
  CHECK_EQ(s.numLayers, 3);
  CHECK_EQ(s.numKvHeads, 2);
  CHECK_EQ(s.headDim, 8);
  CHECK_EQ(s.vocabSize, 100);
  CHECK(s.kvDtype == DType::kFloat16);
  CHECK(s.hasAttentionMask && !s.hasPositionIds);
  CHECK_EQ(s.pastNames.size(), size_t{6});
  CHECK_EQ(s.presentNames[5], std::string("present.2.value"));
  CHECK_EQ(s.KvBytesPerToken(), size_t{3 * 2 * 2 * 8 * 2});
  auto p = Llama(1, DType::kFloat32, true);
  CHECK(DiscoverGraph(p.in, p.out, Config(), "m.onnx").hasPositionIds);
}

TEST(rejects_graphs_that_do_not_fit) {
  auto g = Llama(2, DType::kFloat32, true);
  ModelConfig c = Config();
  c.numKvHeads = 4;
  CHECK_ERROR(DiscoverGraph(g.in, g.out, c, "m.onnx"), "ERR_MODEL_INVALID", "KV heads = 2 but config.json says 4");
  c = Config();
  c.vocabSize = 99;
  CHECK_ERROR(DiscoverGraph(g.in, g.out, c, "m.onnx"), "ERR_MODEL_INVALID", "vocabulary size");
  auto missing = Llama(2, DType::kFloat32, true);
  missing.out.pop_back();
  CHECK_ERROR(DiscoverGraph(missing.in, missing.out, Config(), "m.onnx"), "ERR_MODEL_INVALID", "present.1.value");
  auto extra = Llama(1, DType::kFloat32, true);
  extra.in.push_back(T("use_cache_branch", DType::kBool, {1}));
  CHECK_ERROR(DiscoverGraph(extra.in, extra.out, Config(), "m.onnx"), "ERR_MODEL_INVALID", "use_cache_branch");
  auto nocache = Llama(0, DType::kFloat32, true);
  CHECK_ERROR(DiscoverGraph(nocache.in, nocache.out, Config(), "m.onnx"), "ERR_MODEL_INVALID", "with-past");
  auto int8kv = Llama(1, DType::kInt8, true);
  CHECK_ERROR(DiscoverGraph(int8kv.in, int8kv.out, Config(), "m.onnx"), "ERR_MODEL_INVALID", "float16");
  ModelConfig noctx;
  CHECK_ERROR(DiscoverGraph(g.in, g.out, noctx, "m.onnx"), "ERR_MODEL_INVALID", "max_position_embeddings");
}

TEST_MAIN()
