// Helpers shared by the decoders.
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::decoders {

std::vector<char32_t> Chars(std::string_view s) {
  std::vector<char32_t> v;
  for (size_t i = 0; i < s.size();) v.push_back(utf8::Next(s, i));
  return v;
}

char32_t OneChar(const std::string& s, const std::string& field) {
  auto v = Chars(s);
  if (v.size() != 1) json::SpecError(field, "must be exactly one character");
  return v[0];
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t prev = 0;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + from.size())) {
    out.append(s, prev, p - prev);
    out += to;
    prev = p + from.size();
  }
  if (prev == 0) return;
  out.append(s, prev, std::string::npos);
  s.swap(out);
}

void Cleanup(std::string& s) {
  static const char* const kPairs[][2] = {{" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
                                          {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
                                          {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& p : kPairs) ReplaceAll(s, p[0], p[1]);
}

}  // namespace tokmeter::tokenizer::decoders
