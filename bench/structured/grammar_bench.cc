// Structured-output bench: compiles each JSON Schema of a corpus over a real tokenizer's vocabulary and samples
// documents by choosing uniformly among the allowed tokens (the grammar does all the work), single-threaded.
//
//   grammar_bench --tokenizer tokenizer.json --out docs.jsonl [--samples 2] [--max-tokens 600] [--limit N]
//                 [--stride K] [--seed 1] DIR...
//
// Writes one JSON line per schema to --out ({"file","compile_us","error"?,"code"?,"keyword"?,"pointer"?,
// "docs":[{"text","finished","tokens"}]}) and a JSON summary to stdout: compile time p50/p99, mask time per token
// p50/p99/max (microseconds), coverage, refusals by code and keyword. Validation of the documents is the driver's
// (bench/structured/run.ts, with ajv).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "grammar/errors.h"
#include "grammar/grammar.h"
#include "grammar/json_value.h"
#include "grammar/matcher.h"
#include "grammar/vocabulary.h"

using namespace tokmeter::grammar;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<const Vocabulary> LoadVocabulary(const std::string& path) {
  const json::Value doc = json::Parse(ReadFile(path), 64);
  const json::Value* model = doc.Find("model");
  const json::Value* vocab = model ? model->Find("vocab") : nullptr;
  if (!vocab || !vocab->isObject()) throw std::runtime_error("tokenizer.json has no model.vocab object");
  VocabularyInput in;
  const json::Value* decoder = doc.Find("decoder");
  const std::string text = decoder ? json::Serialize(*decoder) : "";
  in.kind = text.find("ByteLevel") != std::string::npos ? VocabKind::kByteLevel
            : text.find("ByteFallback") != std::string::npos || text.find("\xE2\x96\x81") != std::string::npos
                ? VocabKind::kSentencePiece
                : VocabKind::kPlain;
  auto put = [&](size_t id, const std::string& token, bool special) {
    if (id >= in.tokens.size()) in.tokens.resize(id + 1), in.special.resize(id + 1, false);
    in.tokens[id] = token;
    in.special[id] = special;
  };
  for (const auto& [token, id] : vocab->members) put(static_cast<size_t>(id.number), token, false);
  if (const json::Value* added = doc.Find("added_tokens"); added && added->isArray()) {
    for (const json::Value& t : added->items) {
      const json::Value* id = t.Find("id");
      const json::Value* content = t.Find("content");
      const json::Value* special = t.Find("special");
      if (!id || !content) continue;
      put(static_cast<size_t>(id->number), content->text, special && special->boolean);
      for (const char* eos : {"<|end_of_text|>", "<|eot_id|>", "</s>", "<|endoftext|>", "<|im_end|>"}) {
        if (content->text == eos) in.eos.push_back(static_cast<uint32_t>(id->number));
      }
    }
  }
  return Vocabulary::Build(in);
}

// This thread's CPU time: on a shared machine wall time also counts the time the thread waited for a core.
double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer, out;
  size_t samples = 2, maxTokens = 600, limit = SIZE_MAX, stride = 1;
  uint64_t seed = 1;
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--tokenizer")
      tokenizer = next();
    else if (a == "--out")
      out = next();
    else if (a == "--samples")
      samples = std::stoul(next());
    else if (a == "--max-tokens")
      maxTokens = std::stoul(next());
    else if (a == "--limit")
      limit = std::stoul(next());
    else if (a == "--stride")
      stride = std::max<size_t>(1, std::stoul(next()));
    else if (a == "--seed")
      seed = std::stoull(next());
    else
      dirs.push_back(a);
  }
  if (tokenizer.empty() || out.empty() || dirs.empty()) {
    std::fprintf(stderr, "usage: grammar_bench --tokenizer tokenizer.json --out docs.jsonl [options] DIR...\n");
    return 2;
  }
  const auto tv = Clock::now();
  auto vocab = LoadVocabulary(tokenizer);
  const double vocabMs = std::chrono::duration<double, std::milli>(Clock::now() - tv).count();
  std::vector<fs::path> files;
  for (const auto& d : dirs) {
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (stride > 1) {  // every stride-th schema: a sample of every folder
    std::vector<fs::path> picked;
    for (size_t i = 0; i < files.size(); i += stride) picked.push_back(files[i]);
    files = std::move(picked);
  }
  if (files.size() > limit) files.resize(limit);

  std::ofstream os(out);
  std::vector<double> compileUs, maskUs, maskCpuUs;
  std::map<std::string, size_t> refusals;
  size_t compiled = 0, refused = 0, docs = 0, finished = 0, tokens = 0;
  std::vector<uint64_t> mask((vocab->size() + 63) / 64);
  std::mt19937_64 rng(seed);
  for (const fs::path& file : files) {
    const std::string spec = R"({"type":"json_schema","schema":)" + ReadFile(file) + "}";
    const std::string name = file.parent_path().filename().string() + "/" + file.filename().string();
    std::string line = "{\"file\":" + json::Quote(name);
    const auto t0 = Clock::now();
    std::shared_ptr<const Grammar> g;
    try {
      g = Grammar::Compile(spec, vocab);
    } catch (const GrammarError& e) {
      ++refused;
      ++refusals[e.code() + " " + e.keyword()];
      line += ",\"code\":" + json::Quote(e.code()) + ",\"keyword\":" + json::Quote(e.keyword()) +
              ",\"pointer\":" + json::Quote(e.pointer()) + ",\"error\":" + json::Quote(e.what()) + "}\n";
      os << line;
      continue;
    }
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    compileUs.push_back(us);
    ++compiled;
    line += ",\"compile_us\":" + std::to_string(us) + ",\"docs\":[";
    for (size_t s = 0; s < samples; ++s) {
      Matcher m(g);
      std::string text;
      size_t n = 0;
      bool done = false;
      for (; n < maxTokens; ++n) {
        const auto t1 = Clock::now();
        const double c1 = ThreadCpuUs();
        m.FillMask(mask);
        maskCpuUs.push_back(ThreadCpuUs() - c1);
        maskUs.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t1).count());
        size_t count = 0;
        for (uint64_t w : mask) count += static_cast<size_t>(__builtin_popcountll(w));
        if (count == 0) break;
        size_t pick = rng() % count;
        uint32_t token = 0;
        for (size_t w = 0; w < mask.size(); ++w) {
          const size_t c = static_cast<size_t>(__builtin_popcountll(mask[w]));
          if (pick >= c) {
            pick -= c;
            continue;
          }
          uint64_t bits = mask[w];
          for (size_t k = 0; k < pick; ++k) bits &= bits - 1;
          token = static_cast<uint32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
          break;
        }
        if (!m.Accept(token)) {
          std::fprintf(stderr, "%s: the matcher refused a token its mask allowed\n", name.c_str());
          return 1;
        }
        if (m.terminated()) {
          done = true;
          ++n;
          break;
        }
        text += vocab->bytes(token);
      }
      // An unfinished document may end inside a UTF-8 character: cut it at the last whole one.
      size_t cut = text.size();
      while (cut > 0 && (static_cast<unsigned char>(text[cut - 1]) & 0xC0) == 0x80) --cut;
      if (cut > 0 && static_cast<unsigned char>(text[cut - 1]) >= 0xC0) {
        const unsigned char lead = static_cast<unsigned char>(text[cut - 1]);
        const size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (text.size() - (cut - 1) < len) text.resize(cut - 1);
      }
      ++docs;
      finished += done;
      tokens += n;
      line += std::string(s ? "," : "") + "{\"finished\":" + (done ? "true" : "false") +
              ",\"tokens\":" + std::to_string(n) + ",\"text\":" + json::Quote(text) + "}";
    }
    line += "]}\n";
    os << line;
  }
  std::printf("{\"schemas\":%zu,\"compiled\":%zu,\"refused\":%zu,\"vocab\":%zu,\"vocab_ms\":%.1f,", files.size(),
              compiled, refused, vocab->size(), vocabMs);
  std::printf("\"compile_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},", Percentile(compileUs, 0.5),
              Percentile(compileUs, 0.99), Percentile(compileUs, 1.0));
  std::printf("\"mask_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"count\":%zu},", Percentile(maskUs, 0.5),
              Percentile(maskUs, 0.99), Percentile(maskUs, 1.0), maskUs.size());
  std::printf("\"mask_cpu_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},", Percentile(maskCpuUs, 0.5),
              Percentile(maskCpuUs, 0.99), Percentile(maskCpuUs, 1.0));
  std::printf("\"docs\":%zu,\"finished\":%zu,\"tokens\":%zu,\"refusals\":{", docs, finished, tokens);
  bool first = true;
  for (const auto& [k, v] : refusals) {
    std::printf("%s%s:%zu", first ? "" : ",", json::Quote(k).c_str(), v);
    first = false;
  }
  std::printf("}}\n");
  return 0;
}
