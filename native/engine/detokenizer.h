// Detokenizer — the engine's only view of a tokenizer: turns sampled ids into text, incrementally.
//
// Contract: Step(id) returns the text that id completes (possibly empty); it never returns a partial UTF-8 character
// (bytes of an unfinished character are held back until a later Step or Flush completes them). Flush() returns what
// is held back at the end (invalid trailing bytes become U+FFFD, as the reference tokenizers do).
// Ownership: one instance per sequence, created by a DetokenizerFactory and owned by the Generator; it may borrow an
// immutable tokenizer, which the factory keeps alive. Thread affinity: used only on the model's inference thread.
// The addon adapts tokmeter::tokenizer's DecodeStream to this interface (native/addon/js_model.cc); tests use a
// table-driven double (native/engine/test/).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace tokmeter::engine {

class Detokenizer {
 public:
  virtual ~Detokenizer() = default;
  virtual std::string Step(uint32_t id) = 0;
  virtual std::string Flush() = 0;
};

using DetokenizerFactory = std::function<std::unique_ptr<Detokenizer>()>;

}  // namespace tokmeter::engine
