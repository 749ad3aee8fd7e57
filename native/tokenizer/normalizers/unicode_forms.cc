// NFC / NFD / NFKC / NFKD through utf8proc.
#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/normalizers/components.h"
#include "util/error.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class UnicodeFormImpl final : public Normalizer {
 public:
  explicit UnicodeFormImpl(int options, bool composed) : options_(options), composed_(composed) {}
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
    // Composed forms: text below U+0300 (Latin-1 and friends) has no decompositions that NFC would alter.
    utf8proc_uint8_t* dst = nullptr;
    auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                          static_cast<utf8proc_ssize_t>(in.size()), &dst, static_cast<utf8proc_option_t>(options_));
    if (n < 0)
      throw tokmeter::Error("ERR_INVALID_ARGUMENT", std::string("normalization failed: ") + utf8proc_errmsg(n));
    out.assign(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
    std::free(dst);
    (void)composed_;
    return true;
  }

 private:
  int options_;
  bool composed_;
};

}  // namespace

std::unique_ptr<Normalizer> UnicodeForm(Form form) {
  const int base = UTF8PROC_STABLE;
  switch (form) {
    case Form::kNFC: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_COMPOSE, true);
    case Form::kNFD: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_DECOMPOSE, false);
    case Form::kNFKC: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, true);
    case Form::kNFKD: return std::make_unique<UnicodeFormImpl>(base | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, false);
  }
  return nullptr;
}

}  // namespace tokmeter::tokenizer::normalizers
