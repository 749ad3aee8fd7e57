/* tokmeter CUDA plug-in — the versioned C interface of libtokmeter_cuda.so.
 *
 * Why a plug-in: the addon (tokmeter.node) never links CUDA. When a model is loaded with device 'cuda', the engine
 * dlopens libtokmeter_cuda.so (native/engine/cuda_plugin.cc), calls the one exported function
 * TokmeterCudaGetInterface(TOKMETER_CUDA_INTERFACE_VERSION) and uses only the function table it returns
 * (the pattern of onnxruntime-genai's src/cuda/interface.h + LoadCudaInterface). The plug-in links the CUDA runtime
 * statically, so its only run-time dependency beyond libc/libstdc++ is the driver (libcuda.so.1), which the CUDA
 * runtime itself dlopens on first use: the library always loads, and "no driver" / "no GPU" arrive as errors from
 * device_count().
 *
 * Versioning: `version` is bumped on any change to this header's structs or function signatures; a host built for
 * version N refuses a plug-in of any other version (the two are built from the same tree and travel together).
 * `struct_size` lets a host check that the table is at least as large as the one it was compiled with.
 *
 * Errors: every function returning int returns 0 on success, else a nonzero TokmeterCudaStatus; the message of the
 * last failure on the calling thread is last_error() (valid until the next call on that thread).
 *
 * Sampler semantics (identical to the CPU engine: native/engine/logits/ and native/engine/sampler.cc):
 *   for each row, on float32 logits (fp16 input is widened exactly):
 *     1. repetition penalty  (if != 1): each distinct token of prompt+sampled: x > 0 ? x / p : x * p
 *     2. presence/frequency  (if either != 0): sampled tokens only: x -= presence + frequency * count
 *     --- rows with temperature == 0 stop here and return argmax (ties: lowest id) ---
 *     3. temperature (if != 1): x *= (1.0f / T)
 *     4. top-k (if 0 < k < vocab): keep x >= k-th largest value (ties with the k-th are kept)
 *     5. top-p (if < 1): sort finite logits descending (ties by id), keep while the mass before a token / total < p
 *        (the first token always kept), in double
 *     6. min-p (if > 0): remove x < max + logf(minP)
 *     7. draw: u in [0,1); target = u * sum(exp(x - max)) in double; the first id in id order whose inclusive prefix
 *        sum exceeds target; the last finite id if rounding leaves none.
 *   u is the row's `uniform` when the caller supplies uniforms (the engine passes its CPU Sampler's
 *   mt19937_64 NextUniform(), so a seed gives the same tokens on CPU and CUDA), else
 *   Philox4x32-10(key = seed, counter = {draw index, 0}) — a counter-based generator: the value depends only on the
 *   row's seed and how many draws the row has made, never on the batch composition or the launch geometry.
 * The sums of steps 5 and 7 are computed in a different order than on the CPU (parallel scans), so a draw whose
 * target lies within ~1e-12 relative of a bucket boundary can pick the neighbouring id; greedy ids are exact.
 * Logits must not contain NaN (as on the CPU, where the result is unspecified too).
 *
 * Thread affinity: a TokmeterCudaSampler is used by one thread at a time (the model's inference thread). Functions
 * that take a sampler enqueue on its stream; sample() returns after the ids are on the host.
 */
#ifndef TOKMETER_CUDA_INTERFACE_H_
#define TOKMETER_CUDA_INTERFACE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOKMETER_CUDA_INTERFACE_VERSION 2u
#define TOKMETER_CUDA_GET_INTERFACE_SYMBOL "TokmeterCudaGetInterface"

typedef enum TokmeterCudaStatus {
  TOKMETER_CUDA_OK = 0,
  TOKMETER_CUDA_NO_DRIVER = 1,        /* libcuda.so.1 missing or older than the CUDA 13 runtime needs */
  TOKMETER_CUDA_NO_DEVICE = 2,        /* driver present, no CUDA-capable GPU visible */
  TOKMETER_CUDA_INVALID_ARGUMENT = 3, /* a caller error: bad slot, row count, dtype, options */
  TOKMETER_CUDA_OUT_OF_MEMORY = 4,
  TOKMETER_CUDA_ERROR = 5 /* any other CUDA failure; last_error() has cudaGetErrorString */
} TokmeterCudaStatus;

typedef enum TokmeterCudaDtype { TOKMETER_CUDA_FLOAT32 = 0, TOKMETER_CUDA_FLOAT16 = 1 } TokmeterCudaDtype;

/* The sampling options of one sequence (the fields of engine::SamplingOptions, same neutral values). */
typedef struct TokmeterCudaRowOptions {
  float temperature;        /* 0: greedy */
  int32_t top_k;            /* 0: off */
  float top_p;              /* 1: off */
  float min_p;              /* 0: off */
  float repetition_penalty; /* 1: off */
  float presence_penalty;   /* 0: off */
  float frequency_penalty;  /* 0: off */
  uint32_t reserved;        /* 0 */
  uint64_t seed;            /* Philox key when the caller passes no uniforms */
} TokmeterCudaRowOptions;

typedef struct TokmeterCudaDeviceInfo {
  char name[256];
  int major; /* compute capability */
  int minor;
  size_t total_memory;
  size_t free_memory;
  int driver_version;  /* e.g. 13000 */
  int runtime_version; /* of the statically linked CUDA runtime */
} TokmeterCudaDeviceInfo;

typedef struct TokmeterCudaSampler TokmeterCudaSampler;

typedef struct TokmeterCudaInterface {
  uint32_t version;     /* TOKMETER_CUDA_INTERFACE_VERSION */
  uint32_t struct_size; /* sizeof(TokmeterCudaInterface) of the plug-in */

  /* Message of the last failure on this thread ("" if none). */
  const char* (*last_error)(void);

  /* Number of visible GPUs. Fails with NO_DRIVER or NO_DEVICE and a message naming what is missing. */
  int (*device_count)(int* count);
  int (*device_info)(int device, TokmeterCudaDeviceInfo* info);

  /* A stream for ORT and the sampler to share (pass it to OrtCUDAProviderOptionsV2 user_compute_stream so the
   * logits the graph writes are ordered before the sampling kernels). Returned as cudaStream_t cast to void*. */
  int (*create_stream)(int device, void** stream);
  int (*destroy_stream)(void* stream);

  /* A sampler for up to max_slots concurrent sequences over a vocabulary of vocab_size logits. stream may be NULL
   * (the legacy default stream). Device memory: about max_slots * vocab_size * 29 bytes (21 + cub's sort scratch). */
  int (*create_sampler)(int device, int max_slots, int vocab_size, void* stream, TokmeterCudaSampler** out);
  void (*destroy_sampler)(TokmeterCudaSampler* sampler); /* NULL is a no-op; waits for work in flight */

  /* Starts a sequence in `slot`: stores its options, clears its penalty state, marks its prompt tokens as seen
   * (repetition penalty) and resets its Philox draw counter. Ids >= vocab_size are ignored (as on the CPU). */
  int (*reset_slot)(TokmeterCudaSampler* sampler, int slot, const TokmeterCudaRowOptions* options,
                    const uint32_t* prompt, size_t prompt_length);
  /* Appends tokens that were not drawn by sample() (they count as generated for the penalties). */
  int (*append_tokens)(TokmeterCudaSampler* sampler, int slot, const uint32_t* tokens, size_t count);

  /* Processes and samples n_rows rows. Row r of the logits starts at element r * row_stride of `logits` (a device
   * pointer; float32 or float16), e.g. the last position of each sequence of a [batch, seq, vocab] output is
   * logits + (seq - 1) * vocab with row_stride = seq * vocab. slots[r] names the sequence (distinct within a call).
   * uniforms: NULL (Philox) or n_rows values in [0, 1) for sampling rows. out_ids: n_rows host ids.
   * out_logprobs: NULL, or n_rows host values: log softmax of the *raw* logits at the chosen id (as the CPU
   * engine reports). Each sampled id is appended to its slot's history. Blocks until the ids are on the host. */
  int (*sample)(TokmeterCudaSampler* sampler, const void* logits, int dtype, int64_t row_stride, int n_rows,
                const int32_t* slots, const double* uniforms, uint32_t* out_ids, float* out_logprobs);

  /* Test hook: copies the processed logits of the last sample() call (n_rows x vocab_size float32, -inf where a
   * processor removed a token; rows with temperature 0 hold the penalised logits) to host memory. */
  int (*copy_processed_logits)(TokmeterCudaSampler* sampler, float* host, size_t host_floats);

  /* Device-to-device copy on the sampler's stream (KV-cache moves between slots); async. */
  int (*copy_device)(void* dst, const void* src, size_t bytes, void* stream);

  /* --- version 2: device memory for the engine's KV cache (native/engine/kv_memory.h) --- */
  /* cudaMalloc on `device` (uninitialised); OUT_OF_MEMORY names the bytes asked for. bytes 0 allocates 1 byte. */
  int (*device_alloc)(int device, size_t bytes, void** out);
  /* cudaFree (synchronises the device first, so no copy in flight reads freed memory). NULL is a no-op. */
  int (*device_free)(void* ptr);
  /* `height` rows of `width` bytes from src (row pitch spitch) to dst (row pitch dpitch), async on `stream`;
   * either side may be host or device memory (cudaMemcpyDefault, unified addressing). */
  int (*copy_2d)(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height, void* stream);
  /* Sets `height` rows of `width` bytes (row pitch `pitch`) of device memory to `value`, async on `stream`. */
  int (*memset_2d)(void* dst, size_t pitch, int value, size_t width, size_t height, void* stream);
  /* Waits for everything queued on `stream`. */
  int (*synchronize)(void* stream);
} TokmeterCudaInterface;

/* The one exported symbol. Returns NULL when requested_version is not the plug-in's version. */
typedef const TokmeterCudaInterface* (*TokmeterCudaGetInterfaceFn)(uint32_t requested_version);

#if defined(TOKMETER_CUDA_BUILDING_PLUGIN)
__attribute__((visibility("default")))
#endif
const TokmeterCudaInterface* TokmeterCudaGetInterface(uint32_t requested_version);

#ifdef __cplusplus
}
#endif

#endif /* TOKMETER_CUDA_INTERFACE_H_ */
