// The one test harness of the native parts' plain C++ tests (native/<part>/test/*.cc; no framework, no Node):
//   TEST(name) { CHECK(cond); CHECK_EQ(a, b); CHECK_NEAR(a, b, eps); CHECK_ERROR(expr, code, part);
//                CHECK_THROWS_CODE(expr, code); }
//   TEST_MAIN()   // or int main() { return tmtest::RunAll(); }
// Every TEST runs in registration order; an exception escaping one is a failure. Exit status 1 when any check
// failed (ctest reads it). Part-specific helpers live beside each part's tests (scripted_model.h, synthetic.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "util/error.h"

namespace tmtest {
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
// "[1,2,3]", for messages.
inline std::string Ids(const std::vector<uint32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}
}  // namespace tmtest

#define TEST(name)                            \
  static void name();                         \
  static tmtest::Reg reg_##name(#name, name); \
  static void name()
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++tmtest::failures;                                                    \
    }                                                                        \
  } while (0)
// Copies both sides: an operand such as f().field[0] must not dangle once the full expression ends.
#define CHECK_EQ(a, b)                                                               \
  do {                                                                               \
    const auto va = (a);                                                             \
    const auto vb = (b);                                                             \
    if (!(va == vb)) {                                                               \
      std::printf("  %s:%d: CHECK_EQ(%s, %s) failed\n", __FILE__, __LINE__, #a, #b); \
      ++tmtest::failures;                                                            \
    }                                                                                \
  } while (0)
#define CHECK_NEAR(a, b, eps) CHECK(std::fabs(static_cast<double>(a) - static_cast<double>(b)) <= (eps))
#define CHECK_ERROR(expr, code, part) tmtest::ExpectError(__FILE__, __LINE__, [&] { expr; }, code, part)
#define CHECK_THROWS_CODE(expr, code_)                                                 \
  do {                                                                                 \
    bool thrown = false;                                                               \
    try {                                                                              \
      (void)(expr);                                                                    \
    } catch (const tokmeter::Error& e) {                                               \
      thrown = e.code() == (code_);                                                    \
      if (!thrown) std::printf("  code %s: %s\n", e.code().c_str(), e.what());         \
    }                                                                                  \
    if (!thrown) {                                                                     \
      std::printf("  %s:%d: %s did not throw %s\n", __FILE__, __LINE__, #expr, code_); \
      ++tmtest::failures;                                                              \
    }                                                                                  \
  } while (0)
#define TEST_MAIN() \
  int main() { return tmtest::RunAll(); }
