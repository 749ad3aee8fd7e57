// Deserialisation of each tokenizer.json component (normalizers/, pre_tokenizers/, decoders/, post_processors/,
// models/, added tokens) from its JSON: well-formed components behave as their fields say; malformed ones throw
// ERR_TOKENIZER_SPEC naming the JSON path, unknown types ERR_TOKENIZER_UNSUPPORTED naming path.type, never a crash.
#include <functional>
#include <string>
#include <vector>

#include "synthetic.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/decoders/decoder.h"
#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/normalizer.h"
#include "tokenizer/post_processors/post_processor.h"
#include "tokenizer/pre_tokenizers/pre_tokenizer.h"
#include "tokenizer/regex.h"

using namespace tt;
namespace json = tokmeter::tokenizer::json;

namespace {

json::Value Parse(const std::string& text) { return json::ParseDocument(text, {}, "test.json"); }

// The code and message of what fn throws ("" when it does not throw).
std::pair<std::string, std::string> Thrown(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const tokmeter::Error& e) {
    return {e.code(), e.what()};
  }
  return {"", ""};
}

std::string Normalize(const std::string& component, const std::string& text) {
  json::Value v = Parse(component);
  auto chain = NormalizerChain::FromJson(&v, "normalizer");
  std::string a, b;
  RegexScratch rx;
  return std::string(chain->Normalize(text, a, b, rx));
}

std::vector<std::string> PreTokenize(const std::string& component, const std::string& text) {
  json::Value v = Parse(component);
  auto chain = PreTokenizerChain::FromJson(&v, "pre_tokenizer");
  std::vector<std::string> words;
  PreTokScratch s;
  auto emit = [&](std::string_view w) { words.emplace_back(w); };
  chain->Run(text, true, s, FnRef<void(std::string_view)>(emit));
  return words;
}

std::string Decode(const std::string& component, std::vector<std::string> tokens) {
  json::Value v = Parse(component);
  return DecoderChain::FromJson(&v, "decoder")->Decode(std::move(tokens));
}

PostProcessor Post(const std::string& component) {
  json::Value v = Parse(component);
  return PostProcessor::FromJson(&v, "post_processor", [](std::string_view c) -> std::optional<uint32_t> {
    if (c == "<s>") return 1u;
    if (c == "</s>") return 2u;
    return std::nullopt;
  });
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& w : v) s += "[" + w + "]";
  return s;
}

}  // namespace

TEST(normalizers_from_json) {
  CHECK_EQ(Normalize(R"({"type":"NFC"})", "E\xCC\x81"), std::string("\xC3\x89"));
  CHECK_EQ(Normalize(R"({"type":"NFD"})", "\xC3\x89"), std::string("E\xCC\x81"));
  CHECK_EQ(Normalize(R"({"type":"NFKC"})", "\xEF\xAC\x81"), std::string("fi"));
  CHECK_EQ(Normalize(R"({"type":"NFKD"})", "\xEF\xAC\x81"), std::string("fi"));
  CHECK_EQ(Normalize(R"({"type":"Lowercase"})", "AbC"), std::string("abc"));
  CHECK_EQ(Normalize(R"({"type":"Replace","pattern":{"String":"  "},"content":"_"})", "a    b"), std::string("a__b"));
  CHECK_EQ(Normalize(R"({"type":"Prepend","prepend":"> "})", "x"), std::string("> x"));
  CHECK_EQ(Normalize(R"({"type":"Strip","strip_left":true,"strip_right":false})", "  x  "), std::string("x  "));
  CHECK_EQ(Normalize(R"({"type":"Strip"})", "  x  "), std::string("x"));
  CHECK_EQ(Normalize(R"({"type":"BertNormalizer","lowercase":true,"strip_accents":null})", "\xC3\x89t\xC3\xA9\t"),
           std::string("ete "));
  CHECK_EQ(Normalize(R"({"type":"BertNormalizer","lowercase":false,"strip_accents":true})", "\xC3\x89"),
           std::string("E"));
  CHECK_EQ(
      Normalize(R"({"type":"Sequence","normalizers":[{"type":"Lowercase"},{"type":"Prepend","prepend":"_"}]})", "AB"),
      std::string("_ab"));
  CHECK_EQ(Normalize("null", "AB"), std::string("AB"));
  // Replace with a regex (Oniguruma dialect); empty matches insert the content, except in an empty text.
  CHECK_EQ(Normalize(R"({"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "})", "a  b   c d"),
           std::string("a b c d"));
  CHECK_EQ(Normalize(R"({"type":"Replace","pattern":{"Regex":"x*"},"content":"-"})", "abxxc"), std::string("-a-b-c-"));
  CHECK_EQ(Normalize(R"({"type":"Replace","pattern":{"Regex":"x*"},"content":"-"})", ""), std::string(""));
  // StripAccents drops every combining mark (Mc too) and decomposes nothing itself; Nmt drops or spaces controls.
  CHECK_EQ(Normalize(R"({"type":"StripAccents"})",
                     "e\xCC\x81 \xC3\xA9 a\xE0\xA4\x83"
                     "b"),
           std::string("e \xC3\xA9 ab"));
  CHECK_EQ(Normalize(R"({"type":"Sequence","normalizers":[{"type":"NFKD"},{"type":"StripAccents"}]})", "\xC3\xA9"),
           std::string("e"));
  CHECK_EQ(Normalize(R"({"type":"Nmt"})", std::string("\x01"
                                                      "a\tb\xE2\x80\x8B\x00",
                                                      8)),
           std::string("a b \x00", 5));
}

// A charsmap compiled by scripts/tokenizer-spm-fixture.ts (compileCharsmap) from the rules
// U+FF21 -> "A", U+FF21 U+0301 -> U+00C1, U+FB01 -> "fi", U+0001 -> "", CR -> " ", "e" U+0301 -> U+00E9.
const char kSmallCharsmap[] =
    "AAQAAAAMAAAIAACAAQ0AAMwQAgAJAACArAwCAIE5AACBNQAACwAAgKEJAAAFAACAAAAAgIEFAAACAACADSkAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAALz0AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAGWkAgAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADMKAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAA7xQBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AABBAMOBAGZpAAAgAMOpAA==";

TEST(precompiled_normalizer) {
  const std::string pc = std::string(R"({"type":"Precompiled","precompiled_charsmap":")") + kSmallCharsmap + "\"}";
  // Per grapheme cluster under 6 bytes: the shortest key that prefixes the cluster decides, for the whole cluster.
  CHECK_EQ(Normalize(pc, "\xEF\xBC\xA1\xCC\x81x"), std::string("Ax"));
  // 7 bytes: character by character.
  CHECK_EQ(Normalize(pc, "\xEF\xBC\xA1\xCC\x81\xCC\x81"), std::string("A\xCC\x81\xCC\x81"));
  CHECK_EQ(Normalize(pc, "e\xCC\x81 \xEF\xAC\x81\x01!"), std::string("\xC3\xA9 fi!"));
  // CR LF is one cluster: CR's replacement stands for both.
  CHECK_EQ(Normalize(pc, "a\r\nb\rc"), std::string("a b c"));
  CHECK_EQ(Normalize(pc, "untouched"), std::string("untouched"));
}

TEST(pre_tokenizers_from_json) {
  CHECK_EQ(
      Join(PreTokenize(R"({"type":"Split","pattern":{"String":"-"},"behavior":"Isolated","invert":false})", "a-b")),
      std::string("[a][-][b]"));
  CHECK_EQ(
      Join(PreTokenize(R"({"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Removed","invert":false})", "a12b3")),
      std::string("[a][b]"));
  CHECK_EQ(
      Join(PreTokenize(R"({"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Removed","invert":true})", "a12b3")),
      std::string("[12][3]"));
  CHECK_EQ(
      Join(PreTokenize(R"({"type":"Split","pattern":{"String":"-"},"behavior":"Contiguous","invert":false})", "a--b")),
      std::string("[a][--][b]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Whitespace"})", "hi, you!")), std::string("[hi][,][you][!]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"WhitespaceSplit"})", "hi, you!")), std::string("[hi,][you!]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Digits","individual_digits":true})", "a12")), std::string("[a][1][2]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Digits","individual_digits":false})", "a12")), std::string("[a][12]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Punctuation"})", "a.b")), std::string("[a][.][b]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Punctuation","behavior":"MergedWithPrevious"})", "a.b")),
           std::string("[a.][b]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"BertPreTokenizer"})", "hi, you")), std::string("[hi][,][you]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Metaspace","replacement":"_","prepend_scheme":"always","split":true})", "a b")),
           std::string("[_a][_b]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Metaspace","replacement":"_","add_prefix_space":false,"split":false})", "a b")),
           std::string("[a_b]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})", "a bc")),
           std::string("[ a][ bc]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "a bc")),
           std::string("[a bc]"));
  CHECK_EQ(Join(PreTokenize(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},)"
                            R"({"type":"Digits","individual_digits":true}]})",
                            "a1 b")),
           std::string("[a][1][b]"));
}

TEST(decoders_from_json) {
  CHECK_EQ(Decode(R"({"type":"ByteLevel"})", {"\xC4\xA0"
                                              "a",
                                              "b"}),
           std::string(" ab"));
  CHECK_EQ(Decode(R"({"type":"Metaspace","replacement":"_","prepend_scheme":"always"})", {"_a", "_b"}),
           std::string("a b"));
  CHECK_EQ(Decode(R"({"type":"Metaspace","replacement":"_","prepend_scheme":"never"})", {"_a"}), std::string(" a"));
  CHECK_EQ(Decode(R"({"type":"ByteFallback"})", {"<0x41>", "x", "<0xFF>"}), std::string("Ax\xEF\xBF\xBD"));
  CHECK_EQ(Decode(R"({"type":"Fuse"})", {"a", "b"}), std::string("ab"));
  CHECK_EQ(Decode(R"({"type":"Strip","content":" ","start":1,"stop":1})", {" a ", "  b"}), std::string("a b"));
  CHECK_EQ(Decode(R"({"type":"Replace","pattern":{"String":"_"},"content":" "})", {"a_", "b"}), std::string("a b"));
  CHECK_EQ(Decode(R"({"type":"WordPiece","prefix":"##","cleanup":true})", {"un", "##aff", "!"}), std::string("unaff!"));
  // Regex and empty-literal patterns, per token (expected values from the reference).
  CHECK_EQ(Decode(R"({"type":"Replace","pattern":{"Regex":"_+"},"content":" "})", {"a_", "b"}), std::string("a b"));
  CHECK_EQ(Decode(R"({"type":"Replace","pattern":{"Regex":"x*"},"content":"-"})", {"xx", "ab"}), std::string("--a-b-"));
  CHECK_EQ(Decode(R"({"type":"Replace","pattern":{"String":""},"content":"-"})", {"ab", "b"}), std::string("-a-b--b-"));
  CHECK_EQ(Decode(R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"_"},"content":" "},)"
                  R"({"type":"Fuse"}]})",
                  {"a_", "b"}),
           std::string("a b"));
  CHECK_EQ(Decode("null", {"a", "b"}), std::string("a b"));  // no decoder: tokens joined with spaces
}

TEST(post_processors_from_json) {
  auto ids = [](const PostProcessor& p) { return Ids(p.prefix) + Ids(p.suffix); };
  CHECK_EQ(ids(Post(R"({"type":"BertProcessing","sep":["[SEP]",102],"cls":["[CLS]",101]})")),
           std::string("[101][102]"));
  CHECK_EQ(ids(Post(R"({"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0],"trim_offsets":true})")),
           std::string("[0][2]"));
  CHECK_EQ(ids(Post(R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}},)"
                    R"({"SpecialToken":{"id":"X"}}],"special_tokens":{"X":{"id":"X","ids":[7,8]}}})")),
           std::string("[1][7,8]"));
  CHECK_EQ(ids(Post(R"({"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"TemplateProcessing",)"
                    R"("single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}]}]})")),
           std::string("[1][]"));
  CHECK_EQ(ids(Post("null")), std::string("[][]"));
}

TEST(added_tokens_from_json) {
  json::Value v = Parse(R"([{"id":5,"content":"<x>","special":true},{"id":6,"content":"y"}])");
  auto added = AddedTokensFromJson(&v, "added_tokens");
  CHECK_EQ(added.size(), size_t{2});
  CHECK(added[0].special && !added[0].normalized);  // normalized defaults to !special
  CHECK(!added[1].special && added[1].normalized);
  CHECK(!added[1].lstrip && !added[1].rstrip && !added[1].single_word);
}

TEST(malformed_components_name_the_json_path) {
  struct Case {
    const char* family;
    const char* json;
    const char* code;
    const char* message;
  };
  const Case cases[] = {
      {"n", R"({"type":"Precompiled"})", "ERR_TOKENIZER_SPEC", "normalizer.precompiled_charsmap: expected a string"},
      {"n", R"({"type":"Precompiled","precompiled_charsmap":"*"})", "ERR_TOKENIZER_SPEC",
       "normalizer.precompiled_charsmap: not valid base64"},
      {"n", R"({"type":"Precompiled","precompiled_charsmap":"AAA="})", "ERR_TOKENIZER_SPEC",
       "normalizer.precompiled_charsmap: shorter than its 4-byte header"},
      {"n", R"({"type":"Precompiled","precompiled_charsmap":"BAAAAA=="})", "ERR_TOKENIZER_SPEC",
       "normalizer.precompiled_charsmap: trie size 4 does not fit"},
      {"n", R"({"type":"Precompiled","precompiled_charsmap":"CAAAAAEFAABkAACA"})", "ERR_TOKENIZER_SPEC",
       "normalizer.precompiled_charsmap: the trie points outside its replacement strings"},
      {"n", R"({"kind":"NFC"})", "ERR_TOKENIZER_SPEC", "normalizer.type: expected a string, got undefined"},
      {"n", R"([1])", "ERR_TOKENIZER_SPEC", "normalizer: expected an object, got an array"},
      {"n", R"({"type":"Sequence","normalizers":{}})", "ERR_TOKENIZER_SPEC",
       "normalizer.normalizers: expected an array"},
      {"n", R"({"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Prepend"}]})", "ERR_TOKENIZER_SPEC",
       "normalizer.normalizers[1].prepend: expected a string"},
      {"n", R"({"type":"Replace","pattern":{"String":""},"content":"x"})", "ERR_TOKENIZER_SPEC",
       "normalizer.pattern.String: must not be empty"},
      {"n", R"({"type":"Replace","pattern":{"Regex":"(unclosed"},"content":"x"})", "ERR_TOKENIZER_SPEC",
       "normalizer.pattern.Regex"},
      {"n", R"({"type":"Replace","pattern":"x","content":"x"})", "ERR_TOKENIZER_SPEC",
       "normalizer.pattern: expected an object, got the string \"x\""},
      {"n", R"({"type":"Strip","strip_left":1})", "ERR_TOKENIZER_SPEC",
       "normalizer.strip_left: expected a boolean, got number 1"},
      {"n", R"({"type":"BertNormalizer","lowercase":"yes"})", "ERR_TOKENIZER_SPEC", "normalizer.lowercase"},
      {"p", R"({"type":"UnicodeScripts"})", "ERR_TOKENIZER_UNSUPPORTED", "pre_tokenizer.type: pre-tokenizer"},
      {"p", R"({"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated","invert":false})",
       "ERR_TOKENIZER_SPEC", "pre_tokenizer.pattern.Regex"},
      {"p", R"({"type":"Split","pattern":{"String":"-"},"behavior":"Sideways"})", "ERR_TOKENIZER_SPEC",
       "pre_tokenizer.behavior: expected one of Isolated"},
      {"p", R"({"type":"Split","pattern":{"Bytes":"-"},"behavior":"Isolated"})", "ERR_TOKENIZER_SPEC",
       "pre_tokenizer.pattern: expected {\"String\": ...} or {\"Regex\": ...}"},
      {"p", R"({"type":"Metaspace","replacement":"ab"})", "ERR_TOKENIZER_SPEC",
       "pre_tokenizer.replacement: expected exactly one character"},
      {"p", R"({"type":"Metaspace","replacement":"_","prepend_scheme":"sometimes"})", "ERR_TOKENIZER_SPEC",
       "pre_tokenizer.prepend_scheme"},
      {"p", R"({"type":"Digits","individual_digits":"no"})", "ERR_TOKENIZER_SPEC", "pre_tokenizer.individual_digits"},
      {"p", R"({"type":"Sequence","pretokenizers":[{"type":"ByteLevel"},{"type":"Whitespace"}]})", "ERR_TOKENIZER_SPEC",
       "pre_tokenizer.pretokenizers[0]: ByteLevel must be the last"},
      {"p", R"({"type":"Sequence","pretokenizers":[null]})", "ERR_TOKENIZER_SPEC",
       "pre_tokenizer.pretokenizers[0]: expected an object, got null"},
      {"d", R"({"type":"Ctc"})", "ERR_TOKENIZER_UNSUPPORTED", "decoder.type: decoder \"Ctc\""},
      {"d", R"({"type":"Strip","content":" ","start":-1,"stop":0})", "ERR_TOKENIZER_SPEC",
       "decoder.start: expected a non-negative integer, got number -1"},
      {"d", R"({"type":"Strip","content":"ab","start":1,"stop":0})", "ERR_TOKENIZER_SPEC",
       "decoder.content: must be exactly one character"},
      {"d", R"({"type":"Replace","pattern":{"Regex":"(_"},"content":" "})", "ERR_TOKENIZER_SPEC",
       "decoder.pattern.Regex"},
      {"d", R"({"type":"Metaspace"})", "ERR_TOKENIZER_SPEC", "decoder.replacement: expected a string"},
      {"d", R"({"type":"WordPiece","prefix":3})", "ERR_TOKENIZER_SPEC", "decoder.prefix: expected a string or null"},
      {"d", R"({"type":"Sequence","decoders":[{"type":"Fuse"},{"type":"Nope"}]})", "ERR_TOKENIZER_UNSUPPORTED",
       "decoder.decoders[1].type"},
      {"x", R"({"type":"Nope"})", "ERR_TOKENIZER_UNSUPPORTED", "post_processor.type: post-processor \"Nope\""},
      {"x", R"({"type":"BertProcessing","sep":["[SEP]"],"cls":["[CLS]",1]})", "ERR_TOKENIZER_SPEC",
       "post_processor.sep: expected [token, id]"},
      {"x", R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}}]})", "ERR_TOKENIZER_SPEC",
       "post_processor.single: the template has no"},
      {"x", R"({"type":"TemplateProcessing","single":[{"Sequence":{"id":"B"}}]})", "ERR_TOKENIZER_SPEC",
       "post_processor.single[0].Sequence.id: expected \"A\""},
      {"x", R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<q>"}},{"Sequence":{"id":"A"}}]})",
       "ERR_TOKENIZER_SPEC", "post_processor.single[0].SpecialToken.id: \"<q>\" is not an added token"},
      {"x", R"({"type":"TemplateProcessing","single":[{"Sequence":{"id":"A"}},{"Sequence":{"id":"A"}}]})",
       "ERR_TOKENIZER_UNSUPPORTED", "post_processor.single[1]: a template that repeats the sequence"},
      {"a", R"([{"id":1,"content":""}])", "ERR_TOKENIZER_SPEC", "added_tokens[0].content: must not be empty"},
      {"a", R"([{"id":-1,"content":"x"}])", "ERR_TOKENIZER_SPEC", "added_tokens[0].id: expected a non-negative"},
      {"a", R"([{"id":1,"content":"x"},{"id":1,"content":"y"}])", "ERR_TOKENIZER_SPEC",
       "added_tokens[1].id: id 1 is also the id of added_tokens[0]"},
      {"a", R"([{"id":1,"content":"x"},{"id":2,"content":"x"}])", "ERR_TOKENIZER_SPEC",
       "added_tokens[1].content: \"x\" is also the content of added_tokens[0]"},
      {"a", R"({"id":1})", "ERR_TOKENIZER_SPEC", "added_tokens: expected an array, got an object"},
  };
  for (const auto& c : cases) {
    auto [code, message] = Thrown([&] {
      json::Value v = Parse(c.json);
      switch (c.family[0]) {
        case 'n': NormalizerChain::FromJson(&v, "normalizer"); break;
        case 'p': PreTokenizerChain::FromJson(&v, "pre_tokenizer"); break;
        case 'd': DecoderChain::FromJson(&v, "decoder"); break;
        case 'x': Post(c.json); break;
        default: AddedTokensFromJson(&v, "added_tokens"); break;
      }
    });
    if (code != c.code || message.find(c.message) == std::string::npos) {
      std::printf("  %s: got %s \"%s\", want %s \"%s\"\n", c.json, code.c_str(), message.c_str(), c.code, c.message);
      ++tt::failures;
    }
  }
}

TEST(malformed_models_and_documents) {
  auto doc = [](const std::string& model) {
    Doc d;
    d.model = model;
    return d.Text();
  };
  auto truncated = [&](const std::string& model, const std::string& settings) {
    std::string t = doc(model);
    const std::string from = "\"truncation\":null";
    return t.replace(t.find(from), from.size(), "\"truncation\":" + settings);
  };
  struct Case {
    std::string text;
    const char* code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {doc(R"({"type":"WordLevel","vocab":[]})"), "ERR_TOKENIZER_SPEC", "model.vocab: expected an object"},
      {doc(R"({"type":"WordPieceX","vocab":{}})"), "ERR_TOKENIZER_UNSUPPORTED", "model.type: model \"WordPieceX\""},
      {doc(R"({"type":"WordLevel","vocab":{"a":0},"unk_token":3})"), "ERR_TOKENIZER_SPEC", "model.unk_token"},
      {doc(R"({"vocab":{"a":0}})"), "ERR_TOKENIZER_UNSUPPORTED", "model.type"},
      {doc(R"({"type":"BPE","vocab":[],"merges":[]})"), "ERR_TOKENIZER_SPEC", "model.vocab: expected an object"},
      {doc(R"({"type":"BPE","vocab":{"a":0},"merges":{}})"), "ERR_TOKENIZER_SPEC", "model.merges: expected an array"},
      {doc(R"({"type":"BPE","vocab":{"a":0},"merges":[],"dropout":0.1})"), "ERR_TOKENIZER_UNSUPPORTED",
       "model.dropout"},
      {doc(R"({"type":"BPE","vocab":{"a":0},"merges":[],"dropout":"0"})"), "ERR_TOKENIZER_UNSUPPORTED",
       "model.dropout"},
      {doc(R"({"type":"BPE","vocab":{"a":0,"##b":1,"ab":2},"merges":["##b a"],"continuing_subword_prefix":"##"})"),
       "ERR_TOKENIZER_SPEC", "model.merges[0]: the right token does not start with continuing_subword_prefix"},
      {doc(R"({"type":"BPE","vocab":{"a":0},"merges":[],"byte_fallback":"yes"})"), "ERR_TOKENIZER_SPEC",
       "model.byte_fallback: expected a boolean"},
      {doc(R"({"type":"BPE","vocab":{"a":-1},"merges":[]})"), "ERR_TOKENIZER_SPEC", "model.vocab[\"a\"]"},
      {doc(R"({"type":"BPE","vocab":{"a":0,"b":0},"merges":[]})"), "ERR_TOKENIZER_SPEC", "id 0 is used twice"},
      {doc(R"({"type":"BPE","vocab":{"a":0},"merges":["a"]})"), "ERR_TOKENIZER_SPEC", "model.merges[0]"},
      {doc(R"({"type":"WordPiece","vocab":{"a":0}})"), "ERR_TOKENIZER_SPEC", "model.unk_token: expected a string"},
      {doc(R"({"type":"WordPiece","vocab":{"a":0},"unk_token":"a","max_input_chars_per_word":1.5})"),
       "ERR_TOKENIZER_SPEC", "model.max_input_chars_per_word"},
      {doc(R"({"type":"Unigram","vocab":[["a"]]})"), "ERR_TOKENIZER_SPEC", "model.vocab[0]: expected [piece, score]"},
      {doc(R"({"type":"Unigram","vocab":[["a","x"]]})"), "ERR_TOKENIZER_SPEC",
       "model.vocab[0][1]: expected a finite number"},
      {doc(R"({"type":"Unigram","vocab":[["a",-1]],"unk_id":3})"), "ERR_TOKENIZER_SPEC",
       "model.unk_id: 3 is not below the vocabulary size 1"},
      {truncated(R"({"type":"Unigram","vocab":[["a",-1]]})", "7"), "ERR_TOKENIZER_SPEC",
       "truncation: expected an object, got number 7"},
      {"{\"model\": {\"vocab\": {\"a\": 0}", "ERR_TOKENIZER_SPEC", "tokenizer.json: not valid JSON"},
      {"\xEF\xBB\xBF{}", "ERR_TOKENIZER_SPEC", "not valid JSON"},
      {"[]", "ERR_TOKENIZER_SPEC", "tokenizer.json: expected an object, got an array"},
      {"{}", "ERR_TOKENIZER_SPEC", "model: expected an object, got undefined"},
  };
  for (const auto& c : cases) {
    auto [code, message] = Thrown([&] { Tokenizer::FromJson(c.text); });
    if (code != c.code || message.find(c.message) == std::string::npos) {
      std::printf("  %s: got %s \"%s\", want %s \"%s\"\n", c.text.substr(0, 200).c_str(), code.c_str(), message.c_str(),
                  c.code, c.message);
      ++tt::failures;
    }
  }
}

// A BPE dropout of 0 skips no merge: such a file encodes as without one.
TEST(bpe_dropout_zero_is_no_dropout) {
  Doc d;
  d.model = R"({"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"],"dropout":0.0})";
  CHECK(d.Build()->Encode("abab", false) == (std::vector<uint32_t>{2, 2}));
}

// A file saved after a call with truncation or padding keeps those settings; text is still encoded whole, unpadded.
TEST(truncation_and_padding_settings_are_read_past) {
  Doc d;
  d.model = R"({"type":"WordLevel","vocab":{"a":0,"b":1,"[PAD]":2},"unk_token":"a"})";
  d.pre_tokenizer = R"({"type":"WhitespaceSplit"})";
  const auto plain = d.Build()->Encode("a b a b a b", false);
  std::string text = d.Text();
  const std::string trunc = "\"truncation\":null", pad = "\"padding\":null";
  text.replace(text.find(trunc), trunc.size(),
               R"("truncation":{"direction":"Right","max_length":2,"strategy":"LongestFirst","stride":0})");
  text.replace(text.find(pad), pad.size(),
               R"("padding":{"strategy":{"Fixed":16},"direction":"Right","pad_to_multiple_of":null,"pad_id":2,)"
               R"("pad_type_id":0,"pad_token":"[PAD]"})");
  const auto ids = Tokenizer::FromJson(text)->Encode("a b a b a b", false);
  CHECK_EQ(ids.size(), size_t{6});
  CHECK(ids == plain);
}

TEST(sequence_nesting_is_bounded) {
  for (const char* key : {"normalizers", "pretokenizers", "decoders", "processors"}) {
    std::string leaf = std::string(key) == "normalizers"     ? R"({"type":"Lowercase"})"
                       : std::string(key) == "pretokenizers" ? R"({"type":"Whitespace"})"
                       : std::string(key) == "decoders"      ? R"({"type":"Fuse"})"
                                                             : R"({"type":"ByteLevel"})";
    auto nested = [&](int depth) {
      std::string s;
      for (int i = 0; i < depth; ++i) s += std::string(R"({"type":"Sequence",")") + key + "\":[";
      s += leaf;
      for (int i = 0; i < depth; ++i) s += "]}";
      return s;
    };
    auto load = [&](int depth) {
      ByteBpeBuilder b;
      Doc d = b.Document();
      std::string k = key;
      (k == "normalizers"     ? d.normalizer
       : k == "pretokenizers" ? d.pre_tokenizer
       : k == "decoders"      ? d.decoder
                              : d.post_processor) = nested(depth);
      return Thrown([&] { d.Build(); });
    };
    CHECK_EQ(load(3).first, std::string());
    auto deep = load(40);
    CHECK_EQ(deep.first, std::string("ERR_TOKENIZER_SPEC"));
    CHECK(deep.second.find("nested more than 32") != std::string::npos);
    auto very_deep = load(5000);  // the JSON reader refuses it before any component sees it
    CHECK_EQ(very_deep.first, std::string("ERR_TOKENIZER_SPEC"));
    CHECK(very_deep.second.find("nested more than 512") != std::string::npos);
  }
}

TEST(documents_keep_the_last_of_repeated_keys_and_big_fields_raw) {
  json::Value v = json::ParseDocument(R"({"a": 1, "model": {"vocab": {"x": 0}, "vocab": {"y": 0}}, "a": [true]})",
                                      {{"model", "vocab"}}, "f");
  CHECK(v.Find("a") && v.Find("a")->IsArray());
  const json::Value* vocab = v.Find("model")->Find("vocab");
  CHECK(vocab && vocab->IsRaw());
  CHECK_EQ(std::string(vocab->raw()), std::string(R"({"y": 0})"));
  CHECK_EQ(json::Describe(v.Find("missing")), std::string("undefined"));
  json::Value n = Parse(R"({"n": 7e0, "s": "caf\u00e9", "f": -0.5})");
  CHECK_EQ(json::Uint(n.Find("n"), "n"), 7u);
  CHECK_EQ(n.Find("s")->str(), std::string("caf\xC3\xA9"));
  CHECK_EQ(Thrown([&] { json::Uint(n.Find("f"), "f"); }).second,
           std::string("invalid tokenizer: f: expected a non-negative integer, got number -0.5"));
}

int main() { return tt::RunAll(); }
