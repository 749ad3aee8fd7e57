// The CUDA sampler against the CPU engine (native/engine/logits/*, native/engine/sampler.cc) on the same logits.
//
// Always runs (no GPU needed): Philox4x32-10 against Random123's known-answer vectors, and the interface version
// handshake. Then, if device_count() says there is no driver or no GPU, prints "SKIPPED: <reason>" and exits 0;
// any other failure to reach the GPU is a test failure. On a GPU:
//   - processed logits equal the CPU chain's bit for bit (penalties, temperature, top-k, min-p; top-p up to a
//     boundary token), fp32 and fp16 input, ties included;
//   - greedy ids equal the CPU's;
//   - with the CPU Sampler's uniforms passed in, sampled ids equal the CPU's (mismatches only at rounding
//     boundaries: at most 1 in 1000, and 1 in a smaller run);
//   - Philox draws: same ids on a second run, alone or inside a batch, equal to a host inverse-CDF with the host
//     Philox, and the empirical distribution matches softmax of the processed logits (and the CPU sampler's);
//   - log-probabilities equal Sampler::LogProb within 1e-5.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../interface.h"
#include "../philox.h"
#include "engine/logits/processor.h"
#include "engine/sampler.h"

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                                             \
  do {                                                               \
    if (!(cond)) {                                                   \
      ++g_failures;                                                  \
      std::printf("  FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                      \
      std::printf("\n");                                             \
    }                                                                \
  } while (0)

const TokmeterCudaInterface* api = nullptr;

// --- host-only tests -------------------------------------------------------------------------------------------

void TestPhiloxKnownAnswers() {
  using tokmeter::cuda::Philox4x32;
  using tokmeter::cuda::Philox4x32_10;
  struct Kat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t expect[4];
  };
  // Random123 kat_vectors, philox4x32 with 10 rounds.
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    Philox4x32 c{{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}};
    const Philox4x32 out = Philox4x32_10(c, k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) CHECK(out.v[i] == k.expect[i], "word %d: %08x != %08x", i, out.v[i], k.expect[i]);
  }
  // The uniform is in [0, 1) and differs between draws.
  const double a = tokmeter::cuda::PhiloxUniform(1, 0), b = tokmeter::cuda::PhiloxUniform(1, 1);
  CHECK(a >= 0 && a < 1 && b >= 0 && b < 1 && a != b, "uniforms %f %f", a, b);
}

void TestVersionHandshake() {
  CHECK(TokmeterCudaGetInterface(TOKMETER_CUDA_INTERFACE_VERSION + 1) == nullptr, "a wrong version must be refused");
  api = TokmeterCudaGetInterface(TOKMETER_CUDA_INTERFACE_VERSION);
  CHECK(api != nullptr, "version %u refused", TOKMETER_CUDA_INTERFACE_VERSION);
  if (api)
    CHECK(api->version == TOKMETER_CUDA_INTERFACE_VERSION && api->struct_size == sizeof(TokmeterCudaInterface),
          "table version %u size %u", api->version, api->struct_size);
}

// --- helpers for the GPU tests -----------------------------------------------------------------------------------

struct DeviceBuffer {
  void* ptr = nullptr;
};

// The kernel tests put their inputs on the device with the CUDA runtime directly (the plug-in's static runtime is
// not visible from here: this test links cudart too); TestDeviceMemory checks the plug-in's own memory functions.
}  // namespace

#include <cuda_runtime.h>

namespace {

#define CUDA_OK(expr)                                                                           \
  do {                                                                                          \
    cudaError_t e_ = (expr);                                                                    \
    if (e_ != cudaSuccess) {                                                                    \
      std::printf("  FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      ++g_failures;                                                                             \
      return;                                                                                   \
    }                                                                                           \
  } while (0)

#define API_OK(expr)                                                                              \
  do {                                                                                            \
    int s_ = (expr);                                                                              \
    if (s_ != 0) {                                                                                \
      std::printf("  FAIL %s:%d: %s: %d %s\n", __FILE__, __LINE__, #expr, s_, api->last_error()); \
      ++g_failures;                                                                               \
      return;                                                                                     \
    }                                                                                             \
  } while (0)

tokmeter::engine::SamplingOptions ToCpu(const TokmeterCudaRowOptions& o) {
  tokmeter::engine::SamplingOptions s;
  s.temperature = o.temperature;
  s.topK = o.top_k;
  s.topP = o.top_p;
  s.minP = o.min_p;
  s.repetitionPenalty = o.repetition_penalty;
  s.presencePenalty = o.presence_penalty;
  s.frequencyPenalty = o.frequency_penalty;
  s.seed = o.seed;
  return s;
}

TokmeterCudaRowOptions Opts(float t, int k, float p, float minp, float rep, float pres, float freq, uint64_t seed) {
  TokmeterCudaRowOptions o{};
  o.temperature = t;
  o.top_k = k;
  o.top_p = p;
  o.min_p = minp;
  o.repetition_penalty = rep;
  o.presence_penalty = pres;
  o.frequency_penalty = freq;
  o.seed = seed;
  return o;
}

// Random logits; `ties` quantises them to steps of 0.5 so many values tie.
std::vector<float> RandomLogits(std::mt19937& rng, int vocab, bool ties, float scale = 3.0f) {
  std::normal_distribution<float> n(0.0f, scale);
  std::vector<float> v(vocab);
  for (float& x : v) {
    x = n(rng);
    if (ties) x = std::round(x * 2.0f) / 2.0f;
  }
  return v;
}

uint16_t FloatToHalf(float f) {  // round to nearest even, finite normal range only (test data)
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(h);
}
float HalfToFloatRef(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits = exp == 0 ? sign : sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

struct Row {
  TokmeterCudaRowOptions options;
  std::vector<uint32_t> prompt;
  std::vector<uint32_t> generated;
  std::vector<float> logits;
};

// CPU reference: the engine's processor chain on a copy of the logits.
std::vector<float> CpuProcess(const Row& row) {
  std::vector<float> x = row.logits;
  std::vector<uint32_t> history = row.prompt;
  history.insert(history.end(), row.generated.begin(), row.generated.end());
  const tokmeter::engine::LogitsContext ctx{std::span<const uint32_t>(history), row.prompt.size()};
  for (auto& p : tokmeter::engine::MakeProcessorChain(ToCpu(row.options))) p->Apply(x, ctx);
  return x;
}

// The CPU Sampler's draw for a given uniform: the engine's Sampler with that uniform injected.
uint32_t CpuDrawWithUniform(const std::vector<float>& logits, double u) {
  tokmeter::engine::Sampler sampler([u] { return u; });
  return sampler.Sample(logits, false);
}

struct Fixture {
  int vocab = 0;
  int slots = 0;
  TokmeterCudaSampler* sampler = nullptr;
  void* d_logits = nullptr;
  ~Fixture() {
    if (sampler) api->destroy_sampler(sampler);
    if (d_logits) cudaFree(d_logits);
  }
};

// Uploads rows' logits (fp32 or fp16) with a stride of `vocab + pad` and resets each row's slot (slot_of[row], or
// the row's index when slot_of is empty).
bool Setup(Fixture& f, std::vector<Row>& rows, int vocab, bool fp16, int pad,
           const std::vector<int32_t>& slot_of = {}) {
  f.vocab = vocab;
  f.slots = static_cast<int>(rows.size());
  if (api->create_sampler(0, f.slots, vocab, nullptr, &f.sampler) != 0) {
    std::printf("  FAIL create_sampler: %s\n", api->last_error());
    ++g_failures;
    return false;
  }
  const size_t stride = static_cast<size_t>(vocab + pad);
  const size_t elem = fp16 ? 2 : 4;
  std::vector<uint8_t> host(stride * rows.size() * elem, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int i = 0; i < vocab; ++i) {
      if (fp16) {
        const uint16_t h = FloatToHalf(rows[r].logits[i]);
        rows[r].logits[i] = HalfToFloatRef(h);  // the CPU sees the widened fp16 value, as the engine would
        std::memcpy(&host[(r * stride + i) * 2], &h, 2);
      } else {
        std::memcpy(&host[(r * stride + i) * 4], &rows[r].logits[i], 4);
      }
    }
  }
  if (cudaMalloc(&f.d_logits, host.size()) != cudaSuccess ||
      cudaMemcpy(f.d_logits, host.data(), host.size(), cudaMemcpyHostToDevice) != cudaSuccess) {
    std::printf("  FAIL device logits upload\n");
    ++g_failures;
    return false;
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const int slot = slot_of.empty() ? static_cast<int>(r) : slot_of[r];
    if (api->reset_slot(f.sampler, slot, &rows[r].options, rows[r].prompt.data(), rows[r].prompt.size()) != 0 ||
        api->append_tokens(f.sampler, slot, rows[r].generated.data(), rows[r].generated.size()) != 0) {
      std::printf("  FAIL reset/append: %s\n", api->last_error());
      ++g_failures;
      return false;
    }
  }
  return true;
}

std::vector<uint32_t> RandomTokens(std::mt19937& rng, int vocab, int n) {
  std::uniform_int_distribution<int> d(0, vocab - 1);
  std::vector<uint32_t> t(n);
  for (auto& x : t) x = static_cast<uint32_t>(d(rng));
  if (n > 3) t[1] = t[0];  // a repeated token: penalised once (repetition) / counted twice (frequency)
  return t;
}

// Processed logits and greedy ids, for every processor, fp32 and fp16, ties included.
void TestProcessedLogitsAndGreedy(bool fp16) {
  std::mt19937 rng(fp16 ? 7 : 3);
  const int vocab = 50257;
  std::vector<Row> rows;
  const TokmeterCudaRowOptions variants[] = {
      Opts(0, 0, 1, 0, 1, 0, 0, 1),                        // plain greedy
      Opts(0, 0, 1, 0, 1.3f, 0.5f, 0.25f, 2),              // greedy with all penalties
      Opts(0.7f, 0, 1, 0, 1, 0, 0, 3),                     // temperature
      Opts(1.0f, 40, 1, 0, 1.1f, 0, 0, 4),                 // top-k + repetition
      Opts(0.9f, 0, 0.9f, 0, 1, 0.3f, 0.1f, 5),            // top-p + presence/frequency
      Opts(1.2f, 0, 1, 0.05f, 1, 0, 0, 6),                 // min-p
      Opts(0.8f, 50, 0.95f, 0.02f, 1.2f, -0.4f, 0.6f, 7),  // everything
      Opts(0.5f, 1, 1, 0, 1, 0, 0, 8),                     // top-k 1
  };
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& o : variants) {
      Row r;
      r.options = o;
      r.logits = RandomLogits(rng, vocab, pass == 1);
      r.prompt = RandomTokens(rng, vocab, 200);
      r.generated = RandomTokens(rng, vocab, 37);
      rows.push_back(std::move(r));
    }
  }
  Fixture f;
  const int pad = 17;
  const int n = static_cast<int>(rows.size());
  // Row i uses slot n - 1 - i: penalty state and draw counters must follow the slot, not the row.
  std::vector<int32_t> slots(n);
  for (int i = 0; i < n; ++i) slots[i] = n - 1 - i;
  if (!Setup(f, rows, vocab, fp16, pad, slots)) return;
  std::vector<uint32_t> ids(n);
  std::vector<double> uniforms(n, 0.5);
  API_OK(api->sample(f.sampler, f.d_logits, fp16 ? TOKMETER_CUDA_FLOAT16 : TOKMETER_CUDA_FLOAT32, vocab + pad, n,
                     slots.data(), uniforms.data(), ids.data(), nullptr));
  std::vector<float> gpu(static_cast<size_t>(n) * vocab);
  API_OK(api->copy_processed_logits(f.sampler, gpu.data(), gpu.size()));
  for (int r = 0; r < n; ++r) {
    const std::vector<float> cpu = CpuProcess(rows[r]);
    int differ = 0, first = -1;
    for (int i = 0; i < vocab; ++i) {
      const float a = cpu[i], b = gpu[static_cast<size_t>(r) * vocab + i];
      if (!(a == b || (std::isinf(a) && std::isinf(b) && (a > 0) == (b > 0)))) {
        if (first < 0) first = i;
        ++differ;
      }
    }
    // Top-p's cut is a sum in a different order: at most the one boundary token may differ.
    const int allowed = rows[r].options.top_p < 1.0f && rows[r].options.temperature != 0 ? 1 : 0;
    CHECK(differ <= allowed, "row %d (%s): %d logits differ, first at %d: cpu %g gpu %g", r, fp16 ? "fp16" : "fp32",
          differ, first, first >= 0 ? cpu[first] : 0.0, first >= 0 ? gpu[static_cast<size_t>(r) * vocab + first] : 0.0);
    if (rows[r].options.temperature == 0) {
      const uint32_t want = tokmeter::engine::Sampler::Argmax(cpu);
      CHECK(ids[r] == want, "greedy row %d: cuda %u cpu %u", r, ids[r], want);
    } else {
      const uint32_t want = CpuDrawWithUniform(cpu, 0.5);
      CHECK(ids[r] == want, "u=0.5 row %d: cuda %u cpu %u", r, ids[r], want);
    }
  }
}

// With the CPU Sampler's own uniforms, a whole seeded generation gives the CPU's ids.
void TestHostUniformParity() {
  std::mt19937 rng(11);
  const int vocab = 32000, steps = 200;
  std::vector<Row> rows;
  const TokmeterCudaRowOptions variants[] = {Opts(1.0f, 0, 1, 0, 1, 0, 0, 42), Opts(0.7f, 50, 0.9f, 0, 1.1f, 0, 0, 43),
                                             Opts(1.3f, 0, 0.8f, 0.05f, 1, 0.5f, 0.5f, 44),
                                             Opts(0.6f, 20, 1, 0, 1, 0, 0, 45)};
  for (const auto& o : variants) {
    Row r;
    r.options = o;
    r.prompt = RandomTokens(rng, vocab, 64);
    rows.push_back(std::move(r));
  }
  const int n = static_cast<int>(rows.size());
  Fixture f;
  for (auto& r : rows) r.logits.assign(vocab, 0.0f);
  if (!Setup(f, rows, vocab, false, 0)) return;
  std::vector<tokmeter::engine::Sampler> cpu, uniform_source;
  for (auto& r : rows) {
    cpu.emplace_back(r.options.seed);
    uniform_source.emplace_back(r.options.seed);
  }
  std::vector<int32_t> slots(n);
  for (int i = 0; i < n; ++i) slots[i] = i;
  int mismatches = 0, total = 0;
  std::vector<float> host(static_cast<size_t>(n) * vocab);
  std::vector<uint32_t> ids(n);
  std::vector<double> uniforms(n);
  for (int s = 0; s < steps; ++s) {
    for (int r = 0; r < n; ++r) {
      rows[r].logits = RandomLogits(rng, vocab, s % 5 == 0, 2.0f);
      std::memcpy(&host[static_cast<size_t>(r) * vocab], rows[r].logits.data(), sizeof(float) * vocab);
      uniforms[r] = uniform_source[r].NextUniform();
    }
    CUDA_OK(cudaMemcpy(f.d_logits, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    API_OK(api->sample(f.sampler, f.d_logits, TOKMETER_CUDA_FLOAT32, vocab, n, slots.data(), uniforms.data(),
                       ids.data(), nullptr));
    for (int r = 0; r < n; ++r) {
      std::vector<float> processed = CpuProcess(rows[r]);
      const uint32_t want = cpu[r].Sample(processed, false);
      ++total;
      if (ids[r] != want) {
        ++mismatches;
        std::printf("  note: step %d row %d cuda %u cpu %u\n", s, r, ids[r], want);
      }
      // Both histories continue with the CPU's token so the penalties stay comparable.
      rows[r].generated.push_back(want);
      if (ids[r] != want) {
        // Re-sync the slot with the CPU history.
        API_OK(api->reset_slot(f.sampler, r, &rows[r].options, rows[r].prompt.data(), rows[r].prompt.size()));
        API_OK(api->append_tokens(f.sampler, r, rows[r].generated.data(), rows[r].generated.size()));
      }
    }
  }
  std::printf("  host-uniform parity: %d of %d draws differ\n", mismatches, total);
  CHECK(mismatches <= std::max(1, total / 1000), "%d of %d draws differ from the CPU sampler", mismatches, total);
}

// Philox draws: reproducible, independent of the batch, equal to the host inverse CDF, right distribution.
void TestPhiloxDraws() {
  std::mt19937 rng(5);
  const int vocab = 24, batch = 64, calls = 400;
  std::vector<float> base = RandomLogits(rng, vocab, false, 1.0f);
  std::vector<Row> rows(batch);
  for (int r = 0; r < batch; ++r) {
    rows[r].options = Opts(0.9f, 16, 0.97f, 0.01f, 1, 0, 0, 1000 + r);
    rows[r].logits = base;
  }
  Fixture f;
  if (!Setup(f, rows, vocab, false, 0)) return;
  // Penalties off, so every draw of every row has the same processed logits.
  const std::vector<float> processed = CpuProcess(rows[0]);
  std::vector<double> expected(vocab, 0.0);
  {
    double m = -INFINITY, total = 0;
    for (float x : processed) m = std::max(m, static_cast<double>(x));
    for (int i = 0; i < vocab; ++i) total += processed[i] == -INFINITY ? 0 : std::exp(processed[i] - m);
    for (int i = 0; i < vocab; ++i) expected[i] = processed[i] == -INFINITY ? 0 : std::exp(processed[i] - m) / total;
  }
  // Same logits in every row: a [batch, vocab] buffer with row stride 0 would do, but use real rows.
  std::vector<float> host(static_cast<size_t>(batch) * vocab);
  for (int r = 0; r < batch; ++r)
    std::memcpy(&host[static_cast<size_t>(r) * vocab], base.data(), sizeof(float) * vocab);
  CUDA_OK(cudaMemcpy(f.d_logits, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  std::vector<int32_t> slots(batch);
  for (int i = 0; i < batch; ++i) slots[i] = i;
  std::vector<uint32_t> ids(batch);
  std::vector<std::vector<uint32_t>> first_run(batch);
  std::vector<double> counts(vocab, 0.0);
  int host_mismatch = 0;
  for (int c = 0; c < calls; ++c) {
    API_OK(api->sample(f.sampler, f.d_logits, TOKMETER_CUDA_FLOAT32, vocab, batch, slots.data(), nullptr, ids.data(),
                       nullptr));
    for (int r = 0; r < batch; ++r) {
      first_run[r].push_back(ids[r]);
      counts[ids[r]] += 1;
      const uint32_t want = CpuDrawWithUniform(processed, tokmeter::cuda::PhiloxUniform(1000 + r, c));
      if (ids[r] != want) ++host_mismatch;
    }
  }
  CHECK(host_mismatch == 0, "%d Philox draws differ from the host inverse CDF", host_mismatch);
  // Chi-square over the tokens that can be drawn (df <= 23; 60 is far beyond p = 1e-5).
  const double n = static_cast<double>(batch) * calls;
  double chi2 = 0;
  for (int i = 0; i < vocab; ++i) {
    if (expected[i] == 0) {
      CHECK(counts[i] == 0, "token %d was removed but drawn %g times", i, counts[i]);
      continue;
    }
    chi2 += (counts[i] - n * expected[i]) * (counts[i] - n * expected[i]) / (n * expected[i]);
  }
  std::printf("  Philox distribution: chi2 = %.2f over %g draws\n", chi2, n);
  CHECK(chi2 < 60, "chi2 %.2f", chi2);
  // The CPU sampler (mt19937_64) on the same processed logits: same distribution.
  {
    std::vector<double> cpu_counts(vocab, 0.0);
    tokmeter::engine::Sampler s(77);
    for (int i = 0; i < static_cast<int>(n); ++i) cpu_counts[s.Sample(processed, false)] += 1;
    double chi2_two = 0;
    for (int i = 0; i < vocab; ++i) {
      const double a = counts[i], b = cpu_counts[i];
      if (a + b > 0) chi2_two += (a - b) * (a - b) / (a + b);
    }
    std::printf("  CUDA vs CPU sampler: two-sample chi2 = %.2f\n", chi2_two);
    CHECK(chi2_two < 60, "two-sample chi2 %.2f", chi2_two);
  }
  // Reproducible and batch-independent: row 5 alone, in a fresh slot state, gives the same ids.
  API_OK(api->reset_slot(f.sampler, 5, &rows[5].options, nullptr, 0));
  std::vector<uint32_t> alone;
  for (int c = 0; c < calls; ++c) {
    const int32_t slot = 5;
    uint32_t id = 0;
    // Row 5's logits at row 0 of a one-row call.
    API_OK(api->sample(f.sampler, f.d_logits, TOKMETER_CUDA_FLOAT32, vocab, 1, &slot, nullptr, &id, nullptr));
    alone.push_back(id);
  }
  CHECK(alone == first_run[5], "row 5 sampled alone differs from row 5 in a batch of %d", batch);
}

// Edge rows in one call, each on a slot other than its row: all -inf (greedy and sampled), a -inf mask, k >= vocab,
// k = vocab - 1, a top-p that keeps one token, min-p 1, a single finite token, a tie at the max; a vocabulary that is
// not a multiple of the block size. Then a call of greedy rows only, with a row stride of several rows.
void TestEdgeRows() {
  std::mt19937 rng(13);
  const int vocab = 1000;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<Row> rows;
  auto add = [&](const TokmeterCudaRowOptions& o, std::vector<float> logits) {
    Row r;
    r.options = o;
    r.logits = std::move(logits);
    r.prompt = RandomTokens(rng, vocab, 20);
    r.generated = RandomTokens(rng, vocab, 9);
    rows.push_back(std::move(r));
  };
  const std::vector<float> all_inf(vocab, -inf);
  std::vector<float> masked = RandomLogits(rng, vocab, false);
  for (int i = 0; i < vocab; ++i)
    if (i % 3 != 1) masked[i] = -inf;
  std::vector<float> single(vocab, -inf);
  single[777] = 1.5f;
  std::vector<float> tie = RandomLogits(rng, vocab, false);
  tie[300] = tie[700] = 50.0f;
  add(Opts(0, 0, 1, 0, 1, 0, 0, 1), all_inf);                                    // 0: greedy, all -inf -> 0
  add(Opts(1.0f, 0, 0.9f, 0.1f, 1, 0, 0, 2), all_inf);                           // 1: sampled, all -inf -> 0
  add(Opts(0.8f, vocab + 5, 1, 0, 1.2f, 0.3f, 0.2f, 3), masked);                 // 2: k >= vocab, mask, penalties
  add(Opts(1.0f, vocab - 1, 1, 0, 1, 0, 0, 4), RandomLogits(rng, vocab, true));  // 3: k = vocab - 1, ties
  add(Opts(1.0f, 0, 0.01f, 0, 1, 0, 0, 5), masked);                              // 4: top-p keeps the top token
  add(Opts(1.0f, 0, 1, 1.0f, 1, 0, 0, 6), tie);                                  // 5: min-p 1: the two tied maxima
  add(Opts(0.7f, 3, 0.5f, 0.5f, 1, 0, 0, 7), single);                            // 6: one finite token -> 777
  add(Opts(0, 0, 1, 0, 1, 0, 0, 8), tie);                                        // 7: greedy tie -> 300
  const int n = static_cast<int>(rows.size());
  std::vector<int32_t> slots(n);
  for (int i = 0; i < n; ++i) slots[i] = n - 1 - i;
  Fixture f;
  if (!Setup(f, rows, vocab, false, 0, slots)) return;
  std::vector<uint32_t> ids(n);
  std::vector<double> uniforms(n, 0.5);
  API_OK(api->sample(f.sampler, f.d_logits, TOKMETER_CUDA_FLOAT32, vocab, n, slots.data(), uniforms.data(), ids.data(),
                     nullptr));
  std::vector<float> gpu(static_cast<size_t>(n) * vocab);
  API_OK(api->copy_processed_logits(f.sampler, gpu.data(), gpu.size()));
  for (int r = 0; r < n; ++r) {
    const std::vector<float> cpu = CpuProcess(rows[r]);
    int differ = 0;
    for (int i = 0; i < vocab; ++i) {
      const float a = cpu[i], b = gpu[static_cast<size_t>(r) * vocab + i];
      if (!(a == b || (std::isinf(a) && std::isinf(b) && (a > 0) == (b > 0)))) ++differ;
    }
    const int allowed = rows[r].options.top_p < 1.0f && rows[r].options.temperature != 0 ? 1 : 0;
    CHECK(differ <= allowed, "edge row %d: %d logits differ", r, differ);
    const uint32_t want =
        rows[r].options.temperature == 0 ? tokmeter::engine::Sampler::Argmax(cpu) : CpuDrawWithUniform(cpu, 0.5);
    CHECK(ids[r] == want, "edge row %d: cuda %u cpu %u", r, ids[r], want);
  }
  CHECK(ids[0] == 0 && ids[1] == 0 && ids[5] == 700 && ids[6] == 777 && ids[7] == 300,
        "edge ids %u %u %u %u %u (want 0 0 700 777 300)", ids[0], ids[1], ids[5], ids[6], ids[7]);
  // Greedy rows only (rows 0 and 7: penalties off, so the same ids again), row 1 of the call 7 rows further on.
  const int32_t greedy_slots[2] = {slots[0], slots[7]};
  uint32_t greedy_ids[2] = {99, 99};
  API_OK(api->sample(f.sampler, f.d_logits, TOKMETER_CUDA_FLOAT32, int64_t{7} * vocab, 2, greedy_slots, nullptr,
                     greedy_ids, nullptr));
  CHECK(greedy_ids[0] == 0 && greedy_ids[1] == 300, "greedy-only call: %u %u (want 0 300)", greedy_ids[0],
        greedy_ids[1]);
}

void TestLogProbs() {
  std::mt19937 rng(9);
  const int vocab = 32000;
  std::vector<Row> rows(3);
  rows[0].options = Opts(0, 0, 1, 0, 1.2f, 0, 0, 1);
  rows[1].options = Opts(0.8f, 30, 0.9f, 0, 1, 0, 0, 2);
  rows[2].options = Opts(1.0f, 0, 1, 0, 1, 0.5f, 0.5f, 3);
  for (auto& r : rows) {
    r.logits = RandomLogits(rng, vocab, false);
    r.prompt = RandomTokens(rng, vocab, 10);
  }
  Fixture f;
  if (!Setup(f, rows, vocab, false, 0)) return;
  int32_t slots[3] = {0, 1, 2};
  uint32_t ids[3];
  float lps[3];
  API_OK(api->sample(f.sampler, f.d_logits, TOKMETER_CUDA_FLOAT32, vocab, 3, slots, nullptr, ids, lps));
  for (int r = 0; r < 3; ++r) {
    const float want = tokmeter::engine::Sampler::LogProb(rows[r].logits, ids[r]);
    CHECK(std::fabs(want - lps[r]) <= 1e-5f * std::max(1.0f, std::fabs(want)), "row %d: logprob %g vs cpu %g", r,
          lps[r], want);
  }
}

void TestInvalidArguments() {
  TokmeterCudaSampler* s = nullptr;
  CHECK(api->create_sampler(0, 0, 10, nullptr, &s) == TOKMETER_CUDA_INVALID_ARGUMENT, "max_slots 0 accepted");
  API_OK(api->create_sampler(0, 2, 10, nullptr, &s));
  TokmeterCudaRowOptions bad = Opts(-1, 0, 1, 0, 1, 0, 0, 0);
  CHECK(api->reset_slot(s, 0, &bad, nullptr, 0) == TOKMETER_CUDA_INVALID_ARGUMENT, "temperature -1 accepted");
  CHECK(std::strstr(api->last_error(), "temperature") != nullptr, "message: %s", api->last_error());
  CHECK(api->reset_slot(s, 5, &bad, nullptr, 0) == TOKMETER_CUDA_INVALID_ARGUMENT, "slot 5 accepted");
  int32_t slot = 1;
  uint32_t id;
  CHECK(api->sample(s, reinterpret_cast<void*>(16), 0, 10, 1, &slot, nullptr, &id, nullptr) ==
            TOKMETER_CUDA_INVALID_ARGUMENT,
        "sampling an unreset slot accepted");
  api->destroy_sampler(s);
}

}  // namespace

// Version 2: the KV memory functions the engine's CudaDevice uses (alloc, strided copies both ways, clearing).
void TestDeviceMemory() {
  void* stream = nullptr;
  API_OK(api->create_stream(0, &stream));
  const size_t rows = 4, width = 24, src_pitch = 40, dev_pitch = 32;
  std::vector<uint8_t> host(rows * src_pitch);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(i * 7 + 3);
  void* dev = nullptr;
  API_OK(api->device_alloc(0, rows * dev_pitch, &dev));
  API_OK(api->copy_2d(dev, dev_pitch, host.data(), src_pitch, width, rows, stream));
  // Clear bytes [4, 12) of every row on the device.
  API_OK(api->memset_2d(static_cast<uint8_t*>(dev) + 4, dev_pitch, 0, 8, rows, stream));
  std::vector<uint8_t> back(rows * width, 0xEE);
  API_OK(api->copy_2d(back.data(), width, dev, dev_pitch, width, rows, stream));
  API_OK(api->synchronize(stream));
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < width; ++c) {
      const uint8_t want = (c >= 4 && c < 12) ? 0 : host[r * src_pitch + c];
      CHECK(back[r * width + c] == want, "row %zu col %zu: %u != %u", r, c, back[r * width + c], want);
    }
  CHECK(api->copy_2d(dev, 8, host.data(), src_pitch, width, rows, stream) == TOKMETER_CUDA_INVALID_ARGUMENT,
        "a pitch below the width must be refused");
  API_OK(api->device_free(dev));
  API_OK(api->device_free(nullptr));
  void* huge = nullptr;
  CHECK(api->device_alloc(0, size_t{1} << 50, &huge) == TOKMETER_CUDA_OUT_OF_MEMORY && huge == nullptr,
        "a 1 PiB allocation must fail with OUT_OF_MEMORY");
  API_OK(api->destroy_stream(stream));
}

int main() {
  std::printf("philox known answers\n");
  TestPhiloxKnownAnswers();
  std::printf("interface version\n");
  TestVersionHandshake();
  if (!api) return 1;
  int count = 0;
  const int status = api->device_count(&count);
  if (status == TOKMETER_CUDA_NO_DRIVER || status == TOKMETER_CUDA_NO_DEVICE) {
    std::printf("%d host-side failure(s)\n", g_failures);
    if (g_failures) return 1;
    std::printf("SKIPPED: GPU tests: no CUDA device (%s)\n", api->last_error());
    return 0;
  }
  if (status != 0) {
    std::printf("FAIL: device_count: %d %s\n", status, api->last_error());
    return 1;
  }
  TokmeterCudaDeviceInfo info;
  if (api->device_info(0, &info) == 0)
    std::printf("device 0: %s (sm_%d%d), %.1f GiB, driver %d\n", info.name, info.major, info.minor,
                info.total_memory / 1073741824.0, info.driver_version);
  struct {
    const char* name;
    void (*fn)();
  } tests[] = {
      {"processed logits and greedy, fp32", [] { TestProcessedLogitsAndGreedy(false); }},
      {"processed logits and greedy, fp16", [] { TestProcessedLogitsAndGreedy(true); }},
      {"host-uniform parity with the CPU sampler", TestHostUniformParity},
      {"edge rows (-inf, k >= vocab, min-p 1, ties, greedy-only call)", TestEdgeRows},
      {"Philox draws", TestPhiloxDraws},
      {"log-probabilities", TestLogProbs},
      {"invalid arguments", TestInvalidArguments},
      {"device memory (KV cache)", TestDeviceMemory},
  };
  for (auto& t : tests) {
    const int before = g_failures;
    t.fn();
    std::printf("%s %s\n", g_failures == before ? "ok  " : "FAIL", t.name);
  }
  std::printf("%d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
