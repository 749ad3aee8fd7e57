// Strip: whitespace removed from the left and/or right end.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class Strip final : public Normalizer {
 public:
  Strip(bool l, bool r) : left_(l), right_(r) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    size_t b = 0, e = in.size();
    if (left_) {
      while (b < e) {
        size_t i = b;
        if (!unicode::IsWhitespace(utf8::Next(in, i))) break;
        b = i;
      }
    }
    if (right_) {
      while (e > b) {
        size_t s = e - 1;
        while (s > b && (static_cast<unsigned char>(in[s]) & 0xC0) == 0x80) --s;
        size_t i = s;
        if (!unicode::IsWhitespace(utf8::Next(in, i))) break;
        e = s;
      }
    }
    if (b == 0 && e == in.size()) return false;
    out.assign(in.substr(b, e - b));
    return true;
  }

 private:
  bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> StripFromJson(const json::Value& o, const std::string& path) {
  return std::make_unique<Strip>(json::Bool(o, "strip_left", path, true), json::Bool(o, "strip_right", path, true));
}

}  // namespace tokmeter::tokenizer::normalizers
