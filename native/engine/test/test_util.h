// Minimal test harness for the engine's plain C++ tests (same shape as native/tokenizer/test/test_util.h).
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "util/error.h"

namespace et {
inline int failures = 0;
inline std::vector<std::pair<const char*, std::function<void()>>>& Registry() {
  static std::vector<std::pair<const char*, std::function<void()>>> r;
  return r;
}
struct Reg {
  Reg(const char* n, std::function<void()> f) { Registry().emplace_back(n, std::move(f)); }
};
inline int RunAll() {
  for (auto& [name, fn] : Registry()) {
    const int before = failures;
    try {
      fn();
    } catch (const std::exception& e) {
      std::printf("  unexpected exception: %s\n", e.what());
      ++failures;
    }
    std::printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
  }
  std::printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
// Runs fn, expects a tokmeter::Error with `code` whose message contains `part`.
template <typename F>
void ExpectError(const char* where, int line, F&& fn, const std::string& code, const std::string& part) {
  try {
    fn();
  } catch (const tokmeter::Error& e) {
    if (e.code() != code || std::string(e.what()).find(part) == std::string::npos) {
      std::printf("  %s:%d: got %s \"%s\", expected %s containing \"%s\"\n", where, line, e.code().c_str(), e.what(),
                  code.c_str(), part.c_str());
      ++failures;
    }
    return;
  }
  std::printf("  %s:%d: expected error %s, got none\n", where, line, code.c_str());
  ++failures;
}
}  // namespace et

#define TEST(name)                        \
  static void name();                     \
  static et::Reg reg_##name(#name, name); \
  static void name()
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++et::failures;                                                        \
    }                                                                        \
  } while (0)
#define CHECK_EQ(a, b)                                                               \
  do {                                                                               \
    const auto& va = (a);                                                            \
    const auto& vb = (b);                                                            \
    if (!(va == vb)) {                                                               \
      std::printf("  %s:%d: CHECK_EQ(%s, %s) failed\n", __FILE__, __LINE__, #a, #b); \
      ++et::failures;                                                                \
    }                                                                                \
  } while (0)
#define CHECK_NEAR(a, b, eps) CHECK(std::fabs(static_cast<double>(a) - static_cast<double>(b)) <= (eps))
#define CHECK_ERROR(expr, code, part) et::ExpectError(__FILE__, __LINE__, [&] { expr; }, code, part)
#define TEST_MAIN() \
  int main() { return et::RunAll(); }
