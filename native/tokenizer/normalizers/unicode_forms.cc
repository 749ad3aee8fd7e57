// NFC / NFD / NFKC / NFKD through utf8proc, limited to the reference's Unicode version: a character the reference
// does not decompose (its decomposition is newer: ref_chars.h IsNfdKept / IsNfkdKept) is copied as it is and the
// text on each side normalized on its own. To the reference such a character has no decomposition and combining
// class 0, a starter, so nothing reorders or composes across it.
//
// Only the parts of a text that can change go through utf8proc. An inert character (combining class 0, no
// decomposition in the form, never the second character of a composition) is left as it is by every form, and
// nothing before it reorders or composes with it or anything after it: the text may be cut in front of it. So a
// text is cut in front of each inert character, the pieces made of one inert character (most of any text: ASCII,
// CJK, Cyrillic, Greek, punctuation, emoji) are copied, and each other piece (an inert character followed by
// characters that are not, such as a letter and its combining accents) is normalized on its own. The inert sets
// are read off the linked utf8proc itself, once per process, so the cut never disagrees with the normalization.
// Normalizing whole texts took a third of Qwen's count() time on the benchmark corpus. The cut also keeps U+11A7 (the
// Hangul T base, inert) out of utf8proc's composition, which merged it into a preceding LV syllable and dropped it;
// the reference leaves both characters.
#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tokenizer/normalizers/components.h"
#include "tokenizer/ref_chars.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer::normalizers {

namespace {

// Code points from here on are never taken as inert (their pieces are normalized): the tables stay small, and the
// planes above hold little text besides CJK extensions.
constexpr char32_t kInertEnd = 0x30000;

// The utf8proc options of each form, in Form's order.
constexpr int kOptions[4] = {
    UTF8PROC_STABLE | UTF8PROC_COMPOSE,                      // NFC
    UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,                    // NFD
    UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,    // NFKC
    UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,  // NFKD
};

// One form's inert characters below kInertEnd, as a bitset.
struct InertSets {
  std::vector<uint64_t> bits[4];  // in Form's order
  InertSets() {
    // Every character that is not first in a full canonical decomposition: a superset of the characters that compose
    // with what precedes them (each primary composite decomposes to its first and second; Hangul LV / LVT syllables
    // to L V / L V T jamo).
    std::vector<bool> later(kInertEnd, false);
    utf8proc_int32_t buf[32];
    auto decompose = [&](char32_t c, int options) {
      int boundclass = 0;
      return utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32, static_cast<utf8proc_option_t>(options),
                                     &boundclass);
    };
    for (char32_t c = 0; c < kInertEnd; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      const auto n = decompose(c, UTF8PROC_DECOMPOSE);
      for (utf8proc_ssize_t k = 1; k < n && k < 32; ++k)
        if (buf[k] >= 0 && static_cast<char32_t>(buf[k]) < kInertEnd) later[static_cast<size_t>(buf[k])] = true;
    }
    for (auto& set : bits) set.assign(kInertEnd / 64, 0);
    for (char32_t c = 0; c < kInertEnd; ++c) {
      if ((c >= 0xD800 && c <= 0xDFFF) || later[c]) continue;
      if (utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class != 0) continue;
      const auto self = static_cast<utf8proc_int32_t>(c);
      for (int compat = 0; compat < 2; ++compat) {
        const auto n = decompose(c, UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
        const int composed = compat ? 2 : 0, decomposed = composed + 1;  // Form's order: NFC, NFD, NFKC, NFKD
        if (n == 1 && buf[0] == self) {
          Set(decomposed, c);
          Set(composed, c);
        } else if (n > 0 && MapsToItself(c, kOptions[composed])) {  // a precomposed character (é) under NFC / NFKC
          Set(composed, c);
        }
      }
    }
  }

 private:
  void Set(int form, char32_t c) { bits[form][c / 64] |= uint64_t{1} << (c % 64); }
  static bool MapsToItself(char32_t c, int options) {
    utf8proc_uint8_t in[4];
    const auto len = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), in);
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(in, len, &out, static_cast<utf8proc_option_t>(options));
    const bool same = n == len && std::memcmp(out, in, static_cast<size_t>(len)) == 0;
    std::free(out);
    return same;
  }
};

const InertSets& Inert() {
  static const InertSets* sets = new InertSets();  // never destroyed: normalizers may run on threads at exit
  return *sets;
}

class UnicodeFormImpl final : public Normalizer {
 public:
  explicit UnicodeFormImpl(Form form)
      : options_(kOptions[static_cast<int>(form)]),
        compat_(form == Form::kNFKC || form == Form::kNFKD),
        inert_(Inert().bits[static_cast<int>(form)].data()) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    // in[copied, cut) is unchanged text not yet in `out`; in[cut, i) is the piece being read, which starts with an
    // inert character (or at a kept one's end, or at 0) and needs normalizing when `dirty`.
    size_t copied = 0, cut = 0;
    bool dirty = false, changed = false;
    auto normalize_piece = [&](size_t end) {
      if (!changed) out.clear();
      changed = true;
      out.append(in.data() + copied, cut - copied);
      Map(in.substr(cut, end - cut), out);
      copied = end;
      dirty = false;
    };
    for (size_t i = 0; i < in.size();) {
      const size_t at = i;
      if (static_cast<unsigned char>(in[i]) < 0x80) {  // ASCII is inert in every form
        ++i;
        if (dirty) normalize_piece(at);
        cut = at;
        continue;
      }
      const char32_t c = utf8::Next(in, i);
      if (Kept(c)) {  // copied as it is; what follows it is normalized on its own
        if (dirty) normalize_piece(at);
        cut = i;
      } else if (c < kInertEnd && (inert_[c / 64] >> (c % 64) & 1) != 0) {
        if (dirty) normalize_piece(at);
        cut = at;
      } else {
        dirty = true;
      }
    }
    if (dirty) normalize_piece(in.size());
    if (!changed) return false;
    out.append(in.data() + copied, in.size() - copied);
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
  const uint64_t* inert_;
};

}  // namespace

std::unique_ptr<Normalizer> UnicodeForm(Form form) { return std::make_unique<UnicodeFormImpl>(form); }

}  // namespace tokmeter::tokenizer::normalizers
