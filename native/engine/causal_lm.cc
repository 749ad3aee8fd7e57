#include "engine/causal_lm.h"

#include <chrono>
#include <cstring>
#include <filesystem>

#include "engine/half.h"
#include "engine/kv_cache.h"
#include "engine/model_files.h"
#include "engine/ort_runtime.h"
#include "util/error.h"

namespace tokmeter::engine {
namespace {

class OrtSequenceState final : public SequenceState {
 public:
  OrtSequenceState(const GraphSpec& spec, size_t capacity) : cache(spec, capacity) { mask.assign(capacity, 1); }
  size_t length() const noexcept override { return cache.length(); }
  size_t capacity() const noexcept override { return cache.capacity(); }
  void Terminate() noexcept override {
    terminated.store(true);
    try {
      run_options.SetTerminate();
    } catch (...) {
    }
  }

  KvCache cache;
  std::vector<int64_t> ids;
  std::vector<int64_t> positions;
  std::vector<int64_t> mask;          // all ones, capacity long: a prefix of it is the attention mask
  std::unique_ptr<uint8_t[]> logits;  // [n, vocab] of the last Forward; not zero-filled
  size_t logits_bytes = 0;
  Ort::RunOptions run_options;
  std::atomic<bool> terminated{false};
  std::chrono::steady_clock::time_point last_end{};
};

uint64_t SinceNanos(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

CausalLm::CausalLm(std::unique_ptr<Ort::Session> session, GraphSpec spec, size_t context, std::string file,
                   uint64_t bytes)
    : session_(std::move(session)),
      spec_(std::move(spec)),
      context_(context),
      file_(std::move(file)),
      file_bytes_(bytes),
      memory_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {}

std::shared_ptr<CausalLm> CausalLm::Load(const LoadOptions& options, const ModelConfig& config) {
  const std::string file = ResolveModelFile(options.dir, options.dtype);
  auto& runtime = OrtRuntime::Get();
  SessionOptions session_options;
  session_options.intraOpThreads = options.threads;
  session_options.interOpThreads = 1;
  Ort::SessionOptions ort = MakeOrtSessionOptions(session_options);
  std::unique_ptr<Ort::Session> session;
  try {
    session = std::make_unique<Ort::Session>(runtime.env(), file.c_str(), ort);
  } catch (const Ort::Exception& e) {
    throw Error(codes::kModelInvalid, "cannot load ONNX model " + file + ": " + e.what());
  }
  // Describe the graph with the foundation's Session helpers (same TensorInfo as everywhere else).
  std::vector<TensorInfo> inputs, outputs;
  Ort::AllocatorWithDefaultOptions allocator;
  auto describe = [](std::string name, const Ort::TypeInfo& type) {
    TensorInfo info;
    info.name = std::move(name);
    if (type.GetONNXType() != ONNX_TYPE_TENSOR) {
      info.dtypeName = "non-tensor";
      return info;
    }
    auto t = type.GetTensorTypeAndShapeInfo();
    info.dtype = FromOrtType(t.GetElementType());
    info.dtypeName = OrtTypeName(t.GetElementType());
    info.shape = t.GetShape();
    return info;
  };
  for (size_t i = 0; i < session->GetInputCount(); ++i)
    inputs.push_back(describe(session->GetInputNameAllocated(i, allocator).get(), session->GetInputTypeInfo(i)));
  for (size_t i = 0; i < session->GetOutputCount(); ++i)
    outputs.push_back(describe(session->GetOutputNameAllocated(i, allocator).get(), session->GetOutputTypeInfo(i)));
  GraphSpec spec = DiscoverGraph(inputs, outputs, config, file);

  std::error_code ec;
  uint64_t bytes = std::filesystem::file_size(file, ec);
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(file).parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    const std::string stem = std::filesystem::path(file).filename().string();
    if (name != stem && name.rfind(stem + "_data", 0) == 0) bytes += entry.file_size(ec);
  }
  std::shared_ptr<CausalLm> model(
      new CausalLm(std::move(session), std::move(spec), static_cast<size_t>(config.contextLength), file, bytes));
  if (options.prefixCache) model->prefix_cache_ = std::make_unique<PrefixCache>(options.kvCacheBytes);
  return model;
}

size_t CausalLm::ReusePrefix(SequenceState& sequence, std::span<const uint32_t> prompt) {
  if (!prefix_cache_) return 0;
  return prefix_cache_->Load(static_cast<OrtSequenceState&>(sequence).cache, prompt);
}

void CausalLm::KeepPrefix(SequenceState& sequence, std::span<const uint32_t> prompt) {
  if (prefix_cache_) prefix_cache_->Store(static_cast<OrtSequenceState&>(sequence).cache, prompt);
}

std::unique_ptr<SequenceState> CausalLm::NewSequence(size_t capacity) {
  if (capacity == 0 || capacity > context_) {
    throw Error("ERR_CONTEXT_LENGTH", "a sequence of " + std::to_string(capacity) +
                                          " tokens does not fit the model's context of " + std::to_string(context_));
  }
  return std::make_unique<OrtSequenceState>(spec_, capacity);
}

void CausalLm::Forward(SequenceState& sequence, std::span<const uint32_t> tokens, std::span<float> lastLogits) {
  const auto start = std::chrono::steady_clock::now();
  auto& seq = static_cast<OrtSequenceState&>(sequence);
  const size_t n = tokens.size();
  // A decode step: one token after an earlier Forward (a prefill of one token, e.g. after a prefix-cache hit that
  // left only the last prompt token, is not one).
  const bool decode = n == 1 && seq.last_end.time_since_epoch().count() != 0;
  if (decode) {
    timings_.decodeGapNanos +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(start - seq.last_end).count());
  }
  const size_t past = seq.cache.length();
  const size_t total = past + n;
  if (n == 0) throw Error(codes::kInvalidArgument, "Forward needs at least one token");
  if (total > seq.cache.capacity()) {
    throw Error("ERR_CONTEXT_LENGTH", std::to_string(total) + " tokens do not fit the sequence's capacity of " +
                                          std::to_string(seq.cache.capacity()));
  }
  if (lastLogits.size() != vocabSize()) throw Error(codes::kInternal, "logits buffer has the wrong size");
  if (seq.terminated.load()) throw Error("ERR_ABORTED", "generation aborted");

  seq.ids.resize(n);
  seq.positions.resize(n);
  for (size_t i = 0; i < n; ++i) {
    seq.ids[i] = tokens[i];
    seq.positions[i] = static_cast<int64_t>(past + i);
  }
  const size_t vocab = vocabSize();
  const size_t logit_size = DTypeSize(spec_.logitsDtype);
  if (seq.logits_bytes < n * vocab * logit_size) {
    seq.logits.reset(new uint8_t[n * vocab * logit_size]);
    seq.logits_bytes = n * vocab * logit_size;
  }

  const int64_t row[] = {1, static_cast<int64_t>(n)};
  const int64_t mask_shape[] = {1, static_cast<int64_t>(total)};
  const int64_t logits_shape[] = {1, static_cast<int64_t>(n), static_cast<int64_t>(vocab)};
  const int64_t heads = spec_.numKvHeads, dim = spec_.headDim;
  const int64_t past_shape[] = {1, heads, static_cast<int64_t>(past), dim};
  const int64_t present_shape[] = {1, heads, static_cast<int64_t>(total), dim};
  const size_t kv_elem = DTypeSize(spec_.kvDtype);
  const auto kv_type = ToOrtType(spec_.kvDtype);

  try {
    Ort::IoBinding binding(*session_);
    auto ids = Ort::Value::CreateTensor<int64_t>(memory_, seq.ids.data(), n, row, 2);
    binding.BindInput("input_ids", ids);
    Ort::Value mask{nullptr}, positions{nullptr};
    if (spec_.hasAttentionMask) {
      mask = Ort::Value::CreateTensor<int64_t>(memory_, seq.mask.data(), total, mask_shape, 2);
      binding.BindInput("attention_mask", mask);
    }
    if (spec_.hasPositionIds) {
      positions = Ort::Value::CreateTensor<int64_t>(memory_, seq.positions.data(), n, row, 2);
      binding.BindInput("position_ids", positions);
    }
    std::vector<Ort::Value> kv;
    kv.reserve(spec_.pastNames.size() * 2);
    const size_t per_token = static_cast<size_t>(heads * dim) * kv_elem;
    for (size_t t = 0; t < spec_.pastNames.size(); ++t) {
      kv.push_back(Ort::Value::CreateTensor(memory_, seq.cache.past(t), past * per_token, past_shape, 4, kv_type));
      binding.BindInput(spec_.pastNames[t].c_str(), kv.back());
      kv.push_back(
          Ort::Value::CreateTensor(memory_, seq.cache.present(t), total * per_token, present_shape, 4, kv_type));
      binding.BindOutput(spec_.presentNames[t].c_str(), kv.back());
    }
    auto logits = Ort::Value::CreateTensor(memory_, seq.logits.get(), n * vocab * logit_size, logits_shape, 3,
                                           ToOrtType(spec_.logitsDtype));
    binding.BindOutput("logits", logits);

    const auto run_start = std::chrono::steady_clock::now();
    session_->Run(seq.run_options, binding);
    const uint64_t run_nanos = SinceNanos(run_start);
    timings_.runNanos += run_nanos;
    if (decode) timings_.decodeRunNanos += run_nanos;
  } catch (const Ort::Exception& e) {
    if (seq.terminated.load()) throw Error("ERR_ABORTED", "generation aborted");
    throw Error(codes::kInference, std::string("inference failed: ") + e.what());
  }
  seq.cache.Advance(n);

  const uint8_t* last = seq.logits.get() + (n - 1) * vocab * logit_size;
  if (spec_.logitsDtype == DType::kFloat32) {
    std::memcpy(lastLogits.data(), last, vocab * sizeof(float));
  } else {
    const auto* half = reinterpret_cast<const uint16_t*>(last);
    for (size_t i = 0; i < vocab; ++i) lastLogits[i] = HalfToFloat(half[i]);
  }
  if (n > 1) {
    // The prefill's [n, vocab] logits (131 MB for 1024 tokens of a 32k vocabulary) are not kept for the decode steps.
    seq.logits.reset();
    seq.logits_bytes = 0;
  }
  seq.last_end = std::chrono::steady_clock::now();
  const uint64_t forward_nanos = SinceNanos(start);
  timings_.forwardNanos += forward_nanos;
  timings_.forwards += 1;
  if (decode) {
    timings_.decodeForwardNanos += forward_nanos;
    timings_.decodeForwards += 1;
  }
}

}  // namespace tokmeter::engine
