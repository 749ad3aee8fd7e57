#include "engine/stop_strings.h"
#include "test/test_util.h"

using tokmeter::engine::StopStringMatcher;

TEST(passes_text_without_stops) {
  StopStringMatcher m({});
  CHECK_EQ(m.Push("abc"), std::string("abc"));
  CHECK(!m.matched());
}

TEST(holds_back_a_possible_prefix_then_releases) {
  StopStringMatcher m({"\n\n"});
  CHECK_EQ(m.Push("hello\n"), std::string("hello"));
  CHECK_EQ(m.Push("world"), std::string("\nworld"));
  CHECK_EQ(m.Finish(), std::string(""));
}

TEST(matches_across_many_pushes) {
  StopStringMatcher m({"STOP"});
  std::string out;
  for (const char* piece : {"ab", "S", "T", "O", "P", "zz"}) out += m.Push(piece);
  CHECK(m.matched());
  CHECK_EQ(out, std::string("ab"));
  CHECK_EQ(m.matchedStop(), std::string("STOP"));
  CHECK_EQ(m.Finish(), std::string(""));
}

TEST(earliest_of_several_stops_wins) {
  StopStringMatcher m({"cd", "b"});
  CHECK_EQ(m.Push("abcd"), std::string("a"));
  CHECK_EQ(m.matchedStop(), std::string("b"));
}

TEST(false_start_is_released) {
  StopStringMatcher m({"abc"});
  CHECK_EQ(m.Push("xab"), std::string("x"));
  CHECK_EQ(m.Push("d"), std::string("abd"));
  CHECK_EQ(m.Push("aab"), std::string("a"));
  CHECK_EQ(m.Finish(), std::string("ab"));
}

TEST(multibyte_stop_strings) {
  StopStringMatcher m({"你好"});
  CHECK_EQ(m.Push("A你"), std::string("A"));
  CHECK_EQ(m.Push("好B"), std::string(""));
  CHECK(m.matched());
}

TEST(empty_stop_is_an_error) { CHECK_ERROR(StopStringMatcher({""}), "ERR_INVALID_ARGUMENT", "stop"); }

TEST_MAIN()
