#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::utf8 {
namespace {
// Returns how many bytes of a possibly-truncated sequence at s[i] are a valid prefix ("maximal subpart"),
// and whether the sequence is complete.
size_t MaximalSubpart(std::string_view s, size_t i, bool& complete) {
  complete = false;
  auto at = [&](size_t k) -> int { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1; };
  int b0 = at(0);
  size_t need;
  int lo = 0x80, hi = 0xBF;
  if (b0 < 0x80) {
    complete = true;
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF)
    need = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else
    return 0;
  int b1 = at(1);
  if (b1 < lo || b1 > hi) return 1;
  for (size_t k = 2; k < need; ++k) {
    int b = at(k);
    if (b < 0x80 || b > 0xBF) return k;
  }
  complete = true;
  return need;
}
}  // namespace

size_t ValidSeqAt(std::string_view s, size_t i) {
  bool complete;
  size_t n = MaximalSubpart(s, i, complete);
  return complete ? n : 0;
}

bool IsValid(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t k = ValidSeqAt(s, i);
    if (k == 0) return false;
    i += k;
  }
  return true;
}

void AppendLossy(std::string& out, std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    bool complete;
    size_t k = MaximalSubpart(s, i, complete);
    if (complete) {
      out.append(s.data() + i, k);
      i += k;
    } else {
      out.append("\xEF\xBF\xBD");
      i += k == 0 ? 1 : k;
    }
  }
}

size_t CompletePrefix(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut short by the end of s.
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    size_t i = n - back;
    unsigned char b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the leading byte
    if (b < 0x80) return n;
    bool complete;
    size_t k = MaximalSubpart(s, i, complete);
    // Incomplete but valid so far and reaching the end: hold it back.
    if (!complete && k == back && SeqLen(b) > back) return i;
    return n;
  }
  return n;
}

}  // namespace tokmeter::tokenizer::utf8
