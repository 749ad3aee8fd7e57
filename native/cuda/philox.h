// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; the Random123 constants) —
// the counter-based generator of the CUDA sampler. Header-only, usable from host and device code, so the test can
// check the device draws against a host computation and against Random123's known-answer vectors.
//
// Use in the sampler: key = the row's 64-bit seed, counter = {draw index (64 bits), 0, 0}; the uniform is the top
// 53 bits of (out[0] << 32 | out[1]) times 2^-53, in [0, 1). A row's n-th draw is therefore a pure function of
// (seed, n): reproducible across runs, batch sizes and launch geometries.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define TOKMETER_HD __host__ __device__ __forceinline__
#else
#define TOKMETER_HD inline
#endif

namespace tokmeter::cuda {

struct Philox4x32 {
  uint32_t v[4];
};

TOKMETER_HD void MulHiLo32(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on `counter` with the 64-bit key {key0, key1}.
TOKMETER_HD Philox4x32 Philox4x32_10(Philox4x32 ctr, uint32_t key0, uint32_t key1) {
  const uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  const uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    MulHiLo32(kM0, ctr.v[0], &hi0, &lo0);
    MulHiLo32(kM1, ctr.v[2], &hi1, &lo1);
    Philox4x32 next;
    next.v[0] = hi1 ^ ctr.v[1] ^ key0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ ctr.v[3] ^ key1;
    next.v[3] = lo0;
    ctr = next;
    key0 += kW0;
    key1 += kW1;
  }
  return ctr;
}

// The sampler's uniform double in [0, 1) for draw number `draw` of a row seeded with `seed`.
TOKMETER_HD double PhiloxUniform(uint64_t seed, uint64_t draw) {
  Philox4x32 ctr;
  ctr.v[0] = static_cast<uint32_t>(draw);
  ctr.v[1] = static_cast<uint32_t>(draw >> 32);
  ctr.v[2] = 0;
  ctr.v[3] = 0;
  const Philox4x32 out = Philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint64_t bits = (static_cast<uint64_t>(out.v[0]) << 32) | out.v[1];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace tokmeter::cuda
