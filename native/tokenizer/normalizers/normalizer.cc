// The normalizer chain: dispatch on "type" (Sequence flattened) and the stage loop.
#include "tokenizer/normalizers/normalizer.h"

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"

namespace tokmeter::tokenizer {

std::unique_ptr<NormalizerChain> NormalizerChain::FromJson(const json::Value* v, const std::string& path) {
  std::unique_ptr<NormalizerChain> chain(new NormalizerChain());
  if (v && !v->IsNull()) chain->Add(*v, path, 0);
  return chain;
}

void NormalizerChain::Add(const json::Value& v, const std::string& path, int depth) {
  json::CheckSequenceDepth(depth, path);
  const json::Value& o = json::Obj(&v, path);
  const std::string& type = json::Type(o, path);
  using namespace normalizers;
  if (type == "Sequence") {
    const auto& list = json::Arr(o.Find("normalizers"), path + ".normalizers");
    for (size_t i = 0; i < list.size(); ++i) Add(list[i], path + ".normalizers[" + std::to_string(i) + "]", depth + 1);
    return;
  }
  std::unique_ptr<Normalizer> stage;
  if (type == "NFC")
    stage = UnicodeForm(Form::kNFC);
  else if (type == "NFD")
    stage = UnicodeForm(Form::kNFD);
  else if (type == "NFKC")
    stage = UnicodeForm(Form::kNFKC);
  else if (type == "NFKD")
    stage = UnicodeForm(Form::kNFKD);
  else if (type == "Lowercase")
    stage = LowercaseFromJson(o, path);
  else if (type == "Replace")
    stage = ReplaceFromJson(o, path);
  else if (type == "Prepend")
    stage = PrependFromJson(o, path);
  else if (type == "Strip")
    stage = StripFromJson(o, path);
  else if (type == "BertNormalizer")
    stage = BertFromJson(o, path);
  else if (type == "Precompiled")
    stage = PrecompiledFromJson(o, path);
  else if (type == "StripAccents")
    stage = StripAccentsFromJson(o, path);
  else if (type == "Nmt")
    stage = NmtFromJson(o, path);
  else
    json::Unsupported(path + ".type", "normalizer " + json::Stringify(type));
  stages_.push_back(std::move(stage));
}

std::string_view NormalizerChain::Normalize(std::string_view in, std::string& a, std::string& b,
                                            RegexScratch& rx) const {
  std::string_view cur = in;
  std::string* next = &a;
  for (const auto& st : stages_) {
    if (st->Apply(cur, *next, rx)) {
      cur = *next;
      next = (next == &a) ? &b : &a;
    }
  }
  return cur;
}

}  // namespace tokmeter::tokenizer
