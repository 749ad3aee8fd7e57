// libtokmeter_cuda.so: the interface table (interface.h), device queries, streams, and the CudaSampler's host side.
// No exception leaves this library: every entry point returns a TokmeterCudaStatus and records a message per thread.
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "interface.h"
#include "sampler.h"

namespace tokmeter::cuda {
namespace {

thread_local std::string g_last_error;

int Fail(int status, const std::string& message) {
  g_last_error = message;
  return status;
}

bool DriverLibraryPresent() {
  void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!h) return false;
  dlclose(h);
  return true;
}

int FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return TOKMETER_CUDA_OK;
  cudaGetLastError();  // clear the sticky-free error state of the runtime
  std::string msg = std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  switch (e) {
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
    case cudaErrorCallRequiresNewerDriver:
      if (!DriverLibraryPresent())
        return Fail(TOKMETER_CUDA_NO_DRIVER,
                    "the NVIDIA driver library libcuda.so.1 was not found: install the NVIDIA driver (one that "
                    "supports CUDA 13, version 580 or newer) — " +
                        msg);
      return Fail(
          TOKMETER_CUDA_NO_DRIVER,
          "the installed NVIDIA driver (libcuda.so.1) is too old for CUDA 13: install driver 580 or newer — " + msg);
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      return Fail(TOKMETER_CUDA_NO_DEVICE,
                  "no usable CUDA GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES) — " + msg);
    case cudaErrorMemoryAllocation: return Fail(TOKMETER_CUDA_OUT_OF_MEMORY, "out of GPU memory — " + msg);
    default: return Fail(TOKMETER_CUDA_ERROR, msg);
  }
}

#define TM_CUDA_TRY(expr)                                        \
  do {                                                           \
    const cudaError_t tm_err_ = (expr);                          \
    if (tm_err_ != cudaSuccess) return FromCuda(tm_err_, #expr); \
  } while (0)

template <class T>
int DeviceAlloc(T** ptr, size_t count, const char* what) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, count * sizeof(T) > 0 ? count * sizeof(T) : 1);
  if (e != cudaSuccess) return FromCuda(e, what);
  *ptr = static_cast<T*>(p);
  return TOKMETER_CUDA_OK;
}

int CheckOptions(const TokmeterCudaRowOptions& o) {
  auto bad = [](const char* field, const char* expected, double got) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "expected %s for %s, got %g", expected, field, got);
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, buf);
  };
  if (!std::isfinite(o.temperature) || o.temperature < 0)
    return bad("temperature", "a finite number >= 0", o.temperature);
  if (o.top_k < 0) return bad("topK", "an integer >= 0", o.top_k);
  if (!(o.top_p > 0 && o.top_p <= 1)) return bad("topP", "a number in (0, 1]", o.top_p);
  if (!(o.min_p >= 0 && o.min_p <= 1)) return bad("minP", "a number in [0, 1]", o.min_p);
  if (!std::isfinite(o.repetition_penalty) || o.repetition_penalty <= 0)
    return bad("repetitionPenalty", "a finite number > 0", o.repetition_penalty);
  if (!(o.presence_penalty >= -2 && o.presence_penalty <= 2))
    return bad("presencePenalty", "a number in [-2, 2]", o.presence_penalty);
  if (!(o.frequency_penalty >= -2 && o.frequency_penalty <= 2))
    return bad("frequencyPenalty", "a number in [-2, 2]", o.frequency_penalty);
  return TOKMETER_CUDA_OK;
}

}  // namespace

int CudaSampler::Create(int device, int max_slots, int vocab, void* stream, CudaSampler** out) {
  *out = nullptr;
  if (max_slots <= 0 || vocab <= 0)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "create_sampler: max_slots and vocab_size must be positive");
  if (static_cast<int64_t>(max_slots) * vocab > INT32_MAX)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "create_sampler: max_slots * vocab_size must stay below 2^31");
  TM_CUDA_TRY(cudaSetDevice(device));
  auto* s = new CudaSampler();
  s->device_ = device;
  s->max_slots_ = max_slots;
  s->vocab_ = vocab;
  s->stream_ = static_cast<cudaStream_t>(stream);
  s->options_.assign(max_slots, TokmeterCudaRowOptions{});
  s->draws_.assign(max_slots, 0);
  s->active_.assign(max_slots, 0);
  const size_t cells = static_cast<size_t>(max_slots) * vocab;
  int st = TOKMETER_CUDA_OK;
  auto step = [&](int status) {
    if (st == TOKMETER_CUDA_OK) st = status;
  };
  step(DeviceAlloc(&s->work_, cells, "cudaMalloc(work)"));
  step(DeviceAlloc(&s->sort_keys_, cells, "cudaMalloc(sort keys)"));
  step(DeviceAlloc(&s->sort_ids_in_, cells, "cudaMalloc(sort ids)"));
  step(DeviceAlloc(&s->sort_ids_, cells, "cudaMalloc(sort ids)"));
  step(DeviceAlloc(&s->seen_, cells, "cudaMalloc(seen)"));
  step(DeviceAlloc(&s->counts_, cells, "cudaMalloc(counts)"));
  // One block mirrors the pinned upload staging: RowDesc[max_slots], then seg_begin[max_slots], seg_end[max_slots].
  s->upload_bytes_ = sizeof(RowDesc) * max_slots + 2 * sizeof(int32_t) * max_slots;
  uint8_t* upload_block = nullptr;
  step(DeviceAlloc(&upload_block, s->upload_bytes_, "cudaMalloc(call descriptors)"));
  s->descs_ = reinterpret_cast<RowDesc*>(upload_block);
  step(DeviceAlloc(&s->row_max_, max_slots, "cudaMalloc(row max)"));
  step(DeviceAlloc(&s->row_argmax_, max_slots, "cudaMalloc(row argmax)"));
  step(DeviceAlloc(&s->raw_stats_, 2 * static_cast<size_t>(max_slots), "cudaMalloc(raw stats)"));
  step(DeviceAlloc(&s->out_ids_, 2 * static_cast<size_t>(max_slots), "cudaMalloc(out)"));
  if (st != TOKMETER_CUDA_OK) {
    delete s;
    return st;
  }
  s->seg_begin_ = reinterpret_cast<int32_t*>(s->descs_ + max_slots);
  s->seg_end_ = s->seg_begin_ + max_slots;
  s->out_logprobs_ = reinterpret_cast<float*>(s->out_ids_ + max_slots);
  cudaError_t e = cudaMallocHost(&s->upload_, s->upload_bytes_);
  if (e == cudaSuccess) e = cudaMallocHost(&s->download_, 2 * sizeof(uint32_t) * max_slots);
  if (e == cudaSuccess) e = cudaMemsetAsync(s->seen_, 0, cells, s->stream_);
  if (e == cudaSuccess) e = cudaMemsetAsync(s->counts_, 0, cells * sizeof(uint32_t), s->stream_);
  if (e == cudaSuccess) {
    LaunchIota(s->sort_ids_in_, max_slots, vocab, s->stream_);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) {
    s->cub_temp_bytes_ = 0;
    e = SegmentedSortDescending(nullptr, s->cub_temp_bytes_, s->work_, s->sort_keys_, s->sort_ids_in_, s->sort_ids_,
                                static_cast<int>(cells), max_slots, s->seg_begin_, s->seg_end_, s->stream_);
  }
  if (e == cudaSuccess) e = cudaMalloc(&s->cub_temp_, s->cub_temp_bytes_ > 0 ? s->cub_temp_bytes_ : 1);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s->stream_);
  if (e != cudaSuccess) {
    delete s;
    return FromCuda(e, "create_sampler");
  }
  *out = s;
  return TOKMETER_CUDA_OK;
}

CudaSampler::~CudaSampler() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  for (void* p : {static_cast<void*>(work_), static_cast<void*>(sort_keys_), static_cast<void*>(sort_ids_in_),
                  static_cast<void*>(sort_ids_), static_cast<void*>(seen_), static_cast<void*>(counts_),
                  static_cast<void*>(descs_), static_cast<void*>(row_max_), static_cast<void*>(row_argmax_),
                  static_cast<void*>(raw_stats_), static_cast<void*>(out_ids_), static_cast<void*>(tokens_), cub_temp_})
    if (p) cudaFree(p);
  if (upload_) cudaFreeHost(upload_);
  if (download_) cudaFreeHost(download_);
}

int CudaSampler::MarkTokens(int slot, const uint32_t* tokens, size_t count, bool generated) {
  if (count == 0) return TOKMETER_CUDA_OK;
  if (!tokens) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "tokens is NULL with a nonzero count");
  if (count > tokens_capacity_) {
    if (tokens_) {
      TM_CUDA_TRY(cudaStreamSynchronize(stream_));
      cudaFree(tokens_);
      tokens_ = nullptr;
      tokens_capacity_ = 0;
    }
    const size_t capacity = count < 4096 ? 4096 : count;
    const int st = DeviceAlloc(&tokens_, capacity, "cudaMalloc(tokens)");
    if (st) return st;
    tokens_capacity_ = capacity;
  }
  // A pageable source: the copy is staged before cudaMemcpyAsync returns, so `tokens` may go away afterwards; the
  // stream orders it after any earlier kernel that read tokens_.
  TM_CUDA_TRY(cudaMemcpyAsync(tokens_, tokens, count * sizeof(uint32_t), cudaMemcpyHostToDevice, stream_));
  const size_t base = static_cast<size_t>(slot) * vocab_;
  LaunchMarkTokens(tokens_, count, vocab_, seen_ + base, counts_ + base, generated, stream_);
  TM_CUDA_TRY(cudaGetLastError());
  return TOKMETER_CUDA_OK;
}

int CudaSampler::ResetSlot(int slot, const TokmeterCudaRowOptions& options, const uint32_t* prompt, size_t length) {
  if (slot < 0 || slot >= max_slots_)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT,
                "reset_slot: slot " + std::to_string(slot) + " is not in [0, " + std::to_string(max_slots_) + ")");
  if (const int st = CheckOptions(options)) return st;
  TM_CUDA_TRY(cudaSetDevice(device_));
  const size_t base = static_cast<size_t>(slot) * vocab_;
  TM_CUDA_TRY(cudaMemsetAsync(seen_ + base, 0, vocab_, stream_));
  TM_CUDA_TRY(cudaMemsetAsync(counts_ + base, 0, sizeof(uint32_t) * vocab_, stream_));
  if (const int st = MarkTokens(slot, prompt, length, false)) return st;
  options_[slot] = options;
  draws_[slot] = 0;
  active_[slot] = 1;
  return TOKMETER_CUDA_OK;
}

int CudaSampler::AppendTokens(int slot, const uint32_t* tokens, size_t count) {
  if (slot < 0 || slot >= max_slots_ || !active_[slot])
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "append_tokens: slot " + std::to_string(slot) + " was not reset");
  TM_CUDA_TRY(cudaSetDevice(device_));
  return MarkTokens(slot, tokens, count, true);
}

int CudaSampler::Sample(const void* logits, int dtype, int64_t row_stride, int n_rows, const int32_t* slots,
                        const double* uniforms, uint32_t* out_ids, float* out_logprobs) {
  if (n_rows <= 0 || n_rows > max_slots_)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT,
                "sample: n_rows " + std::to_string(n_rows) + " is not in [1, " + std::to_string(max_slots_) + "]");
  if (!logits || !slots || !out_ids)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: NULL logits, slots or out_ids");
  if (dtype != TOKMETER_CUDA_FLOAT32 && dtype != TOKMETER_CUDA_FLOAT16)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: dtype must be float32 (0) or float16 (1)");
  if (row_stride < vocab_ && n_rows > 1)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: row_stride is smaller than the vocabulary");
  TM_CUDA_TRY(cudaSetDevice(device_));

  auto* descs = static_cast<RowDesc*>(upload_);
  auto* begin = reinterpret_cast<int32_t*>(descs + max_slots_);
  auto* end = begin + max_slots_;
  bool any_top_k = false, any_top_p = false;
  for (int r = 0; r < n_rows; ++r) {
    const int slot = slots[r];
    if (slot < 0 || slot >= max_slots_ || !active_[slot])
      return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: slot " + std::to_string(slot) + " was not reset");
    for (int q = 0; q < r; ++q)
      if (slots[q] == slot)
        return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: slot " + std::to_string(slot) + " appears twice");
    const TokmeterCudaRowOptions& o = options_[slot];
    RowDesc d{};
    d.slot = slot;
    const bool greedy = o.temperature == 0.0f;
    if (greedy) d.flags |= kFlagGreedy;
    if (o.repetition_penalty != 1.0f) d.flags |= kFlagRepetition;
    if (o.presence_penalty != 0.0f || o.frequency_penalty != 0.0f) d.flags |= kFlagPresenceFrequency;
    if (!greedy) {
      if (o.temperature != 1.0f) d.flags |= kFlagTemperature;
      if (o.top_k > 0 && o.top_k < vocab_) d.flags |= kFlagTopK;
      if (o.top_p < 1.0f) d.flags |= kFlagTopP;
      if (o.min_p > 0.0f) d.flags |= kFlagMinP;
      if (uniforms) {
        if (!(uniforms[r] >= 0.0 && uniforms[r] < 1.0))
          return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: uniforms[" + std::to_string(r) + "] is not in [0, 1)");
        d.flags |= kFlagHostUniform;
        d.uniform = uniforms[r];
      }
    }
    d.inv_temperature = 1.0f / (o.temperature == 0.0f ? 1.0f : o.temperature);  // the CPU's inv_ = 1.0f / t
    d.top_p = o.top_p;
    d.log_min_p = o.min_p > 0.0f ? std::log(o.min_p) : 0.0f;  // float std::log, as MinP's constructor
    d.repetition_penalty = o.repetition_penalty;
    d.presence_penalty = o.presence_penalty;
    d.frequency_penalty = o.frequency_penalty;
    d.top_k = o.top_k;
    d.seed = o.seed;
    d.draw = draws_[slot];
    descs[r] = d;
    begin[r] = r * vocab_;
    end[r] = (d.flags & kFlagTopP) ? (r + 1) * vocab_ : r * vocab_;
    any_top_k = any_top_k || (d.flags & kFlagTopK);
    any_top_p = any_top_p || (d.flags & kFlagTopP);
  }
  TM_CUDA_TRY(cudaMemcpyAsync(descs_, upload_, upload_bytes_, cudaMemcpyHostToDevice, stream_));
  const bool want_raw = out_logprobs != nullptr;
  LaunchPrepare(logits, dtype, row_stride, vocab_, n_rows, descs_, seen_, counts_, work_, row_max_, row_argmax_,
                raw_stats_, want_raw, stream_);
  TM_CUDA_TRY(cudaGetLastError());
  if (any_top_k) {
    LaunchTopK(vocab_, n_rows, descs_, work_, stream_);
    TM_CUDA_TRY(cudaGetLastError());
  }
  if (any_top_p) {
    size_t bytes = cub_temp_bytes_;
    TM_CUDA_TRY(SegmentedSortDescending(cub_temp_, bytes, work_, sort_keys_, sort_ids_in_, sort_ids_, n_rows * vocab_,
                                        n_rows, seg_begin_, seg_end_, stream_));
    LaunchTopP(vocab_, n_rows, descs_, sort_keys_, sort_ids_, work_, stream_);
    TM_CUDA_TRY(cudaGetLastError());
  }
  LaunchDraw(logits, dtype, row_stride, vocab_, n_rows, descs_, work_, row_max_, row_argmax_, raw_stats_, want_raw,
             seen_, counts_, out_ids_, out_logprobs_, stream_);
  TM_CUDA_TRY(cudaGetLastError());
  auto* ids_host = static_cast<uint32_t*>(download_);
  auto* lp_host = reinterpret_cast<float*>(ids_host + max_slots_);
  TM_CUDA_TRY(cudaMemcpyAsync(ids_host, out_ids_, sizeof(uint32_t) * n_rows, cudaMemcpyDeviceToHost, stream_));
  if (want_raw)
    TM_CUDA_TRY(cudaMemcpyAsync(lp_host, out_logprobs_, sizeof(float) * n_rows, cudaMemcpyDeviceToHost, stream_));
  TM_CUDA_TRY(cudaStreamSynchronize(stream_));
  for (int r = 0; r < n_rows; ++r) {
    out_ids[r] = ids_host[r];
    if (want_raw) out_logprobs[r] = lp_host[r];
    if (!(descs[r].flags & kFlagGreedy)) draws_[slots[r]] += 1;
  }
  last_rows_ = n_rows;
  return TOKMETER_CUDA_OK;
}

int CudaSampler::CopyProcessed(float* host, size_t floats) {
  const size_t need = static_cast<size_t>(last_rows_) * vocab_;
  if (!host || floats < need)
    return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "copy_processed_logits: need " + std::to_string(need) + " floats");
  TM_CUDA_TRY(cudaSetDevice(device_));
  TM_CUDA_TRY(cudaMemcpyAsync(host, work_, need * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  TM_CUDA_TRY(cudaStreamSynchronize(stream_));
  return TOKMETER_CUDA_OK;
}

namespace {

const char* LastError() { return g_last_error.c_str(); }

int DeviceCount(int* count) {
  if (!count) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "device_count: count is NULL");
  *count = 0;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return FromCuda(e, "cudaGetDeviceCount");
  if (n == 0)
    return Fail(TOKMETER_CUDA_NO_DEVICE, "no CUDA GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  *count = n;
  return TOKMETER_CUDA_OK;
}

int DeviceInfo(int device, TokmeterCudaDeviceInfo* info) {
  if (!info) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "device_info: info is NULL");
  std::memset(info, 0, sizeof *info);
  cudaDeviceProp prop{};
  TM_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  std::snprintf(info->name, sizeof info->name, "%s", prop.name);
  info->major = prop.major;
  info->minor = prop.minor;
  TM_CUDA_TRY(cudaSetDevice(device));
  TM_CUDA_TRY(cudaMemGetInfo(&info->free_memory, &info->total_memory));
  TM_CUDA_TRY(cudaDriverGetVersion(&info->driver_version));
  TM_CUDA_TRY(cudaRuntimeGetVersion(&info->runtime_version));
  return TOKMETER_CUDA_OK;
}

int CreateStream(int device, void** stream) {
  if (!stream) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "create_stream: stream is NULL");
  TM_CUDA_TRY(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  TM_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  *stream = s;
  return TOKMETER_CUDA_OK;
}

int DestroyStream(void* stream) {
  if (!stream) return TOKMETER_CUDA_OK;
  TM_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  TM_CUDA_TRY(cudaStreamDestroy(static_cast<cudaStream_t>(stream)));
  return TOKMETER_CUDA_OK;
}

int CreateSampler(int device, int max_slots, int vocab, void* stream, TokmeterCudaSampler** out) {
  if (!out) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "create_sampler: out is NULL");
  CudaSampler* s = nullptr;
  const int st = CudaSampler::Create(device, max_slots, vocab, stream, &s);
  *out = reinterpret_cast<TokmeterCudaSampler*>(s);
  return st;
}

void DestroySampler(TokmeterCudaSampler* sampler) { delete reinterpret_cast<CudaSampler*>(sampler); }

int ResetSlot(TokmeterCudaSampler* sampler, int slot, const TokmeterCudaRowOptions* options, const uint32_t* prompt,
              size_t length) {
  if (!sampler || !options) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "reset_slot: NULL sampler or options");
  return reinterpret_cast<CudaSampler*>(sampler)->ResetSlot(slot, *options, prompt, length);
}

int AppendTokens(TokmeterCudaSampler* sampler, int slot, const uint32_t* tokens, size_t count) {
  if (!sampler) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "append_tokens: NULL sampler");
  return reinterpret_cast<CudaSampler*>(sampler)->AppendTokens(slot, tokens, count);
}

int Sample(TokmeterCudaSampler* sampler, const void* logits, int dtype, int64_t row_stride, int n_rows,
           const int32_t* slots, const double* uniforms, uint32_t* out_ids, float* out_logprobs) {
  if (!sampler) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "sample: NULL sampler");
  return reinterpret_cast<CudaSampler*>(sampler)->Sample(logits, dtype, row_stride, n_rows, slots, uniforms, out_ids,
                                                         out_logprobs);
}

int CopyProcessed(TokmeterCudaSampler* sampler, float* host, size_t floats) {
  if (!sampler) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "copy_processed_logits: NULL sampler");
  return reinterpret_cast<CudaSampler*>(sampler)->CopyProcessed(host, floats);
}

int CopyDevice(void* dst, const void* src, size_t bytes, void* stream) {
  if (bytes == 0) return TOKMETER_CUDA_OK;
  if (!dst || !src) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "copy_device: NULL pointer");
  TM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream)));
  return TOKMETER_CUDA_OK;
}

int DeviceAllocBytes(int device, size_t bytes, void** out) {
  if (!out) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "device_alloc: out is NULL");
  *out = nullptr;
  TM_CUDA_TRY(cudaSetDevice(device));
  const cudaError_t e = cudaMalloc(out, bytes > 0 ? bytes : 1);
  if (e != cudaSuccess) {
    *out = nullptr;
    return FromCuda(e, ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  }
  return TOKMETER_CUDA_OK;
}

int DeviceFree(void* ptr) {
  if (!ptr) return TOKMETER_CUDA_OK;
  TM_CUDA_TRY(cudaFree(ptr));
  return TOKMETER_CUDA_OK;
}

// Work queued on a stream must be issued with the stream's device current (the calling thread's may differ).
int UseStreamDevice(void* stream) {
  if (!stream) return TOKMETER_CUDA_OK;
  int device = 0;
  TM_CUDA_TRY(cudaStreamGetDevice(static_cast<cudaStream_t>(stream), &device));
  TM_CUDA_TRY(cudaSetDevice(device));
  return TOKMETER_CUDA_OK;
}

int Copy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height, void* stream) {
  if (width == 0 || height == 0) return TOKMETER_CUDA_OK;
  if (!dst || !src) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "copy_2d: NULL pointer");
  if (dpitch < width || spitch < width) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "copy_2d: pitch < width");
  if (const int st = UseStreamDevice(stream)) return st;
  TM_CUDA_TRY(
      cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)));
  return TOKMETER_CUDA_OK;
}

int Memset2D(void* dst, size_t pitch, int value, size_t width, size_t height, void* stream) {
  if (width == 0 || height == 0) return TOKMETER_CUDA_OK;
  if (!dst) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "memset_2d: NULL pointer");
  if (pitch < width) return Fail(TOKMETER_CUDA_INVALID_ARGUMENT, "memset_2d: pitch < width");
  if (const int st = UseStreamDevice(stream)) return st;
  TM_CUDA_TRY(cudaMemset2DAsync(dst, pitch, value, width, height, static_cast<cudaStream_t>(stream)));
  return TOKMETER_CUDA_OK;
}

int Synchronize(void* stream) {
  TM_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  return TOKMETER_CUDA_OK;
}

const TokmeterCudaInterface kInterface = {
    TOKMETER_CUDA_INTERFACE_VERSION,
    static_cast<uint32_t>(sizeof(TokmeterCudaInterface)),
    &LastError,
    &DeviceCount,
    &DeviceInfo,
    &CreateStream,
    &DestroyStream,
    &CreateSampler,
    &DestroySampler,
    &ResetSlot,
    &AppendTokens,
    &Sample,
    &CopyProcessed,
    &CopyDevice,
    &DeviceAllocBytes,
    &DeviceFree,
    &Copy2D,
    &Memset2D,
    &Synchronize,
};

}  // namespace
}  // namespace tokmeter::cuda

extern "C" const TokmeterCudaInterface* TokmeterCudaGetInterface(uint32_t requested_version) {
  if (requested_version != TOKMETER_CUDA_INTERFACE_VERSION) {
    tokmeter::cuda::g_last_error = "interface version " + std::to_string(requested_version) +
                                   " requested; this plug-in provides " +
                                   std::to_string(TOKMETER_CUDA_INTERFACE_VERSION);
    return nullptr;
  }
  return &tokmeter::cuda::kInterface;
}
