// BERT-style pipelines: BertNormalizer in each setting (clean_text, handle_chinese_chars, strip_accents true / false /
// null, lowercase), BertPreTokenizer's punctuation classes, the WordPiece model's limits, prefix and unk, the
// WordPiece decoder and BertProcessing. The expected values are the reference's (Hugging Face tokenizers 0.23.2), in
// particular where its character classes are of Unicode 8.0 rather than of the rest of the pipeline (ref_chars.h).
#include <string>
#include <vector>

#include "synthetic.h"
#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/normalizer.h"
#include "tokenizer/pre_tokenizers/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

using namespace tt;
using namespace std::literals;
namespace json = tokmeter::tokenizer::json;
namespace unicode = tokmeter::tokenizer::unicode;

namespace {

std::string U(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) tokmeter::tokenizer::utf8::Append(out, c);
  return out;
}

std::string Bert(bool clean, bool chinese, const char* strip, bool lower, const std::string& text) {
  std::string spec = std::string(R"({"type":"BertNormalizer","clean_text":)") + (clean ? "true" : "false") +
                     R"(,"handle_chinese_chars":)" + (chinese ? "true" : "false") + R"(,"strip_accents":)" + strip +
                     R"(,"lowercase":)" + (lower ? "true" : "false") + "}";
  json::Value v = json::ParseDocument(spec, {}, "test.json");
  auto chain = NormalizerChain::FromJson(&v, "normalizer");
  std::string a, b;
  RegexScratch rx;
  return std::string(chain->Normalize(text, a, b, rx));
}

std::string BertWords(const std::string& text) {
  json::Value v = json::ParseDocument(R"({"type":"BertPreTokenizer"})", {}, "test.json");
  auto chain = PreTokenizerChain::FromJson(&v, "pre_tokenizer");
  std::string out;
  PreTokScratch s;
  auto emit = [&](std::string_view w) { out += "[" + std::string(w) + "]"; };
  chain->Run(text, true, s, FnRef<void(std::string_view)>(emit));
  return out;
}

}  // namespace

TEST(bert_normalizer_clean_text) {
  // Controls and format characters go; \t \n \r and the other whitespace become spaces; U+0000 and U+FFFD go.
  CHECK_EQ(Bert(true, false, "false", false, U(U"a\u0000b\u0001c\u001Fd\u007Fe\u0085f\u009Fg"sv)),
           std::string("abcdefg"));
  CHECK_EQ(Bert(true, false, "false", false, U(U"a\u200Bb\u200Fc\uFEFFd\u00ADe\uFFFDf\u2060g\u2066h")),
           std::string("abcdefgh"));
  CHECK_EQ(Bert(true, false, "false", false, U(U"a\tb\nc\rd\u00A0e\u3000f\u2028g\u2009h")),
           std::string("a b c d e f g h"));
  // VT and FF are controls before they are whitespace: dropped, not spaced.
  CHECK_EQ(Bert(true, false, "false", false,
                "a\x0B"
                "b\x0C"
                "c"),
           std::string("abc"));
  // Private use goes; unassigned code points stay (the reference's "other" has no Cn).
  CHECK_EQ(Bert(true, false, "false", false, U(U"a\uE000b\U000F0000c\u0378d\U0002FFFEe")), U(U"abc\u0378d\U0002FFFEe"));
  // Format characters that are newer than Unicode 8.0 stay (U+08E2, U+110CD, U+13430).
  CHECK_EQ(Bert(true, false, "false", false, U(U"a\u08E2b\U000110CDc\U00013430d")),
           U(U"a\u08E2b\U000110CDc\U00013430d"));
  // clean_text off: everything stays.
  CHECK_EQ(Bert(false, false, "false", false, U(U"a\u0000b\u200B\t"sv)), U(U"a\u0000b\u200B\t"sv));
}

TEST(bert_normalizer_chinese_chars) {
  CHECK_EQ(Bert(false, true, "false", false, U(U"ab中文c")), U(U"ab 中  文 c"));
  // Extension B and the compatibility ideographs count; kana, Hangul and the radicals do not.
  CHECK_EQ(Bert(false, true, "false", false, U(U"\U00020000\uF900\u3400")), U(U" \U00020000  \uF900  \u3400 "));
  CHECK_EQ(Bert(false, true, "false", false, U(U"ぁ한\u2E80\u3007")), U(U"ぁ한\u2E80\u3007"));
  CHECK_EQ(Bert(false, false, "false", false, U(U"中文")), U(U"中文"));
}

TEST(bert_normalizer_accents_and_case) {
  const std::string text = U(U"École NAÏVE İx");
  // strip_accents null follows lowercase.
  CHECK_EQ(Bert(true, true, "null", true, text), std::string("ecole naive ix"));
  CHECK_EQ(Bert(true, true, "null", false, text), text);
  CHECK_EQ(Bert(true, true, "true", false, text), std::string("Ecole NAIVE Ix"));
  CHECK_EQ(Bert(true, true, "false", true, text), U(U"école naïve i\u0307x"));
  CHECK_EQ(Bert(true, true, "true", true, text), std::string("ecole naive ix"));
  // Marks that are Mn only from Unicode 9 on stay (U+08D4); U+11938 is not decomposed by the reference's NFD.
  CHECK_EQ(Bert(false, false, "true", false, U(U"a\u08D4\u0301")), U(U"a\u08D4"));
  CHECK_EQ(Bert(false, false, "true", false, U(U"x\U00011938y")), U(U"x\U00011938y"));
  // Lowercasing of Unicode 16 and 17 letters (Rust's char::to_lowercase, newer than utf8proc's tables).
  CHECK_EQ(Bert(false, false, "false", true, U(U"\uA7CB\U00010D50\u1C89\uA7DC")), U(U"\u0264\U00010D70\u1C8A\u019B"));
}

TEST(bert_pre_tokenizer_punctuation) {
  CHECK_EQ(BertWords("hi, you!  there"), std::string("[hi][,][you][!][there]"));
  // ASCII symbols count as punctuation; other symbols do not.
  CHECK_EQ(BertWords(U(U"a$b+c€d©e")), U(U"[a][$][b][+][c€d©e]"));
  CHECK_EQ(BertWords(U(U"¿qué?「x」")), U(U"[¿][qué][?][「][x][」]"));
  // Punctuation added after Unicode 8.0 (U+2E43, U+1E95E) is not split.
  CHECK_EQ(BertWords(U(U"a\u2E43b\U0001E95Ec")), U(U"[a\u2E43b\U0001E95Ec]"));
  CHECK(unicode::IsPunctuation(U'\u2E42'));
  CHECK(!unicode::IsPunctuation(U'\u2E43'));
}

TEST(wordpiece_model_options) {
  auto build = [](const std::string& prefix, uint32_t max_chars) {
    Doc d;
    d.model =
        R"({"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":)" + J(prefix) +
        R"(,"max_input_chars_per_word":)" + std::to_string(max_chars) + R"(,"vocab":)" +
        VocabJson({"[UNK]", "[CLS]", "[SEP]", "un", prefix + "aff", prefix + "able", "é", prefix + "é", "a", ","}) +
        "}";
    d.normalizer = "null";
    d.pre_tokenizer = R"({"type":"BertPreTokenizer"})";
    d.decoder = R"({"type":"WordPiece","prefix":)" + J(prefix) + R"(,"cleanup":true})";
    d.added = {AddedJson(1, "[CLS]", true), AddedJson(2, "[SEP]", true)};
    d.post_processor = R"({"type":"BertProcessing","sep":["[SEP]",2],"cls":["[CLS]",1]})";
    return d.Build();
  };
  auto tok = build("##", 9);
  CHECK_EQ(Ids(tok->Encode("unaffable", false)), Ids({3, 4, 5}));
  CHECK_EQ(Ids(tok->Encode("unaffable", true)), Ids({1, 3, 4, 5, 2}));
  // Characters, not bytes: nine two-byte characters fit, ten do not.
  CHECK_EQ(Ids(tok->Encode(U(U"ééééééééé éééééééééé"), false)), Ids({6, 7, 7, 7, 7, 7, 7, 7, 7, 0}));
  // A remainder no entry starts turns the whole word into one unk.
  CHECK_EQ(Ids(tok->Encode("unx a", false)), Ids({0, 8}));
  CHECK_EQ(tok->Decode(tok->Encode("unaffable , a", true), true), std::string("unaffable, a"));
  auto at = build("@@", 100);
  CHECK_EQ(Ids(at->Encode("unaffable", false)), Ids({3, 4, 5}));
  CHECK_EQ(at->Decode(at->Encode("unaffable a", false), false), std::string("unaffable a"));
  auto zero = build("##", 0);
  CHECK_EQ(Ids(zero->Encode("a un", false)), Ids({0, 0}));
}

TEST(wordpiece_unk_token_missing_from_the_vocabulary) {
  // The file loads; only an encode that needs the unk fails, as the reference's does (MissingUnkToken).
  Doc d;
  d.model = R"({"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",)"
            R"("max_input_chars_per_word":3,"vocab":)" +
            VocabJson({"a", "##b"}) + "}";
  d.pre_tokenizer = R"({"type":"BertPreTokenizer"})";
  auto tok = d.Build();
  CHECK_EQ(Ids(tok->Encode("a ab abb", false)), Ids({0, 0, 1, 0, 1, 1}));
  CHECK_THROWS_CODE(tok->Encode("a c", false), "ERR_INVALID_ARGUMENT");
  CHECK_THROWS_CODE(tok->Encode("abbb", false), "ERR_INVALID_ARGUMENT");
}

TEST(wordpiece_long_words_with_a_high_limit) {
  // A 200,000-character word under a limit above it: pieced together (no candidate longer than the longest token is
  // looked up, so this stays linear), or one unk when a character is missing.
  Doc d;
  d.model = R"({"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",)"
            R"("max_input_chars_per_word":1000000,"vocab":)" +
            VocabJson({"[UNK]", "a", "##a", "aa", "##aaa", "##b"}) + "}";
  d.pre_tokenizer = R"({"type":"BertPreTokenizer"})";
  auto tok = d.Build();
  const std::string word(200000, 'a');
  auto ids = tok->Encode(word, false);
  // The longest match first: aa, then ##aaa 66,666 times (2 + 3 x 66,666 = 200,000).
  CHECK_EQ(ids.size(), size_t{66667});
  CHECK_EQ(ids.front(), 3u);
  CHECK_EQ(ids.back(), 4u);
  CHECK_EQ(Ids(tok->Encode(word + "c", false)), Ids({0}));
  CHECK_EQ(Ids(tok->Encode("ab", false)), Ids({1, 5}));
}

int main() { return tt::RunAll(); }
