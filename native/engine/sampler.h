// Sampler — picks the next token from processed logits: argmax when greedy, else a draw from softmax(logits) with a
// seeded generator, so the same seed, model and options give the same tokens on every run and platform.
//
// Reproducibility: std::mt19937_64's output sequence is fixed by the C++ standard; the uniform double is built from
// its top 53 bits by hand (std::uniform_real_distribution is implementation-defined). Candidates are scanned in
// token-id order. Greedy ties go to the lowest id (as argmax in transformers does).
// The uniforms come from a source given at construction: the seeded one above (SeededUniform), or any other — a test
// that compares another sampler (the CUDA kernels) with this one hands it the same uniforms instead of re-writing
// the draw.
// Ownership: one Sampler per sequence. Thread affinity: none.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>

namespace tokmeter::engine {

// Uniform doubles in [0, 1) from mt19937_64 (the same on every platform).
class SeededUniform {
 public:
  explicit SeededUniform(uint64_t seed) : rng_(seed) {}
  double operator()() noexcept { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 rng_;
};

class Sampler {
 public:
  using UniformSource = std::function<double()>;  // each call: the next uniform in [0, 1)
  explicit Sampler(uint64_t seed) : uniform_(SeededUniform(seed)) {}
  explicit Sampler(UniformSource uniform) : uniform_(std::move(uniform)) {}
  static uint32_t Argmax(std::span<const float> logits) noexcept;
  // Draws from softmax(logits) with the next uniform (inverse CDF in token-id order); -inf entries have
  // probability 0. Greedy when `greedy` (no uniform is drawn).
  uint32_t Sample(std::span<const float> logits, bool greedy);
  // log softmax(logits)[id], computed in double.
  static float LogProb(std::span<const float> logits, uint32_t id) noexcept;
  double NextUniform() { return uniform_(); }  // [0, 1)

 private:
  UniformSource uniform_;
};

}  // namespace tokmeter::engine
