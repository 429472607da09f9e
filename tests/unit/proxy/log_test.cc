// Log lines as written to stderr: text for people, one JSON object per line for collectors.
// Whatever a message holds (quotes, newlines, control bytes), a line stays one line.

#include "proxy/log.h"

#include <catch2/catch.hpp>
#include <string>

namespace cachegate::proxy {
namespace {

TEST_CASE("log lines: text", "[log]") {
  CHECK(format_log_line(false, "2026-11-29T06:00:00.000Z", LogLevel::kInfo, "worker-1",
                        "listener 'mc' on 127.0.0.1:11211") ==
        "2026-11-29T06:00:00.000Z info [worker-1] listener 'mc' on 127.0.0.1:11211\n");
}

TEST_CASE("log lines: JSON, escaped", "[log]") {
  CHECK(format_log_line(true, "2026-11-29T06:00:00.000Z", LogLevel::kWarning, "main",
                        "pool 'a' server \"b\": refused") ==
        "{\"time\":\"2026-11-29T06:00:00.000Z\",\"level\":\"warning\",\"thread\":\"main\","
        "\"message\":\"pool 'a' server \\\"b\\\": refused\"}\n");
  CHECK(
      format_log_line(true, "t", LogLevel::kError, "w", std::string("a\\b\nc\r\td\x01\x7f", 10)) ==
      "{\"time\":\"t\",\"level\":\"error\",\"thread\":\"w\",\"message\":"
      "\"a\\\\b\\u000ac\\u000d\\u0009d\\u0001\\u007f\"}\n");
  // UTF-8 passes through as it is.
  CHECK(format_log_line(true, "t", LogLevel::kDebug, "w", "caf\xc3\xa9") ==
        "{\"time\":\"t\",\"level\":\"debug\",\"thread\":\"w\",\"message\":\"caf\xc3\xa9\"}\n");
}

}  // namespace
}  // namespace cachegate::proxy
