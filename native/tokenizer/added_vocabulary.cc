#include "tokenizer/added_vocabulary.h"

#include <unordered_map>

#include "tokenizer/json_value.h"

#include <algorithm>

#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer {

std::vector<AddedToken> AddedTokensFromJson(const json::Value* v, const std::string& path) {
  std::vector<AddedToken> out;
  if (!v || v->IsNull()) return out;
  const auto& list = json::Arr(v, path);
  std::unordered_map<uint32_t, size_t> by_id;
  std::unordered_map<std::string, size_t> by_content;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string f = path + "[" + std::to_string(i) + "]";
    const json::Value& o = json::Obj(&list[i], f);
    AddedToken a;
    a.content = json::Str(o, "content", f);
    if (a.content.empty()) json::SpecError(f + ".content", "must not be empty");
    a.special = json::Bool(o, "special", f, false);
    a.id = json::Uint(o.Find("id"), f + ".id");
    a.normalized = json::Bool(o, "normalized", f, !a.special);
    a.lstrip = json::Bool(o, "lstrip", f, false);
    a.rstrip = json::Bool(o, "rstrip", f, false);
    a.single_word = json::Bool(o, "single_word", f, false);
    // Two entries with one id (or one content) would leave which of them encodes or decodes to chance.
    if (auto it = by_id.find(a.id); it != by_id.end())
      json::SpecError(f + ".id", "id " + std::to_string(a.id) + " is also the id of " + path + "[" +
                                     std::to_string(it->second) + "]");
    if (auto it = by_content.find(a.content); it != by_content.end())
      json::SpecError(f + ".content", json::Stringify(a.content) + " is also the content of " + path + "[" +
                                          std::to_string(it->second) + "]");
    by_id.emplace(a.id, i);
    by_content.emplace(a.content, i);
    out.push_back(std::move(a));
  }
  return out;
}

uint32_t TokenMatcher::Child(uint32_t n, unsigned char b) const {
  const auto& v = nodes_[n].next;
  auto it = std::lower_bound(v.begin(), v.end(), std::make_pair(b, 0u),
                             [](const auto& x, const auto& y) { return x.first < y.first; });
  return (it != v.end() && it->first == b) ? it->second : 0;
}

void TokenMatcher::Add(std::string_view p, Entry e) {
  if (p.empty()) return;
  uint32_t n = 0;
  for (unsigned char b : p) {
    uint32_t c = Child(n, b);
    if (c == 0) {
      c = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& v = nodes_[n].next;
      v.insert(std::lower_bound(v.begin(), v.end(), std::make_pair(b, 0u),
                                [](const auto& x, const auto& y) { return x.first < y.first; }),
               std::make_pair(b, c));
    }
    n = c;
  }
  first_[static_cast<unsigned char>(p[0])] = true;
  if (nodes_[n].entry < 0) {
    nodes_[n].entry = static_cast<int32_t>(entries_.size());
    entries_.push_back(e);
  }
}

namespace {
bool IsWordChar(char32_t c) { return unicode::IsAlphanumeric(c) || c == '_'; }
char32_t PrevChar(std::string_view s, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return utf8::Next(s, b);
}
}  // namespace

void TokenMatcher::Split(std::string_view text, FnRef<void(std::string_view, size_t)> on_text,
                         FnRef<void(uint32_t)> on_token) const {
  size_t emitted = 0;  // start of text not yet emitted
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (!first_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest match starting at i.
    uint32_t node = 0;
    int32_t best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < n; ++k) {
      node = Child(node, static_cast<unsigned char>(text[k]));
      if (node == 0) break;
      if (nodes_[node].entry >= 0) {
        best = nodes_[node].entry;
        best_end = k + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const Entry& e = entries_[best];
    size_t start = i, stop = best_end;
    i = best_end;  // matches never overlap, even when one is rejected below
    if (e.single_word) {
      bool start_ok = start == 0 || !IsWordChar(PrevChar(text, start));
      size_t k = stop;
      bool stop_ok = stop == n || !IsWordChar(utf8::Next(text, k));
      if (!start_ok || !stop_ok) continue;
    }
    if (e.lstrip) {
      size_t s = start;
      while (s > emitted) {
        size_t b = s - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
        size_t k = b;
        if (!unicode::IsWhitespace(utf8::Next(text, k))) break;
        s = b;
      }
      start = s;
    }
    if (e.rstrip) {
      size_t k = stop;
      while (k < n) {
        size_t j = k;
        if (!unicode::IsWhitespace(utf8::Next(text, j))) break;
        k = j;
      }
      stop = k;
      i = std::max(i, stop);
    }
    if (emitted < start) on_text(text.substr(emitted, start - emitted), emitted);
    on_token(e.id);
    emitted = stop;
  }
  if (emitted < n) on_text(text.substr(emitted), emitted);
}

}  // namespace tokmeter::tokenizer
