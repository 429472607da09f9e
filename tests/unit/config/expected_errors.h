#pragma once

// Loading test configurations and checking their errors one by one: path, line:column and a
// part of the message.

#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "config/load.h"

namespace cachegate::config {

struct Expected {
  std::string path;
  int line;
  int column;
  std::string message;  // a substring of the message
};

// A YAML literal written from the line after R"( : the first newline is not part of it.
inline std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

inline LoadResult load(std::string_view text) {
  return load_config_string(yaml(text), "test.yaml");
}

inline void require_errors(const LoadResult& r, const std::vector<Expected>& expected) {
  INFO(format_errors(r));
  REQUIRE(r.errors.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("error " << i);
    CHECK(r.errors[i].path == expected[i].path);
    CHECK(r.errors[i].where.line == expected[i].line);
    CHECK(r.errors[i].where.column == expected[i].column);
    CHECK_THAT(r.errors[i].message, Catch::Matchers::Contains(expected[i].message));
  }
}

inline void require_error(std::string_view text, const Expected& expected) {
  require_errors(load(text), {expected});
}

inline LoadResult require_ok(std::string_view text) {
  LoadResult r = load(text);
  INFO(format_errors(r));
  REQUIRE(r.ok());
  return r;
}

}  // namespace cachegate::config
