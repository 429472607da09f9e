#pragma once

// Checking a configuration's errors one by one: path, line:column and a part of the message.

#include <string>
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

}  // namespace cachegate::config
