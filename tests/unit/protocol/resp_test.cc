// RESP request parsing, reply framing, reading and encoding, checked against redis-server 7.0.15.
//
// Every expectation here was taken from a running redis-server: the arguments it saw (ECHO sent
// back), the protocol error it answered before closing, or the fact that it kept waiting for more
// bytes. A request cachegate frames differently from its server would be forwarded with a
// different meaning, so these must agree byte for byte. Requests and replies are also fed one byte
// at a time and split at every point, because a session re-parses from the start of the frame on
// each read and the outcome must not depend on where the socket cut the stream.

#include "protocol/resp.h"

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::protocol::resp {
namespace {

using namespace std::string_literals;

// The codecs read in place: give them exactly `bytes` in a fresh allocation, so a read past the
// end shows up under a sanitizer and an offset kept from an earlier call cannot hit stale bytes.
std::unique_ptr<char[]> exact_copy(std::string_view bytes) {
  std::unique_ptr<char[]> copy(new char[bytes.empty() ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return copy;
}

const char* status_name(ParseStatus s) {
  switch (s) {
    case ParseStatus::kOk:
      return "ok";
    case ParseStatus::kNeedMore:
      return "need-more";
    case ParseStatus::kInvalid:
      return "invalid";
  }
  return "?";
}

// Printable form of bytes for failure messages.
std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// --- requests ----------------------------------------------------------------------------------

// Everything a parse leaves behind, as one string: a mismatch then shows every field at once.
std::string describe(ParseStatus status, const Request& r, const RequestParser& parser) {
  std::string s = status_name(status);
  if (status == ParseStatus::kOk) {
    s += " length=" + std::to_string(r.length) + " inline=" + std::to_string(r.is_inline) +
         " argc=" + std::to_string(r.argc) + " args=";
    for (const auto a : parser.args())
      s += "[" + printable(a) + "]";
  } else if (status == ParseStatus::kInvalid) {
    s += " error='" + std::string(parser.error()) + "'";
  }
  return s;
}

std::string parse_once(std::string_view bytes, RequestLimits limits = {}) {
  RequestParser parser(limits);
  auto copy = exact_copy(bytes);
  Request r;
  const ParseStatus s = parser.parse(copy.get(), bytes.size(), r);
  return describe(s, r, parser);
}

// Feeds bytes[0..1), [0..2), … to one parser, as a session re-parsing after each read does.
// Every prefix before the outcome must be kNeedMore, and the outcome must come exactly when the
// last byte arrives; returns it described.
std::string parse_byte_by_byte(std::string_view bytes, RequestLimits limits = {}) {
  RequestParser parser(limits);
  for (size_t n = 1; n < bytes.size(); ++n) {
    auto copy = exact_copy(bytes.substr(0, n));
    Request r;
    const ParseStatus s = parser.parse(copy.get(), n, r);
    INFO("prefix of " << n << " bytes: " << printable(bytes.substr(0, n)));
    REQUIRE(describe(s, r, parser) == "need-more");
  }
  auto copy = exact_copy(bytes);
  Request r;
  const ParseStatus s = parser.parse(copy.get(), bytes.size(), r);
  return describe(s, r, parser);
}

// The same for input that is refused: kNeedMore until the bad line is complete, then the error.
// Returns the first outcome that is not kNeedMore.
std::string parse_until_outcome(std::string_view bytes, RequestLimits limits = {}) {
  RequestParser parser(limits);
  for (size_t n = 1; n <= bytes.size(); ++n) {
    auto copy = exact_copy(bytes.substr(0, n));
    Request r;
    const ParseStatus s = parser.parse(copy.get(), n, r);
    if (s != ParseStatus::kNeedMore) return describe(s, r, parser);
  }
  return "need-more";
}

// For every split point k: a fresh parser sees bytes[0..k) (kNeedMore), then all of them.
void check_every_split(std::string_view bytes, const std::string& expected,
                       RequestLimits limits = {}) {
  for (size_t k = 1; k < bytes.size(); ++k) {
    RequestParser parser(limits);
    Request r;
    auto head = exact_copy(bytes.substr(0, k));
    INFO("split at " << k << " of " << printable(bytes));
    REQUIRE(describe(parser.parse(head.get(), k, r), r, parser) == "need-more");
    auto all = exact_copy(bytes);
    const ParseStatus s = parser.parse(all.get(), bytes.size(), r);
    CHECK(describe(s, r, parser) == expected);
  }
}

// The describe() text of a kOk request.
std::string ok(std::string_view bytes, const std::vector<std::string>& args, bool is_inline) {
  std::string s = "ok length=" + std::to_string(bytes.size()) +
                  " inline=" + std::to_string(is_inline) + " argc=" + std::to_string(args.size()) +
                  " args=";
  for (const auto& a : args)
    s += "[" + printable(a) + "]";
  return s;
}

std::string invalid(std::string_view error) {
  return "invalid error='" + std::string(error) + "'";
}

std::string multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args)
    out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

constexpr std::string_view kBadMultibulk = "Protocol error: invalid multibulk length";
constexpr std::string_view kBadBulk = "Protocol error: invalid bulk length";
constexpr std::string_view kUnbalanced = "Protocol error: unbalanced quotes in request";

TEST_CASE("multibulk requests: whole, one byte at a time and split anywhere", "[resp][request]") {
  const std::vector<std::vector<std::string>> requests = {
      {"PING"},
      {"SET", "key", "value"},
      {"GET", ""},
      // Bulk payloads are binary: CR, LF, NUL and '$' inside them are data.
      {"SET", "k", "a\r\n\0b\n$3\r\n*1\r\n"s},
      {"MSET", "a", "1", "b", "2", "c", "3"},
      {"SET", "big", std::string(1000, 'x')},
  };
  for (const auto& args : requests) {
    const std::string bytes = multibulk(args);
    INFO(printable(bytes));
    const std::string expected = ok(bytes, args, false);
    CHECK(parse_once(bytes) == expected);
    CHECK(parse_byte_by_byte(bytes) == expected);
    check_every_split(bytes, expected);
  }
}

TEST_CASE("multibulk arguments are views into the caller's bytes", "[resp][request]") {
  const std::string bytes = "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
  RequestParser parser;
  Request r;
  REQUIRE(parser.parse(bytes.data(), bytes.size(), r) == ParseStatus::kOk);
  REQUIRE(parser.args().size() == 2);
  CHECK(parser.args()[0].data() == bytes.data() + 8);
  CHECK(parser.args()[1].data() == bytes.data() + 17);
  CHECK(parser.args()[1] == "hello");
  CHECK_FALSE(r.is_inline);
  CHECK_FALSE(r.empty());
}

TEST_CASE("multibulk framing quirks redis-server has, kept so servers frame alike",
          "[resp][request]") {
  SECTION("the two bytes after a bulk are skipped unread") {
    // redis answers +PONG twice to "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n".
    const std::string bytes = "*1\r\n$4\r\nPINGxx";
    CHECK(parse_once(bytes + "*1\r\n") == ok(bytes, {"PING"}, false));
    CHECK(parse_byte_by_byte(bytes) == ok(bytes, {"PING"}, false));
  }
  SECTION("a header line ends at CR, whatever byte follows it") {
    // redis answers +PONG to "*1\rx$4\r\nPING\r\n".
    const std::string bytes = "*1\rx$4\r\nPING\r\n";
    CHECK(parse_once(bytes) == ok(bytes, {"PING"}, false));
    CHECK(parse_byte_by_byte(bytes) == ok(bytes, {"PING"}, false));
  }
  SECTION("bare LF does not end a multibulk header line: redis keeps waiting") {
    CHECK(parse_once("*1\n$4\nPING\n") == "need-more");
  }
  SECTION("a CR that is the last byte waits for the byte after it") {
    CHECK(parse_once("*1\r") == "need-more");
    CHECK(parse_once("*1\r\n$4\r") == "need-more");
  }
  SECTION("INT_MAX arguments are announced without error (redis waits for them)") {
    CHECK(parse_once("*2147483647\r\n", RequestLimits{UINT32_MAX}) == "need-more");
  }
}

TEST_CASE("*0 and *-N are empty requests that are consumed", "[resp][request]") {
  for (const std::string head : {"*0\r\n", "*-1\r\n", "*-5\r\n"}) {
    INFO(printable(head));
    const std::string bytes = head + "*1\r\n$4\r\nPING\r\n";
    RequestParser parser;
    Request r;
    REQUIRE(parser.parse(bytes.data(), bytes.size(), r) == ParseStatus::kOk);
    CHECK(r.empty());
    CHECK(r.argc == 0);
    CHECK(r.length == head.size());
    CHECK(parser.args().empty());
    // Then the PING after it, as redis answers +PONG to "*-1\r\nPING\r\n".
    REQUIRE(parser.parse(bytes.data() + r.length, bytes.size() - r.length, r) == ParseStatus::kOk);
    CHECK(parser.args() == std::vector<std::string_view>{"PING"});
    CHECK(parse_byte_by_byte(head) == ok(head, {}, false));
  }
}

TEST_CASE("inline requests are split exactly as sdssplitargs splits them", "[resp][request]") {
  struct Case {
    std::string bytes;
    std::vector<std::string> args;
  };
  // Each line was sent to redis-server as "ECHO …" (or the like) and the arguments read back.
  const std::vector<Case> cases = {
      {"PING\r\n", {"PING"}},
      {"PING\n", {"PING"}},  // bare LF ends an inline line
      {"SET k v\r\n", {"SET", "k", "v"}},
      {"  ECHO   \t x  \r\n", {"ECHO", "x"}},
      {"ECHO\tx\r\n", {"ECHO", "x"}},
      {"ECHO a\r\r\n", {"ECHO", "a"}},  // one CR is the line end, the other a separator
      // \v and \f are skipped between arguments but are data inside one.
      {"ECHO a\vb\r\n", {"ECHO", "a\vb"}},
      {"ECHO x\f\r\n", {"ECHO", "x\f"}},
      {"ECHO\fx\r\n", {"ECHO\fx"}},
      // Double quotes: \n \r \t \b \a, \xHH (either case), \" and any other escaped byte.
      {"ECHO \"\\x41\\n\\r\\t\\b\\a\\\"\\z\\x4g\"\r\n", {"ECHO", "A\n\r\t\b\a\"zx4g"}},
      {"ECHO \"\\xfF\"\r\n", {"ECHO", "\xff"}},
      {"ECHO \"\\x\"\r\n", {"ECHO", "x"}},
      {"ECHO \"\\xZZ\"\r\n", {"ECHO", "xZZ"}},
      {"ECHO \"a\\\\\"\r\n", {"ECHO", "a\\"}},
      {"ECHO \"a'b\"\r\n", {"ECHO", "a'b"}},
      {"ECHO \"a\\'b\"\r\n", {"ECHO", "a'b"}},
      {"ECHO \"a b\" c\r\n", {"ECHO", "a b", "c"}},
      // Single quotes: only \' is an escape.
      {"ECHO 'a\\'b'\r\n", {"ECHO", "a'b"}},
      {"ECHO 'a\\nb'\r\n", {"ECHO", "a\\nb"}},
      {"ECHO 'a\"b'\r\n", {"ECHO", "a\"b"}},
      // Empty quoted arguments are arguments.
      {"ECHO \"\"\r\n", {"ECHO", ""}},
      {"ECHO ''\r\n", {"ECHO", ""}},
      // A quote inside a word opens a quoted part of the same argument.
      {"ECHO foo\"bar baz\"\r\n", {"ECHO", "foobar baz"}},
      {"ECHO foo'bar baz'\r\n", {"ECHO", "foobar baz"}},
      // A closing quote may be followed by any isspace() byte, \v and \f included.
      {"ECHO \"x\"\vy\r\n", {"ECHO", "x", "y"}},
      {"ECHO \"x\"\f\r\n", {"ECHO", "x"}},
      {"ECHO \"a\"\t\r\n", {"ECHO", "a"}},
  };
  for (const auto& c : cases) {
    INFO(printable(c.bytes));
    const std::string expected = ok(c.bytes, c.args, true);
    CHECK(parse_once(c.bytes) == expected);
    CHECK(parse_byte_by_byte(c.bytes) == expected);
    check_every_split(c.bytes, expected);
  }
}

TEST_CASE("empty inline lines are empty requests", "[resp][request]") {
  for (const std::string bytes : {"\r\n", "\n", "   \r\n", "\t\r\n"}) {
    INFO(printable(bytes));
    CHECK(parse_once(bytes) == ok(bytes, {}, true));
    RequestParser parser;
    Request r;
    REQUIRE(parser.parse(bytes.data(), bytes.size(), r) == ParseStatus::kOk);
    CHECK(r.empty());
  }
}

TEST_CASE("inline arguments belong to the parser, not to the caller's bytes", "[resp][request]") {
  std::string bytes = "SET \"a\\x41\" 'v'\r\n";
  RequestParser parser;
  Request r;
  REQUIRE(parser.parse(bytes.data(), bytes.size(), r) == ParseStatus::kOk);
  CHECK(r.is_inline);
  bytes.assign(bytes.size(), 'z');
  CHECK(parser.args() == std::vector<std::string_view>{"SET", "aA", "v"});
}

TEST_CASE("unbalanced quotes are redis's protocol error", "[resp][request]") {
  // redis-server answered each with "-ERR Protocol error: unbalanced quotes in request".
  for (const std::string bytes : {
           "PING \"a\"b\r\n",          // a closing quote followed by a non-space
           "ECHO 'x'y\r\n",            //
           "ECHO a\"b c\"d\r\n",       //
           "ECHO \"unterminated\r\n",  //
           "ECHO \"a\\\"\r\n",         // the only closing quote is escaped
           "ECHO \"\r\n",              //
           "ECHO \"a\\\r\n",           // a backslash at the very end
           "ECHO 'a\\\\'\r\n",         // \' escapes the closing quote
           "ECHO 'open\n",             //
       }) {
    INFO(printable(bytes));
    CHECK(parse_once(bytes) == invalid(kUnbalanced));
    CHECK(parse_until_outcome(bytes) == invalid(kUnbalanced));
  }
}

TEST_CASE("multibulk protocol errors have redis's wording", "[resp][request]") {
  struct Case {
    std::string bytes;
    std::string_view error;
  };
  // Each was sent to redis-server, which answered "-ERR <error>" and closed.
  const std::vector<Case> cases = {
      {"*x\r\n", kBadMultibulk},
      {"*+3\r\n", kBadMultibulk},
      {"*03\r\n", kBadMultibulk},
      {"*-0\r\n", kBadMultibulk},
      {"*\r\n", kBadMultibulk},
      {"*1 \r\n", kBadMultibulk},
      {"*2147483648\r\n", kBadMultibulk},
      {"*99999999999999999999999\r\n", kBadMultibulk},
      {"*1\r\nx\r\n", "Protocol error: expected '$', got 'x'"},
      {"*2\r\n$3\r\nGET\r\n:1\r\n", "Protocol error: expected '$', got ':'"},
      {"*1\r\n\xff\r\n", "Protocol error: expected '$', got '\xff'"},
      {"*1\r\n$-1\r\n", kBadBulk},
      {"*1\r\n$x\r\n", kBadBulk},
      {"*1\r\n$+3\r\n", kBadBulk},
      {"*1\r\n$03\r\nfoo\r\n", kBadBulk},
      {"*1\r\n$\r\n", kBadBulk},
      {"*1\r\n$-600000000\r\n", kBadBulk},
  };
  for (const auto& c : cases) {
    INFO(printable(c.bytes));
    // A limit above the counts used here, so that only the syntax is judged.
    const RequestLimits limits{UINT32_MAX, 1ull << 40, 64 * 1024};
    const std::string expected = invalid(c.error);
    CHECK(parse_once(c.bytes, limits) == expected);
    CHECK(parse_until_outcome(c.bytes, limits) == expected);
  }
  SECTION("with the default limits, a bulk over max_request is an invalid bulk length") {
    // Redis's own bound is proto-max-bulk-len (512 MiB: "$536870913" is refused); cachegate's
    // is the request size limit.
    CHECK(parse_once("*1\r\n$600000000\r\n") == invalid(kBadBulk));
    CHECK(parse_once("*1\r\n$67108865\r\n") == invalid(kBadBulk));
  }
  SECTION("after an error the parser starts over") {
    RequestParser parser;
    Request r;
    const std::string bad = "*x\r\n";
    REQUIRE(parser.parse(bad.data(), bad.size(), r) == ParseStatus::kInvalid);
    const std::string good = "*1\r\n$4\r\nPING\r\n";
    REQUIRE(parser.parse(good.data(), good.size(), r) == ParseStatus::kOk);
    CHECK(parser.args() == std::vector<std::string_view>{"PING"});
  }
}

TEST_CASE("a CR or LF in place of '$' is shown as a space, as redis shows it",
          "[resp][request][!mayfail]") {
  // BUG: redis builds this error with addReplyErrorFormat(), which turns CR and LF into spaces so
  // the error stays one protocol line: "*1\r\n\r\n" and "*1\r\n\n\r\n" are answered
  // "-ERR Protocol error: expected '$', got ' '". cachegate's error() holds the raw byte
  // ("got '\r'"), and the session sends it inside its -ERR line, which breaks that line in two.
  CHECK(parse_once("*1\r\n\r\n") == invalid("Protocol error: expected '$', got ' '"));
  CHECK(parse_once("*1\r\n\n\r\n") == invalid("Protocol error: expected '$', got ' '"));
}

TEST_CASE("lines without an end are refused past 64 KiB, as redis does", "[resp][request]") {
  constexpr size_t kMax = 64 * 1024;
  // redis-server waits at exactly 65536 buffered bytes and answers the error at 65537.
  SECTION("multibulk count") {
    const std::string at_limit = "*" + std::string(kMax - 1, '1');
    CHECK(parse_once(at_limit) == "need-more");
    CHECK(parse_once(at_limit + "1") == invalid("Protocol error: too big mbulk count string"));
  }
  SECTION("bulk count") {
    const std::string at_limit = "*1\r\n$" + std::string(kMax - 1, '1');
    CHECK(parse_once(at_limit) == "need-more");
    CHECK(parse_once(at_limit + "1") == invalid("Protocol error: too big bulk count string"));
    // The second argument's count is measured from where it starts, not from the request's.
    const std::string second = "*2\r\n$3\r\nGET\r\n$" + std::string(kMax - 1, '1');
    CHECK(parse_once(second) == "need-more");
    CHECK(parse_once(second + "1") == invalid("Protocol error: too big bulk count string"));
  }
  SECTION("inline") {
    const std::string at_limit(kMax, 'P');
    CHECK(parse_once(at_limit) == "need-more");
    CHECK(parse_once(at_limit + "P") == invalid("Protocol error: too big inline request"));
  }
  SECTION("a smaller configured max_inline") {
    const RequestLimits limits{1024, 1024 * 1024, 16};
    CHECK(parse_once(std::string(16, 'P'), limits) == "need-more");
    CHECK(parse_once(std::string(17, 'P'), limits) ==
          invalid("Protocol error: too big inline request"));
    CHECK(parse_once("*" + std::string(16, '1'), limits) ==
          invalid("Protocol error: too big mbulk count string"));
  }
}

TEST_CASE("a line longer than max_inline is refused even when its end has arrived",
          "[resp][request]") {
  // redis-server refuses such a line only while its end is missing, so its answer depends on how
  // the bytes were split into reads; cachegate refuses it either way (found by fuzzing the parser
  // fed whole and a few bytes at a time).
  const RequestLimits limits{1024, 1024 * 1024, 16};
  CHECK(parse_once(std::string(17, 'P') + "\r\n", limits) ==
        invalid("Protocol error: too big inline request"));
  CHECK(parse_once("*1\r\n$" + std::string(16, '1') + "\r\n", limits) ==
        invalid("Protocol error: too big bulk count string"));
  CHECK(parse_once("*" + std::string(16, '1') + "\r\n", limits) ==
        invalid("Protocol error: too big mbulk count string"));
  // At the limit, complete lines are requests as before.
  CHECK(parse_once(std::string(15, 'P') + "\r\n", limits) ==
        "ok length=17 inline=1 argc=1 args=[" + std::string(15, 'P') + "]");
  CHECK(parse_once("*1\r\n$4\r\nPING\r\n", limits) == "ok length=14 inline=0 argc=1 args=[PING]");
}

TEST_CASE("request limits: argument count and request size", "[resp][request]") {
  const RequestLimits limits{4, 100, 64 * 1024};
  CHECK(parse_once(multibulk({"a", "b", "c", "d"}), limits) ==
        ok(multibulk({"a", "b", "c", "d"}), {"a", "b", "c", "d"}, false));
  CHECK(parse_once("*5\r\n", limits) == invalid(kBadMultibulk));
  // A bulk longer than the whole request may be: an invalid bulk length, as in redis.
  CHECK(parse_once("*1\r\n$101\r\n", limits) == invalid(kBadBulk));
  // A bulk that fits alone but not with the bytes before it.
  CHECK(parse_once("*1\r\n$90\r\n", limits) == invalid("Protocol error: request too large"));
  const std::string largest = multibulk({std::string(100 - 11, 'x')});
  REQUIRE(largest.size() == 100);
  CHECK(parse_once(largest, limits) == ok(largest, {std::string(89, 'x')}, false));
}

TEST_CASE("needed() tells the size of a large request before it arrives", "[resp][request]") {
  const std::string value(100000, 'v');
  const std::string bytes = multibulk({"SET", "key", value});
  const size_t value_header = std::string("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$100000\r\n").size();
  REQUIRE(bytes.size() == value_header + value.size() + 2);

  RequestParser parser;
  Request r;
  // Before the value's header is complete, the size is not known yet.
  REQUIRE(parser.parse(bytes.data(), value_header - 1, r) == ParseStatus::kNeedMore);
  CHECK(parser.needed() == 0);
  for (size_t n : {value_header, value_header + 1, value_header + 5000, bytes.size() - 1}) {
    INFO(n);
    REQUIRE(parser.parse(bytes.data(), n, r) == ParseStatus::kNeedMore);
    CHECK(parser.needed() == bytes.size());
  }
  REQUIRE(parser.parse(bytes.data(), bytes.size(), r) == ParseStatus::kOk);
  CHECK(parser.needed() == 0);
  CHECK(r.length == bytes.size());
  CHECK(parser.args()[2].size() == value.size());
}

// Splits `stream` into the given chunk sizes and parses it as a session does: re-parse from the
// start of the unconsumed bytes whenever a chunk arrives.
std::vector<std::string> parse_stream(const std::string& stream, const std::vector<size_t>& cuts) {
  std::vector<std::string> out;
  RequestParser parser;
  std::string buffer;
  size_t consumed = 0;
  size_t fed = 0;
  auto feed_to = [&](size_t end) {
    buffer.append(stream, fed, end - fed);
    fed = end;
    for (;;) {
      Request r;
      auto copy = exact_copy(std::string_view(buffer).substr(consumed));
      const ParseStatus s = parser.parse(copy.get(), buffer.size() - consumed, r);
      if (s == ParseStatus::kNeedMore) return;
      REQUIRE(s == ParseStatus::kOk);
      std::string text = r.is_inline ? "inline:" : "multibulk:";
      for (const auto a : parser.args())
        text += "[" + std::string(a) + "]";
      out.push_back(text);
      consumed += r.length;
    }
  };
  for (const size_t cut : cuts)
    feed_to(cut);
  feed_to(stream.size());
  CHECK(consumed == stream.size());
  return out;
}

TEST_CASE("pipelines: many requests in one stream, cut anywhere", "[resp][request]") {
  std::string stream;
  std::vector<std::string> expected;
  for (int i = 0; i < 60; ++i) {
    const std::string n = std::to_string(i);
    switch (i % 4) {
      case 0:
        stream += multibulk({"SET", "key:" + n, "value\r\n" + n});
        expected.push_back("multibulk:[SET][key:" + n + "][value\r\n" + n + "]");
        break;
      case 1:
        stream += "GET key:" + n + "\r\n";
        expected.push_back("inline:[GET][key:" + n + "]");
        break;
      case 2:
        stream += "*0\r\n";
        expected.push_back("multibulk:");
        break;
      case 3:
        stream += "ECHO \"x " + n + "\"\n";
        expected.push_back("inline:[ECHO][x " + n + "]");
        break;
    }
  }
  CHECK(parse_stream(stream, {}) == expected);
  // Two chunks, cut at every point.
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    INFO("cut at " << cut);
    REQUIRE(parse_stream(stream, {cut}) == expected);
  }
  // One byte at a time.
  std::vector<size_t> every;
  for (size_t i = 1; i < stream.size(); ++i)
    every.push_back(i);
  CHECK(parse_stream(stream, every) == expected);
}

TEST_CASE("NUL bytes in inline and header lines: redis never finds the line end",
          "[resp][request][!mayfail]") {
  // BUG: redis-server looks for an inline request's LF (and a multibulk header's CR) with
  // strchr(), which stops at a NUL byte, so a line with a NUL before its end is never complete:
  // redis keeps waiting and, past 64 KiB, answers "too big inline request" / "too big mbulk
  // count string" (checked against 7.0.15: "PING a\0b\r\n" gets no answer at all). cachegate
  // uses memchr() and so answers them: "PING a\0b\r\n" is taken as PING with argument "a", and
  // "*1\0\r\n" is refused at once as an invalid multibulk length.
  CHECK(parse_once("PING a\0b\r\n"s) == "need-more");
  CHECK(parse_once("ECHO a\0 b\r\nPING\r\n"s) == "need-more");
  CHECK(parse_once("*1\0\r\n"s) == "need-more");
  CHECK(parse_once("PING a\0b\r\n"s + std::string(70000, 'x')) ==
        invalid("Protocol error: too big inline request"));
}

// --- replies -----------------------------------------------------------------------------------

std::string describe(ParseStatus status, const ReplyFrame& f) {
  std::string s = status_name(status);
  if (status == ParseStatus::kOk)
    s += " length=" + std::to_string(f.length) + " error=" + std::to_string(f.error);
  return s;
}

std::string frame_once(std::string_view bytes, uint64_t reply_size_max = 512 * 1024 * 1024) {
  ReplyFramer framer(reply_size_max);
  ReplyFrame f;
  auto copy = exact_copy(bytes);
  return describe(framer.frame(copy.get(), bytes.size(), f), f);
}

// One framer, fed growing prefixes without reset(): kNeedMore until the outcome.
std::string frame_byte_by_byte(std::string_view bytes,
                               uint64_t reply_size_max = 512 * 1024 * 1024) {
  ReplyFramer framer(reply_size_max);
  for (size_t n = 1; n < bytes.size(); ++n) {
    ReplyFrame f;
    auto copy = exact_copy(bytes.substr(0, n));
    const ParseStatus s = framer.frame(copy.get(), n, f);
    INFO("prefix of " << n << " bytes: " << printable(bytes.substr(0, n)));
    REQUIRE(describe(s, f) == "need-more");
  }
  ReplyFrame f;
  auto copy = exact_copy(bytes);
  return describe(framer.frame(copy.get(), bytes.size(), f), f);
}

void check_reply_every_split(std::string_view bytes, const std::string& expected) {
  for (size_t k = 1; k < bytes.size(); ++k) {
    ReplyFramer framer;
    ReplyFrame f;
    auto head = exact_copy(bytes.substr(0, k));
    INFO("split at " << k);
    REQUIRE(describe(framer.frame(head.get(), k, f), f) == "need-more");
    auto all = exact_copy(bytes);
    CHECK(describe(framer.frame(all.get(), bytes.size(), f), f) == expected);
  }
}

std::string framed(std::string_view bytes, bool error = false) {
  return "ok length=" + std::to_string(bytes.size()) + " error=" + std::to_string(error);
}

// Replies captured from redis-server 7.0.15.
const std::string kHello3 =
    "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
    "$2\r\nid\r\n:62\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$7\r\nmodules\r\n*0\r\n";
// COMMAND INFO get nosuch, after HELLO 3.
const std::string kCommandInfoGet3 =
    "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n"
    "+@read\r\n+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n"
    "$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n"
    ":1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n"
    "$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n_\r\n";
// The same in RESP2.
const std::string kCommandInfoGet2 =
    "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n"
    "+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n"
    "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n"
    ":1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n"
    "$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n$-1\r\n";
// XRANGE s - + over two entries.
const std::string kXrange =
    "*2\r\n*2\r\n$3\r\n1-1\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    "*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n";
// INFO clients, after HELLO 3: a verbatim string.
const std::string kInfoClients3 =
    "=217\r\ntxt:# Clients\r\nconnected_clients:1\r\ncluster_connections:0\r\n"
    "maxclients:10000\r\nclient_recent_max_input_buffer:20480\r\n"
    "client_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:0\r\n"
    "clients_in_timeout_table:0\r\n\r\n";
// DEBUG PROTOCOL attrib, after HELLO 3: an attribute, then the reply it describes.
const std::string kAttrib =
    "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
    "$39\r\nSome real reply following the attribute\r\n";

TEST_CASE("every reply type frames, alone, byte by byte and split anywhere", "[resp][reply]") {
  struct Case {
    std::string bytes;
    bool error;
  };
  const std::vector<Case> cases = {
      {"+OK\r\n", false},
      {"+\r\n", false},
      {"-ERR unknown command\r\n", true},
      {"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", true},
      {":12345\r\n", false},
      {":-9223372036854775808\r\n", false},
      {"$11\r\nHello World\r\n", false},
      {"$0\r\n\r\n", false},
      {"$6\r\na\r\nb\0c\r\n"s, false},  // a blob holds any bytes
      {"$-1\r\n", false},               // RESP2 null bulk
      {"*-1\r\n", false},               // RESP2 null array
      {"*0\r\n", false},
      {"*3\r\n:0\r\n:1\r\n:2\r\n", false},
      {"_\r\n", false},
      {",3.141\r\n", false},
      {",-inf\r\n", false},
      {"#t\r\n", false},
      {"#f\r\n", false},
      {"!21\r\nSYNTAX invalid syntax\r\n", true},
      {"!0\r\n\r\n", true},
      {"=29\r\ntxt:This is a verbatim\nstring\r\n", false},
      {"(1234567999999999999999999999999999999\r\n", false},
      {"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n", false},
      {"%0\r\n", false},
      {"~3\r\n:0\r\n:1\r\n:2\r\n", false},
      {"~0\r\n", false},
      {">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n", false},
      {kAttrib, false},
      {kHello3, false},
      {kCommandInfoGet3, false},
      {kCommandInfoGet2, false},
      {kXrange, false},
      {kInfoClients3, false},
  };
  for (const auto& c : cases) {
    INFO(printable(c.bytes));
    const std::string expected = framed(c.bytes, c.error);
    CHECK(frame_once(c.bytes) == expected);
    // Followed by the next reply of a pipeline: only the first one is framed.
    CHECK(frame_once(c.bytes + "+OK\r\n") == expected);
    CHECK(frame_once(c.bytes + "*2\r\n") == expected);
    CHECK(frame_byte_by_byte(c.bytes) == expected);
    check_reply_every_split(c.bytes, expected);
  }
}

TEST_CASE("nesting: arrays of maps of sets of arrays, attributes inside aggregates",
          "[resp][reply]") {
  const std::vector<std::string> replies = {
      "*2\r\n%1\r\n+k\r\n~2\r\n*1\r\n:1\r\n*0\r\n_\r\n",
      "%2\r\n*1\r\n$1\r\na\r\n%1\r\n#t\r\n*-1\r\n~1\r\n>1\r\n,1.5\r\n$-1\r\n",
      // An attribute is not an element of the aggregate it sits in.
      "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
      "*1\r\n|1\r\n+a\r\n*1\r\n:1\r\n:2\r\n",
      // An attribute whose last value is itself an aggregate.
      "|1\r\n+a\r\n*2\r\n:1\r\n%1\r\n+x\r\n+y\r\n+OK\r\n",
      // The deepest reply accepted.
      [] {
        std::string s;
        for (size_t i = 0; i < kMaxDepth; ++i)
          s += "*1\r\n";
        return s + ":1\r\n";
      }(),
  };
  for (const auto& bytes : replies) {
    INFO(printable(bytes));
    CHECK(frame_once(bytes) == framed(bytes));
    CHECK(frame_once(bytes + ":9\r\n") == framed(bytes));
    CHECK(frame_byte_by_byte(bytes) == framed(bytes));
    check_reply_every_split(bytes, framed(bytes));
  }
}

TEST_CASE("the error flag is for a top-level '-' or '!' only", "[resp][reply]") {
  CHECK(frame_once("*1\r\n-ERR x\r\n") == framed("*1\r\n-ERR x\r\n", false));
  CHECK(frame_once("%1\r\n+a\r\n!3\r\nbad\r\n") == framed("%1\r\n+a\r\n!3\r\nbad\r\n", false));
  CHECK(frame_once("~1\r\n-ERR\r\n") == framed("~1\r\n-ERR\r\n", false));
  CHECK(frame_once("-ERR\r\n") == framed("-ERR\r\n", true));
  // A framer reused after reset() does not keep the previous reply's flag.
  ReplyFramer framer;
  ReplyFrame f;
  const std::string stream = "-ERR x\r\n+OK\r\n";
  REQUIRE(framer.frame(stream.data(), stream.size(), f) == ParseStatus::kOk);
  CHECK(f.error);
  framer.reset();
  REQUIRE(framer.frame(stream.data() + f.length, stream.size() - f.length, f) == ParseStatus::kOk);
  CHECK_FALSE(f.error);
  CHECK(f.length == 5);
}

TEST_CASE("an error reply after an attribute is still an error", "[resp][reply][!mayfail]") {
  // BUG: the error flag is taken from the first line of the frame, which for a reply preceded by
  // an attribute is the attribute's '|'. RESP3 lets an attribute precede any reply, so
  // "|1\r\n+a\r\n+b\r\n-ERR x\r\n" is the error "ERR x" with an attribute; cachegate frames it
  // with error=false. (redis 7.0 itself sends attributes only for DEBUG PROTOCOL attrib.)
  const std::string bytes = "|1\r\n+a\r\n+b\r\n-ERR x\r\n";
  CHECK(frame_once(bytes) == framed(bytes, true));
}

TEST_CASE("replies in a stream, cut anywhere, with reset() after each", "[resp][reply]") {
  const std::vector<std::string> replies = {"+OK\r\n",    kHello3, "$-1\r\n",       kXrange,
                                            "-ERR x\r\n", kAttrib, ":1\r\n",        kInfoClients3,
                                            "*0\r\n",     "_\r\n", kCommandInfoGet3};
  std::string stream;
  std::vector<std::string> expected;
  for (const auto& r : replies) {
    stream += r;
    expected.push_back(framed(r, r[0] == '-'));
  }
  auto run = [&](size_t cut) {
    std::vector<std::string> out;
    ReplyFramer framer;
    size_t consumed = 0;
    for (size_t available : {cut, stream.size()}) {
      for (;;) {
        ReplyFrame f;
        auto copy = exact_copy(std::string_view(stream).substr(consumed, available - consumed));
        const ParseStatus s = framer.frame(copy.get(), available - consumed, f);
        if (s == ParseStatus::kNeedMore) break;
        REQUIRE(s == ParseStatus::kOk);
        out.push_back(describe(s, f));
        consumed += f.length;
        framer.reset();
      }
    }
    return out;
  };
  for (size_t cut = 0; cut < stream.size(); ++cut) {
    INFO("cut at " << cut);
    REQUIRE(run(cut) == expected);
  }
}

TEST_CASE("malformed replies are invalid", "[resp][reply]") {
  std::vector<std::string> cases = {
      "x\r\n",                      // no such type
      "\r\n",                       //
      "\n",                         //
      "+OK\n",                      // LF without CR
      ":1\n",                       //
      "$3\r\nfooXY",                // a blob not followed by CRLF
      "$3\r\nfoo\rX",               //
      "$3\r\nfoo\n\r",              //
      "$-2\r\n",                    // bad lengths
      "$x\r\n",                     //
      "$03\r\nfoo\r\n",             //
      "$\r\n",                      //
      "$+3\r\nfoo\r\n",             //
      "*-2\r\n",                    //
      "*x\r\n",                     //
      "*01\r\n:1\r\n",              //
      "%-1\r\n",                    // only '$' and '*' have a RESP2 null
      "~-1\r\n",                    //
      ">-1\r\n",                    //
      "!-1\r\n",                    //
      "=-1\r\n",                    //
      "_x\r\n",                     // a null has no payload
      "#x\r\n",                     //
      "#\r\n",                      //
      "#tt\r\n",                    //
      "|0\r\n",                     // an empty attribute
      "$?\r\n;3\r\nabc\r\n;0\r\n",  // RESP3 streamed types, which redis never sends
      "*?\r\n:1\r\n.\r\n",          //
      ";3\r\nabc\r\n",              //
      ".\r\n",                      //
      "*2\r\n:1\r\nx\r\n",          // a bad element inside an aggregate
      "%1\r\n+a\r\n$1\r\nab\r\n",   //
  };
  cases.push_back([] {
    std::string s;
    for (size_t i = 0; i <= kMaxDepth; ++i)
      s += "*1\r\n";
    return s + ":1\r\n";
  }());
  for (const auto& bytes : cases) {
    INFO(printable(bytes));
    CHECK(frame_once(bytes) == "invalid");
    // Byte by byte: never a complete reply, and invalid once the bad bytes are in.
    ReplyFramer framer;
    ParseStatus s = ParseStatus::kNeedMore;
    for (size_t n = 1; n <= bytes.size() && s == ParseStatus::kNeedMore; ++n) {
      ReplyFrame f;
      auto copy = exact_copy(std::string_view(bytes).substr(0, n));
      s = framer.frame(copy.get(), n, f);
      CHECK(s != ParseStatus::kOk);
    }
    CHECK(s == ParseStatus::kInvalid);
  }
}

TEST_CASE("reply lines are bounded at 64 KiB", "[resp][reply]") {
  const std::string longest = "+" + std::string(kMaxReplyLine - 3, 'x') + "\r\n";
  REQUIRE(longest.size() == kMaxReplyLine);
  CHECK(frame_once(longest) == framed(longest));
  CHECK(frame_once("+" + std::string(kMaxReplyLine - 2, 'x') + "\r\n") == "invalid");
  // Without its end the line is refused as soon as it cannot fit any more.
  CHECK(frame_once("+" + std::string(kMaxReplyLine - 2, 'x')) == "need-more");
  CHECK(frame_once("+" + std::string(kMaxReplyLine, 'x')) == "invalid");
  // A blob is not a line: its body may be longer.
  const std::string blob = "$100000\r\n" + std::string(100000, 'b') + "\r\n";
  CHECK(frame_once(blob) == framed(blob));
}

TEST_CASE("reply_size_max bounds a whole reply", "[resp][reply]") {
  CHECK(frame_once("$9\r\n012345678\r\n", 15) == framed("$9\r\n012345678\r\n"));
  CHECK(frame_once("$10\r\n0123456789\r\n", 16) == "invalid");
  // Refused from the header alone, before the body arrives.
  CHECK(frame_once("$1000\r\n", 100) == "invalid");
  CHECK(frame_once("*3\r\n:1\r\n:2\r\n:3\r\n", 16) == framed("*3\r\n:1\r\n:2\r\n:3\r\n"));
  CHECK(frame_once("*3\r\n:1\r\n:2\r\n:3\r\n", 15) == "invalid");
  CHECK(frame_once("*3\r\n:1\r\n:2\r\n", 10) == "invalid");
}

TEST_CASE("a huge map or attribute count is not complete after one element",
          "[resp][reply][!mayfail]") {
  // BUG: '%' and '|' counts are doubled (keys and values) without an overflow check: a count
  // above 2^62 doubled overflows int64_t (undefined behaviour; in practice it wraps negative),
  // and the map is then taken as complete after its first element. Expected: kNeedMore (it still
  // lacks elements) or kInvalid (it cannot fit reply_size_max); actual: "%4611686018427387905"
  // followed by ":1" frames as a complete 26-byte reply (and the attribute as a complete
  // attribute after one element).
  CHECK(frame_once("%4611686018427387905\r\n:1\r\n").substr(0, 2) != "ok");
  CHECK(frame_once("|4611686018427387905\r\n:1\r\n:2\r\n").substr(0, 2) != "ok");
}

// --- reading complete replies ------------------------------------------------------------------

// The elements of an aggregate.
std::vector<Value> children(const Value& aggregate) {
  std::vector<Value> out;
  size_t pos = children_start(aggregate);
  const int64_t n = aggregate.type == '%' ? aggregate.count * 2 : aggregate.count;
  for (int64_t i = 0; i < n; ++i) {
    Value v;
    REQUIRE(read_value(aggregate.raw, pos, v));
    out.push_back(v);
  }
  CHECK(pos == aggregate.raw.size());
  return out;
}

Value read_one(std::string_view bytes) {
  size_t pos = 0;
  Value v;
  REQUIRE(read_value(bytes, pos, v));
  CHECK(pos == bytes.size());
  return v;
}

TEST_CASE("read_value: every type's payload and count", "[resp][read]") {
  struct Case {
    std::string bytes;
    char type;
    std::string payload;
    int64_t count;
    bool null;
  };
  const std::vector<Case> cases = {
      {"+OK\r\n", '+', "OK", 0, false},
      {"-ERR x y\r\n", '-', "ERR x y", 0, false},
      {":-42\r\n", ':', "-42", 0, false},
      {"$5\r\nhe\r\no\r\n", '$', "he\r\no", 5, false},
      {"$0\r\n\r\n", '$', "", 0, false},
      {"$-1\r\n", '$', "", -1, true},
      {"*-1\r\n", '*', "", -1, true},
      {"*0\r\n", '*', "", 0, false},
      {"_\r\n", '_', "", 0, true},
      {",3.141\r\n", ',', "3.141", 0, false},
      {"#t\r\n", '#', "t", 0, false},
      {"!21\r\nSYNTAX invalid syntax\r\n", '!', "SYNTAX invalid syntax", 21, false},
      {"=29\r\ntxt:This is a verbatim\nstring\r\n", '=', "txt:This is a verbatim\nstring", 29,
       false},
      {"(12345678901234567890\r\n", '(', "12345678901234567890", 0, false},
      {"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", '%', "", 2, false},
      {"~1\r\n+a\r\n", '~', "", 1, false},
      {">1\r\n+a\r\n", '>', "", 1, false},
  };
  for (const auto& c : cases) {
    INFO(printable(c.bytes));
    const Value v = read_one(c.bytes);
    CHECK(v.type == c.type);
    CHECK(v.raw == c.bytes);
    CHECK(v.payload == c.payload);
    CHECK(v.count == c.count);
    CHECK(v.is_null() == c.null);
    CHECK(v.is_aggregate() == (c.type == '*' || c.type == '%' || c.type == '~' || c.type == '>'));
  }
}

TEST_CASE("read_value walks nested replies from children_start", "[resp][read]") {
  SECTION("HELLO 3") {
    const Value top = read_one(kHello3);
    CHECK(top.type == '%');
    CHECK(top.count == 7);
    const auto fields = children(top);
    REQUIRE(fields.size() == 14);
    std::vector<std::string> keys;
    for (size_t i = 0; i < fields.size(); i += 2)
      keys.emplace_back(fields[i].payload);
    CHECK(keys ==
          std::vector<std::string>{"server", "version", "proto", "id", "mode", "role", "modules"});
    CHECK(fields[3].payload == "7.0.15");
    CHECK(fields[5].type == ':');
    CHECK(fields[5].payload == "3");
    CHECK(fields[13].type == '*');
    CHECK(fields[13].count == 0);
  }
  SECTION("COMMAND INFO get nosuch (RESP3)") {
    const Value top = read_one(kCommandInfoGet3);
    const auto commands = children(top);
    REQUIRE(commands.size() == 2);
    CHECK(commands[1].type == '_');
    CHECK(commands[1].is_null());
    const auto get = children(commands[0]);
    REQUIRE(get.size() == 10);
    CHECK(get[0].payload == "get");
    CHECK(get[1].payload == "2");
    CHECK(get[2].type == '~');
    const auto flags = children(get[2]);
    REQUIRE(flags.size() == 2);
    CHECK(flags[0].payload == "readonly");
    CHECK(flags[1].payload == "fast");
    const auto key_specs = children(get[8]);
    REQUIRE(key_specs.size() == 1);
    const auto spec = children(key_specs[0]);
    REQUIRE(spec.size() == 6);
    CHECK(spec[2].payload == "begin_search");
    const auto begin_search = children(spec[3]);
    REQUIRE(begin_search.size() == 4);
    CHECK(begin_search[1].payload == "index");
    const auto index_spec = children(begin_search[3]);
    REQUIRE(index_spec.size() == 2);
    CHECK(index_spec[1].payload == "1");
    CHECK(children(get[9]).empty());
  }
  SECTION("COMMAND INFO get nosuch (RESP2): the unknown name is a null bulk") {
    const auto commands = children(read_one(kCommandInfoGet2));
    REQUIRE(commands.size() == 2);
    CHECK(commands[1].type == '$');
    CHECK(commands[1].is_null());
    CHECK(children(commands[0]).size() == 10);
  }
  SECTION("XRANGE") {
    const auto entries = children(read_one(kXrange));
    REQUIRE(entries.size() == 2);
    const auto first = children(entries[0]);
    REQUIRE(first.size() == 2);
    CHECK(first[0].payload == "1-1");
    std::vector<std::string> fields;
    for (const auto& v : children(first[1]))
      fields.emplace_back(v.payload);
    CHECK(fields == std::vector<std::string>{"a", "1", "b", "2"});
    const auto second = children(entries[1]);
    CHECK(second[0].payload == "2-1");
    CHECK(children(second[1]).size() == 2);
  }
  SECTION("INFO as a verbatim string") {
    const Value v = read_one(kInfoClients3);
    CHECK(v.type == '=');
    CHECK(v.count == 217);
    CHECK(v.payload.substr(0, 15) == "txt:# Clients\r\n");
    CHECK(v.payload.size() == 217);
  }
  SECTION("consecutive values") {
    const std::string bytes = "+OK\r\n" + kXrange + ":7\r\n";
    size_t pos = 0;
    Value v;
    REQUIRE(read_value(bytes, pos, v));
    CHECK(v.type == '+');
    REQUIRE(read_value(bytes, pos, v));
    CHECK(v.raw == kXrange);
    REQUIRE(read_value(bytes, pos, v));
    CHECK(v.payload == "7");
    CHECK(pos == bytes.size());
    CHECK_FALSE(read_value(bytes, pos, v));
  }
}

TEST_CASE("read_value refuses incomplete and malformed input", "[resp][read]") {
  for (const std::string bytes :
       {"", "+OK", "+OK\r", "$3\r\nfo", "*2\r\n:1\r\n", "x\r\n", "$3\r\nfooXY", "%1\r\n+a\r\n"}) {
    INFO(printable(bytes));
    size_t pos = 0;
    Value v;
    CHECK_FALSE(read_value(bytes, pos, v));
    CHECK(pos == 0);
  }
  // Every proper prefix of a nested reply.
  for (size_t n = 0; n < kCommandInfoGet3.size(); ++n) {
    size_t pos = 0;
    Value v;
    CHECK_FALSE(read_value(std::string_view(kCommandInfoGet3).substr(0, n), pos, v));
  }
}

// --- encoders ----------------------------------------------------------------------------------

TEST_CASE("encoders write what redis-server writes", "[resp][encode]") {
  std::string out;
  SECTION("nulls") {
    append_null(out, 2);
    CHECK(out == "$-1\r\n");  // GET of a missing key, RESP2
    out.clear();
    append_null(out, 3);
    CHECK(out == "_\r\n");  // and after HELLO 3
  }
  SECTION("integers") {
    append_integer(out, 0);
    append_integer(out, 12345);
    append_integer(out, -1);
    append_integer(out, INT64_MAX);
    append_integer(out, INT64_MIN);
    CHECK(out == ":0\r\n:12345\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n");
  }
  SECTION("strings and errors") {
    append_simple(out, "OK");
    append_error(out, "WRONGTYPE Operation against a key holding the wrong kind of value");
    append_bulk(out, "Hello World");
    append_bulk(out, "");
    append_bulk(out, "a\r\n\0"s);
    CHECK(out ==
          "+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
          "$11\r\nHello World\r\n$0\r\n\r\n$4\r\na\r\n\0\r\n"s);
  }
  SECTION("CONFIG GET maxmemory: a map, flattened in RESP2") {
    append_map(out, 1, 2);
    append_bulk(out, "maxmemory");
    append_bulk(out, "0");
    CHECK(out == "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    out.clear();
    append_map(out, 1, 3);
    append_bulk(out, "maxmemory");
    append_bulk(out, "0");
    CHECK(out == "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    out.clear();
    append_map(out, 0, 2);
    append_map(out, 0, 3);
    CHECK(out == "*0\r\n%0\r\n");
  }
  SECTION("sets and arrays (DEBUG PROTOCOL set, array)") {
    append_set(out, 3, 3);
    for (int i = 0; i < 3; ++i)
      append_integer(out, i);
    CHECK(out == "~3\r\n:0\r\n:1\r\n:2\r\n");
    out.clear();
    append_set(out, 3, 2);
    for (int i = 0; i < 3; ++i)
      append_integer(out, i);
    CHECK(out == "*3\r\n:0\r\n:1\r\n:2\r\n");
    out.clear();
    append_array(out, 0);
    append_array(out, 1000000);
    CHECK(out == "*0\r\n*1000000\r\n");
  }
  SECTION("MGET a nosuch b, RESP2") {
    append_array(out, 3);
    append_bulk(out, "1");
    append_null(out, 2);
    append_bulk(out, "2");
    CHECK(out == "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
  }
  SECTION("commands, as redis-cli sends them") {
    const std::string_view args[] = {"SET", "key", "", "a b\r\n"};
    append_command(out, args, 4);
    CHECK(out == "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n$5\r\na b\r\n\r\n");
    // And the parser reads back exactly those arguments.
    RequestParser parser;
    Request r;
    REQUIRE(parser.parse(out.data(), out.size(), r) == ParseStatus::kOk);
    CHECK(r.length == out.size());
    CHECK(parser.args() == std::vector<std::string_view>(args, args + 4));
  }
  SECTION("everything encoded frames as one reply") {
    append_array(out, 4);
    append_integer(out, INT64_MIN);
    append_null(out, 3);
    append_map(out, 1, 3);
    append_simple(out, "k");
    append_set(out, 1, 3);
    append_bulk(out, "v");
    append_error(out, "ERR nested");
    CHECK(frame_once(out) == framed(out));
  }
}

}  // namespace
}  // namespace cachegate::protocol::resp
