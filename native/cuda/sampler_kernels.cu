// Logits-processing and sampling kernels: one 512-thread block per row, each stage a kernel on the sampler's
// stream. Every float operation that must match the CPU engine bit for bit uses the explicitly rounded intrinsics
// (__fmul_rn, __fdiv_rn, __fadd_rn, __fsub_rn) so nvcc cannot contract it into an FMA the CPU does not do.
// Semantics and their CPU counterparts: interface.h. Ownership of the buffers: sampler.h.
#include <cuda_fp16.h>

#include <climits>
#include <cub/cub.cuh>

#include "philox.h"
#include "sampler.h"

namespace tokmeter::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kItems = 8;  // consecutive elements per thread in the prefix scans
constexpr int kTile = kThreads * kItems;

__device__ __forceinline__ float LoadLogit(const void* logits, int dtype, int64_t offset) {
  if (dtype == TOKMETER_CUDA_FLOAT16) return __half2float(static_cast<const __half*>(logits)[offset]);
  return static_cast<const float*>(logits)[offset];
}

// Order-preserving map of a float to uint32 (larger float → larger key; -0 just below +0).
__device__ __forceinline__ uint32_t OrderedKey(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float FromOrderedKey(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

struct ArgMax {
  float value;
  int32_t index;
};
// The CPU's Argmax: the largest value, ties to the lowest index; NaN never wins; all -inf → index 0.
struct ArgMaxOp {
  __device__ __forceinline__ ArgMax operator()(const ArgMax& a, const ArgMax& b) const {
    if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
    return a;
  }
};

struct MaxOp {
  __device__ __forceinline__ double operator()(double a, double b) const { return b > a ? b : a; }
};

struct IntMaxOp {
  __device__ __forceinline__ int operator()(int a, int b) const { return b > a ? b : a; }
};

using BlockScanD = cub::BlockScan<double, kThreads>;
using BlockReduceD = cub::BlockReduce<double, kThreads>;
using BlockReduceI = cub::BlockReduce<int, kThreads>;
using BlockReduceArg = cub::BlockReduce<ArgMax, kThreads>;

// First index i in [0, n) where pred(i, prefix before i, prefix through i) holds, for a prefix sum of value(i) in
// index order; n when none. `pred` must be monotone in i (it is, for non-negative values).
template <class ValueFn, class PredFn>
__device__ int FindFirst(int n, ValueFn value, PredFn pred, typename BlockScanD::TempStorage& scan, int* found) {
  double carry = 0;
  for (int base = 0; base < n; base += kTile) {
    double vals[kItems];
    double local = 0;
    const int start = base + threadIdx.x * kItems;
#pragma unroll
    for (int k = 0; k < kItems; ++k) {
      const int i = start + k;
      vals[k] = i < n ? value(i) : 0.0;
      local += vals[k];
    }
    double excl, aggregate;
    if (threadIdx.x == 0) *found = INT_MAX;
    BlockScanD(scan).ExclusiveSum(local, excl, aggregate);
    __syncthreads();
    double run = carry + excl;
#pragma unroll
    for (int k = 0; k < kItems; ++k) {
      const int i = start + k;
      if (i >= n) break;
      const double before = run;
      run += vals[k];
      if (pred(i, before, run)) {
        atomicMin(found, i);
        break;
      }
    }
    __syncthreads();
    const int first = *found;
    __syncthreads();  // everyone has read *found and the scan storage before the next tile reuses them
    if (first != INT_MAX) return first;
    carry += aggregate;
  }
  return n;
}

// Stage 1: penalties (+ temperature for sampling rows) into `work`; the processed max/argmax; raw max and sum of
// exp for log-probabilities.
__global__ void __launch_bounds__(kThreads)
    PrepareKernel(const void* logits, int dtype, int64_t row_stride, int vocab, const RowDesc* descs,
                  const uint8_t* seen, const uint32_t* counts, float* work, float* row_max, int32_t* row_argmax,
                  double* raw_stats, bool want_raw) {
  __shared__ union {
    typename BlockReduceArg::TempStorage arg;
    typename BlockReduceD::TempStorage red;
  } temp;
  __shared__ double s_raw_max;
  const int row = blockIdx.x;
  const RowDesc d = descs[row];
  const int64_t in_base = static_cast<int64_t>(row) * row_stride;
  const size_t slot_base = static_cast<size_t>(d.slot) * vocab;
  float* out = work + static_cast<size_t>(row) * vocab;

  ArgMax best{-INFINITY, INT_MAX};
  double raw_max = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float raw = LoadLogit(logits, dtype, in_base + i);
    raw_max = static_cast<double>(raw) > raw_max ? static_cast<double>(raw) : raw_max;
    float x = raw;
    if ((d.flags & kFlagRepetition) && seen[slot_base + i])
      x = x > 0 ? __fdiv_rn(x, d.repetition_penalty) : __fmul_rn(x, d.repetition_penalty);
    if (d.flags & kFlagPresenceFrequency) {
      const uint32_t c = counts[slot_base + i];
      if (c > 0) x = __fsub_rn(x, __fadd_rn(d.presence_penalty, __fmul_rn(d.frequency_penalty, static_cast<float>(c))));
    }
    if (d.flags & kFlagTemperature) x = __fmul_rn(x, d.inv_temperature);
    out[i] = x;
    if (x > best.value || (x == best.value && i < best.index)) best = ArgMax{x, i};
  }
  const ArgMax top = BlockReduceArg(temp.arg).Reduce(best, ArgMaxOp());
  if (threadIdx.x == 0) {
    row_max[row] = top.value;
    row_argmax[row] = top.index == INT_MAX ? 0 : top.index;
  }
  if (!want_raw) return;
  __syncthreads();
  const double m = BlockReduceD(temp.red).Reduce(raw_max, MaxOp());
  if (threadIdx.x == 0) s_raw_max = m;
  __syncthreads();
  const double rm = s_raw_max;
  double sum = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads)
    sum += exp(static_cast<double>(LoadLogit(logits, dtype, in_base + i)) - rm);
  __syncthreads();
  const double total = BlockReduceD(temp.red).Sum(sum);
  if (threadIdx.x == 0) {
    raw_stats[2 * row] = rm;
    raw_stats[2 * row + 1] = total;
  }
}

// Stage 2: top-k by an exact 4-pass radix select of the k-th largest value; removes x < kth.
__global__ void __launch_bounds__(kThreads) TopKKernel(int vocab, const RowDesc* descs, float* work) {
  const RowDesc d = descs[blockIdx.x];
  if (!(d.flags & kFlagTopK)) return;
  float* row = work + static_cast<size_t>(blockIdx.x) * vocab;
  __shared__ uint32_t hist[256];
  __shared__ uint32_t s_prefix, s_mask, s_remaining;
  if (threadIdx.x == 0) {
    s_prefix = 0;
    s_mask = 0;
    s_remaining = static_cast<uint32_t>(d.top_k);
  }
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) hist[b] = 0;
    __syncthreads();
    const uint32_t prefix = s_prefix, mask = s_mask;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const uint32_t key = OrderedKey(row[i]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t cumulative = 0;
      for (int digit = 255; digit >= 0; --digit) {
        if (cumulative + hist[digit] >= s_remaining) {
          s_remaining -= cumulative;
          s_prefix = prefix | (static_cast<uint32_t>(digit) << shift);
          s_mask = mask | (0xffu << shift);
          break;
        }
        cumulative += hist[digit];
      }
    }
    __syncthreads();
  }
  const float kth = FromOrderedKey(s_prefix);
  for (int i = threadIdx.x; i < vocab; i += kThreads)
    if (row[i] < kth) row[i] = -INFINITY;
}

// Stage 3: top-p over the row sorted descending (ties by id: the sort is stable over ids in ascending order).
__global__ void __launch_bounds__(kThreads)
    TopPKernel(int vocab, const RowDesc* descs, const float* sorted_keys, const int32_t* sorted_ids, float* work) {
  const RowDesc d = descs[blockIdx.x];
  if (!(d.flags & kFlagTopP)) return;
  __shared__ union {
    typename BlockScanD::TempStorage scan;
    typename BlockReduceD::TempStorage red;
    typename BlockReduceI::TempStorage redi;
  } temp;
  __shared__ int s_found, s_finite;
  __shared__ double s_total;
  const size_t base = static_cast<size_t>(blockIdx.x) * vocab;
  const float* keys = sorted_keys + base;
  const int32_t* ids = sorted_ids + base;
  float* row = work + base;

  int finite = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) finite += isfinite(keys[i]) ? 1 : 0;
  const int n = BlockReduceI(temp.redi).Sum(finite);
  if (threadIdx.x == 0) s_finite = n;
  __syncthreads();
  const int n_finite = s_finite;
  if (n_finite <= 1) return;
  // The finite keys are the first n_finite of the descending order (+inf cannot occur after a finite max... and
  // -inf sorts last); keys[0] is the max.
  const float max = keys[0];
  double sum = 0;
  for (int i = threadIdx.x; i < n_finite; i += kThreads) sum += exp(static_cast<double>(__fsub_rn(keys[i], max)));
  const double total = BlockReduceD(temp.red).Sum(sum);
  if (threadIdx.x == 0) s_total = total;
  __syncthreads();
  const double tot = s_total;
  const double p = static_cast<double>(d.top_p);
  const int keep = FindFirst(
      n_finite, [&](int i) { return exp(static_cast<double>(__fsub_rn(keys[i], max))); },
      [&](int i, double before, double) { return i > 0 && before / tot >= p; }, temp.scan, &s_found);
  for (int j = keep + threadIdx.x; j < n_finite; j += kThreads) row[ids[j]] = -INFINITY;
}

// Stage 4: min-p, the draw (or greedy argmax), the history update and the optional log-probability.
__global__ void __launch_bounds__(kThreads)
    DrawKernel(const void* logits, int dtype, int64_t row_stride, int vocab, const RowDesc* descs, float* work,
               const float* row_max, const int32_t* row_argmax, const double* raw_stats, bool want_raw, uint8_t* seen,
               uint32_t* counts, uint32_t* out_ids, float* out_logprobs) {
  __shared__ union {
    typename BlockScanD::TempStorage scan;
    typename BlockReduceD::TempStorage red;
    typename BlockReduceI::TempStorage redi;
  } temp;
  __shared__ int s_found, s_last;
  __shared__ double s_total;
  const int r = blockIdx.x;
  const RowDesc d = descs[r];
  float* row = work + static_cast<size_t>(r) * vocab;
  const int top = row_argmax[r];
  int chosen = top;
  if (!(d.flags & kFlagGreedy)) {
    const float m = row_max[r];
    if (d.flags & kFlagMinP) {
      const float threshold = __fadd_rn(m, d.log_min_p);
      for (int i = threadIdx.x; i < vocab; i += kThreads)
        if (row[i] < threshold) row[i] = -INFINITY;
      __syncthreads();
    }
    const double md = static_cast<double>(m);
    double sum = 0;
    int last = -1;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const float x = row[i];
      if (x != -INFINITY) {
        sum += exp(static_cast<double>(x) - md);
        last = i;
      }
    }
    const double total = BlockReduceD(temp.red).Sum(sum);
    __syncthreads();
    const int last_all = BlockReduceI(temp.redi).Reduce(last, IntMaxOp());
    if (threadIdx.x == 0) {
      s_total = total;
      s_last = last_all < 0 ? top : last_all;
    }
    __syncthreads();
    const double u = (d.flags & kFlagHostUniform) ? d.uniform : PhiloxUniform(d.seed, d.draw);
    const double target = u * s_total;
    const int first = FindFirst(
        vocab,
        [&](int i) {
          const float x = row[i];
          return x == -INFINITY ? 0.0 : exp(static_cast<double>(x) - md);
        },
        [&](int, double, double through) { return through > target; }, temp.scan, &s_found);
    chosen = first < vocab ? first : s_last;
  }
  if (threadIdx.x == 0) {
    const size_t slot_base = static_cast<size_t>(d.slot) * vocab;
    out_ids[r] = static_cast<uint32_t>(chosen);
    seen[slot_base + chosen] = 1;
    counts[slot_base + chosen] += 1;
    if (want_raw) {
      const double raw = LoadLogit(logits, dtype, static_cast<int64_t>(r) * row_stride + chosen);
      out_logprobs[r] = static_cast<float>(raw - raw_stats[2 * r] - log(raw_stats[2 * r + 1]));
    }
  }
}

__global__ void MarkTokensKernel(const uint32_t* tokens, size_t count, int vocab, uint8_t* seen_row,
                                 uint32_t* counts_row, bool generated) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint32_t id = tokens[i];
    if (id >= static_cast<uint32_t>(vocab)) continue;
    seen_row[id] = 1;
    if (generated) atomicAdd(&counts_row[id], 1u);
  }
}

__global__ void IotaKernel(int32_t* ids, size_t total, int vocab) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    ids[i] = static_cast<int32_t>(i % static_cast<size_t>(vocab));
}

}  // namespace

void LaunchPrepare(const void* logits, int dtype, int64_t row_stride, int vocab, int n_rows, const RowDesc* descs,
                   const uint8_t* seen, const uint32_t* counts, float* work, float* row_max, int32_t* row_argmax,
                   double* raw_stats, bool want_raw, cudaStream_t stream) {
  PrepareKernel<<<n_rows, kThreads, 0, stream>>>(logits, dtype, row_stride, vocab, descs, seen, counts, work, row_max,
                                                 row_argmax, raw_stats, want_raw);
}

void LaunchTopK(int vocab, int n_rows, const RowDesc* descs, float* work, cudaStream_t stream) {
  TopKKernel<<<n_rows, kThreads, 0, stream>>>(vocab, descs, work);
}

void LaunchTopP(int vocab, int n_rows, const RowDesc* descs, const float* sorted_keys, const int32_t* sorted_ids,
                float* work, cudaStream_t stream) {
  TopPKernel<<<n_rows, kThreads, 0, stream>>>(vocab, descs, sorted_keys, sorted_ids, work);
}

void LaunchDraw(const void* logits, int dtype, int64_t row_stride, int vocab, int n_rows, const RowDesc* descs,
                float* work, const float* row_max, const int32_t* row_argmax, const double* raw_stats, bool want_raw,
                uint8_t* seen, uint32_t* counts, uint32_t* out_ids, float* out_logprobs, cudaStream_t stream) {
  DrawKernel<<<n_rows, kThreads, 0, stream>>>(logits, dtype, row_stride, vocab, descs, work, row_max, row_argmax,
                                              raw_stats, want_raw, seen, counts, out_ids, out_logprobs);
}

void LaunchMarkTokens(const uint32_t* tokens, size_t count, int vocab, uint8_t* seen_row, uint32_t* counts_row,
                      bool generated, cudaStream_t stream) {
  if (count == 0) return;
  const int blocks = static_cast<int>((count + 255) / 256 < 1024 ? (count + 255) / 256 : 1024);
  MarkTokensKernel<<<blocks, 256, 0, stream>>>(tokens, count, vocab, seen_row, counts_row, generated);
}

void LaunchIota(int32_t* ids, int rows, int vocab, cudaStream_t stream) {
  const size_t total = static_cast<size_t>(rows) * vocab;
  IotaKernel<<<1024, 256, 0, stream>>>(ids, total, vocab);
}

cudaError_t SegmentedSortDescending(void* temp, size_t& temp_bytes, const float* keys_in, float* keys_out,
                                    const int32_t* ids_in, int32_t* ids_out, int num_items, int num_segments,
                                    const int32_t* begin, const int32_t* end, cudaStream_t stream) {
  return cub::DeviceSegmentedRadixSort::SortPairsDescending(temp, temp_bytes, keys_in, keys_out, ids_in, ids_out,
                                                            num_items, num_segments, begin, end, 0,
                                                            static_cast<int>(sizeof(float) * 8), stream);
}

}  // namespace tokmeter::cuda
