// TemplateProcessing: the "single" template, special tokens before and after {"Sequence": {"id": "A"}}.
#include "tokenizer/json_value.h"
#include "tokenizer/post_processors/components.h"

namespace tokmeter::tokenizer::post_processors {

PostProcessor TemplateFromJson(const json::Value& o, const std::string& path,
                               const PostProcessor::TokenLookup& added_token_id) {
  PostProcessor p;
  const auto& single = json::Arr(o.Find("single"), path + ".single");
  const json::Value* specials_v = o.Get("special_tokens");
  const json::Value* specials = specials_v ? &json::Obj(specials_v, path + ".special_tokens") : nullptr;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string f = path + ".single[" + std::to_string(i) + "]";
    const json::Value& item = json::Obj(&single[i], f);
    if (const json::Value* seq = item.Find("Sequence")) {
      const std::string& id = json::Str(json::Obj(seq, f + ".Sequence"), "id", f + ".Sequence");
      if (id != "A")
        json::SpecError(f + ".Sequence.id",
                        "expected \"A\" in a single-sequence template, got " + json::Describe(seq->Find("id")));
      if (seen_sequence) json::Unsupported(f, "a template that repeats the sequence");
      seen_sequence = true;
      continue;
    }
    const json::Value* special = item.Find("SpecialToken");
    if (!special) json::SpecError(f, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    const std::string& name = json::Str(json::Obj(special, f + ".SpecialToken"), "id", f + ".SpecialToken");
    std::vector<uint32_t> ids;
    const json::Value* entry = specials ? specials->Find(name) : nullptr;
    if (entry) {
      const std::string ef = path + ".special_tokens[" + json::Stringify(name) + "]";
      const auto& list = json::Arr(json::Obj(entry, ef).Find("ids"), ef + ".ids");
      for (size_t k = 0; k < list.size(); ++k)
        ids.push_back(json::Uint(&list[k], ef + ".ids[" + std::to_string(k) + "]"));
    } else {
      std::optional<uint32_t> id = added_token_id(name);
      if (!id) json::SpecError(f + ".SpecialToken.id", json::Stringify(name) + " is not an added token");
      ids.push_back(*id);
    }
    auto& side = seen_sequence ? p.suffix : p.prefix;
    side.insert(side.end(), ids.begin(), ids.end());
  }
  if (!seen_sequence) json::SpecError(path + ".single", "the template has no {\"Sequence\": {\"id\": \"A\"}}");
  return p;
}

}  // namespace tokmeter::tokenizer::post_processors
