#include "grammar/vocabulary.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

#include "grammar/errors.h"
#include "util/utf8.h"

namespace tokmeter::grammar {

namespace {

std::array<uint32_t, 256> MakeByteToChar() {
  std::array<uint32_t, 256> table{};
  std::array<bool, 256> direct{};
  for (int b = '!'; b <= '~'; ++b) direct[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
  uint32_t n = 0;
  for (int b = 0; b < 256; ++b) table[b] = direct[b] ? static_cast<uint32_t>(b) : 256 + n++;
  return table;
}
const std::array<uint32_t, 256>& ByteToChar() {
  static const std::array<uint32_t, 256> table = MakeByteToChar();
  return table;
}

std::string DecodeByteLevel(std::string_view token) {
  static const std::vector<int16_t> inverse = [] {
    std::vector<int16_t> inv(512, -1);
    for (int b = 0; b < 256; ++b) inv[ByteToChar()[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  std::string out;
  size_t i = 0;
  while (i < token.size()) {
    uint32_t cp = 0;
    if (!utf8::NextChecked(token, i, cp) || cp >= inverse.size() || inverse[cp] < 0) return std::string(token);
    out += static_cast<char>(inverse[cp]);
  }
  return out;
}

std::string DecodeSentencePiece(std::string_view token) {
  if (token.size() == 6 && token.substr(0, 3) == "<0x" && token[5] == '>') {
    const int hi = utf8::HexDigit(token[3]), lo = utf8::HexDigit(token[4]);
    if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  std::string out;
  static constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581
  for (size_t i = 0; i < token.size();) {
    if (token.substr(i, 3) == kSpace) {
      out += ' ';
      i += 3;
    } else {
      out += token[i++];
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<const MaskEntry> Vocabulary::FindShared(const ClosureKey& closure, uint32_t offset) const {
  std::lock_guard<std::mutex> lock(shared_mutex_);
  const auto it = shared_.find(closure);
  if (it == shared_.end()) return nullptr;
  const auto e = it->second.find(offset);
  return e == it->second.end() ? nullptr : e->second;
}

void Vocabulary::PutShared(const ClosureKey& closure, uint32_t offset, std::shared_ptr<const MaskEntry> entry,
                           size_t bytes) const {
  std::lock_guard<std::mutex> lock(shared_mutex_);
  const auto it = shared_.find(closure);
  const size_t cost = bytes + (it == shared_.end() ? closure.text.size() : 0);
  if (shared_bytes_ + cost > (size_t{256} << 20)) return;
  auto& nodes = it == shared_.end() ? shared_[closure] : it->second;
  if (!nodes.emplace(offset, std::move(entry)).second) return;
  shared_bytes_ += cost;
}

const ByteLanguage& GetByteLanguage(int language) {
  static const ByteLanguage* const languages = [] {
    static ByteLanguage l[kByteLanguages];
    for (ByteLanguage& lang : l) std::memset(lang.next, -1, sizeof lang.next);
    auto set = [](ByteLanguage& lang, int from, int lo, int hi, int to) {
      for (int b = lo; b <= hi; ++b) lang.next[from][b] = static_cast<int8_t>(to);
    };
    auto text = [&](ByteLanguage& lang) {
      set(lang, 0, 0x20, 0x7E, 0);
      lang.next[0]['"'] = lang.next[0]['\\'] = -1;
    };
    text(l[0]);
    set(l[1], 0, '0', '9', 0);
    set(l[1], 0, 'A', 'Z', 0);
    set(l[1], 0, 'a', 'z', 0);
    // UTF-8: 1 = one continuation byte left, 2 = two, 3 = two after E0 (A0-BF next), 4 = two after ED (80-9F next),
    // 5 = three, 6 = three after F0 (90-BF next), 7 = three after F4 (80-8F next).
    ByteLanguage& u = l[2];
    u.states = 8;
    text(u);
    set(u, 0, 0xC2, 0xDF, 1);
    set(u, 0, 0xE0, 0xE0, 3);
    set(u, 0, 0xE1, 0xEC, 2);
    set(u, 0, 0xED, 0xED, 4);
    set(u, 0, 0xEE, 0xEF, 2);
    set(u, 0, 0xF0, 0xF0, 6);
    set(u, 0, 0xF1, 0xF3, 5);
    set(u, 0, 0xF4, 0xF4, 7);
    set(u, 1, 0x80, 0xBF, 0);
    set(u, 2, 0x80, 0xBF, 1);
    set(u, 3, 0xA0, 0xBF, 1);
    set(u, 4, 0x80, 0x9F, 1);
    set(u, 5, 0x80, 0xBF, 2);
    set(u, 6, 0x90, 0xBF, 2);
    set(u, 7, 0x80, 0x8F, 2);
    return l;
  }();
  return languages[language];
}

VocabKind DetectVocabKind(const std::vector<std::string>& tokens) {
  size_t sp = 0, bl = 0;
  for (const std::string& t : tokens) {
    if (t.find("\xE2\x96\x81") != std::string::npos || (t.size() == 6 && t.starts_with("<0x") && t.back() == '>')) ++sp;
    if (t.find("\xC4\xA0") != std::string::npos || t.find("\xC4\x8A") != std::string::npos) ++bl;
  }
  if (sp == 0 && bl == 0) return VocabKind::kPlain;
  return sp > bl ? VocabKind::kSentencePiece : VocabKind::kByteLevel;
}

uint32_t Vocabulary::ByteLevelChar(uint8_t b) { return ByteToChar()[b]; }

std::shared_ptr<const Vocabulary> Vocabulary::Build(const VocabularyInput& input) {
  auto v = std::make_shared<Vocabulary>();
  const size_t n = input.tokens.size();
  if (n == 0 || n > (1u << 28)) throw GrammarError(kErrInvalid, "", "", "a vocabulary needs between 1 and 2^28 tokens");
  v->size_ = n;
  v->offsets_.reserve(n + 1);
  v->offsets_.push_back(0);
  v->usable_.assign(n, false);
  for (size_t id = 0; id < n; ++id) {
    const std::string& t = input.tokens[id];
    const bool special = id < input.special.size() && input.special[id];
    std::string bytes;
    if (!special && !t.empty()) {
      switch (input.kind) {
        case VocabKind::kByteLevel: bytes = DecodeByteLevel(t); break;
        case VocabKind::kSentencePiece: bytes = DecodeSentencePiece(t); break;
        case VocabKind::kPlain: bytes = t; break;
      }
    }
    v->usable_[id] = !bytes.empty();
    v->max_len_ = std::max(v->max_len_, bytes.size());
    v->bytes_ += bytes;
    v->offsets_.push_back(static_cast<uint32_t>(v->bytes_.size()));
  }
  for (uint32_t e : input.eos) {
    if (e >= n) throw GrammarError(kErrInvalid, "", "", "EOS id " + std::to_string(e) + " is outside the vocabulary");
    v->usable_[e] = false;
    v->eos_.push_back(e);
  }
  // Trie: sort usable ids by bytes, then emit nodes along the sorted order.
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < n; ++id) {
    if (v->usable_[id]) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) {
    const auto ba = v->bytes(a), bb = v->bytes(b);
    return ba != bb ? ba < bb : a < b;
  });
  v->node_of_.assign(n, UINT32_MAX);
  std::vector<uint32_t> path;  // trie node index per depth (depth d at path[d-1])
  std::string_view prev;
  std::vector<std::vector<uint32_t>> idsAt;
  for (uint32_t id : ids) {
    const std::string_view b = v->bytes(id);
    size_t common = 0;
    while (common < prev.size() && common < b.size() && prev[common] == b[common]) ++common;
    for (size_t d = path.size(); d > common; --d) {
      v->trie_next_[path[d - 1]] = static_cast<uint32_t>(v->trie_byte_.size());
    }
    path.resize(common);
    for (size_t d = common; d < b.size(); ++d) {
      path.push_back(static_cast<uint32_t>(v->trie_byte_.size()));
      v->trie_byte_.push_back(static_cast<uint8_t>(b[d]));
      v->trie_depth_.push_back(static_cast<uint32_t>(d + 1));
      v->trie_next_.push_back(0);
      idsAt.emplace_back();
    }
    idsAt[path.back()].push_back(id);
    v->node_of_[id] = path.back();
    prev = b;
  }
  for (uint32_t p : path) v->trie_next_[p] = static_cast<uint32_t>(v->trie_byte_.size());
  v->trie_ids_begin_.push_back(0);
  for (const auto& list : idsAt) {
    v->trie_ids_.insert(v->trie_ids_.end(), list.begin(), list.end());
    v->trie_ids_begin_.push_back(static_cast<uint32_t>(v->trie_ids_.size()));
  }
  // Per subtree: which (byte language, state) pairs read all of it, and its deepest depth (children before parents).
  const size_t nodes = v->trie_byte_.size();
  constexpr uint16_t kAll = (1u << (2 + kByteLanguageStates)) - 1;
  v->trie_languages_below_.assign(nodes, kAll);
  v->trie_depth_below_.assign(nodes, 0);
  for (size_t i = nodes; i-- > 0;) {
    uint16_t ok = kAll;
    uint32_t deepest = v->trie_depth_[i];
    for (size_t j = i + 1; j < v->trie_next_[i]; j = v->trie_next_[j]) {
      const uint8_t b = v->trie_byte_[j];
      const uint16_t below = v->trie_languages_below_[j];
      for (int l = 0; l < kByteLanguages; ++l) {
        const ByteLanguage& lang = GetByteLanguage(l);
        for (int st = 0; st < lang.states; ++st) {
          const int t = lang.next[st][b];
          if (t < 0 || !(below >> ByteLanguageBit(l, t) & 1))
            ok &= static_cast<uint16_t>(~(1u << ByteLanguageBit(l, st)));
        }
      }
      deepest = std::max(deepest, v->trie_depth_below_[j]);
    }
    v->trie_languages_below_[i] = ok;
    v->trie_depth_below_[i] = deepest;
  }
  return v;
}

}  // namespace tokmeter::grammar
