// NFC / NFD / NFKC / NFKD through utf8proc, limited to the reference's Unicode version: a character the reference
// does not decompose (its decomposition is newer: ref_chars.h IsNfdKept / IsNfkdKept) is copied as it is and the
// text on each side normalized on its own. To the reference such a character has no decomposition and combining
// class 0, a starter, so nothing reorders or composes across it.
#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/normalizers/components.h"
#include "tokenizer/ref_chars.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class UnicodeFormImpl final : public Normalizer {
 public:
  UnicodeFormImpl(int options, bool compat) : options_(options), compat_(compat) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    // ASCII text is invariant under every normalization form.
    bool ascii = true;
    for (unsigned char c : in) {
      if (c >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return false;
    out.clear();
    size_t from = 0;
    for (size_t i = 0; i < in.size();) {
      const size_t at = i;
      if (Kept(utf8::Next(in, i))) {
        Map(in.substr(from, at - from), out);
        out.append(in.data() + at, i - at);
        from = i;
      }
    }
    Map(in.substr(from), out);
    return true;
  }

 private:
  bool Kept(char32_t c) const { return compat_ ? unicode::IsNfkdKept(c) : unicode::IsNfdKept(c); }
  // Appends the normalized form of `part` to out.
  void Map(std::string_view part, std::string& out) const {
    if (part.empty()) return;
    utf8proc_uint8_t* dst = nullptr;
    auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(part.data()),
                          static_cast<utf8proc_ssize_t>(part.size()), &dst, static_cast<utf8proc_option_t>(options_));
    if (n < 0)
      throw tokmeter::Error("ERR_INVALID_ARGUMENT", std::string("normalization failed: ") + utf8proc_errmsg(n));
    out.append(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
    std::free(dst);
  }

  int options_;
  bool compat_;
};

}  // namespace

std::unique_ptr<Normalizer> UnicodeForm(Form form) {
  const int base = UTF8PROC_STABLE;
  switch (form) {
    case Form::kNFC: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_COMPOSE, false);
    case Form::kNFD: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_DECOMPOSE, false);
    case Form::kNFKC: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, true);
    case Form::kNFKD: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, true);
  }
  return nullptr;
}

}  // namespace tokmeter::tokenizer::normalizers
