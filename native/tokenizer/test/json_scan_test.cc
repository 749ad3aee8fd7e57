// Unit tests of tokenizer/json_scan.h: the readers of tokenizer.json's big fields and of tiktoken rank files.
// Expected values are what JSON.parse (then Buffer.from(string, 'utf8')) gives.
#include <random>
#include <string>
#include <vector>

#include "synthetic.h"
#include "tokenizer/json_scan.h"

using namespace tokmeter::tokenizer;

namespace {
std::string ErrorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const tokmeter::Error& e) {
    return e.code() + " " + e.what();
  } catch (const std::exception& e) {
    return std::string("other exception ") + e.what();
  }
  return "no error";
}
bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::string Slice(std::string_view doc, const std::optional<json::Range>& r) {
  return r ? std::string(doc.substr(r->begin, r->end - r->begin)) : std::string("<none>");
}
}  // namespace

TEST(locate_finds_nested_fields_and_keeps_the_last_duplicate) {
  std::string doc = R"( {"version": "1.0", "x": [1, {"model": 2}], "model": {"type": "BPE", "vocab": {"a": 0, "}": 1},)"
                    R"( "merges": ["a b", ["}", "\""]]}, "s": "\"model\\"} )";
  auto r = json::Locate(doc, {{"model", "vocab"}, {"model", "merges"}, {"nope"}, {"model", "type"}}, "t.json");
  CHECK_EQ(Slice(doc, r[0]), std::string(R"({"a": 0, "}": 1})"));
  CHECK_EQ(Slice(doc, r[1]), std::string(R"(["a b", ["}", "\""]])"));
  CHECK(!r[2]);
  CHECK_EQ(Slice(doc, r[3]), std::string(R"("BPE")"));

  // JSON.parse keeps the last "model": its fields replace (or remove) what an earlier one held.
  std::string dup = R"({"model": {"vocab": {"a": 0}, "merges": []}, "model": {"vocab": {"b": 1}}})";
  auto d = json::Locate(dup, {{"model", "vocab"}, {"model", "merges"}}, "t.json");
  CHECK_EQ(Slice(dup, d[0]), std::string(R"({"b": 1})"));
  CHECK(!d[1]);
  std::string dup2 = R"({"model": {"vocab": {"a": 0}}, "model": 5})";
  CHECK(!json::Locate(dup2, {{"model", "vocab"}}, "t.json")[0]);
  // Keys are compared decoded.
  std::string esc = R"({"mod\u0065l": {"vocab": 1}})";
  CHECK_EQ(Slice(esc, json::Locate(esc, {{"model", "vocab"}}, "t.json")[0]), std::string("1"));
}

TEST(locate_rejects_malformed_documents_with_a_position) {
  for (std::string bad : {R"({"a": 1,})", R"({"a" 1})", R"({"a": [1 2]})", R"({"a": tru})", R"({"a": 01})",
                          R"({"a": "x)", "{\"a\": \"\x01\"}", R"({"a": "\q"})", R"({"a": 1} x)", R"()", R"({"a": -})",
                          R"({"a": 1.})", R"({"a": 1e})", R"({"a": "\u12"})", R"([)", "\xEF\xBB\xBF{}"}) {
    std::string e = ErrorOf([&] { json::Locate(bad, {{"a"}}, "f.json"); });
    CHECK(Has(e, "ERR_TOKENIZER_SPEC invalid tokenizer: f.json: "));
    CHECK(Has(e, " at byte "));
  }
  std::string deep(100000, '[');
  CHECK(Has(ErrorOf([&] { json::Locate(deep, {{"a"}}, "f.json"); }), "nested more than 512 levels deep"));
  std::string deep_obj;
  for (int i = 0; i < 2000; ++i) deep_obj += "{\"a\":";
  CHECK(Has(ErrorOf([&] { json::Locate(deep_obj, {{"a", "a", "a"}}, "f.json"); }), "ERR_TOKENIZER_SPEC"));
  // Valid odd values pass.
  std::string ok = R"({"a": [true, false, null, -0, 1.5e+3, 2E-2, "\/\b\f\n\r\t", {}, []]})";
  CHECK_EQ(Slice(ok, json::Locate(ok, {{"a"}}, "f.json")[0]).size(), ok.size() - 7);
}

TEST(strings_decode_like_json_parse_then_utf8) {
  auto d = [](const std::string& lit) { return json::DecodeString(lit, "s"); };
  CHECK_EQ(d(R"("a\"b\\c\/d\b\f\n\r\t")"), std::string("a\"b\\c/d\b\f\n\r\t"));
  CHECK_EQ(d(R"("\u0041\u00e9\u20AC")"), std::string("A\xC3\xA9\xE2\x82\xAC"));
  CHECK_EQ(d(R"("\ud83d\ude00")"), std::string("\xF0\x9F\x98\x80"));  // a surrogate pair is one code point
  CHECK_EQ(d(R"("\ud83d")"), std::string("\xEF\xBF\xBD"));            // lone high surrogate -> U+FFFD
  CHECK_EQ(d(R"("\ude00x")"), std::string("\xEF\xBF\xBDx"));          // lone low surrogate
  CHECK_EQ(d(R"("\ud83d\u0041")"), std::string("\xEF\xBF\xBD"
                                               "A"));  // high surrogate, then not a low one
  CHECK_EQ(d(R"("\ude00\ud83d")"), std::string("\xEF\xBF\xBD\xEF\xBF\xBD"));
  CHECK_EQ(d(R"("\u0000")"), std::string(1, '\0'));
  CHECK_EQ(d("\"\xC4\xA0raw\""), std::string("\xC4\xA0raw"));  // raw UTF-8 passes through
  CHECK(Has(ErrorOf([&] { d(R"("\ud83d\uZZZZ")"); }), "invalid \\u escape"));
  CHECK(Has(ErrorOf([&] { d("\"a\tb\""); }), "control character"));
  CHECK(Has(ErrorOf([&] { d(R"("abc)"); }), "unterminated"));
  CHECK(Has(ErrorOf([&] { d(R"("a" "b")"); }), "after the string"));
}

TEST(vocab_object_follows_json_parse_and_the_loader) {
  auto v = json::ParseVocabObject(R"( { "a": 0, "b\u0020c": 2, "\ud83d\ude00": 1, "d": 3.0, "e": 4e0, "f": 5E+0 } )",
                                  "model.vocab");
  CHECK_EQ(v.tokens.size(), size_t{6});
  CHECK_EQ(v.tokens[0], std::string("a"));
  CHECK_EQ(v.tokens[1], std::string("\xF0\x9F\x98\x80"));
  CHECK_EQ(v.tokens[2], std::string("b c"));
  CHECK_EQ(v.tokens[3], std::string("d"));
  CHECK_EQ(v.tokens[4], std::string("e"));
  CHECK_EQ(v.tokens[5], std::string("f"));
  CHECK(v.present[0] && v.present[5]);

  // Duplicate keys: the last value wins, even over an invalid earlier one, and frees the earlier id.
  auto dup = json::ParseVocabObject(R"({"a": 1, "b": 1, "a": 0, "c": "x", "c": 2})", "model.vocab");
  CHECK_EQ(dup.tokens.size(), size_t{3});
  CHECK_EQ(dup.tokens[0], std::string("a"));
  CHECK_EQ(dup.tokens[1], std::string("b"));
  CHECK_EQ(dup.tokens[2], std::string("c"));
  // Lone surrogates: different keys for JSON.parse ("\ud800" vs "\udbff"), the same UTF-8 (U+FFFD) afterwards.
  auto lone = json::ParseVocabObject(R"({"\ud800": 0, "\udbff": 1, "\ud800": 2, "x\udc00y": 3})", "v");
  CHECK(!lone.present[0] && lone.present[1] && lone.present[2]);
  CHECK_EQ(lone.tokens[1], std::string("\xEF\xBF\xBD"));
  CHECK_EQ(lone.tokens[2], std::string("\xEF\xBF\xBD"));
  CHECK_EQ(lone.tokens[3], std::string("x\xEF\xBF\xBDy"));
  auto gap = json::ParseVocabObject(R"({"a": 0, "a": 2})", "model.vocab");
  CHECK_EQ(gap.tokens.size(), size_t{3});
  CHECK(gap.present[2] && !gap.present[0] && !gap.present[1]);
  CHECK_EQ(json::ParseVocabObject("{}", "model.vocab").tokens.size(), size_t{0});
  CHECK_EQ(json::ParseVocabObject(R"({"z": -0})", "v").tokens[0], std::string("z"));      // -0 is the integer 0
  CHECK_EQ(json::ParseVocabObject(R"({"y": 1e-400})", "v").tokens[0], std::string("y"));  // underflows to 0

  // The fast mode (no duplicate-key pass, used first by Tokenizer::Create) agrees where there are no duplicates and
  // throws where it cannot decide (the caller then parses with dedupe).
  std::string plain = R"({"a": 2, "\u00e9": 0, "c": 1e0, "\ud83d\ude00": 4})";
  auto fast = json::ParseVocabObject(plain, "v", /*dedupe=*/false), exact = json::ParseVocabObject(plain, "v");
  CHECK(fast.tokens == exact.tokens && fast.present == exact.present);
  CHECK(Has(ErrorOf([] { json::ParseVocabObject(R"({"a": 1, "b": 1, "a": 0})", "v", false); }), "ERR_TOKENIZER_SPEC"));
  CHECK(Has(ErrorOf([] { json::ParseVocabObject(R"({"a": "x", "a": 0})", "v", false); }), "ERR_TOKENIZER_SPEC"));

  auto err = [](const std::string& text) { return ErrorOf([&] { json::ParseVocabObject(text, "model.vocab"); }); };
  CHECK(Has(err(R"({"a": 0, "b": 0})"), R"(model.vocab["b"]: id 0 is used twice)"));
  CHECK(Has(err(R"({"Ġthe": -1})"), R"(model.vocab["Ġthe"]: expected a non-negative integer, got -1)"));
  CHECK(Has(err(R"({"a": 1.5})"), "expected a non-negative integer, got 1.5"));
  CHECK(Has(err(R"({"a": "1"})"), R"(expected a non-negative integer, got "1")"));
  CHECK(Has(err(R"({"a": 4294967281})"), "expected a non-negative integer"));
  CHECK(Has(err(R"({"a": 1e400})"), "expected a non-negative integer"));
  CHECK(Has(err(R"({"a": 4000000000})"), "far beyond"));
  CHECK(Has(err(R"({"a": 0)"), "ERR_TOKENIZER_SPEC invalid tokenizer: model.vocab: expected ',' or '}'"));
  CHECK(Has(err(R"(["a", 0])"), "expected an object at byte 0"));
  CHECK(Has(err(R"({"a": 0} 1)"), "after the object"));
  CHECK(Has(err(R"({"a": [0})"), "ERR_TOKENIZER_SPEC"));
  CHECK(Has(err(""), "expected an object"));
}

TEST(merges_accept_both_forms_and_name_the_bad_entry) {
  auto m = json::ParseMerges(R"([ "a b", ["c d", "e"], "\u0120 \u0120x", ["\ud83d\ude00", ""] ])", "model.merges");
  CHECK_EQ(m.size(), size_t{4});
  CHECK_EQ(std::string(m.Left(0)), std::string("a"));
  CHECK_EQ(std::string(m.Right(0)), std::string("b"));
  CHECK_EQ(std::string(m.Left(1)), std::string("c d"));
  CHECK_EQ(std::string(m.Right(1)), std::string("e"));
  CHECK_EQ(std::string(m.Left(2)), std::string("\xC4\xA0"));
  CHECK_EQ(std::string(m.Right(2)), std::string("\xC4\xA0x"));
  CHECK_EQ(std::string(m.Left(3)), std::string("\xF0\x9F\x98\x80"));
  CHECK_EQ(std::string(m.Right(3)), std::string());
  CHECK_EQ(json::ParseMerges(" [ ] ", "m").size(), size_t{0});
  auto err = [](const std::string& text) { return ErrorOf([&] { json::ParseMerges(text, "model.merges"); }); };
  CHECK(Has(err(R"(["a b", "a b", "a b", "Ġ"])"), R"(model.merges[3]: expected "left right", got the string "Ġ")"));
  CHECK(Has(err(R"(["a b c"])"), "model.merges[0]: expected \"left right\""));
  CHECK(Has(err(R"([["a"]])"), "model.merges[0]: expected \"left right\" or [left, right]"));
  CHECK(Has(err(R"([["a", "b", "c"]])"), "model.merges[0]"));
  CHECK(Has(err(R"(["a b", 7])"), "model.merges[1]"));
  CHECK(Has(err(R"(["a b")"), "ERR_TOKENIZER_SPEC"));
  CHECK(Has(err(R"({"a": 1})"), "expected an array"));
}

TEST(tiktoken_ranks_parse_both_formats) {
  auto v = json::ParseTiktokenRanks("IQ== 0\r\nIg== 1\n\nYWI= 3\n", false, "r.tiktoken");
  CHECK_EQ(v.tokens.size(), size_t{4});
  CHECK_EQ(v.tokens[0], std::string("!"));
  CHECK_EQ(v.tokens[1], std::string("\""));
  CHECK(!v.present[2]);
  CHECK_EQ(v.tokens[3], std::string("ab"));
  auto c = json::ParseTiktokenRanks("! 0 IQ== Ig==\n! 2  YWI=\n", true, "bpe_ranks");
  CHECK_EQ(c.tokens.size(), size_t{3});
  CHECK_EQ(c.tokens[2], std::string("ab"));
  auto lit = json::DecodeString(R"("! 0 IQ== Ig==\n! 5 YWI=")", "bpe_ranks");
  auto c2 = json::ParseTiktokenRanks(lit, true, "bpe_ranks");
  CHECK_EQ(c2.tokens.size(), size_t{6});
  CHECK(c2.present[5] && !c2.present[3]);
  auto err = [](const std::string& t, bool comp) { return ErrorOf([&] { json::ParseTiktokenRanks(t, comp, "r"); }); };
  CHECK(Has(err("IQ== 1\nIg== 0\n", false), "r line 2: rank 0 is out of order"));
  CHECK(Has(err("I*== 0\n", false), "r line 1: invalid base64"));
  CHECK(Has(err("IQ==\n", false), "expected \"<base64 token> <rank>\""));
  CHECK(Has(err("IQ== x\n", false), "expected"));
  CHECK(Has(err("IQ== 99999999\n", false), "huge gap"));
  CHECK(Has(err("! x IQ==\n", true), "expected \"<prefix> <rank> <base64>...\""));
}

TEST(tokenizer_loads_from_json_fields) {
  // A small byte-level tokenizer whose tokens need escapes, with merges as [left, right] pairs and as "left right"
  // strings: identical results.
  tt::ByteBpeBuilder builder;
  const uint32_t aa = builder.Merge("a", "a");
  builder.Merge("aa", "aa");
  builder.Merge("h", "e");
  builder.Merge("l", "l");
  const uint32_t hell = builder.Merge("he", "ll");
  const uint32_t quote = builder.Merge("\"", "\\");
  builder.Merge(" ", "w");
  auto ta = builder.Build();
  tt::Doc strings = builder.Document();
  strings.model = builder.Model(/*as_strings=*/true);
  auto tb = strings.Build();
  for (const char* text : {"hello world", "aaaa bbb", "héllo 🙂", "", "x\"\\y"})
    CHECK_EQ(tt::Ids(tb->Encode(text, false)), tt::Ids(ta->Encode(text, false)));
  CHECK_EQ(tt::Ids(ta->Encode("hell\"\\", false)), tt::Ids({hell, quote}));
  CHECK_EQ(tb->VocabSize(), ta->VocabSize());

  auto model = [&](const std::string& vocab, const std::string& merges, const std::string& extra = "") {
    tt::Doc d = builder.Document();
    d.model = "{\"type\":\"BPE\"" + extra + ",\"vocab\":" + vocab + ",\"merges\":" + merges + "}";
    return d;
  };
  const std::string vocab = tt::VocabJson(builder.vocab);
  CHECK(
      Has(ErrorOf([&] { model(vocab, R"([["zz", "a"]])").Build(); }), "model.merges[0]: \"zz\" is not in model.vocab"));
  // A vocabulary with a repeated key: the fast read sees a repeated token, and the vocabulary is read again exactly
  // (the last id wins, as in JSON.parse).
  const uint32_t late = builder.Size() + 5;
  std::string dup_vocab = vocab.substr(0, vocab.size() - 1) + ", \"Z\": 3, \"Z\": " + std::to_string(late) + "}";
  auto td = model(dup_vocab, "[]").Build();
  CHECK_EQ(td->TokenToId("Z").value_or(0), late);
  CHECK(!td->IdToToken(3).has_value() || *td->IdToToken(3) != "Z");
  CHECK_EQ(td->VocabSize(), late + 1);
  CHECK(Has(ErrorOf([&] { model(vocab, "[]", R"(,"unk_token":"nope")").Build(); }),
            "model.unk_token: \"nope\" is not in model.vocab"));
  (void)aa;
}

TEST(tokenizer_loads_from_tiktoken_ranks) {
  // "!" "\"" "a" "b" "ab" " ", a gap at 6, " a" (raw bytes), plus a special token; the byte-level token strings are
  // built on first use (Impl::Tokens), so check every API that reads them.
  const std::string ranks = "IQ== 0\nIg== 1\nYQ== 2\nYg== 3\nYWI= 4\nIA== 5\nIGE= 7\n";
  const std::string package = R"({"pat_str": ".+", "special_tokens": {"<|x|>": 8},)"
                              R"( "bpe_ranks": "! 0 IQ== Ig== YQ== Yg== YWI= IA==\n! 7 IGE="})";
  for (bool from_package : {false, true}) {
    TiktokenOptions o;
    if (!from_package) {
      o.pattern = ".+";
      o.special_tokens = std::vector<std::pair<std::string, uint32_t>>{{"<|x|>", 8}};
    }
    auto tok = Tokenizer::FromTiktoken(from_package ? package : ranks, o);
    CHECK_EQ(tok->VocabSize(), 9u);
    CHECK_EQ(tt::Ids(tok->Encode("ab<|x|> a!", false)), std::string("[4,8,7,0]"));
    CHECK_EQ(tok->Decode(std::vector<uint32_t>{4, 8, 7, 0}, false), std::string("ab<|x|> a!"));
    CHECK_EQ(tok->Decode(std::vector<uint32_t>{4, 8, 7}, true), std::string("ab a"));
    CHECK_EQ(tok->IdToToken(7).value_or("?"), std::string("\xC4\xA0"
                                                          "a"));  // "Ġa"
    CHECK(!tok->IdToToken(6).has_value());
    CHECK_EQ(tok->IdToToken(8).value_or("?"), std::string("<|x|>"));
    CHECK_EQ(tok->TokenToId("\xC4\xA0"
                            "a")
                 .value_or(99),
             7u);
    CHECK_EQ(tok->TokenToId("<|x|>").value_or(99), 8u);
    CHECK(tok->IsSpecial(8) && !tok->IsSpecial(7));
  }
  // A .tiktoken file needs its split pattern; a package file's fields are checked.
  CHECK(Has(ErrorOf([&] { Tokenizer::FromTiktoken(ranks, {}); }), "needs"));
  CHECK(Has(ErrorOf([&] { Tokenizer::FromTiktoken(R"({"pat_str": 1, "bpe_ranks": ""})", {}); }), "pat_str"));
  CHECK(Has(ErrorOf([&] { Tokenizer::FromTiktoken(R"({"pat_str": ".", "bpe_ranks": 5})", {}); }), "bpe_ranks"));
}

TEST(random_corruptions_throw_typed_errors_and_never_crash) {
  // Mutations of small valid inputs (flipped, deleted, inserted and duplicated bytes, cuts): every reader either
  // succeeds or throws ERR_TOKENIZER_SPEC.
  const std::string doc = R"({"a": [1, {"b": "x\u00e9\ud83d\ude00"}], "model": {"vocab": {"h": 0, "\u0120i": 1},)"
                          R"( "merges": ["h \u0120i", ["h", "i"]]}, "n": -1.5e3, "t": true, "f": null})";
  const std::string vocab = R"({"h": 0, "\u0120i": 1, "x": 2e0})";
  const std::string merges = R"(["h \u0120i", ["h", "i"]])";
  const std::string ranks = "IQ== 0\nIg== 1\nYWI= 3\n";
  const std::string lit = R"("! 0 IQ== Ig==\n! 3 YWI=")";
  std::mt19937_64 rng(99);
  const char kBytes[] = "{}[]\",:\\u0123456789abcdefe-+. \n\t\x01\x80\xff";
  size_t ok = 0, failed = 0;
  for (int i = 0; i < 40000; ++i) {
    int which = i % 5;
    std::string s = which == 0 ? doc : which == 1 ? vocab : which == 2 ? merges : which == 3 ? ranks : lit;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 5) {
        case 0: s[at] = kBytes[rng() % (sizeof kBytes - 1)]; break;
        case 1: s.erase(at, 1 + rng() % 3); break;
        case 2: s.insert(at, 1, kBytes[rng() % (sizeof kBytes - 1)]); break;
        case 3: s.insert(at, s.substr(at, rng() % 8)); break;
        default: s.resize(at); break;
      }
    }
    try {
      switch (which) {
        case 0: json::Locate(s, {{"model", "vocab"}, {"model", "merges"}, {"a"}}, "f"); break;
        case 1:
          json::ParseVocabObject(s, "v", true);
          json::ParseVocabObject(s, "v", false);
          break;
        case 2: json::ParseMerges(s, "m"); break;
        case 3: json::ParseTiktokenRanks(s, false, "r"); break;
        default: json::ParseTiktokenRanks(json::DecodeString(s, "b"), true, "b"); break;
      }
      ++ok;
    } catch (const tokmeter::Error& e) {
      if (e.code() != "ERR_TOKENIZER_SPEC") CHECK(false);
      ++failed;
    }
  }
  std::printf("  %zu accepted, %zu rejected\n", ok, failed);
  CHECK(ok > 100 && failed > 100);
}

int main() { return tt::RunAll(); }
