// Precompiled: SentencePiece's compiled normalization rules (`precompiled_charsmap`, base64 in tokenizer.json), as
// the reference (tokenizers' normalizers/precompiled.rs over the spm_precompiled crate) applies them.
//
// The charsmap: a little-endian u32 n, then n bytes of darts-clone double-array trie (u32 units) over UTF-8 keys,
// then the replacement strings, NUL-terminated, which the trie's values index by byte offset.
//
// Lookup of a chunk: the trie's common-prefix search over the chunk's bytes, and the first (shortest) key found
// decides; its replacement stands for the whole chunk. Normalization walks the extended grapheme clusters
// (precompiled_graphemes.h): a cluster shorter than 6 bytes is looked up whole and replaced when found; otherwise
// (or when not found) each of its characters is looked up alone and replaced when found, kept when not.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_scan.h"
#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"
#include "tokenizer/normalizers/precompiled_graphemes.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::normalizers {

namespace grapheme {

namespace {
uint8_t SearchProps(char32_t c) {
  size_t lo = 0, hi = kRangeCount;  // last range whose start <= c
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (kRangeStart[mid] <= c)
      lo = mid;
    else
      hi = mid;
  }
  return kRangeProps[lo];
}
}  // namespace

uint8_t Props(char32_t c) {
  // The Basic Multilingual Plane from a direct table (64 KiB, filled once), the rest by binary search.
  static const std::vector<uint8_t> bmp = [] {
    std::vector<uint8_t> t(0x10000);
    for (char32_t k = 0; k < 0x10000; ++k) t[k] = SearchProps(k);
    return t;
  }();
  return c < 0x10000 ? bmp[c] : SearchProps(c);
}

size_t ClusterEnd(std::string_view s, size_t pos) {
  size_t i = pos;
  uint8_t p = Props(utf8::Next(s, i));
  auto gcb = [](uint8_t x) { return static_cast<Gcb>(x & 0x0F); };
  auto incb = [](uint8_t x) { return static_cast<InCB>(x >> kInCBShift); };
  Gcb prev = gcb(p);
  int ri = prev == kRI ? 1 : 0;                      // regional indicators in a row, ending at prev
  int emoji = (p & kPictBit) ? 1 : 0;                // 1: ExtPict Extend*; 2: ExtPict Extend* ZWJ (GB11)
  int conjunct = incb(p) == kInCBConsonant ? 1 : 0;  // 1: Consonant [Extend Linker]*; 2: with a Linker (GB9c)
  while (i < s.size()) {
    size_t j = i;
    const uint8_t q = Props(utf8::Next(s, j));
    const Gcb cur = gcb(q);
    bool join;
    if (prev == kCR && cur == kLF)
      join = true;  // GB3
    else if (prev == kCR || prev == kLF || prev == kControl || cur == kCR || cur == kLF || cur == kControl)
      join = false;  // GB4, GB5
    else if (prev == kL && (cur == kL || cur == kV || cur == kLV || cur == kLVT))
      join = true;  // GB6
    else if ((prev == kLV || prev == kV) && (cur == kV || cur == kT))
      join = true;  // GB7
    else if ((prev == kLVT || prev == kT) && cur == kT)
      join = true;  // GB8
    else if (cur == kExtend || cur == kZWJ || cur == kSpacingMark || prev == kPrepend)
      join = true;  // GB9, GB9a, GB9b
    else if (incb(q) == kInCBConsonant && conjunct == 2)
      join = true;  // GB9c
    else if ((q & kPictBit) && prev == kZWJ && emoji == 2)
      join = true;  // GB11
    else
      join = prev == kRI && cur == kRI && (ri & 1);  // GB12, GB13
    if (!join) return i;
    ri = cur == kRI ? ri + 1 : 0;
    if (q & kPictBit)
      emoji = 1;
    else if (emoji == 1 && cur == kExtend)
      emoji = 1;
    else if (emoji == 1 && cur == kZWJ)
      emoji = 2;
    else
      emoji = 0;
    const InCB t = incb(q);
    if (t == kInCBConsonant)
      conjunct = 1;
    else if (conjunct && t == kInCBLinker)
      conjunct = 2;
    else if (!(conjunct && t == kInCBExtend))
      conjunct = 0;
    prev = cur;
    i = j;
  }
  return i;
}

}  // namespace grapheme

namespace {

// Standard base64 (RFC 4648 alphabet, '=' padding optional); false on any other character.
bool DecodeBase64(std::string_view s, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  size_t end = s.size();
  while (end > 0 && s[end - 1] == '=') --end;
  if (s.size() - end > 2) return false;
  for (size_t k = 0; k < end; ++k) {
    const char ch = s[k];
    const int v = json::Base64Value(static_cast<unsigned char>(ch));
    if (v < 0) return false;
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return bits < 6;  // a lone trailing character carries no whole byte
}

// darts-clone's unit layout.
inline bool HasLeaf(uint32_t u) { return (u >> 8) & 1; }
inline uint32_t Value(uint32_t u) { return u & 0x7FFFFFFFu; }
inline uint32_t Label(uint32_t u) { return u & 0x800000FFu; }
inline uint32_t Offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

class Precompiled final : public Normalizer {
 public:
  Precompiled(std::vector<uint32_t> trie, std::string normalized)
      : trie_(std::move(trie)), normalized_(std::move(normalized)) {}

  // Call after ValuesValid(): the lookup of each ASCII character alone, for the fast path of Apply.
  void CacheAscii() {
    for (int b = 1; b < 0x80; ++b) {
      const char c = static_cast<char>(b);
      ascii_mapped_[b] = Transform(std::string_view(&c, 1), ascii_rep_[b]);
    }
  }

  // Checks every value the trie can reach: an offset inside the replacement strings, at a character boundary.
  // False when one is not (the reference would fail on it at encode time).
  bool ValuesValid() const {
    if (trie_.empty()) return true;
    std::vector<uint8_t> seen(trie_.size(), 0);
    std::vector<uint32_t> stack{0};
    seen[0] = 1;
    while (!stack.empty()) {
      const uint32_t node = stack.back();
      stack.pop_back();
      const uint32_t base = node ^ Offset(trie_[node]);
      for (uint32_t c = 1; c < 256; ++c) {
        const uint32_t child = base ^ c;
        if (child >= trie_.size() || Label(trie_[child]) != c) continue;
        if (HasLeaf(trie_[child])) {  // checked on every edge: a malformed trie may lead back to a seen node
          const uint32_t leaf = child ^ Offset(trie_[child]);
          if (leaf >= trie_.size()) return false;
          const uint32_t v = Value(trie_[leaf]);
          if (v > normalized_.size() ||
              (v < normalized_.size() && (static_cast<unsigned char>(normalized_[v]) & 0xC0) == 0x80))
            return false;
        }
        if (seen[child]) continue;
        seen[child] = 1;
        stack.push_back(child);
      }
    }
    return true;
  }

  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    out.clear();
    bool changed = false;
    for (size_t g = 0; g < in.size();) {
      // Between two ASCII characters the only cluster that is not a single character is CR LF, so an ASCII
      // character followed by one (or by the end) is a cluster of its own, and its lookup is cached.
      const unsigned char b = static_cast<unsigned char>(in[g]);
      if (b > 0 && b < 0x80 && (g + 1 == in.size() || static_cast<unsigned char>(in[g + 1]) < 0x80) &&
          !(b == '\r' && g + 1 < in.size() && in[g + 1] == '\n')) {
        if (ascii_mapped_[b]) {
          out += ascii_rep_[b];
          changed = true;
        } else {
          out.push_back(static_cast<char>(b));
        }
        ++g;
        continue;
      }
      const size_t ge = grapheme::ClusterEnd(in, g);
      std::string_view rep;
      if (ge - g < 6 && Transform(in.substr(g, ge - g), rep)) {
        out += rep;
        changed = true;
        g = ge;
        continue;
      }
      for (size_t c = g; c < ge;) {
        const size_t n = utf8::SeqLen(static_cast<unsigned char>(in[c]));
        if (Transform(in.substr(c, n), rep)) {
          out += rep;
          changed = true;
        } else {
          out.append(in.data() + c, n);
        }
        c += n;
      }
      g = ge;
    }
    return changed;
  }

 private:
  // The replacement of the shortest key that prefixes `chunk`; false when no key does.
  bool Transform(std::string_view chunk, std::string_view& rep) const {
    if (trie_.empty()) return false;
    uint32_t pos = Offset(trie_[0]);
    for (unsigned char c : chunk) {
      pos ^= c;
      if (pos >= trie_.size()) return false;
      const uint32_t unit = trie_[pos];
      if (Label(unit) != c) return false;
      pos ^= Offset(unit);
      if (HasLeaf(unit)) {
        if (pos >= trie_.size()) return false;
        const size_t v = Value(trie_[pos]);
        if (v > normalized_.size()) return false;  // refused at load (ValuesValid); kept as a guard
        const size_t e = normalized_.find('\0', v);
        rep = std::string_view(normalized_).substr(v, (e == std::string::npos ? normalized_.size() : e) - v);
        return true;
      }
    }
    return false;
  }

  std::vector<uint32_t> trie_;
  std::string normalized_;
  bool ascii_mapped_[0x80] = {};
  std::string_view ascii_rep_[0x80];  // views into normalized_
};

}  // namespace

std::unique_ptr<Normalizer> PrecompiledFromJson(const json::Value& o, const std::string& path) {
  const std::string field = path + ".precompiled_charsmap";
  const std::string& text = json::Str(o, "precompiled_charsmap", path);
  std::string bytes;
  if (!DecodeBase64(text, bytes)) json::SpecError(field, "not valid base64");
  if (bytes.size() < 4) json::SpecError(field, "shorter than its 4-byte header");
  const uint32_t trie_size = static_cast<uint32_t>(static_cast<unsigned char>(bytes[0])) |
                             static_cast<uint32_t>(static_cast<unsigned char>(bytes[1])) << 8 |
                             static_cast<uint32_t>(static_cast<unsigned char>(bytes[2])) << 16 |
                             static_cast<uint32_t>(static_cast<unsigned char>(bytes[3])) << 24;
  if (trie_size % 4 != 0 || trie_size > bytes.size() - 4)
    json::SpecError(field, "trie size " + std::to_string(trie_size) + " does not fit the " +
                               std::to_string(bytes.size() - 4) + " bytes that follow the header");
  std::vector<uint32_t> trie(trie_size / 4);
  for (size_t k = 0; k < trie.size(); ++k) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data() + 4 + 4 * k);
    trie[k] = uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  }
  std::string normalized = bytes.substr(4 + trie_size);
  if (!utf8::IsValid(normalized)) json::SpecError(field, "replacement strings are not valid UTF-8");
  auto stage = std::make_unique<Precompiled>(std::move(trie), std::move(normalized));
  if (!stage->ValuesValid()) json::SpecError(field, "the trie points outside its replacement strings");
  stage->CacheAscii();
  return stage;
}

}  // namespace tokmeter::tokenizer::normalizers
