// glob_match: Redis's KEYS pattern rules, used for users' allowed keys.

#include "routing/glob.h"

#include <catch2/catch.hpp>
#include <string>

namespace cachegate::routing {
namespace {

TEST_CASE("glob patterns match as Redis KEYS patterns do", "[glob]") {
  CHECK(glob_match("app:*", "app:1"));
  CHECK(glob_match("app:*", "app:"));
  CHECK_FALSE(glob_match("app:*", "ap"));
  CHECK_FALSE(glob_match("app:*", "other:app:1"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("", ""));
  CHECK_FALSE(glob_match("", "a"));
  CHECK(glob_match("h?llo", "hello"));
  CHECK_FALSE(glob_match("h?llo", "hllo"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[ae]llo", "hillo"));
  CHECK(glob_match("h[^e]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-c]llo", "hbllo"));
  CHECK(glob_match("h[c-a]llo", "hbllo"));  // reversed ranges work as Redis's do
  CHECK_FALSE(glob_match("h[a-c]llo", "hdllo"));
  CHECK(glob_match("a\\*b", "a*b"));
  CHECK_FALSE(glob_match("a\\*b", "axb"));
  CHECK(glob_match("[\\]]", "]"));
  CHECK(glob_match("*:session:*", "user:42:session:abc"));
  CHECK_FALSE(glob_match("*:session:*", "user:42:sessions"));
  CHECK(glob_match("a*b*c", "aXXbYYc"));
  CHECK_FALSE(glob_match("a*b*c", "aXXbYY"));
}

TEST_CASE("keys are bytes: NUL and high bytes match literally", "[glob]") {
  const std::string key("k\0ey\xff", 5);
  CHECK(glob_match(std::string_view("k\0*", 3), key));
  CHECK_FALSE(glob_match("k*x", key));
  CHECK(glob_match("k?ey?", key));
}

TEST_CASE("many stars against a long key stay fast", "[glob]") {
  const std::string key(10000, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*b", key));
  CHECK(glob_match("*a*a*a*a*a*a*a*a*", key));
}

}  // namespace
}  // namespace cachegate::routing
