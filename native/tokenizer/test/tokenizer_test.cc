// Unit tests for the native tokenizer pipeline, component by component, on small synthetic tokenizers.
// Parity with the reference on real tokenizer files is tested from JS (test/tokenizer/parity.test.ts).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

#include "synthetic.h"
#include "tokenizer/models/model.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

using namespace tt;
using tokmeter::tokenizer::DecodeStream;

TEST(utf8_validation_and_lossy) {
  namespace u = tokmeter::tokenizer::utf8;
  CHECK(u::IsValid("abc \xC3\xA9 \xF0\x9F\x98\x80"));
  CHECK(!u::IsValid("\xC0\xAF"));          // overlong
  CHECK(!u::IsValid("\xED\xA0\x80"));      // surrogate
  CHECK(!u::IsValid("\xF4\x90\x80\x80"));  // > U+10FFFF
  CHECK(!u::IsValid("\xE2\x82"));          // truncated
  std::string out;
  u::AppendLossy(out,
                 "a\xE2\x82"
                 "b\xFF");
  CHECK_EQ(out, std::string("a\xEF\xBF\xBD"
                            "b\xEF\xBF\xBD"));
  CHECK_EQ(u::CompletePrefix("ab\xE2\x82"), size_t{2});
  CHECK_EQ(u::CompletePrefix("ab\xE2\x82\xAC"), size_t{5});
}

TEST(regex_translation_matches_oniguruma_classes) {
  using tokmeter::tokenizer::TranslateOnigPattern;
  std::string p = TranslateOnigPattern("\\s+(?!\\S)|[^\\s\\p{L}]");
  CHECK(p.find("\\x{180E}") == std::string::npos);
  CHECK(p.find("[^\\t\\n") != std::string::npos);
  CHECK_THROWS_CODE(TranslateOnigPattern("[^\\S]"), "ERR_TOKENIZER_SPEC");
}

TEST(byte_level_bpe_merges_by_rank) {
  ByteBpeBuilder b;
  uint32_t he = b.Merge("h", "e");
  uint32_t ll = b.Merge("l", "l");
  uint32_t hell = b.Merge("he", "ll");
  uint32_t sp_w = b.Merge(" ", "w");
  auto tok = b.Build();
  auto ids = tok->Encode("hello world", false);
  std::vector<uint32_t> want = {hell, b.Id("o"), sp_w, b.Id("o"), b.Id("r"), b.Id("l"), b.Id("d")};
  CHECK_EQ(Ids(ids), Ids(want));
  CHECK_EQ(tok->Count("hello world", false), want.size());
  CHECK_EQ(tok->Decode(ids, false), std::string("hello world"));
  (void)he;
  (void)ll;
}

// The per-thread word caches (bpe.cc Tokenize) are shared by every model used on the thread: results must not leak
// between models, nor change when a word's direct-mapped slot is taken over by another word.
TEST(bpe_word_caches_keep_models_apart) {
  ByteBpeBuilder b1, b2;
  b1.Merge("h", "e");
  b1.Merge("l", "l");
  b2.Merge("l", "l");
  b2.Merge("l", "o");
  b2.Merge("h", "e");
  b2.Merge("he", "ll");
  auto t1 = b1.Build(), t2 = b2.Build();
  const std::string w1 = Ids(t1->Encode("hello", false)), w2 = Ids(t2->Encode("hello", false));
  CHECK(w1 != w2);
  for (int i = 0; i < 3; ++i) {
    CHECK_EQ(Ids(t1->Encode("hello", false)), w1);
    CHECK_EQ(Ids(t2->Encode("hello", false)), w2);
    CHECK_EQ(t2->Count("hello", false), t2->Encode("hello", false).size());
  }
  // More distinct words than direct-mapped slots (32768), twice: evicted words must come back identical.
  std::mt19937 rng(7);
  std::vector<std::string> words;
  for (int i = 0; i < 40000; ++i) {
    std::string w;
    for (int k = 1 + static_cast<int>(rng() % 8); k > 0; --k) w += "hello"[rng() % 5];
    words.push_back(w);
  }
  std::vector<std::string> first;
  for (const auto& w : words) first.push_back(Ids(t2->Encode(w, false)));
  for (size_t i = 0; i < words.size(); ++i) {
    CHECK_EQ(Ids(t2->Encode(words[i], false)), first[i]);
    CHECK_EQ(t2->Count(words[i], false), t2->Encode(words[i], false).size());
  }
}

// Words over 64 bytes have their own per-thread cache (bpe.cc, long_cache): repeated, alternated with other long
// words of the same length, across two models and past the cache's byte bound, they must give what they gave first.
TEST(bpe_long_word_cache_is_exact) {
  ByteBpeBuilder b1, b2;
  b1.Merge("a", "b");
  b1.Merge("ab", "ab");
  b2.Merge("b", "a");
  b2.Merge("ba", "ba");
  b2.Merge("a", "a");
  auto t1 = b1.Build(), t2 = b2.Build();
  std::mt19937 rng(11);
  std::vector<std::string> words;
  for (int i = 0; i < 3000; ++i) {  // ~3000 x ~700 bytes: more than the cache keeps, so it is cleared on the way
    std::string w;
    for (int k = 65 + static_cast<int>(rng() % 1200); k > 0; --k) w += "ab"[rng() % 2];
    words.push_back(w);
  }
  words.push_back(std::string(5000, 'a'));
  words.push_back(std::string(5000, 'b'));
  std::vector<std::string> f1, f2;
  for (const auto& w : words) {
    f1.push_back(Ids(t1->Encode(w, false)));
    f2.push_back(Ids(t2->Encode(w, false)));
  }
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < words.size(); ++i) {
      CHECK_EQ(Ids(t1->Encode(words[i], false)), f1[i]);
      CHECK_EQ(Ids(t2->Encode(words[i], false)), f2[i]);
      CHECK_EQ(t1->Count(words[i], false), t1->Encode(words[i], false).size());
    }
  // A fresh thread (empty caches) agrees.
  std::thread([&] {
    for (size_t i = 0; i < words.size(); i += 97) CHECK_EQ(Ids(t2->Encode(words[i], false)), f2[i]);
  }).join();
}

TEST(big_alloc_tables) {
  tokmeter::tokenizer::BigVector<uint64_t> v(3 << 17);  // 3 MB: its own mapping
  for (size_t i = 0; i < v.size(); ++i) v[i] = i * 3;
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  CHECK_EQ(sum, uint64_t{3} * (v.size() * (v.size() - 1) / 2));
#if defined(__linux__)
  CHECK_EQ(reinterpret_cast<uintptr_t>(v.data()) % (2u << 20), uintptr_t{0});
#endif
  v.resize(5 << 17);  // regrowth moves into a new mapping and frees the old one
  CHECK_EQ(v[12345], uint64_t{12345 * 3});
  tokmeter::tokenizer::BigVector<uint32_t> small(10);  // below kBigBytes: operator new
  small[9] = 1;
  CHECK_EQ(small[9], 1u);
}

TEST(bpe_leftmost_on_equal_rank) {
  ByteBpeBuilder b;
  uint32_t aa = b.Merge("a", "a");
  auto tok = b.Build();
  CHECK_EQ(Ids(tok->Encode("aaa", false)), Ids({aa, b.Id("a")}));
  CHECK_EQ(Ids(tok->Encode("aaaa", false)), Ids({aa, aa}));
}

TEST(bpe_long_word_is_near_linear) {
  ByteBpeBuilder b;
  b.Merge("a", "b");
  b.Merge("ab", "ab");
  b.Merge("abab", "abab");
  auto tok = b.Build();
  std::string small, big;
  for (int i = 0; i < 20000; ++i) small += "ab";
  for (int i = 0; i < 200000; ++i) big += "ab";
  // Exact counts on one long word with no split points. The times are printed for a reader, not asserted: a busy
  // machine inflates single runs several-fold (bench/tokenize measures the scaling on pathological inputs).
  double ts = Seconds([&] { CHECK_EQ(tok->Count(small, false), size_t{5000}); });
  double tb = Seconds([&] { CHECK_EQ(tok->Count(big, false), size_t{50000}); });
  std::printf("  40 kB: %.4fs, 400 kB: %.4fs\n", ts, tb);
}

TEST(added_tokens_split_before_normalization) {
  ByteBpeBuilder b;
  b.Merge("h", "i");
  const uint32_t end = b.Size();
  b.doc.added.push_back(AddedJson(end, "<|end|>", true));
  b.doc.added.push_back(AddedJson(end + 1, "<|e|>", true, false, true, true));
  auto tok = b.Build();
  auto ids = tok->Encode("hi<|end|>hi", false);
  CHECK_EQ(Ids(ids), Ids({b.Id("hi"), end, b.Id("hi")}));
  // lstrip / rstrip absorb the surrounding spaces.
  auto ids2 = tok->Encode("hi  <|e|>  hi", false);
  CHECK_EQ(Ids(ids2), Ids({b.Id("hi"), end + 1, b.Id("hi")}));
  CHECK_EQ(tok->Decode(ids, true), std::string("hihi"));
  CHECK_EQ(tok->Decode(ids, false), std::string("hi<|end|>hi"));
  CHECK(tok->IsSpecial(end));
  CHECK_EQ(tok->TokenToId("<|end|>").value_or(0), end);
}

TEST(post_processor_prefix_suffix) {
  ByteBpeBuilder b;
  const uint32_t bos = b.Size();
  b.doc.added.push_back(AddedJson(bos, "<s>", true));
  b.doc.post_processor = R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},)"
                         R"({"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<s>","type_id":0}}]})";
  auto tok = b.Build();
  CHECK_EQ(Ids(tok->Encode("a", true)), Ids({bos, b.Id("a"), bos}));
  CHECK_EQ(tok->Count("a", true), size_t{3});
  CHECK_EQ(tok->Count("", true), size_t{2});
  CHECK_EQ(tok->Count("", false), size_t{0});
}

TEST(split_behaviors) {
  // Digits individual vs contiguous, through a WordPiece-free byte-level pipeline.
  ByteBpeBuilder b;
  auto with = [&](const char* behavior) {
    b.doc.pre_tokenizer =
        std::string(R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":"-"},)") +
        R"("behavior":")" + behavior + R"(","invert":false},)" +
        R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})";
    return b.Build();
  };
  uint32_t dash_a = b.Merge("-", "a");
  uint32_t a_dash = b.Merge("a", "-");
  auto tok = with("MergedWithNext");
  // MergedWithNext: "a-a-a" -> "a", "-a", "-a": the pair "a-" never sees a merge.
  CHECK_EQ(Ids(tok->Encode("a-a-a", false)), Ids({b.Id("a"), dash_a, dash_a}));
  auto tok2 = with("MergedWithPrevious");
  CHECK_EQ(Ids(tok2->Encode("a-a-a", false)), Ids({a_dash, a_dash, b.Id("a")}));
  auto tok3 = with("Removed");
  CHECK_EQ(Ids(tok3->Encode("a-a-a", false)), Ids({b.Id("a"), b.Id("a"), b.Id("a")}));
}

// SentencePiece-style BPE (Llama 2 layout): Prepend + Replace normalizers, byte fallback, the decoder chain.
static std::shared_ptr<const Tokenizer> SentencePiece() {
  std::vector<std::string> v = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    v.push_back(hex);
  }
  for (const char* t : {"\xE2\x96\x81", "h", "i", "\xE2\x96\x81h", "\xE2\x96\x81hi", "\xC3\xA9"}) v.push_back(t);
  Doc d;
  d.model = R"({"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,)"
            R"("end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,"vocab":)" +
            VocabJson(v) + R"(,"merges":["▁ h","▁h i"]})";
  d.normalizer = R"({"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},)"
                 R"({"type":"Replace","pattern":{"String":" "},"content":"▁"}]})";
  d.decoder = R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},)"
              R"({"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})";
  d.added = {AddedJson(0, "<unk>", true), AddedJson(1, "<s>", true), AddedJson(2, "</s>", true)};
  d.post_processor = R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},)"
                     R"({"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[1],)"
                     R"("tokens":["<s>"]}}})";
  return d.Build();
}

// A BPE model without a pre-tokenizer merges the whole text as one word; when no token has U+2581 right after another
// character it is merged piece by piece, cut in front of each U+2581 that follows another character. The result must
// be the whole word's in both cases, and a token that joins a character to a following U+2581 must keep the cut off.
std::shared_ptr<const Tokenizer> MetaspaceBpe(const std::vector<std::string>& vocab, const std::string& merges) {
  Doc d;
  d.model = R"({"type":"BPE","unk_token":"<unk>","fuse_unk":true,"vocab":)" + VocabJson(vocab) + R"(,"merges":)" +
            merges + "}";
  return d.Build();
}

// Unigram words go through per-thread caches tagged with the model: two models that segment the same words
// differently, used in turn on one thread, must each keep their own answers, for short and long words alike.
TEST(unigram_word_caches_belong_to_their_model) {
  auto unigram = [](const char* ab_score) {
    Doc d;
    d.model =
        std::string(R"({"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["a",-1],["b",-1],["ab",)") + ab_score + "]]}";
    return d.Build();
  };
  auto joined = unigram("-1");  // "ab" is one piece
  auto split = unigram("-10");  // "a" + "b" scores higher
  std::string long_word;
  for (int i = 0; i < 40; ++i) long_word += "ab";  // 80 bytes: past the direct-mapped table's keys
  for (int round = 0; round < 3; ++round) {
    CHECK_EQ(Ids(joined->Encode("ab", false)), Ids({3}));
    CHECK_EQ(Ids(split->Encode("ab", false)), Ids({1, 2}));
    CHECK_EQ(joined->Count(long_word, false), size_t{40});
    CHECK_EQ(split->Count(long_word, false), size_t{80});
    CHECK_EQ(Ids(joined->Encode("abx", false)), Ids({3, 0}));
    CHECK_EQ(Ids(split->Encode("abx", false)), Ids({1, 2, 0}));
  }
}

TEST(metaspace_words_merge_as_the_whole_text) {
  const std::string m = "\xE2\x96\x81";  // ▁
  // ▁ a b c ▁a ▁ab bc <unk>; "▁a b" ranks before "b c".
  auto tok = MetaspaceBpe({m, "a", "b", "c", m + "a", m + "ab", "bc", "<unk>"}, R"(["▁ a","▁a b","b c"])");
  // ▁ab | ▁abc | ▁▁c; x and y are unknown, fused within their piece only (▁ is a token).
  CHECK_EQ(Ids(tok->Encode(m + "ab" + m + "abc" + m + m + "c", false)), Ids({5, 5, 3, 0, 0, 3}));
  CHECK_EQ(Ids(tok->Encode("xy" + m + "xyab", false)), Ids({7, 0, 7, 1, 2}));
  CHECK_EQ(Ids(tok->Encode("bc" + m + "bc", false)), Ids({6, 0, 6}));
  CHECK_EQ(tok->Count(m + "ab" + m + "abc" + m + m + "c", false), size_t{6});
}

TEST(metaspace_cuts_stay_off_with_ignore_merges) {
  // With ignore_merges the reference looks the whole word up first: "▁ab" is a token, but inside "x▁ab" it is not a
  // word of its own, so the merges give ▁a b. Cutting in front of ▁ would look "▁ab" up whole.
  const std::string m = "\xE2\x96\x81";
  Doc d;
  d.model = R"({"type":"BPE","unk_token":"<unk>","ignore_merges":true,"vocab":)" +
            VocabJson({m, "a", "b", "x", m + "a", m + "ab", "<unk>"}) + R"(,"merges":["▁ a"]})";
  auto tok = d.Build();
  CHECK_EQ(Ids(tok->Encode("x" + m + "ab", false)), Ids({3, 4, 2}));
  CHECK_EQ(Ids(tok->Encode(m + "ab", false)), Ids({5}));
}

TEST(metaspace_cuts_stay_off_when_a_token_joins_at_the_space) {
  const std::string m = "\xE2\x96\x81";
  // "c▁" and "c▁d" join a character to the following ▁: the word must merge across it.
  auto tok = MetaspaceBpe({m, "a", "c", "d", "c" + m, "c" + m + "d", "<unk>"}, R"(["c ▁","c▁ d"])");
  CHECK_EQ(Ids(tok->Encode("ac" + m + "d", false)), Ids({1, 5}));
  CHECK_EQ(Ids(tok->Encode(m + "ac" + m + "d" + m + "a", false)), Ids({0, 1, 5, 0, 1}));
}

TEST(sentencepiece_byte_fallback) {
  auto tok = SentencePiece();
  // "hi hé€": ▁hi ▁h é then € by byte fallback (E2 82 AC)
  auto ids = tok->Encode("hi h\xC3\xA9\xE2\x82\xAC", true);
  std::vector<uint32_t> want = {1, 263, 262, 264, 3 + 0xE2, 3 + 0x82, 3 + 0xAC};
  CHECK_EQ(Ids(ids), Ids(want));
  CHECK_EQ(tok->Decode(ids, true), std::string("hi h\xC3\xA9\xE2\x82\xAC"));
  // Added tokens in the middle: each piece is normalized on its own (Prepend applies per piece).
  auto ids2 = tok->Encode("hi</s>hi", false);
  CHECK_EQ(Ids(ids2), Ids({263, 2, 263}));
}

TEST(decode_stream_never_splits_characters) {
  auto tok = SentencePiece();
  auto ids = tok->Encode("hi h\xC3\xA9\xE2\x82\xAC hi", false);
  DecodeStream ds(tok, false);
  std::string all;
  for (uint32_t id : ids) {
    std::string piece = ds.Step(id);
    CHECK(tokmeter::tokenizer::utf8::IsValid(piece));
    all += piece;
  }
  all += ds.Flush();
  CHECK_EQ(all, tok->Decode(ids, false));

  ByteBpeBuilder b;
  auto bl = b.Build();
  std::string text = "a\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB z\xC3\xA9";
  auto ids3 = bl->Encode(text, false);
  DecodeStream ds2(bl, false);
  std::string got;
  size_t empty_steps = 0;
  for (uint32_t id : ids3) {
    std::string piece = ds2.Step(id);
    if (piece.empty()) ++empty_steps;
    CHECK(tokmeter::tokenizer::utf8::IsValid(piece));
    got += piece;
  }
  got += ds2.Flush();
  CHECK_EQ(got, text);
  CHECK(empty_steps > 0);
  CHECK_THROWS_CODE(ds2.Step(1u << 30), "ERR_INVALID_ARGUMENT");
}

TEST(decode_stream_survives_ids_that_change_emitted_text) {
  // SentencePiece byte fallback: "7" (byte 0x37) is emitted as soon as it is decoded; once an invalid byte (0xD9)
  // joins its byte group, Decode renders both as U+FFFD. The stream cannot take "7" back: it must not fail, must
  // stay valid UTF-8, and must emit the later text.
  auto tok = SentencePiece();
  uint32_t seven = 3 + 0x37, bad = 3 + 0xD9;
  auto hi = tok->Encode("hi", false);
  for (bool skip : {false, true}) {
    DecodeStream ds(tok, skip);
    std::string got = ds.Step(hi[0]);
    got += ds.Step(seven);
    CHECK_EQ(got, std::string("hi7"));
    CHECK_EQ(ds.Step(bad), std::string());  // ends inside a character: held back
    std::string later = ds.Step(1);         // <s>: shown unless skipped
    for (uint32_t id : hi) later += ds.Step(id);
    later += ds.Flush();
    CHECK(tokmeter::tokenizer::utf8::IsValid(later));
    CHECK(later.find("hi") != std::string::npos);
    CHECK_EQ(later.compare(0, 3, "\xEF\xBF\xBD"), 0);  // the invalid byte, as U+FFFD
  }
  // Flush after the same change, with nothing else to follow.
  DecodeStream ds(tok, false);
  CHECK_EQ(ds.Step(seven), std::string("7"));
  CHECK_EQ(ds.Step(bad), std::string());
  CHECK_EQ(ds.Flush(), std::string("\xEF\xBF\xBD"));
}

TEST(wordpiece_and_bert) {
  Doc d;
  d.model = R"({"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",)"
            R"("max_input_chars_per_word":100,"vocab":)" +
            VocabJson({"[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", "!", "##s"}) + "}";
  d.normalizer = R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,)"
                 R"("lowercase":true})";
  d.pre_tokenizer = R"({"type":"BertPreTokenizer"})";
  d.decoder = R"({"type":"WordPiece","prefix":"##","cleanup":true})";
  d.added = {AddedJson(1, "[CLS]", true), AddedJson(2, "[SEP]", true)};
  d.post_processor = R"({"type":"BertProcessing","sep":["[SEP]",2],"cls":["[CLS]",1]})";
  auto tok = d.Build();
  auto ids = tok->Encode("UnAffable HELLO! xyz", true);
  CHECK_EQ(Ids(ids), Ids({1, 3, 4, 5, 6, 7, 0, 2}));
  CHECK_EQ(tok->Decode(ids, true), std::string("unaffable hello! [UNK]"));
}

TEST(nfc_and_lowercase) {
  ByteBpeBuilder b;
  b.doc.normalizer = R"({"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Lowercase"}]})";
  auto tok = b.Build();
  // "E" + combining acute -> "É" -> "é"; İ lowercases to i + U+0307.
  CHECK_EQ(tok->Decode(tok->Encode("E\xCC\x81", false), false), std::string("\xC3\xA9"));
  CHECK_EQ(tok->Decode(tok->Encode("\xC4\xB0", false), false), std::string("i\xCC\x87"));
}

TEST(invalid_input_and_spec_errors) {
  ByteBpeBuilder b;
  auto tok = b.Build();
  CHECK_THROWS_CODE(tok->Encode("\xFF", false), "ERR_INVALID_ARGUMENT");
  CHECK_THROWS_CODE(tok->Decode(std::vector<uint32_t>{99999}, false), "ERR_INVALID_ARGUMENT");
  Doc bad = b.Document();
  bad.pre_tokenizer = R"({"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated","invert":false})";
  CHECK_THROWS_CODE(bad.Build(), "ERR_TOKENIZER_SPEC");
  Doc uni = b.Document();
  uni.pre_tokenizer = "null";
  uni.model = R"({"type":"Unigram","vocab":{"a":0}})";  // a Unigram vocabulary is a [piece, score] list
  CHECK_THROWS_CODE(uni.Build(), "ERR_TOKENIZER_SPEC");
}

namespace {
std::shared_ptr<const Tokenizer> Unigram(const std::vector<std::pair<std::string, double>>& pieces,
                                         std::optional<uint32_t> unk, bool byte_fallback) {
  std::string v = "[";
  for (size_t i = 0; i < pieces.size(); ++i) {
    char score[40];
    std::snprintf(score, sizeof score, "%.17g", pieces[i].second);
    v += (i ? ",[" : "[") + J(pieces[i].first) + "," + score + "]";
  }
  Doc d;
  d.model = R"({"type":"Unigram","unk_id":)" + (unk ? std::to_string(*unk) : std::string("null")) + R"(,"vocab":)" + v +
            R"(],"byte_fallback":)" + (byte_fallback ? "true" : "false") + "}";
  return d.Build();
}
}  // namespace

TEST(unigram_scores_are_parsed_as_the_reference_parses_them) {
  // (text in the file, JSON.parse bits, serde_json default-parser bits), from a Unigram file the reference trained.
  struct Case {
    const char* text;
    uint64_t correct, reference;
  } cases[] = {{"-7.4632218368602325", 0xc01dda56d3406e55ULL, 0xc01dda56d3406e54ULL},
               {"-7.5307450874902075", 0xc01e1f7ba3e521e5ULL, 0xc01e1f7ba3e521e6ULL},
               {"-7.6892591112144135", 0xc01ec1cd23f48b32ULL, 0xc01ec1cd23f48b31ULL}};
  for (const auto& c : cases) {
    double v = std::strtod(c.text, nullptr);
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    CHECK_EQ(bits, c.correct);
    double got = tokmeter::tokenizer::ReferenceScore(v);
    std::memcpy(&bits, &got, 8);
    CHECK_EQ(bits, c.reference);
  }
  // Short scores are exact either way.
  CHECK_EQ(tokmeter::tokenizer::ReferenceScore(-4.5), -4.5);
  CHECK_EQ(tokmeter::tokenizer::ReferenceScore(-0.25), -0.25);
  CHECK_EQ(tokmeter::tokenizer::ReferenceScore(0.0), 0.0);
}

TEST(unigram_viterbi_and_unk_fusing) {
  // The reference's own doc example (tokenizers models/unigram/model.rs, Unigram::encode).
  auto tok = Unigram(
      {{"<unk>", 0}, {"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"cd", 1}, {"ab", 2}, {"abc", 5}, {"abcd", 10}}, 0, false);
  // abcd | a | cd | xx (two unknown characters fused into one unk)
  CHECK_EQ(Ids(tok->Encode("abcdacdxx", false)), Ids({8, 1, 5, 0}));
  CHECK_EQ(Ids(tok->Encode("", false)), Ids({}));
  // A lone unknown character between pieces, and a multi-byte unknown character.
  CHECK_EQ(Ids(tok->Encode("ax\xC3\xA9"
                           "b",
                           false)),
           Ids({1, 0, 2}));
}

TEST(unigram_ties_keep_the_path_found_first) {
  // ab: "ab" (-2, from offset 0) is found before a+b (-2, last piece from offset 1): ab wins.
  // abc: a+bc (-3, last piece from offset 1) is found before ab+c (-3, from offset 2): a+bc wins.
  auto tok = Unigram({{"<unk>", 0}, {"a", -1}, {"b", -1}, {"c", -1}, {"ab", -2}, {"bc", -2}}, 0, false);
  CHECK_EQ(Ids(tok->Encode("ab", false)), Ids({4}));
  CHECK_EQ(Ids(tok->Encode("abc", false)), Ids({1, 5}));
  // A strictly better split still wins.
  auto tok2 = Unigram({{"<unk>", 0}, {"a", -1}, {"b", -1}, {"c", -1}, {"ab", -2.5}, {"bc", -1.5}}, 0, false);
  CHECK_EQ(Ids(tok2->Encode("abc", false)), Ids({1, 5}));
  CHECK_EQ(Ids(tok2->Encode("ab", false)), Ids({1, 2}));
}

TEST(unigram_segmentation_is_optimal_on_random_strings) {
  // Every string of 1-3 letters over {a, b, c} is a piece with a random quarter-integer score (sums stay exact, and
  // many segmentations tie); the chosen pieces must spell the input and reach the best total an exhaustive search
  // over all segmentations finds.
  std::mt19937_64 rng(99);
  std::vector<std::pair<std::string, double>> pieces = {{"<unk>", 0}};
  for (int len = 1; len <= 3; ++len) {
    int total = 1;
    for (int i = 0; i < len; ++i) total *= 3;
    for (int k = 0; k < total; ++k) {
      std::string p;
      for (int i = 0, x = k; i < len; ++i, x /= 3) p += static_cast<char>('a' + x % 3);
      pieces.emplace_back(p, -0.25 * static_cast<double>(1 + rng() % 12));
    }
  }
  auto tok = Unigram(pieces, 0, false);
  std::function<double(std::string_view)> best = [&](std::string_view w) {
    if (w.empty()) return 0.0;
    double b = -1e300;
    for (size_t n = 1; n <= 3 && n <= w.size(); ++n)
      for (const auto& [p, sc] : pieces)
        if (p == w.substr(0, n)) b = std::max(b, sc + best(w.substr(n)));
    return b;
  };
  for (int iter = 0; iter < 300; ++iter) {
    std::string w;
    for (size_t i = 0, n = 1 + rng() % 10; i < n; ++i) w += static_cast<char>('a' + rng() % 3);
    auto ids = tok->Encode(w, false);
    std::string spelled;
    double total = 0;
    for (uint32_t id : ids) {
      spelled += pieces[id].first;
      total += pieces[id].second;
    }
    CHECK_EQ(spelled, w);
    CHECK_EQ(total, best(w));
  }
}

TEST(unigram_byte_fallback_duplicates_and_missing_unk) {
  std::vector<std::pair<std::string, double>> p = {
      {"<unk>", 0}, {"a", -1}, {"<0xE2>", -5}, {"<0x82>", -5}, {"<0xAC>", -5}};
  auto tok = Unigram(p, 0, true);
  // "€" (E2 82 AC) is unknown: its bytes; "€€" is one fused unk run: six byte pieces.
  CHECK_EQ(Ids(tok->Encode("a\xE2\x82\xAC", false)), Ids({1, 2, 3, 4}));
  CHECK_EQ(Ids(tok->Encode("\xE2\x82\xAC\xE2\x82\xAC"
                           "a",
                           false)),
           Ids({2, 3, 4, 2, 3, 4, 1}));
  // "é" (C3 A9) has no byte pieces: unk.
  CHECK_EQ(Ids(tok->Encode("\xC3\xA9"
                           "a",
                           false)),
           Ids({0, 1}));
  // Without byte_fallback the bytes are never used.
  CHECK_EQ(Ids(Unigram(p, 0, false)->Encode("a\xE2\x82\xAC", false)), Ids({1, 0}));
  // No unk_id: fine while every character is covered, an error otherwise.
  auto no_unk = Unigram({{"a", -1}, {"b", -1}}, std::nullopt, false);
  CHECK_EQ(Ids(no_unk->Encode("ab", false)), Ids({0, 1}));
  CHECK_THROWS_CODE(no_unk->Encode("abc", false), "ERR_INVALID_ARGUMENT");
  // A duplicated piece resolves to its later id (and that id's score).
  auto dup = Unigram({{"<unk>", 0}, {"a", -1}, {"b", -1}, {"a", -1}}, 0, false);
  CHECK_EQ(Ids(dup->Encode("aba", false)), Ids({3, 2, 3}));
  // Scores must be finite.
  Doc inf;
  inf.model = R"({"type":"Unigram","unk_id":null,"vocab":[["a",1e999]]})";
  CHECK_THROWS_CODE(inf.Build(), "ERR_TOKENIZER_SPEC");
}

namespace {
std::string Base64(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}
}  // namespace

TEST(tiktoken_merges_from_ranks) {
  std::string ranks;
  uint32_t rank = 0;
  for (int b = 0; b < 256; ++b)
    ranks += Base64(std::string(1, static_cast<char>(b))) + " " + std::to_string(rank++) + "\n";
  for (const char* t : {"ab", "bc", "abc", "cd"}) ranks += Base64(t) + " " + std::to_string(rank++) + "\n";
  TiktokenOptions o;
  o.pattern = "\\S+|\\s+";
  auto tok = Tokenizer::FromTiktoken(ranks, o);
  // abcd: pairs ab(256) bc(257) cd(259) -> ab first, then (ab,c)=abc(258), then d.
  CHECK_EQ(Ids(tok->Encode("abcd", false)), Ids({258, 'd'}));
  CHECK_EQ(tok->Decode(tok->Encode("abcd \xE2\x82\xAC", false), false), std::string("abcd \xE2\x82\xAC"));
}

TEST(merges_as_strings_resolve_like_pairs) {
  ByteBpeBuilder b;
  b.Merge("h", "e");
  b.Merge("l", "l");
  b.Merge("he", "ll");
  auto by_pairs = b.Build();
  Doc strings = b.Document();
  strings.model = b.Model(/*as_strings=*/true);
  CHECK_EQ(Ids(strings.Build()->Encode("hello hell", false)), Ids(by_pairs->Encode("hello hell", false)));
  Doc bad = b.Document();
  bad.model = R"({"type":"BPE","vocab":{"h":0,"e":1,"he":2},"merges":["h e","x y"]})";
  CHECK_THROWS_CODE(bad.Build(), "ERR_TOKENIZER_SPEC");
  bad.model = R"({"type":"BPE","vocab":{"h":0,"e":1,"he":2},"merges":["h e f"]})";
  CHECK_THROWS_CODE(bad.Build(), "ERR_TOKENIZER_SPEC");
}

int main() { return tt::RunAll(); }
