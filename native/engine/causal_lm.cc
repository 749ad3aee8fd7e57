#include "engine/causal_lm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>

#include "engine/batch_kv.h"
#include "engine/cuda_provider.h"
#include "engine/half.h"
#include "engine/kv_budget.h"
#include "engine/kv_cache.h"
#include "engine/model_files.h"
#include "engine/onnx_scan.h"
#include "engine/ort_runtime.h"
#include "engine/phase_timer.h"
#include "util/error.h"

namespace tokmeter::engine {
// One sequence's state. Its KV lives in its own KvCache (prefill, parked, or a model that runs it solo) or in a row
// of the model's BatchKv (`in_batch`; `cache` is then null). The destructor frees its batch row.
class OrtSequenceState final : public SequenceState {
 public:
  OrtSequenceState(CausalLm* owner, const GraphSpec& spec, size_t capacity)
      : owner(owner), cap(capacity), cache(std::make_unique<KvCache>(spec, capacity, owner->kvMemoryRef())) {
    mask.assign(capacity, 1);
  }
  ~OrtSequenceState() override {
    if (in_batch) owner->ReleaseRow(row);
    if (owner->cuda_) owner->cuda_->ReleaseSlot(slot);
  }
  size_t length() const noexcept override { return in_batch ? owner->batch_->rowLength(row) : cache->length(); }
  size_t capacity() const noexcept override { return cap; }
  void Terminate() noexcept override {
    terminated.store(true);
    try {
      run_options.SetTerminate();  // a prefill in progress; a batched step is never interrupted for one sequence
    } catch (...) {
    }
  }

  CausalLm* owner;
  size_t cap;
  std::unique_ptr<KvCache> cache;
  bool in_batch = false;
  size_t row = 0;
  int slot = -1;  // device: the CUDA sampler's slot (StartSampling)
  std::vector<int64_t> ids;
  std::vector<int64_t> positions;
  std::vector<int64_t> mask;          // all ones, capacity long: a prefix of it is the attention mask
  std::unique_ptr<uint8_t[]> logits;  // [n, vocab] of the last Forward; not zero-filled
  size_t logits_bytes = 0;
  Ort::RunOptions run_options;
  std::atomic<bool> terminated{false};
  std::chrono::steady_clock::time_point last_end{};
};

namespace {

Ort::MemoryInfo KvMemoryInfo(const CudaDevice* cuda) {
  if (cuda == nullptr) return Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  return Ort::MemoryInfo("Cuda", OrtDeviceAllocator, cuda->deviceId(), OrtMemTypeDefault);
}

// Why the graph cannot run a batch (batch_kv.h), or "" when it can. Batching needs a free batch dimension and an
// attention mask (rows of different lengths are padded with holes the mask marks). ORT's API cannot list nodes, so
// the op types come from the file (`ops`, onnx_scan.h); they decide the padding (BatchPadding), and a file the scan
// cannot read to the end is not known to be safe, so it runs one sequence at a time.
// DynamicQuantizeLinear (dynamic int8/uint8 exports, as onnxruntime's quantize_dynamic writes them) computes one
// activation scale over its whole input tensor, so a token's logits depend on every other token fed in the same
// call: other rows of a batch, padding, and a prompt's other chunks. Such graphs are exact only one sequence at a
// time with the prompt fed whole, as their reference runtimes run them; a prefix-cache hit would reuse KV computed
// under another prompt's scale.
constexpr const char* kRowsCoupleReason =
    "the graph quantizes activations with DynamicQuantizeLinear (one scale per tensor), so a row's logits would "
    "depend on the other rows of a batch";
bool RowsCouple(const OnnxOpScan& ops) { return ops.ok() && ops.Has("", "DynamicQuantizeLinear"); }

std::string NotBatchableReason(const GraphSpec& spec, const std::vector<TensorInfo>& inputs, const OnnxOpScan& ops) {
  if (!spec.hasAttentionMask) return "the graph has no attention_mask input";
  const TensorInfo* ids_info = nullptr;
  for (const auto& in : inputs)
    if (in.name == "input_ids") ids_info = &in;
  if (ids_info == nullptr || ids_info->shape.empty() || ids_info->shape[0] > 0)
    return "input_ids has a fixed batch dimension";
  if (!ops.ok()) {
    return std::string("the graph's operators could not be listed (") + OnnxScanStatusName(ops.status) + ": " +
           ops.error + ")";
  }
  if (RowsCouple(ops)) return std::string(kRowsCoupleReason);
  return "";
}

// The running batch's padding. com.microsoft GroupQueryAttention ignores the mask's holes: it takes each row's
// length (seqlens_k = ReduceSum(attention_mask) - 1) and assumes the row's valid keys come first, so its graphs get
// right-padded rows (in a left-padded batch a shorter row attended to holes and wrote its new key at the wrong
// place: wrong tokens, no error, test/model/gqa.test.ts). Every other graph honours the mask: left padding, where
// a step appends every row's key at the same column.
// The host KV arena over the whole budget: address space only until touched. A budget the system will not map
// (an absurd kvCacheBytes) leaves KV on plain host memory, as before arenas: the budget is the scheduler's
// accounting either way.
std::unique_ptr<KvArena> HostArena(size_t bytes) {
  try {
    return std::make_unique<KvArena>(HostKvMemory(), bytes);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

// Diagnostics and kernel knobs from the environment, read once per Load (README "ORT session knobs"):
//   TOKMETER_ORT_PROFILE=PREFIX   ORT's per-node profiler: every Run's kernels, written to PREFIX_<date>.json when
//                                 the model is disposed (bench/generate/profile.ts reads it).
//   TOKMETER_ORT_SESSION_CONFIG=key=value[;key=value...]   session config entries, e.g.
//                                 session.intra_op.allow_spinning=1 (the engine's default is 0: session.cc). An
//                                 entry without '=' is an error; an entry overrides the engine's value for its key.
void ApplyEnvironment(Ort::SessionOptions& ort) {
  if (const char* prefix = std::getenv("TOKMETER_ORT_PROFILE"); prefix != nullptr && *prefix != '\0')
    ort.EnableProfiling(prefix);
  const char* config = std::getenv("TOKMETER_ORT_SESSION_CONFIG");
  if (config == nullptr) return;
  std::string_view rest(config);
  while (!rest.empty()) {
    const size_t end = std::min(rest.find(';'), rest.size());
    const std::string_view entry = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      throw Error(
          codes::kInvalidArgument,
          "TOKMETER_ORT_SESSION_CONFIG: expected key=value entries separated by ';', got '" + std::string(entry) + "'");
    }
    try {
      ort.AddConfigEntry(std::string(entry.substr(0, eq)).c_str(), std::string(entry.substr(eq + 1)).c_str());
    } catch (const Ort::Exception& e) {
      throw Error(codes::kInvalidArgument, std::string("TOKMETER_ORT_SESSION_CONFIG: ") + e.what());
    }
  }
}

// A DynamicQuantizeLinear graph's prompt goes in whole (prefillWhole), so its [n, vocab] logits (the graph computes
// every position's) are not bounded by prefillChunk: 4 GiB for 8 192 tokens of a 128k vocabulary. A prompt whose
// logits alone would take more than half of the machine's physical memory is refused before any compute.
void CheckWholePrompt(size_t tokens, size_t logitsBytes) {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return;
  const uint64_t limit = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2;
  if (logitsBytes <= limit) return;
  throw Error("ERR_OUT_OF_MEMORY",
              "a prompt of " + std::to_string(tokens) +
                  " tokens goes through this graph in one pass (it quantizes activations with DynamicQuantizeLinear, "
                  "one scale per tensor, so a prompt fed in chunks would give other tokens), and its logits alone "
                  "need " +
                  std::to_string(logitsBytes) + " bytes, more than half of this machine's memory (" +
                  std::to_string(limit) + " bytes); shorten the prompt or load a q4 or float file of the model");
}

BatchKv::Padding BatchPadding(const OnnxOpScan& ops) {
  return ops.Has("com.microsoft", "GroupQueryAttention") ? BatchKv::Padding::kRight : BatchKv::Padding::kLeft;
}

}  // namespace

CausalLm::CausalLm(std::unique_ptr<CudaDevice> cuda, std::unique_ptr<Ort::Session> session, GraphSpec spec,
                   size_t context, std::string file, uint64_t bytes, BatchKv::Padding padding, size_t kvBudget)
    : cuda_(std::move(cuda)),
      arena_(cuda_ ? nullptr : HostArena(kvBudget)),
      session_(std::move(session)),
      spec_(std::move(spec)),
      batch_(std::make_unique<BatchKv>(spec_.pastNames.size(), static_cast<size_t>(spec_.numKvHeads),
                                       static_cast<size_t>(spec_.headDim) * DTypeSize(spec_.kvDtype), kvMemoryRef(),
                                       padding)),
      context_(context),
      file_(std::move(file)),
      file_bytes_(bytes),
      memory_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)),
      kv_info_(KvMemoryInfo(cuda_.get())) {}

std::shared_ptr<CausalLm> CausalLm::Load(const LoadOptions& options, const ModelConfig& config) {
  const std::string file = ResolveModelFile(options.dir, options.dtype);
  auto& runtime = OrtRuntime::Get();
  SessionOptions session_options;
  session_options.intraOpThreads = options.threads;
  session_options.interOpThreads = 1;
  Ort::SessionOptions ort = MakeOrtSessionOptions(session_options);
  ApplyEnvironment(ort);
  std::unique_ptr<CudaDevice> cuda;
  if (options.device == "cuda") {
    cuda = CudaDevice::Open(options.deviceId);  // ERR_DEVICE_UNAVAILABLE names what is missing
    AppendCudaProvider(ort, {.deviceId = options.deviceId, .userComputeStream = cuda->stream()});
  } else if (options.device != "cpu") {
    throw Error(codes::kInvalidArgument, "expected device 'cpu' or 'cuda', got '" + options.device + "'");
  }
  std::unique_ptr<Ort::Session> session;
  try {
    session = std::make_unique<Ort::Session>(runtime.env(), file.c_str(), ort);
  } catch (const Ort::Exception& e) {
    throw Error(codes::kModelInvalid, "cannot load ONNX model " + file + ": " + e.what());
  }
  // Describe the graph with the generic Session's helpers (same TensorInfo as everywhere else).
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
  const OnnxOpScan ops = ScanOnnxOpsFile(file);
  std::string not_batchable = NotBatchableReason(spec, inputs, ops);
  const size_t vocab = static_cast<size_t>(spec.vocabSize);
  if (cuda) cuda->CreateSampler(std::max<size_t>(options.maxSequences, 1), vocab);
  // The host arena is the KV budget the engine will compute from the same numbers (kv_budget.h), so every KV
  // buffer of this model (sequences, the running batch, prefix-cache entries) comes from one region of that size.
  const size_t context = static_cast<size_t>(config.contextLength);
  const size_t kv_budget = KvBudget(options.kvCacheBytes, context, spec.KvBytesPerToken());
  std::shared_ptr<CausalLm> model(new CausalLm(std::move(cuda), std::move(session), std::move(spec), context, file,
                                               bytes, BatchPadding(ops), kv_budget));
  model->not_batchable_reason_ = std::move(not_batchable);
  model->rows_couple_ = RowsCouple(ops);
  return model;
}

std::string CausalLm::prefixCacheRefusal() const {
  if (rows_couple_) {
    return "the prefix cache is off: the graph quantizes activations with DynamicQuantizeLinear (one scale per "
           "tensor), so KV reused from another prompt's prefill would change the tokens";
  }
  return "";
}

void CausalLm::PrefaultKvMemory() {
  if (arena_) arena_->PrefaultAll();
}

KvCache* CausalLm::kvCacheOf(SequenceState& sequence) noexcept {
  return static_cast<OrtSequenceState&>(sequence).cache.get();
}

ModelInfo CausalLm::Describe() const {
  ModelInfo info;
  info.file = file_;
  info.fileBytes = file_bytes_;
  info.layers = static_cast<size_t>(spec_.numLayers);
  info.kvHeads = static_cast<size_t>(spec_.numKvHeads);
  info.headDim = static_cast<size_t>(spec_.headDim);
  info.kvDtype = DTypeName(spec_.kvDtype);
  info.logitsDtype = DTypeName(spec_.logitsDtype);
  info.positionIds = spec_.hasPositionIds;
  info.attentionMask = spec_.hasAttentionMask;
  info.notBatchableReason = not_batchable_reason_;
  info.device = device();
  info.deviceName = deviceName();
  return info;
}

std::unique_ptr<SequenceState> CausalLm::NewSequence(size_t capacity) {
  if (capacity == 0 || capacity > context_) {
    throw Error("ERR_CONTEXT_LENGTH", "a sequence of " + std::to_string(capacity) +
                                          " tokens does not fit the model's context of " + std::to_string(context_));
  }
  PhaseTimer timer(timings_.sequenceAlloc);
  return std::make_unique<OrtSequenceState>(this, spec_, capacity);
}

void CausalLm::Forward(SequenceState& sequence, std::span<const uint32_t> tokens, std::span<float> lastLogits) {
  const auto start = std::chrono::steady_clock::now();
  auto& seq = static_cast<OrtSequenceState&>(sequence);
  const size_t n = tokens.size();
  batch_last_end_ = {};  // a solo Forward (a newcomer's prefill chunk) is not part of the batch's decode gap
  // A decode step: one token after an earlier Forward (a prefill of one token, e.g. after a prefix-cache hit that
  // left only the last prompt token, is not one).
  const bool decode = n == 1 && seq.last_end.time_since_epoch().count() != 0;
  std::optional<PhaseTimer> prefill_timer;
  if (!decode) prefill_timer.emplace(timings_.prefill);
  if (decode) {
    timings_.decodeGapNanos +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(start - seq.last_end).count());
  }
  if (!seq.cache) throw Error(codes::kInternal, "Forward on a sequence whose KV is in the running batch");
  const size_t past = seq.cache->length();
  const size_t total = past + n;
  if (n == 0) throw Error(codes::kInvalidArgument, "Forward needs at least one token");
  if (total > seq.cache->capacity()) {
    throw Error("ERR_CONTEXT_LENGTH", std::to_string(total) + " tokens do not fit the sequence's capacity of " +
                                          std::to_string(seq.cache->capacity()));
  }
  if (!cuda_ && lastLogits.size() != vocabSize()) throw Error(codes::kInternal, "logits buffer has the wrong size");
  if (seq.terminated.load()) throw Error("ERR_ABORTED", "generation aborted");

  seq.ids.resize(n);
  seq.positions.resize(n);
  for (size_t i = 0; i < n; ++i) {
    seq.ids[i] = tokens[i];
    seq.positions[i] = static_cast<int64_t>(past + i);
  }
  const size_t vocab = vocabSize();
  const size_t logit_size = DTypeSize(spec_.logitsDtype);
  // One token's float32 logits on the host: ORT writes them straight into `lastLogits`.
  const bool direct = !cuda_ && n == 1 && spec_.logitsDtype == DType::kFloat32;
  if (rows_couple_ && n > 1 && !cuda_) CheckWholePrompt(n, n * vocab * logit_size);
  if (!cuda_ && !direct && seq.logits_bytes < n * vocab * logit_size) {
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
    uint8_t* logits_host = direct ? reinterpret_cast<uint8_t*>(lastLogits.data()) : seq.logits.get();
    Ort::Value logits = BindLogits(binding, logits_host, n * vocab * logit_size, logits_shape);
    std::vector<Ort::Value> kv;
    kv.reserve(spec_.pastNames.size() * 2);
    const size_t per_token = static_cast<size_t>(heads * dim) * kv_elem;
    for (size_t t = 0; t < spec_.pastNames.size(); ++t) {
      kv.push_back(Ort::Value::CreateTensor(kv_info_, seq.cache->past(t), past * per_token, past_shape, 4, kv_type));
      binding.BindInput(spec_.pastNames[t].c_str(), kv.back());
      kv.push_back(
          Ort::Value::CreateTensor(kv_info_, seq.cache->present(t), total * per_token, present_shape, 4, kv_type));
      binding.BindOutput(spec_.presentNames[t].c_str(), kv.back());
    }

    const auto run_start = std::chrono::steady_clock::now();
    session_->Run(seq.run_options, binding);
    const uint64_t run_nanos = SinceNanos(run_start);
    timings_.runNanos += run_nanos;
    if (decode) timings_.decodeRunNanos += run_nanos;
    if (cuda_) {
      SequenceState* self = &sequence;
      KeepLogits(binding, std::span<SequenceState* const>(&self, 1));
    }
  } catch (const Ort::Exception& e) {
    if (seq.terminated.load()) throw Error("ERR_ABORTED", "generation aborted");
    throw Error(codes::kInference, std::string("inference failed: ") + e.what());
  }
  seq.cache->Advance(n);

  if (!cuda_ && !direct) {  // on the GPU the logits stay there for SampleLast
    CopyLogits(seq.logits.get() + (n - 1) * vocab * logit_size, lastLogits);
    if (n > 1) {
      // The prefill's [n, vocab] logits (131 MB for 1024 tokens of a 32k vocabulary) are not kept for decode steps.
      seq.logits.reset();
      seq.logits_bytes = 0;
    }
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

void CausalLm::ReleaseRow(size_t row) noexcept {
  if (row < rows_.size()) rows_[row] = nullptr;
  // The last sequence of the batch ended: free the batch buffers now rather than at the next batched step.
  if (std::all_of(rows_.begin(), rows_.end(), [](const OrtSequenceState* s) { return s == nullptr; })) {
    rows_.clear();
    batch_->Relayout({}, 0);  // allocates nothing
  }
}

void CausalLm::Relayout(std::span<SequenceState* const> sequences) {
  PhaseTimer timer(timings_.relayout);
  // Rows leaving the batch while their sequence lives on (parked): their KV goes back to their own cache first.
  for (size_t r = 0; r < rows_.size(); ++r) {
    OrtSequenceState* owner = rows_[r];
    if (owner == nullptr) continue;
    if (std::find(sequences.begin(), sequences.end(), owner) != sequences.end()) continue;
    auto cache = std::make_unique<KvCache>(spec_, owner->cap, kvMemoryRef());
    batch_->ExtractRow(r, *cache);
    owner->cache = std::move(cache);
    owner->in_batch = false;
    rows_[r] = nullptr;
  }
  std::vector<BatchKv::Source> sources(sequences.size());
  size_t capacity = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    auto* seq = static_cast<OrtSequenceState*>(sequences[i]);
    if (seq->in_batch) {
      sources[i].oldRow = seq->row;
    } else {
      if (!seq->cache || seq->cache->length() == 0)
        throw Error(codes::kInternal, "ForwardBatch on a sequence that was not prefilled");
      sources[i].cache = seq->cache.get();
    }
    capacity = std::max(capacity, seq->cap);
  }
  auto* first = static_cast<OrtSequenceState*>(sequences.empty() ? nullptr : sequences[0]);
  if (sequences.size() == 1 && !first->in_batch && first->cache->capacity() >= capacity) {
    batch_->Adopt(*first->cache);  // a lone sequence: its own buffers become the batch, nothing is copied
  } else {
    batch_->Relayout(sources, capacity);
  }
  rows_.assign(sequences.size(), nullptr);
  for (size_t i = 0; i < sequences.size(); ++i) {
    auto* seq = static_cast<OrtSequenceState*>(sequences[i]);
    seq->cache.reset();  // its KV now lives in the batch
    seq->in_batch = true;
    seq->row = i;
    rows_[i] = seq;
  }
}

void CausalLm::ForwardBatch(std::span<SequenceState* const> sequences, std::span<const uint32_t> tokens,
                            std::span<float> logitsOut) {
  const auto start = std::chrono::steady_clock::now();
  const uint64_t cpu_start = ThreadCpuNanos();
  const size_t rows = sequences.size();
  const size_t vocab = vocabSize();
  if (rows == 0) return;
  if (rows > maxBatchRows()) throw Error(codes::kInternal, "ForwardBatch over more rows than the model can batch");
  if (tokens.size() != rows || (!cuda_ && logitsOut.size() != rows * vocab))
    throw Error(codes::kInternal, "ForwardBatch: tokens or logits of the wrong size");
  bool same = rows == rows_.size();
  for (size_t i = 0; same && i < rows; ++i) same = rows_[i] == sequences[i];
  if (!same) {
    // A new composition: what came before it (a newcomer's prefill, a resumed reader, an idle model) is not a
    // decode gap. The relayout itself is counted in this step's Forward time.
    Relayout(sequences);
    batch_last_end_ = {};
  }
  for (size_t i = 0; i < rows; ++i) {
    if (batch_->rowLength(i) + 1 > rows_[i]->cap) {
      throw Error("ERR_CONTEXT_LENGTH", std::to_string(batch_->rowLength(i) + 1) +
                                            " tokens do not fit the sequence's capacity of " +
                                            std::to_string(rows_[i]->cap));
    }
  }
  const bool gap = batch_last_end_.time_since_epoch().count() != 0;
  if (gap) {
    timings_.decodeGapNanos +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(start - batch_last_end_).count());
    timings_.decodeGapCpuNanos += cpu_start - batch_last_end_cpu_;
  }

  const size_t past = batch_->pastLength();
  const size_t total = past + 1;
  batch_ids_.resize(rows);
  batch_positions_.resize(rows);
  batch_mask_.resize(rows * total);
  for (size_t i = 0; i < rows; ++i) {
    const size_t length = batch_->rowLength(i);
    batch_ids_[i] = tokens[i];
    batch_positions_[i] = static_cast<int64_t>(length);  // the token's position in its own sequence
    int64_t* m = batch_mask_.data() + i * total;
    if (batch_->padding() == BatchKv::Padding::kLeft) {
      std::fill(m, m + (past - length), 0);  // left holes
      std::fill(m + (past - length), m + total, 1);
    } else {
      // Right padding (GroupQueryAttention): what the op reads is the count of ones (seqlens_k = count - 1 = the
      // row's past length, where it writes the new key) and the width (total_sequence_length = P + 1, the present's
      // length). The ones sit over the past's first `length` columns and the last column, so positions derived
      // from the mask's cumulative sum (a graph without position_ids) are the row's own length too.
      std::fill(m, m + length, 1);
      std::fill(m + length, m + past, 0);  // right holes
      m[past] = 1;
    }
  }
  const size_t logit_size = DTypeSize(spec_.logitsDtype);
  // float32 logits on the host: ORT writes them straight into the caller's rows; float16 ones go through a staging
  // buffer and are widened.
  const bool direct = !cuda_ && spec_.logitsDtype == DType::kFloat32;
  if (!cuda_ && !direct && batch_logits_.size() < rows * vocab * logit_size)
    batch_logits_.resize(rows * vocab * logit_size);
  uint8_t* logits_host = direct ? reinterpret_cast<uint8_t*>(logitsOut.data()) : batch_logits_.data();

  const int64_t row_shape[] = {static_cast<int64_t>(rows), 1};
  const int64_t mask_shape[] = {static_cast<int64_t>(rows), static_cast<int64_t>(total)};
  const int64_t logits_shape[] = {static_cast<int64_t>(rows), 1, static_cast<int64_t>(vocab)};
  const int64_t heads = spec_.numKvHeads, dim = spec_.headDim;
  const int64_t past_shape[] = {static_cast<int64_t>(rows), heads, static_cast<int64_t>(past), dim};
  const int64_t present_shape[] = {static_cast<int64_t>(rows), heads, static_cast<int64_t>(total), dim};
  const size_t per_position = static_cast<size_t>(heads * dim) * DTypeSize(spec_.kvDtype);
  const auto kv_type = ToOrtType(spec_.kvDtype);
  uint64_t run_cpu_start = 0, run_cpu_end = 0;
  try {
    Ort::IoBinding binding(*session_);
    auto ids = Ort::Value::CreateTensor<int64_t>(memory_, batch_ids_.data(), rows, row_shape, 2);
    binding.BindInput("input_ids", ids);
    Ort::Value mask{nullptr}, positions{nullptr};
    if (spec_.hasAttentionMask) {
      mask = Ort::Value::CreateTensor<int64_t>(memory_, batch_mask_.data(), rows * total, mask_shape, 2);
      binding.BindInput("attention_mask", mask);
    }
    if (spec_.hasPositionIds) {
      positions = Ort::Value::CreateTensor<int64_t>(memory_, batch_positions_.data(), rows, row_shape, 2);
      binding.BindInput("position_ids", positions);
    }
    Ort::Value logits = BindLogits(binding, logits_host, rows * vocab * logit_size, logits_shape);
    std::vector<Ort::Value> kv;
    kv.reserve(spec_.pastNames.size() * 2);
    for (size_t t = 0; t < spec_.pastNames.size(); ++t) {
      kv.push_back(
          Ort::Value::CreateTensor(kv_info_, batch_->past(t), rows * past * per_position, past_shape, 4, kv_type));
      binding.BindInput(spec_.pastNames[t].c_str(), kv.back());
      kv.push_back(Ort::Value::CreateTensor(kv_info_, batch_->present(t), rows * total * per_position, present_shape, 4,
                                            kv_type));
      binding.BindOutput(spec_.presentNames[t].c_str(), kv.back());
    }
    const auto run_start = std::chrono::steady_clock::now();
    run_cpu_start = ThreadCpuNanos();
    session_->Run(batch_run_options_, binding);
    run_cpu_end = ThreadCpuNanos();
    const uint64_t run_nanos = SinceNanos(run_start);
    timings_.runNanos += run_nanos;
    timings_.decodeRunNanos += run_nanos;
    if (cuda_) KeepLogits(binding, sequences);
  } catch (const Ort::Exception& e) {
    throw Error(codes::kInference, std::string("inference failed: ") + e.what());
  }
  batch_->Advance();
  if (!cuda_ && !direct) CopyLogits(batch_logits_.data(), logitsOut);  // on the GPU they stay there for SampleLast
  batch_last_end_ = std::chrono::steady_clock::now();
  batch_last_end_cpu_ = ThreadCpuNanos();
  // A relayout (a new composition) is not a per-step cost: it is counted in relayout, not here.
  if (gap) timings_.decodeOutsideRunCpuNanos += (run_cpu_start - cpu_start) + (batch_last_end_cpu_ - run_cpu_end);
  const uint64_t forward_nanos = SinceNanos(start);
  timings_.forwardNanos += forward_nanos;
  timings_.forwards += 1;
  timings_.decodeForwardNanos += forward_nanos;
  timings_.decodeForwards += 1;
  timings_.decodeRows += rows;
}

Ort::Value CausalLm::BindLogits(Ort::IoBinding& binding, uint8_t* host, size_t bytes, const int64_t* shape) {
  if (cuda_) {
    binding.BindOutput("logits", kv_info_);  // ORT allocates it on the GPU; the sampler reads it there
    return Ort::Value{nullptr};
  }
  Ort::Value logits = Ort::Value::CreateTensor(memory_, host, bytes, shape, 3, ToOrtType(spec_.logitsDtype));
  binding.BindOutput("logits", logits);
  return logits;
}

void CausalLm::CopyLogits(const uint8_t* src, std::span<float> dst) const {
  if (spec_.logitsDtype == DType::kFloat32) {
    std::memcpy(dst.data(), src, dst.size() * sizeof(float));
  } else {
    const auto* half = reinterpret_cast<const uint16_t*>(src);
    for (size_t i = 0; i < dst.size(); ++i) dst[i] = HalfToFloat(half[i]);
  }
}

void CausalLm::KeepLogits(Ort::IoBinding& binding, std::span<SequenceState* const> rows) {
  // BindLogits bound it first: output 0 (SampleLast checks its shape).
  std::vector<Ort::Value> values = binding.GetOutputValues();
  if (values.empty() || !values[0]) throw Error(codes::kInference, "the graph produced no logits output");
  last_logits_ = std::move(values[0]);
  last_rows_.assign(rows.begin(), rows.end());
}

void CausalLm::StartSampling(SequenceState& sequence, const SamplingOptions& options,
                             std::span<const uint32_t> prompt) {
  if (!cuda_) return;
  auto& seq = static_cast<OrtSequenceState&>(sequence);
  if (seq.slot >= 0) throw Error(codes::kInternal, "StartSampling twice for one sequence");
  seq.slot = cuda_->StartSequence(options, prompt);
}

void CausalLm::SampleLast(std::span<SequenceState* const> sequences, std::span<const double> uniforms,
                          std::span<uint32_t> ids, std::span<float> logprobs) {
  if (!cuda_) throw Error(codes::kInternal, "SampleLast on a model that samples on the host");
  if (!last_logits_ || sequences.size() != last_rows_.size() ||
      !std::equal(sequences.begin(), sequences.end(), last_rows_.begin()))
    throw Error(codes::kInternal, "SampleLast: not the sequences of the last Forward");
  std::vector<int32_t> slots(sequences.size());
  for (size_t i = 0; i < sequences.size(); ++i) {
    slots[i] = static_cast<OrtSequenceState*>(sequences[i])->slot;
    if (slots[i] < 0) throw Error(codes::kInternal, "SampleLast on a sequence without a sampler slot");
  }
  // [rows, positions, vocab]: each row's last position.
  const auto shape = last_logits_.GetTensorTypeAndShapeInfo().GetShape();
  if (shape.size() != 3 || shape[0] != static_cast<int64_t>(sequences.size()) ||
      shape[2] != static_cast<int64_t>(vocabSize()))
    throw Error(codes::kInference, "the logits output has an unexpected shape");
  const int64_t positions = shape[1];
  const auto* base = static_cast<const uint8_t*>(last_logits_.GetTensorRawData());
  const size_t element = DTypeSize(spec_.logitsDtype);
  const uint8_t* last = base + static_cast<size_t>(positions - 1) * vocabSize() * element;
  cuda_->Sample(last, spec_.logitsDtype, positions * shape[2], slots, uniforms, ids, logprobs);
  last_logits_ = Ort::Value{nullptr};  // back to ORT's arena (a prefill's [n, vocab] block is large)
  last_rows_.clear();
}

void CausalLm::LastLogitsToHost(std::span<float> out, bool release) {
  if (!cuda_) throw Error(codes::kInternal, "LastLogitsToHost on a model that samples on the host");
  if (!last_logits_) throw Error(codes::kInternal, "LastLogitsToHost: no logits kept from the last Forward");
  const auto shape = last_logits_.GetTensorTypeAndShapeInfo().GetShape();
  const size_t vocab = vocabSize();
  if (shape.size() != 3 || shape[0] != static_cast<int64_t>(last_rows_.size()) ||
      shape[2] != static_cast<int64_t>(vocab))
    throw Error(codes::kInference, "the logits output has an unexpected shape");
  const size_t rows = last_rows_.size();
  if (out.size() != rows * vocab) throw Error(codes::kInternal, "LastLogitsToHost: output of the wrong size");
  const size_t element = DTypeSize(spec_.logitsDtype);
  const size_t positions = static_cast<size_t>(shape[1]);
  const auto* base = static_cast<const uint8_t*>(last_logits_.GetTensorRawData());
  // Each row's last position, packed, then widened to float32 (fp16 logits) on the host.
  std::vector<uint8_t> staging(rows * vocab * element);
  cuda_->Copy2DAndWait(staging.data(), vocab * element, base + (positions - 1) * vocab * element,
                       positions * vocab * element, vocab * element, rows);
  CopyLogits(staging.data(), out);
  if (release) {
    last_logits_ = Ort::Value{nullptr};
    last_rows_.clear();
  }
}

}  // namespace tokmeter::engine
