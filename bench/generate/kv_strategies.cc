// kv_strategies — measures how to carry the KV cache from one decode step to the next, on a real model folder:
//   pingpong : tokmeter's engine (CausalLm): present written by ORT into a preallocated buffer bound with IO binding,
//              which becomes the next step's past (no copy outside Run, no allocation per step)
//   ortalloc : ORT allocates present each step; that Ort::Value is fed back as the next past (no copy, but
//              2 x layers allocations per step from ORT's arena, growing with the context)
//   copyback : ORT allocates present; it is copied into one cache buffer that is fed as past (what a binding that
//              copies outputs out of ORT pays; onnxruntime-node additionally copies into JS)
// Build and run (see bench/generate/README.md):
//   ORT=$(node scripts/fetch-onnxruntime.mjs --print-dir)
//   g++ -O2 -std=c++20 -DORT_API_MANUAL_INIT -Inative -I$ORT/include bench/generate/kv_strategies.cc \
//     native/engine/{causal_lm,session,ort_runtime,tensor,graph_spec,model_files,kv_cache}.cc -ldl -lpthread \
//     -o /tmp/kv_strategies
//   /tmp/kv_strategies MODEL_DIR LIB_ORT THREADS CONTEXT LAYERS KV_HEADS HEAD_DIM VOCAB STEPS PROMPT [ROUNDS]
#include <onnxruntime_cxx_api.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/causal_lm.h"
#include "engine/ort_runtime.h"

using namespace tokmeter::engine;
using Clock = std::chrono::steady_clock;

static double Ms(Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); }

int main(int argc, char** argv) {
  if (argc < 11) {
    std::fprintf(stderr, "usage: kv_strategies DIR LIBORT THREADS CONTEXT LAYERS KV_HEADS HEAD_DIM VOCAB STEPS PROMPT\n");
    return 2;
  }
  const std::string dir = argv[1];
  OrtRuntime::Load(argv[2]);
  const int threads = std::stoi(argv[3]);
  ModelConfig config;
  config.contextLength = std::stoll(argv[4]);
  config.numLayers = std::stoll(argv[5]);
  config.numKvHeads = std::stoll(argv[6]);
  config.headDim = std::stoll(argv[7]);
  config.vocabSize = std::stoll(argv[8]);
  const int steps = std::stoi(argv[9]);
  const size_t prompt_len = std::stoul(argv[10]);
  LoadOptions lo{dir, "fp32", threads};
  auto lm = CausalLm::Load(lo, config);
  std::vector<uint32_t> prompt(prompt_len);
  for (size_t i = 0; i < prompt_len; ++i) prompt[i] = static_cast<uint32_t>(1 + (i * 7919) % 30000);
  std::vector<float> logits(lm->vocabSize());

  // Rounds alternate the strategies; each prints its time per round (the machine is shared: compare minima).
  const int rounds = argc > 11 ? std::stoi(argv[11]) : 3;
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(threads);
  so.SetInterOpNumThreads(1);
  Ort::Session session(OrtRuntime::Get().env(), (dir + "/onnx/model.onnx").c_str(), so);
  for (int round = 0; round < rounds; ++round) {
  // 1. pingpong (the engine)
  {
    auto seq = lm->NewSequence(prompt_len + steps + 2);
    lm->Forward(*seq, prompt, logits);
    uint32_t t = 5;
    lm->Forward(*seq, std::span<const uint32_t>(&t, 1), logits);  // warm-up
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) lm->Forward(*seq, std::span<const uint32_t>(&t, 1), logits);
    std::printf("pingpong  prompt %zu: %.3f ms/step\n", prompt_len, Ms(start) / steps);
  }

  // 2./3. plain Run with ORT-allocated outputs
  const auto& spec = lm->spec();
  auto mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<Ort::Value> past;
    std::vector<std::vector<float>> copies(spec.pastNames.size());
    std::vector<std::string> in_names = {"input_ids", "attention_mask", "position_ids"};
    for (auto& n : spec.pastNames) in_names.push_back(n);
    std::vector<std::string> out_names = {"logits"};
    for (auto& n : spec.presentNames) out_names.push_back(n);
    std::vector<const char*> in_c, out_c;
    for (auto& n : in_names) in_c.push_back(n.c_str());
    for (auto& n : out_names) out_c.push_back(n.c_str());
    std::vector<float> empty(1);
    const int64_t zero_shape[] = {1, spec.numKvHeads, 0, spec.headDim};
    for (size_t i = 0; i < spec.pastNames.size(); ++i)
      past.push_back(Ort::Value::CreateTensor<float>(mem, empty.data(), 0, zero_shape, 4));
    size_t len = 0;
    auto step = [&](const std::vector<int64_t>& ids) {
      const int64_t n = static_cast<int64_t>(ids.size());
      std::vector<int64_t> mask(len + ids.size(), 1), pos(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) pos[i] = static_cast<int64_t>(len + i);
      const int64_t s1[] = {1, n}, s2[] = {1, static_cast<int64_t>(mask.size())};
      std::vector<Ort::Value> feeds;
      feeds.push_back(Ort::Value::CreateTensor<int64_t>(mem, const_cast<int64_t*>(ids.data()), ids.size(), s1, 2));
      feeds.push_back(Ort::Value::CreateTensor<int64_t>(mem, mask.data(), mask.size(), s2, 2));
      feeds.push_back(Ort::Value::CreateTensor<int64_t>(mem, pos.data(), pos.size(), s1, 2));
      for (auto& p : past) feeds.push_back(std::move(p));
      auto outs = session.Run(Ort::RunOptions{nullptr}, in_c.data(), feeds.data(), feeds.size(), out_c.data(), out_c.size());
      len += ids.size();
      past.clear();
      for (size_t i = 1; i < outs.size(); ++i) {
        if (mode == 0) {
          past.push_back(std::move(outs[i]));
        } else {
          auto info = outs[i].GetTensorTypeAndShapeInfo();
          auto& c = copies[i - 1];
          c.resize(info.GetElementCount());
          std::memcpy(c.data(), outs[i].GetTensorData<float>(), c.size() * sizeof(float));
          auto shape = info.GetShape();
          past.push_back(Ort::Value::CreateTensor<float>(mem, c.data(), c.size(), shape.data(), shape.size()));
        }
      }
    };
    std::vector<int64_t> p(prompt.begin(), prompt.end());
    step(p);
    step({5});
    const auto start = Clock::now();
    for (int s = 0; s < steps; ++s) step({5});
    std::printf("%s  prompt %zu: %.3f ms/step\n", mode == 0 ? "ortalloc" : "copyback", prompt_len, Ms(start) / steps);
  }
  }
  return 0;
}
