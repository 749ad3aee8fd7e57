// Metaspace: spaces become the replacement character ("▁"), optionally prepended, then split before it.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::pre_tokenizers {

namespace {

class MetaspacePre final : public PreTokenizer {
 public:
  MetaspacePre(std::string replacement, PrependScheme scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    auto& buf = s.bufs[stage];
    buf.clear();
    bool starts = piece.substr(0, rep_.size()) == rep_ || (!piece.empty() && piece[0] == ' ');
    if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && at_start))) buf += rep_;
    for (char c : piece) {
      if (c == ' ')
        buf += rep_;
      else
        buf.push_back(c);
    }
    std::string_view p = buf;
    if (!split_) {
      if (!p.empty()) emit(p, at_start);
      return;
    }
    // Split on the replacement, merged with the next piece.
    auto& segs = s.segs[stage];
    segs.clear();
    size_t prev = 0;
    for (size_t pos = p.find(rep_); pos != std::string_view::npos; pos = p.find(rep_, pos + rep_.size())) {
      if (pos != prev) segs.push_back({prev, pos, false});
      segs.push_back({pos, pos + rep_.size(), true});
      prev = pos + rep_.size();
    }
    if (prev != p.size()) segs.push_back({prev, p.size(), false});
    EmitSegments(p, at_start, segs, SplitBehavior::kMergedWithNext, emit);
  }

 private:
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

}  // namespace

std::unique_ptr<PreTokenizer> MetaspaceFromJson(const json::Value& o, const std::string& path) {
  std::string replacement = json::Str(o, "replacement", path);
  if (replacement.empty() || utf8::SeqLen(static_cast<unsigned char>(replacement[0])) != replacement.size() ||
      !utf8::IsValid(replacement))
    json::SpecError(path + ".replacement", "expected exactly one character");
  return std::make_unique<MetaspacePre>(std::move(replacement), ReadPrependScheme(o, path),
                                        json::Bool(o, "split", path, true));
}

PrependScheme ReadPrependScheme(const json::Value& o, const std::string& path) {
  const json::Value* s = o.Get("prepend_scheme");
  if (!s) return json::Bool(o, "add_prefix_space", path, true) ? PrependScheme::kAlways : PrependScheme::kNever;
  if (s->IsString() && s->str() == "always") return PrependScheme::kAlways;
  if (s->IsString() && s->str() == "never") return PrependScheme::kNever;
  if (s->IsString() && s->str() == "first") return PrependScheme::kFirst;
  json::SpecError(path + ".prepend_scheme", "expected \"always\", \"never\" or \"first\", got " + json::Describe(s));
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
