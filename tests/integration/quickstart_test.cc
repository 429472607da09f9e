// The README's quick start command, run as a user would (minus the package set-up and the build,
// which the test run itself has just done with the same scripts).

#include <string>

#include <catch2/catch.hpp>

#include "tests/support/process.h"

namespace cachegate {
namespace {

TEST_CASE("the quick start script starts servers and cachegate and shows requests going through",
          "[integration][quickstart]") {
  std::string output;
  const int code = testing::run_command(
      {"env", "CACHEGATE_SKIP_SETUP=1", "CACHEGATE_SKIP_BUILD=1", "CACHEGATE_RANDOM_PORTS=1",
       std::string("CACHEGATE_BIN=") + CACHEGATE_BINARY, "bash",
       std::string(CACHEGATE_SOURCE_DIR) + "/scripts/run-local.sh", "--demo-only"},
      &output, std::chrono::milliseconds(60000));
  INFO(output);
  REQUIRE(code == 0);
  // Three sets, then one multi-get whose keys live on both shards, merged in the client's order.
  CHECK(output.find("STORED\n  STORED\n  STORED\n") != std::string::npos);
  CHECK(output.find("VALUE greeting 0 5\n  hello\n  VALUE fruit 0 5\n  apple\n  VALUE colour 0 4\n"
                    "  teal\n  END") != std::string::npos);
  CHECK(output.find("VERSION 1.6.0-cachegate-") != std::string::npos);
  // Each shard holds some of the keys.
  CHECK(output.find("holds: (none)") == std::string::npos);
}

}  // namespace
}  // namespace cachegate
