// ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece decoders.
#include "tokenizer/decoders/decoder.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {

void ByteLevelToBytes(std::string_view t, std::string& out) {
  size_t mark = out.size();
  for (size_t i = 0; i < t.size();) {
    int b = unicode::CharToByte(utf8::Next(t, i));
    if (b < 0) {
      out.resize(mark);
      out.append(t);
      return;
    }
    out.push_back(static_cast<char>(b));
  }
}

bool ByteLevelToBytesExact(std::string_view t, std::string& out) {
  out.clear();
  for (size_t i = 0; i < t.size();) {
    const unsigned char c = static_cast<unsigned char>(t[i]);
    if (c >= 0x21 && c <= 0x7E) {  // '!'..'~' stand for themselves in the byte-level alphabet (a load-time fast path)
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    int b = unicode::CharToByte(utf8::Next(t, i));
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
  }
  return true;
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string s;
  const auto& map = unicode::ByteToChar();
  for (unsigned char b : bytes) utf8::Append(s, map[b]);
  return s;
}

namespace {

std::vector<char32_t> Chars(std::string_view s) {
  std::vector<char32_t> v;
  for (size_t i = 0; i < s.size();) v.push_back(utf8::Next(s, i));
  return v;
}

char32_t OneChar(const std::string& s, const std::string& field) {
  auto v = Chars(s);
  if (v.size() != 1) throw tokmeter::Error("ERR_TOKENIZER_SPEC", field + ": must be exactly one character");
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

class ByteLevelDec final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) ByteLevelToBytes(t, bytes);
    std::string out;
    utf8::AppendLossy(out, bytes);
    tokens.assign(1, std::move(out));
  }
};

class MetaspaceDec final : public Decoder {
 public:
  MetaspaceDec(const DecoderSpec& s, const std::string& f)
      : rep_(OneChar(s.replacement, f + ".replacement")), prepend_(s.prepend) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const auto& t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        char32_t c = utf8::Next(t, k);
        if (c == rep_) {
          if (!(i == 0 && prepend_)) out.push_back(' ');
        } else {
          utf8::Append(out, c);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  char32_t rep_;
  bool prepend_;
};

class ByteFallbackDec final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t nbytes = 0;
    auto flush = [&] {
      if (nbytes == 0) return;
      if (utf8::IsValid(bytes))
        out.push_back(bytes);
      else
        for (size_t k = 0; k < nbytes; ++k) out.emplace_back("\xEF\xBF\xBD");
      bytes.clear();
      nbytes = 0;
    };
    for (auto& t : tokens) {
      int v = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          return -1;
        };
        int h = hex(t[3]), l = hex(t[4]);
        if (h >= 0 && l >= 0) v = h * 16 + l;
      }
      if (v >= 0) {
        bytes.push_back(static_cast<char>(v));
        ++nbytes;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDec final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDec final : public Decoder {
 public:
  StripDec(const DecoderSpec& s, const std::string& f)
      : c_(OneChar(s.content, f + ".content")), start_(s.start), stop_(s.stop) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      auto chars = Chars(t);
      size_t b = 0;
      for (size_t i = 0; i < chars.size(); ++i) {
        if (i < start_ && chars[i] == c_)
          b = i + 1;
        else
          break;
      }
      size_t e = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        if (chars[chars.size() - i - 1] == c_)
          --e;
        else
          break;
      }
      std::string out;
      for (size_t i = b; i < e; ++i) utf8::Append(out, chars[i]);
      t.swap(out);
    }
  }

 private:
  char32_t c_;
  size_t start_, stop_;
};

class ReplaceDec final : public Decoder {
 public:
  explicit ReplaceDec(const DecoderSpec& s) : from_(s.pattern), to_(s.content) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) ReplaceAll(t, from_, to_);
  }

 private:
  std::string from_, to_;
};

class WordPieceDec final : public Decoder {
 public:
  explicit WordPieceDec(const DecoderSpec& s) : prefix_(s.prefix), cleanup_(s.cleanup) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      auto& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0)
          t.erase(0, prefix_.size());
        else
          t.insert(0, " ");
      }
      if (cleanup_) {
        static const char* kPairs[][2] = {{" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
                                          {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
                                          {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
        for (const auto& p : kPairs) ReplaceAll(t, p[0], p[1]);
      }
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

}  // namespace

std::unique_ptr<Decoder> MakeDecoder(const DecoderSpec& s, const std::string& field) {
  using K = DecoderSpec::Kind;
  switch (s.kind) {
    case K::kByteLevel: return std::make_unique<ByteLevelDec>();
    case K::kMetaspace: return std::make_unique<MetaspaceDec>(s, field);
    case K::kByteFallback: return std::make_unique<ByteFallbackDec>();
    case K::kFuse: return std::make_unique<FuseDec>();
    case K::kStrip: return std::make_unique<StripDec>(s, field);
    case K::kReplace: return std::make_unique<ReplaceDec>(s);
    case K::kWordPiece: return std::make_unique<WordPieceDec>(s);
  }
  throw tokmeter::Error("ERR_TOKENIZER_SPEC", field + ": unknown decoder kind");
}

}  // namespace tokmeter::tokenizer
