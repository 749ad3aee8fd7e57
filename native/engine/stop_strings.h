// StopStringMatcher — finds stop strings in streamed text, including ones that span token (and chunk) boundaries.
//
// Contract: Push(delta) appends text and returns what may be released now; text that could still be the start of a
// stop string is held back. Once a stop string is complete, matched() is true, the returned text ends right before
// the earliest stop string (the stop string itself is not part of the output, as in the OpenAI API) and later pushes
// return nothing. Finish() releases the held-back text at the end of generation.
// Held back at most (longest stop string - 1) bytes. Matching is on bytes: stop strings and text are UTF-8, so a
// match never splits a character, and a held-back boundary never splits one either (the held suffix starts at a
// stop string's first byte, which is a character start).
// Thread affinity: none; one per sequence.
#pragma once

#include <string>
#include <vector>

namespace tokmeter::engine {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);
  std::string Push(const std::string& delta);
  std::string Finish();
  bool matched() const noexcept { return matched_; }
  const std::string& matchedStop() const noexcept { return matched_stop_; }
  bool empty() const noexcept { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text received but not yet released
  bool matched_ = false;
  std::string matched_stop_;
};

}  // namespace tokmeter::engine
