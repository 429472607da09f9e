// RequestParser against memcached's text and meta protocol (doc/protocol.txt; where the document
// is silent, against what memcached 1.6.18 answers). Every request is also fed one byte at a time
// and split at every point, and pipelines are cut at every point, because a session re-parses
// from the start of the frame on each read: a partial frame must never look complete or bad, and
// the outcome must not depend on where the socket happened to cut the stream.

#include "protocol/memcache_request.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::protocol::memcache {
namespace {

using namespace std::string_literals;

// The parser reads in place: give it exactly `bytes` in a fresh allocation, so a read past the
// end shows up under a sanitizer and an offset kept from an earlier call cannot hit stale bytes.
std::unique_ptr<char[]> exact_copy(std::string_view bytes) {
  std::unique_ptr<char[]> copy(new char[bytes.size() == 0 ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return copy;
}

std::string span_text(const char* base, Span s) {
  return "@" + std::to_string(s.offset) + "'" + std::string(s.in(base)) + "'";
}

// Everything a kOk leaves behind, as one string: a mismatch then shows every field at once.
std::string describe(const Request& r, const char* base, const RequestParser& parser) {
  std::string s = std::string(command_name(r.command));
  s += " noreply=" + std::to_string(r.noreply);
  s += " b=" + std::to_string(r.base64_key);
  s += " line=" + std::to_string(r.line_length);
  s += " frame=" + std::to_string(r.frame_length);
  s += " key=" + span_text(base, r.key);
  s += " noreply_token=" + span_text(base, r.noreply_token);
  s += " exptime=" + span_text(base, r.exptime);
  s += " argument=" + span_text(base, r.argument);
  s += " data_length=" + std::to_string(r.data_length);
  if (is_retrieval(r.command)) {
    s += " keys=";
    for (const Span& k : parser.keys())
      s += span_text(base, k);
  }
  if (r.base64_key) s += " decoded='" + std::string(parser.decoded_key()) + "'";
  return s;
}

// After a close nothing more is read, so how much was buffered at that moment does not matter.
std::string describe(const ParseError& e) {
  std::string s = "invalid reply='" + std::string(e.reply) + "'";
  if (!e.close) s += " consumed=" + std::to_string(e.consumed);
  return s + " swallow=" + std::to_string(e.swallow) + " close=" + std::to_string(e.close) +
         " suppress=" + std::to_string(e.suppress);
}

// Plays `stream` to a parser the way a client session does, with bytes arriving up to each
// position in `arrivals` (ascending, the last one the stream's size): parse what is buffered, act
// on each outcome (consume a frame; consume an error and swallow what it says), wait for more on
// kNeedMore. Returns what the session saw, in order.
std::vector<std::string> run_session(std::string_view stream, const std::vector<size_t>& arrivals,
                                     ParserLimits limits = {}) {
  RequestParser parser(limits);
  std::string buffered;
  uint64_t swallow = 0;
  size_t received = 0;
  std::vector<std::string> log;
  for (size_t upto : arrivals) {
    buffered.append(stream.substr(received, upto - received));
    received = upto;
    for (;;) {
      if (swallow > 0) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(swallow, buffered.size()));
        buffered.erase(0, n);
        swallow -= n;
        if (swallow > 0) break;
      }
      if (buffered.empty()) break;
      auto bytes = exact_copy(buffered);
      Request request;
      const ParseStatus status = parser.parse(bytes.get(), buffered.size(), request);
      if (status == ParseStatus::kNeedMore) {
        // A known total is always beyond what is already here.
        REQUIRE((parser.needed() == 0 || parser.needed() > buffered.size()));
        break;
      }
      if (status == ParseStatus::kInvalid) {
        const ParseError& e = parser.error();
        log.push_back(describe(e));
        if (e.close) return log;
        REQUIRE(e.consumed > 0);
        REQUIRE(e.consumed <= buffered.size());
        buffered.erase(0, e.consumed);
        swallow = e.swallow;
        continue;
      }
      REQUIRE(request.frame_length > 0);
      REQUIRE(request.frame_length <= buffered.size());
      log.push_back(describe(request, bytes.get(), parser));
      buffered.erase(0, request.frame_length);
    }
  }
  if (!buffered.empty()) log.push_back("incomplete: " + std::to_string(buffered.size()));
  return log;
}

// The stream arriving all at once, one byte at a time, and in two pieces cut at every point must
// all be seen the same way. Returns the all-at-once log.
std::vector<std::string> check_every_split(std::string_view stream, ParserLimits limits = {}) {
  const std::vector<std::string> whole = run_session(stream, {stream.size()}, limits);
  std::vector<size_t> bytewise;
  for (size_t i = 1; i <= stream.size(); ++i)
    bytewise.push_back(i);
  {
    INFO("one byte at a time");
    REQUIRE(run_session(stream, bytewise, limits) == whole);
  }
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    INFO("split at " << cut);
    REQUIRE(run_session(stream, {cut, stream.size()}, limits) == whole);
  }
  return whole;
}

// A complete, valid request on its own, parsed in place.
struct Parsed {
  Request request;
  std::string bytes;
  std::vector<std::string> keys;
  std::string decoded_key;
  std::string text(Span s) const { return bytes.substr(s.offset, s.length); }
};

// Parses `bytes`, which must be exactly one valid request, and checks it the way it arrives from
// a socket: every proper prefix is kNeedMore (with needed() == the frame size once the line of a
// request with a data block is complete, else 0), and the complete request then parses to the
// same result whatever came before; every split point gives the same result as well.
Parsed parse_ok(std::string_view bytes, ParserLimits limits = {}) {
  INFO("request: " << bytes);
  RequestParser parser(limits);
  Parsed p;
  p.bytes = std::string(bytes);
  auto whole = exact_copy(bytes);
  const ParseStatus status = parser.parse(whole.get(), bytes.size(), p.request);
  if (status == ParseStatus::kInvalid) UNSCOPED_INFO("error: " << describe(parser.error()));
  REQUIRE(status == ParseStatus::kOk);
  REQUIRE(p.request.frame_length == bytes.size());
  REQUIRE(p.request.line_length <= p.request.frame_length);
  for (const Span& k : parser.keys())
    p.keys.emplace_back(k.in(whole.get()));
  p.decoded_key = std::string(parser.decoded_key());
  const std::string expected = describe(p.request, whole.get(), parser);
  const bool has_data = is_storage(p.request.command) || p.request.command == Command::kMetaSet;

  // One byte at a time, with the same parser, as a session calls it on every read.
  for (size_t i = 1; i < bytes.size(); ++i) {
    INFO("prefix of " << i << " bytes");
    auto prefix = exact_copy(bytes.substr(0, i));
    Request partial;
    REQUIRE(parser.parse(prefix.get(), i, partial) == ParseStatus::kNeedMore);
    if (has_data && i >= p.request.line_length) {
      REQUIRE(parser.needed() == p.request.frame_length);
    } else {
      REQUIRE(parser.needed() == 0);
    }
  }
  // Each split: the first part, then everything (in a new place: the buffer may have moved).
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    INFO("split at " << cut);
    auto first = exact_copy(bytes.substr(0, cut));
    Request partial;
    REQUIRE(parser.parse(first.get(), cut, partial) == ParseStatus::kNeedMore);
    auto all = exact_copy(bytes);
    Request again;
    REQUIRE(parser.parse(all.get(), bytes.size(), again) == ParseStatus::kOk);
    REQUIRE(describe(again, all.get(), parser) == expected);
  }
  REQUIRE(check_every_split(bytes, limits) == std::vector<std::string>{expected});
  return p;
}

// Parses `bytes`, which must start with exactly one bad request, and returns the error. Checks
// that no proper prefix of what the error covers is already an error (or a request), and that
// the prefix ending where the error's bytes end gives the same error.
ParseError parse_invalid(std::string_view bytes, ParserLimits limits = {}) {
  INFO("request: " << bytes);
  RequestParser parser(limits);
  auto whole = exact_copy(bytes);
  Request request;
  const ParseStatus status = parser.parse(whole.get(), bytes.size(), request);
  if (status == ParseStatus::kOk) {
    UNSCOPED_INFO("parsed: " << describe(request, whole.get(), parser));
  }
  REQUIRE(status == ParseStatus::kInvalid);
  const ParseError error = parser.error();
  REQUIRE(error.consumed <= bytes.size());
  REQUIRE(error.reply.size() >= 2);
  REQUIRE(error.reply.substr(error.reply.size() - 2) == "\r\n");
  if (!error.close) {
    for (size_t i = 1; i < error.consumed; ++i) {
      INFO("prefix of " << i << " bytes");
      auto prefix = exact_copy(bytes.substr(0, i));
      REQUIRE(parser.parse(prefix.get(), i, request) == ParseStatus::kNeedMore);
    }
    auto covered = exact_copy(bytes.substr(0, error.consumed));
    REQUIRE(parser.parse(covered.get(), error.consumed, request) == ParseStatus::kInvalid);
    REQUIRE(describe(parser.error()) == describe(error));
  }
  return error;
}

std::string repeat(char c, size_t n) {
  return std::string(n, c);
}

// The request with its " noreply" token cut out, as a forwarder sends it.
std::string cut_noreply(const Parsed& p) {
  const Span t = p.request.noreply_token;
  return p.bytes.substr(0, t.offset) + p.bytes.substr(t.offset + t.length);
}

// --- retrieval ---------------------------------------------------------------------------------

TEST_CASE("get and gets take one key or many", "[memcache][request]") {
  SECTION("one key") {
    auto p = parse_ok("get a\r\n");
    CHECK(p.request.command == Command::kGet);
    CHECK(p.text(p.request.key) == "a");
    CHECK(p.request.key.offset == 4);
    CHECK(p.keys == std::vector<std::string>{"a"});
    CHECK(p.request.line_length == 7);
    CHECK(p.request.frame_length == 7);
    CHECK_FALSE(p.request.noreply);
    CHECK(p.request.noreply_token.length == 0);
    CHECK(p.request.exptime.length == 0);
    CHECK(p.request.data_length == 0);
  }
  SECTION("gets, three keys") {
    auto p = parse_ok("gets foo bar baz\r\n");
    CHECK(p.request.command == Command::kGets);
    CHECK(p.text(p.request.key) == "foo");
    CHECK(p.keys == std::vector<std::string>{"foo", "bar", "baz"});
  }
  SECTION("a hundred keys, in the client's order") {
    std::string line = "get";
    std::vector<std::string> expected;
    for (int i = 0; i < 100; ++i) {
      expected.push_back("key:" + std::to_string((i * 37) % 100));
      line += " " + expected.back();
    }
    auto p = parse_ok(line + "\r\n");
    CHECK(p.keys == expected);
    CHECK(p.text(p.request.key) == expected.front());
  }
  SECTION("duplicate keys are kept") {
    auto p = parse_ok("get a b a\r\n");
    CHECK(p.keys == std::vector<std::string>{"a", "b", "a"});
  }
  SECTION("runs of spaces separate tokens like one space") {
    auto p = parse_ok("get   a  b    \r\n");
    CHECK(p.keys == std::vector<std::string>{"a", "b"});
    CHECK(p.request.key.offset == 6);
    CHECK(p.request.line_length == 16);
  }
  SECTION("a bare LF ends the line, as memcached accepts") {
    auto p = parse_ok("gets a b\n");
    CHECK(p.request.command == Command::kGets);
    CHECK(p.request.line_length == 9);
    CHECK(p.keys == std::vector<std::string>{"a", "b"});
  }
  SECTION("\"noreply\" is a key, retrieval has no noreply") {
    auto p = parse_ok("get noreply\r\n");
    CHECK_FALSE(p.request.noreply);
    CHECK(p.keys == std::vector<std::string>{"noreply"});
  }
  SECTION("a key of 250 bytes, memcached's maximum") {
    const std::string key = repeat('k', kMaxKeyLength);
    auto p = parse_ok("get x " + key + "\r\n");
    CHECK(p.keys == std::vector<std::string>{"x", key});
  }
  SECTION("bytes above 0x7f are allowed in keys") {
    auto p = parse_ok("get caf\xc3\xa9\r\n");
    CHECK(p.keys == std::vector<std::string>{"caf\xc3\xa9"});
  }
}

TEST_CASE("a get line may be long", "[memcache][request]") {
  // memcached reads get and gets lines of any length (it grows its buffer for "a large
  // multiget"), so only request_line_max bounds them.
  std::string line = "get";
  for (int i = 0; i < 600; ++i)
    line += " key:" + std::to_string(i);
  REQUIRE(line.size() > 4096);
  RequestParser parser;
  Request request;
  line += "\r\n";
  REQUIRE(parser.parse(line.data(), line.size(), request) == ParseStatus::kOk);
  CHECK(parser.keys().size() == 600);
  CHECK(request.frame_length == line.size());
}

TEST_CASE("leading spaces before the command", "[memcache][request]") {
  auto p = parse_ok("  get a\r\n");
  CHECK(p.request.command == Command::kGet);
  CHECK(p.request.key.offset == 6);
  p = parse_ok(" set k 0 0 1 noreply\r\nx\r\n");
  CHECK(p.request.noreply);
  CHECK(cut_noreply(p) == " set k 0 0 1\r\nx\r\n");
}

TEST_CASE("gat and gats carry an exptime before the keys", "[memcache][request]") {
  SECTION("gat, two keys") {
    auto p = parse_ok("gat 100 a bb\r\n");
    CHECK(p.request.command == Command::kGat);
    CHECK(p.text(p.request.exptime) == "100");
    CHECK(p.request.exptime.offset == 4);
    CHECK(p.text(p.request.key) == "a");
    CHECK(p.keys == std::vector<std::string>{"a", "bb"});
  }
  SECTION("gats with a negative exptime (already expired)") {
    auto p = parse_ok("gats -1 k\r\n");
    CHECK(p.request.command == Command::kGats);
    CHECK(p.text(p.request.exptime) == "-1");
    CHECK(p.keys == std::vector<std::string>{"k"});
  }
  SECTION("gat with many keys and spaces, bare LF") {
    auto p = parse_ok("gat  0  a b c d e\n");
    CHECK(p.text(p.request.exptime) == "0");
    CHECK(p.keys == std::vector<std::string>{"a", "b", "c", "d", "e"});
  }
}

// --- storage -----------------------------------------------------------------------------------

TEST_CASE("storage commands frame the line and the data block", "[memcache][request]") {
  struct Case {
    std::string name;
    Command command;
  };
  const std::vector<Case> cases = {{"set", Command::kSet},
                                   {"add", Command::kAdd},
                                   {"replace", Command::kReplace},
                                   {"append", Command::kAppend},
                                   {"prepend", Command::kPrepend}};
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const std::string line = c.name + " key 5 0 5\r\n";
      auto p = parse_ok(line + "hello\r\n");
      CHECK(p.request.command == c.command);
      CHECK(is_storage(p.request.command));
      CHECK(p.text(p.request.key) == "key");
      CHECK(p.request.key.offset == c.name.size() + 1);
      CHECK(p.request.data_length == 5);
      CHECK(p.request.line_length == line.size());
      CHECK(p.request.frame_length == line.size() + 7);
      CHECK_FALSE(p.request.noreply);
      CHECK(p.request.noreply_token.length == 0);
    }
    DYNAMIC_SECTION(c.name << " noreply") {
      const std::string line = c.name + " key 5 0 5 noreply\r\n";
      auto p = parse_ok(line + "hello\r\n");
      CHECK(p.request.command == c.command);
      CHECK(p.request.noreply);
      CHECK(p.text(p.request.noreply_token) == " noreply");
      CHECK(cut_noreply(p) == c.name + " key 5 0 5\r\nhello\r\n");
      CHECK(p.request.line_length == line.size());
      CHECK(p.request.frame_length == line.size() + 7);
    }
  }
}

TEST_CASE("cas carries a unique after the length", "[memcache][request]") {
  SECTION("without noreply") {
    auto p = parse_ok("cas k 0 0 3 12345\r\nabc\r\n");
    CHECK(p.request.command == Command::kCas);
    CHECK(p.text(p.request.key) == "k");
    CHECK(p.request.data_length == 3);
    CHECK(p.request.line_length == 19);
    CHECK(p.request.frame_length == 24);
    CHECK_FALSE(p.request.noreply);
  }
  SECTION("with noreply") {
    auto p = parse_ok("cas k 0 0 3 18446744073709551615 noreply\r\nabc\r\n");
    CHECK(p.request.noreply);
    CHECK(cut_noreply(p) == "cas k 0 0 3 18446744073709551615\r\nabc\r\n");
  }
}

TEST_CASE("storage lines: numbers, spacing and data edge cases", "[memcache][request]") {
  SECTION("runs of spaces before noreply are all cut with it") {
    auto p = parse_ok("set  k  0  0  2   noreply\r\nhi\r\n");
    CHECK(p.text(p.request.key) == "k");
    CHECK(p.request.data_length == 2);
    CHECK(p.text(p.request.noreply_token) == "   noreply");
    CHECK(cut_noreply(p) == "set  k  0  0  2\r\nhi\r\n");
  }
  SECTION("bare LF after the command line") {
    auto p = parse_ok("set k 0 0 2\nhi\r\n");
    CHECK(p.request.line_length == 12);
    CHECK(p.request.frame_length == 16);
  }
  SECTION("an empty value") {
    auto p = parse_ok("set k 0 0 0\r\n\r\n");
    CHECK(p.request.data_length == 0);
    CHECK(p.request.frame_length == 15);
  }
  SECTION("data may contain CRLF and command text") {
    const std::string data = "\r\nget a\r\nEND\r\n";
    auto p = parse_ok("set k 0 0 " + std::to_string(data.size()) + "\r\n" + data + "\r\n");
    CHECK(p.request.data_length == data.size());
  }
  SECTION("binary data, NUL and 0x80 included") {
    const std::string data("\x80\x00\xff\n\r", 5);
    auto p = parse_ok("set k 0 0 5\r\n" + data + "\r\n");
    CHECK(p.request.data_length == 5);
  }
  SECTION("largest flags, negative and large exptimes, as memcached takes them") {
    parse_ok("set k 4294967295 0 1\r\nx\r\n");
    parse_ok("set k 0 -1 1\r\nx\r\n");
    parse_ok("set k 0 -2147483648 1\r\nx\r\n");
    parse_ok("set k 0 2147483647 1\r\nx\r\n");
  }
  SECTION("a value exactly item_size_max is accepted") {
    ParserLimits limits;
    limits.item_size_max = 16;
    auto p = parse_ok("set k 0 0 16\r\n" + repeat('v', 16) + "\r\n", limits);
    CHECK(p.request.data_length == 16);
  }
  SECTION("a key of 250 bytes") {
    const std::string key = repeat('k', kMaxKeyLength);
    auto p = parse_ok("add " + key + " 0 0 1\r\nx\r\n");
    CHECK(p.text(p.request.key) == key);
  }
}

TEST_CASE("needed() tells the whole frame size once the line is in", "[memcache][request]") {
  RequestParser parser;
  Request request;
  const std::string frame = "set k 0 0 10\r\n0123456789\r\n";
  for (size_t have : {size_t{14}, size_t{15}, size_t{24}, size_t{25}}) {
    INFO("have " << have);
    auto bytes = exact_copy(std::string_view(frame).substr(0, have));
    REQUIRE(parser.parse(bytes.get(), have, request) == ParseStatus::kNeedMore);
    CHECK(parser.needed() == frame.size());
  }
  auto partial_line = exact_copy("set k 0 0 10");
  REQUIRE(parser.parse(partial_line.get(), 12, request) == ParseStatus::kNeedMore);
  CHECK(parser.needed() == 0);

  // A large value: the reader can wait for all of it without parsing again.
  const std::string big_line = "ms big 100000 T0\r\n";
  auto line = exact_copy(big_line);
  REQUIRE(parser.parse(line.get(), big_line.size(), request) == ParseStatus::kNeedMore);
  CHECK(parser.needed() == big_line.size() + 100000 + 2);

  // A complete request resets it.
  auto get = exact_copy("get a\r\n");
  REQUIRE(parser.parse(get.get(), 7, request) == ParseStatus::kOk);
  CHECK(parser.needed() == 0);
}

// --- one-line commands -------------------------------------------------------------------------

TEST_CASE("delete, with the legacy hold time 0 and noreply", "[memcache][request]") {
  SECTION("delete k") {
    auto p = parse_ok("delete k\r\n");
    CHECK(p.request.command == Command::kDelete);
    CHECK(p.text(p.request.key) == "k");
    CHECK_FALSE(p.request.noreply);
  }
  SECTION("delete k 0") {
    auto p = parse_ok("delete k 0\r\n");
    CHECK(p.text(p.request.key) == "k");
    CHECK_FALSE(p.request.noreply);
  }
  SECTION("delete k noreply") {
    auto p = parse_ok("delete k noreply\r\n");
    CHECK(p.request.noreply);
    CHECK(cut_noreply(p) == "delete k\r\n");
  }
  SECTION("delete k 0 noreply") {
    auto p = parse_ok("delete k 0 noreply\r\n");
    CHECK(p.request.noreply);
    CHECK(cut_noreply(p) == "delete k 0\r\n");
  }
}

TEST_CASE("incr and decr", "[memcache][request]") {
  auto p = parse_ok("incr counter 5\r\n");
  CHECK(p.request.command == Command::kIncr);
  CHECK(p.text(p.request.key) == "counter");
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("decr counter 18446744073709551615 noreply\r\n");
  CHECK(p.request.command == Command::kDecr);
  CHECK(p.request.noreply);
  CHECK(cut_noreply(p) == "decr counter 18446744073709551615\r\n");

  p = parse_ok("incr  c  0\n");
  CHECK(p.text(p.request.key) == "c");
}

TEST_CASE("touch", "[memcache][request]") {
  auto p = parse_ok("touch k 10\r\n");
  CHECK(p.request.command == Command::kTouch);
  CHECK(p.text(p.request.key) == "k");
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("touch k -1 noreply\r\n");
  CHECK(p.request.noreply);
  CHECK(cut_noreply(p) == "touch k -1\r\n");
}

TEST_CASE("flush_all with an optional delay and noreply", "[memcache][request]") {
  auto p = parse_ok("flush_all\r\n");
  CHECK(p.request.command == Command::kFlushAll);
  CHECK(p.request.argument.length == 0);
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("flush_all 30\r\n");
  CHECK(p.text(p.request.argument) == "30");
  CHECK(p.request.argument.offset == 10);

  p = parse_ok("flush_all noreply\r\n");
  CHECK(p.request.noreply);
  CHECK(p.request.argument.length == 0);
  CHECK(cut_noreply(p) == "flush_all\r\n");

  p = parse_ok("flush_all 0 noreply\r\n");
  CHECK(p.request.noreply);
  CHECK(p.text(p.request.argument) == "0");
  CHECK(cut_noreply(p) == "flush_all 0\r\n");
}

TEST_CASE("version, verbosity, stats, quit", "[memcache][request]") {
  auto p = parse_ok("version\r\n");
  CHECK(p.request.command == Command::kVersion);

  p = parse_ok("verbosity 1\r\n");
  CHECK(p.request.command == Command::kVerbosity);
  CHECK(p.text(p.request.argument) == "1");
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("verbosity 0 noreply\r\n");
  CHECK(p.request.noreply);
  CHECK(p.text(p.request.argument) == "0");
  CHECK(cut_noreply(p) == "verbosity 0\r\n");

  p = parse_ok("stats\r\n");
  CHECK(p.request.command == Command::kStats);
  CHECK(p.request.argument.length == 0);

  p = parse_ok("stats slabs\r\n");
  CHECK(p.text(p.request.argument) == "slabs");

  // All arguments, spacing as sent.
  p = parse_ok("stats  cachedump  1   2 \r\n");
  CHECK(p.text(p.request.argument) == "cachedump  1   2");

  p = parse_ok("quit\r\n");
  CHECK(p.request.command == Command::kQuit);

  p = parse_ok("version\n");
  CHECK(p.request.line_length == 8);
}

// --- meta --------------------------------------------------------------------------------------

TEST_CASE("mg: flags, quiet mode, opaque, base64 keys", "[memcache][request][meta]") {
  SECTION("no flags") {
    auto p = parse_ok("mg k\r\n");
    CHECK(p.request.command == Command::kMetaGet);
    CHECK(is_meta(p.request.command));
    CHECK(p.text(p.request.key) == "k");
    CHECK_FALSE(p.request.noreply);
    CHECK_FALSE(p.request.base64_key);
  }
  SECTION("value, ttl, opaque and key flags") {
    auto p = parse_ok("mg foo v t Oabc123 k s c f\r\n");
    CHECK(p.text(p.request.key) == "foo");
    CHECK_FALSE(p.request.noreply);
    CHECK(p.request.line_length == 28);
  }
  SECTION("q is quiet: noreply") {
    auto p = parse_ok("mg foo v q k O9\r\n");
    CHECK(p.request.noreply);
  }
  SECTION("b: the key is base64 and decoded_key() is what gets hashed") {
    auto p = parse_ok("mg Zm9v b v\r\n");
    CHECK(p.request.base64_key);
    CHECK(p.text(p.request.key) == "Zm9v");
    CHECK(p.decoded_key == "foo");
  }
  SECTION("b with binary key bytes") {
    auto p = parse_ok("mg AP+AAQ== b\r\n");
    CHECK(p.decoded_key == std::string("\x00\xff\x80\x01", 4));
  }
  SECTION("b with q and k") {
    auto p = parse_ok("mg Zm9vYmFy q k b v\r\n");
    CHECK(p.request.base64_key);
    CHECK(p.request.noreply);
    CHECK(p.decoded_key == "foobar");
  }
  SECTION("runs of spaces, bare LF") {
    auto p = parse_ok("mg   k   v  \n");
    CHECK(p.text(p.request.key) == "k");
    CHECK(p.request.key.offset == 5);
  }
  SECTION("19 tokens is within memcached's limit") {
    std::string line = "mg k";
    for (int i = 0; i < 17; ++i)
      line += " O" + std::to_string(i);
    parse_ok(line + "\r\n");
  }
  SECTION("a key of 250 bytes") {
    const std::string key = repeat('k', kMaxKeyLength);
    auto p = parse_ok("mg " + key + " v\r\n");
    CHECK(p.text(p.request.key) == key);
  }
}

TEST_CASE("ms: length, data block, flags", "[memcache][request][meta]") {
  SECTION("plain") {
    auto p = parse_ok("ms k 5\r\nhello\r\n");
    CHECK(p.request.command == Command::kMetaSet);
    CHECK(p.text(p.request.key) == "k");
    CHECK(p.request.data_length == 5);
    CHECK(p.request.line_length == 8);
    CHECK(p.request.frame_length == 15);
    CHECK_FALSE(p.request.noreply);
  }
  SECTION("with flags, including q") {
    auto p = parse_ok("ms k 2 T60 F5 C99 MS q O7 I\r\nhi\r\n");
    CHECK(p.request.noreply);
    CHECK(p.request.data_length == 2);
    CHECK(p.request.frame_length == p.request.line_length + 4);
  }
  SECTION("an empty value") {
    auto p = parse_ok("ms k 0\r\n\r\n");
    CHECK(p.request.data_length == 0);
    CHECK(p.request.frame_length == 10);
  }
  SECTION("base64 key") {
    auto p = parse_ok("ms Zm9v 2 b T0\r\nhi\r\n");
    CHECK(p.request.base64_key);
    CHECK(p.decoded_key == "foo");
  }
  SECTION("data containing an mn line and CRLF") {
    auto p = parse_ok("ms k 6\r\nmn\r\n\r\n\r\n");
    CHECK(p.request.data_length == 6);
  }
  SECTION("a key that looks like a flag is a key") {
    // Flags start after the length token.
    auto p = parse_ok("ms q 1\r\nx\r\n");
    CHECK_FALSE(p.request.noreply);
    CHECK(p.text(p.request.key) == "q");
  }
}

TEST_CASE("md, ma, me, mn", "[memcache][request][meta]") {
  auto p = parse_ok("md k\r\n");
  CHECK(p.request.command == Command::kMetaDelete);
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("md k q O1 C5\r\n");
  CHECK(p.request.noreply);

  p = parse_ok("ma counter N0 J13 D5 MI v\r\n");
  CHECK(p.request.command == Command::kMetaArithmetic);
  CHECK(p.text(p.request.key) == "counter");
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("ma counter q\r\n");
  CHECK(p.request.noreply);

  p = parse_ok("me k\r\n");
  CHECK(p.request.command == Command::kMetaDebug);

  // me has no quiet mode: a "q" must not turn its reply into an expected silence.
  p = parse_ok("me k q\r\n");
  CHECK_FALSE(p.request.noreply);

  p = parse_ok("md Zm9v b q\r\n");
  CHECK(p.request.base64_key);
  CHECK(p.request.noreply);
  CHECK(p.decoded_key == "foo");

  p = parse_ok("mn\r\n");
  CHECK(p.request.command == Command::kMetaNoop);
  CHECK(p.request.frame_length == 4);

  p = parse_ok("mn\n");
  CHECK(p.request.frame_length == 3);
}

TEST_CASE("command_name names every command", "[memcache][request]") {
  CHECK(command_name(Command::kGet) == "get");
  CHECK(command_name(Command::kGats) == "gats");
  CHECK(command_name(Command::kCas) == "cas");
  CHECK(command_name(Command::kMetaSet) == "ms");
  CHECK(command_name(Command::kMetaNoop) == "mn");
  CHECK(command_name(Command::kFlushAll) == "flush_all");
  CHECK(command_name(Command::kQuit) == "quit");
  CHECK(is_retrieval(Command::kGats));
  CHECK_FALSE(is_retrieval(Command::kSet));
  CHECK(is_storage(Command::kCas));
  CHECK_FALSE(is_storage(Command::kDelete));
  CHECK(is_meta(Command::kMetaNoop));
  CHECK_FALSE(is_meta(Command::kFlushAll));
}

// --- errors ------------------------------------------------------------------------------------

TEST_CASE("unknown commands and empty lines get ERROR", "[memcache][request][errors]") {
  for (std::string line :
       {"foo\r\n"s, "GET a\r\n"s, "gett a\r\n"s, "mz k\r\n"s, "m k\r\n"s, "\r\n"s, "\n"s,
        "   \r\n"s, "get\r\n"s, "gets\r\n"s, "gat\r\n"s, "get   \r\n"s, "delete\r\n"s,
        "incr k\r\n"s, "touch k\r\n"s, "verbosity\r\n"s}) {
    INFO(line);
    auto e = parse_invalid(line);
    CHECK(e.reply == reply::kError);
    CHECK(e.consumed == line.size());
    CHECK(e.swallow == 0);
    CHECK_FALSE(e.close);
    CHECK_FALSE(e.suppress);
  }
  // "foo noreply" is still an unknown command: memcached answers it.
  auto e = parse_invalid("foo noreply\r\n");
  CHECK(e.reply == reply::kError);
  CHECK_FALSE(e.suppress);
  // What follows the bad line is left alone.
  e = parse_invalid("bogus\r\nget a\r\n");
  CHECK(e.consumed == 7);
}

TEST_CASE("malformed storage lines", "[memcache][request][errors]") {
  struct Case {
    std::string line;
    uint64_t swallow;  // the data block (length + 2) once the length token was read
  };
  const std::vector<Case> cases = {
      {"set\r\n", 0},
      {"set k\r\n", 0},
      {"set k 0\r\n", 0},
      {"set k 0 0\r\n", 0},
      {"set k 0 0 x\r\n", 0},
      {"set k 0 0 -1\r\n", 0},
      {"set k 0 0 5x\r\n", 0},
      {"set k 0 0 99999999999999999999\r\n", 0},
      {"set k 0 0 2147483646\r\n", 0},  // over memcached's INT_MAX - 2
      {"set k x 0 5\r\n", 7},
      {"set k -1 0 5\r\n", 7},
      {"set k 0 x 5\r\n", 7},
      {"set k 0 1x 5\r\n", 7},
      {"set k 0 99999999999999999999 5\r\n", 7},
      {"set k 0 0 5 extra\r\n", 7},
      {"set k 0 0 5 noreply extra\r\n", 7},
      {"append k 0 0 10 1 2\r\n", 12},
      {"cas k 0 0 5\r\n", 7},
      {"cas k 0 0 5 x\r\n", 7},
      {"cas k 0 0 5 -1\r\n", 7},
      {"cas k 0 0 5 1 extra\r\n", 7},
      {"cas k 0 0 5 18446744073709551616\r\n", 7},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    auto e = parse_invalid(c.line);
    CHECK(e.reply == reply::kBadFormat);
    CHECK(e.consumed == c.line.size());
    CHECK(e.swallow == c.swallow);
    CHECK_FALSE(e.close);
    CHECK_FALSE(e.suppress);
  }
  SECTION("the data block is swallowed even when it has arrived") {
    auto e = parse_invalid("set k x 0 5\r\nhello\r\nget a\r\n");
    CHECK(e.consumed == 13);
    CHECK(e.swallow == 7);
  }
}

TEST_CASE("key length and key bytes", "[memcache][request][errors]") {
  const std::string long_key = repeat('k', kMaxKeyLength + 1);
  SECTION("251 bytes: too long") {
    auto e = parse_invalid("get " + long_key + "\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    CHECK(e.reply.substr(0, 13) == "CLIENT_ERROR ");
    CHECK(e.swallow == 0);
    e = parse_invalid("get a b " + long_key + " c\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    e = parse_invalid("set " + long_key + " 0 0 5\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    CHECK(e.swallow == 7);
    e = parse_invalid("delete " + long_key + "\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    e = parse_invalid("incr " + long_key + " 1\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    e = parse_invalid("touch " + long_key + " 1\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    e = parse_invalid("gat 1 " + long_key + "\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    e = parse_invalid("mg " + long_key + " v\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    e = parse_invalid("ms " + long_key + " 5 T0\r\n");
    CHECK(e.reply == reply::kKeyTooLong);
    CHECK(e.swallow == 7);
  }
  SECTION("control characters") {
    for (std::string key : {"a\tb"s, "a\x01"s, "\x7f"s, "a\rb"s, "\x1f"s, std::string("a\0b", 3)}) {
      INFO("key bytes: " << key.size());
      auto e = parse_invalid("get " + key + "\r\n");
      CHECK(e.reply == reply::kBadKey);
      CHECK(e.consumed == key.size() + 6);
      e = parse_invalid("gets ok " + key + "\r\n");
      CHECK(e.reply == reply::kBadKey);
      e = parse_invalid("set " + key + " 0 0 1\r\nx\r\n");
      CHECK(e.reply == reply::kBadKey);
      CHECK(e.swallow == 3);
      e = parse_invalid("delete " + key + "\r\n");
      CHECK(e.reply == reply::kBadKey);
      e = parse_invalid("incr " + key + " 1\r\n");
      CHECK(e.reply == reply::kBadKey);
      e = parse_invalid("touch " + key + " 1\r\n");
      CHECK(e.reply == reply::kBadKey);
      e = parse_invalid("mg " + key + " v\r\n");
      CHECK(e.reply == reply::kBadKey);
      e = parse_invalid("ms " + key + " 1\r\nx\r\n");
      CHECK(e.reply == reply::kBadKey);
      CHECK(e.swallow == 3);
    }
  }
}

TEST_CASE("a data block of the wrong length", "[memcache][request][errors]") {
  SECTION("longer than announced") {
    // memcached reads length + 2 bytes, finds no CRLF at their end and rejects them; the
    // leftover "\r\n" is then an empty line of its own.
    const std::string request = "set k 0 0 5\r\nhelloXX\r\n";
    auto e = parse_invalid(request);
    CHECK(e.reply == reply::kBadDataChunk);
    CHECK(e.consumed == 13 + 5 + 2);
    CHECK(e.swallow == 0);
    CHECK_FALSE(e.close);
    CHECK_FALSE(e.suppress);
    CHECK(check_every_split(request) ==
          std::vector<std::string>{describe(e), describe(ParseError{reply::kError, 2})});
  }
  SECTION("shorter than announced: waits, then rejects what is in the block's place") {
    auto e = parse_invalid("set k 0 0 5\r\nhi\r\nget a\r\n");
    CHECK(e.reply == reply::kBadDataChunk);
    CHECK(e.consumed == 20);
  }
  SECTION("cas and prepend too") {
    CHECK(parse_invalid("cas k 0 0 1 1\r\nxx\r\n").reply == reply::kBadDataChunk);
    CHECK(parse_invalid("prepend k 0 0 0\r\nx\r\n").reply == reply::kBadDataChunk);
  }
  SECTION("ms") {
    auto e = parse_invalid("ms k 2\r\nhiXX\r\n");
    CHECK(e.reply == reply::kBadDataChunk);
    CHECK(e.consumed == 8 + 2 + 2);
    // Meta quiet mode still returns errors.
    e = parse_invalid("ms k 2 q\r\nhiXX\r\n");
    CHECK(e.reply == reply::kBadDataChunk);
    CHECK_FALSE(e.suppress);
  }
}

TEST_CASE("values over item_size_max", "[memcache][request][errors]") {
  SECTION("default limit, data not sent yet") {
    const std::string line = "set k 0 0 1048577\r\n";
    auto e = parse_invalid(line);
    CHECK(e.reply == reply::kTooLarge);
    CHECK(e.consumed == line.size());
    CHECK(e.swallow == 1048577 + 2);
    CHECK_FALSE(e.close);
    CHECK_FALSE(e.suppress);
  }
  SECTION("small limit, data present") {
    ParserLimits limits;
    limits.item_size_max = 4;
    auto e = parse_invalid("set k 0 0 5\r\nhello\r\n", limits);
    CHECK(e.reply == reply::kTooLarge);
    CHECK(e.consumed == 13);
    CHECK(e.swallow == 7);
    e = parse_invalid("cas k 0 0 5 1\r\n", limits);
    CHECK(e.reply == reply::kTooLarge);
    e = parse_invalid("ms k 5 T0\r\n", limits);
    CHECK(e.reply == reply::kTooLarge);
    CHECK(e.consumed == 11);
    CHECK(e.swallow == 7);
  }
  SECTION("the largest length memcached reads") {
    auto e = parse_invalid("set k 0 0 2147483645\r\n");
    CHECK(e.reply == reply::kTooLarge);
    CHECK(e.swallow == 2147483647ull);
  }
}

TEST_CASE("noreply requests that fail send nothing", "[memcache][request][errors]") {
  struct Case {
    std::string request;
    std::string_view reply;
    uint64_t swallow;
  };
  const std::vector<Case> cases = {
      {"set k x 0 5 noreply\r\n", reply::kBadFormat, 7},
      {"set k 0 0 x noreply\r\n", reply::kBadFormat, 0},
      {"set k 0 0 noreply\r\n", reply::kBadFormat, 0},
      {"add k\x01 0 0 5 noreply\r\n", reply::kBadKey, 7},
      {"set k 0 0 2000000 noreply\r\n", reply::kTooLarge, 2000002},
      {"set k 0 0 5 noreply\r\nhelloXX\r\n", reply::kBadDataChunk, 0},
      {"cas k 0 0 1 x noreply\r\n", reply::kBadFormat, 3},
      {"incr k abc noreply\r\n", reply::kBadDelta, 0},
      {"touch k abc noreply\r\n", reply::kBadExptime, 0},
      {"delete k 1 noreply\r\n", reply::kDeleteUsage, 0},
      {"flush_all x noreply\r\n", reply::kBadFormat, 0},
      {"verbosity x noreply\r\n", reply::kBadFormat, 0},
  };
  for (const auto& c : cases) {
    INFO(c.request);
    auto e = parse_invalid(c.request);
    CHECK(e.reply == c.reply);
    CHECK(e.swallow == c.swallow);
    CHECK(e.suppress);
    CHECK_FALSE(e.close);
  }
}

TEST_CASE("numeric arguments of one-line commands", "[memcache][request][errors]") {
  for (std::string line : {"incr k abc\r\n"s, "incr k -1\r\n"s, "decr k 1.5\r\n"s,
                           "incr k 18446744073709551616\r\n"s}) {
    INFO(line);
    auto e = parse_invalid(line);
    CHECK(e.reply == reply::kBadDelta);
    CHECK(e.consumed == line.size());
    CHECK_FALSE(e.suppress);
  }
  for (std::string line : {"touch k abc\r\n"s, "touch k 1x\r\n"s, "touch k --1\r\n"s,
                           "touch k -\r\n"s, "gat abc k\r\n"s, "gats x a b\r\n"s}) {
    INFO(line);
    auto e = parse_invalid(line);
    CHECK(e.reply == reply::kBadExptime);
    CHECK(e.consumed == line.size());
  }
  for (std::string line : {"delete k 1\r\n"s, "delete k 0 0\r\n"s, "delete k x noreply\r\n"s}) {
    INFO(line);
    CHECK(parse_invalid(line).reply == reply::kDeleteUsage);
  }
  for (std::string line : {"flush_all x\r\n"s, "flush_all 4294967296\r\n"s}) {
    INFO(line);
    CHECK(parse_invalid(line).reply == reply::kBadFormat);
  }
}

TEST_CASE("meta errors", "[memcache][request][meta][errors]") {
  SECTION("a missing key") {
    // memcached 1.6.18 answers "ERROR"; either error line tells the client the same.
    auto e = parse_invalid("mg\r\n");
    CHECK((e.reply == reply::kError || e.reply == reply::kBadFormat));
    CHECK(e.consumed == 4);
    e = parse_invalid("ms k\r\n");
    CHECK(e.reply == reply::kBadFormat);
    CHECK(e.swallow == 0);
  }
  SECTION("an ms length that does not read is a bad data chunk, nothing swallowed") {
    for (std::string line :
         {"ms k abc\r\n"s, "ms k -1\r\n"s, "ms k 2x T0\r\n"s, "ms k 2147483646\r\n"s}) {
      INFO(line);
      auto e = parse_invalid(line);
      CHECK(e.reply == reply::kBadDataChunk);
      CHECK(e.consumed == line.size());
      CHECK(e.swallow == 0);
    }
  }
  SECTION("a key that is not base64") {
    auto e = parse_invalid("mg @@@@ b v\r\n");
    CHECK(e.reply == reply::kBadBase64);
    CHECK(e.swallow == 0);
    e = parse_invalid("mg Zm9 b\r\n");
    CHECK(e.reply == reply::kBadBase64);
    e = parse_invalid("md k b q\r\n");
    CHECK(e.reply == reply::kBadBase64);
    CHECK_FALSE(e.suppress);
    e = parse_invalid("ms k 2 b\r\nhi\r\n");
    CHECK(e.reply == reply::kBadBase64);
    CHECK(e.consumed == 10);
    CHECK(e.swallow == 4);
  }
  SECTION("more tokens than memcached takes") {
    std::string line = "mg k";
    for (int i = 0; i < 23; ++i)
      line += " O" + std::to_string(i);
    auto e = parse_invalid(line + "\r\n");
    CHECK(e.reply == reply::kTooManyTokens);
    CHECK(e.swallow == 0);
  }
  SECTION("quiet mode does not hide errors") {
    auto e = parse_invalid("mg k\x01 q\r\n");
    CHECK(e.reply == reply::kBadKey);
    CHECK_FALSE(e.suppress);
  }
}

TEST_CASE("server administration commands are refused clearly", "[memcache][request][errors]") {
  for (std::string line :
       {"shutdown\r\n"s, "shutdown graceful\r\n"s, "slabs reassign 1 2\r\n"s,
        "slabs automove 1\r\n"s, "lru_crawler metadump all\r\n"s, "lru mode flat\r\n"s,
        "watch fetchers\r\n"s, "cache_memlimit 100\r\n"s, "misbehave\r\n"s, "debugtime 1\r\n"s,
        "extstore free_memchunks 0 0\r\n"s, "refresh_certs\r\n"s, "shutdown noreply\r\n"s}) {
    INFO(line);
    auto e = parse_invalid(line);
    CHECK(e.reply == reply::kUnsupported);
    CHECK(e.consumed == line.size());
    CHECK(e.swallow == 0);
    CHECK_FALSE(e.close);
    CHECK_FALSE(e.suppress);
  }
}

TEST_CASE("framing lost: overlong line, binary protocol", "[memcache][request][errors]") {
  SECTION("a line past request_line_max without LF closes") {
    ParserLimits limits;
    limits.request_line_max = 16;
    RequestParser parser(limits);
    Request request;
    const std::string line = "get " + repeat('a', 40);
    for (size_t have = 1; have < 16; ++have) {
      INFO("have " << have);
      REQUIRE(parser.parse(line.data(), have, request) == ParseStatus::kNeedMore);
    }
    auto e = parse_invalid(line.substr(0, 16), limits);
    CHECK(e.reply == reply::kLineTooLong);
    CHECK(e.close);
    CHECK_FALSE(e.suppress);
    CHECK(e.consumed == 16);
    e = parse_invalid(line, limits);
    CHECK(e.reply == reply::kLineTooLong);
    CHECK(e.close);
    // Even when the line would have been noreply.
    e = parse_invalid("set k 0 0 1 noreply", ParserLimits{8, 1024});
    CHECK(e.close);
    CHECK_FALSE(e.suppress);
  }
  SECTION("a line of exactly request_line_max bytes, LF included, is fine") {
    ParserLimits limits;
    limits.request_line_max = 16;
    auto p = parse_ok("get " + repeat('a', 10) + "\r\n", limits);
    CHECK(p.request.line_length == 16);
    auto e = parse_invalid("get " + repeat('a', 11) + "\r\n", limits);
    CHECK(e.reply == reply::kLineTooLong);
    CHECK(e.close);
  }
  SECTION("the line limit does not apply to the data block") {
    ParserLimits limits;
    limits.request_line_max = 16;
    parse_ok("set k 0 0 40\r\n" + repeat('v', 40) + "\r\n", limits);
  }
  SECTION("binary protocol magic") {
    const std::string request("\x80\x00\x00\x03\x00\x00\x00\x00", 8);
    auto e = parse_invalid(request);
    CHECK(e.reply == reply::kBinaryProtocol);
    CHECK(e.close);
    CHECK(e.consumed == 8);
    // Known from the first byte.
    e = parse_invalid(request.substr(0, 1));
    CHECK(e.close);
  }
}

// --- pipelines ---------------------------------------------------------------------------------

TEST_CASE("a pipeline parses the same however it is cut", "[memcache][request][pipeline]") {
  const std::vector<std::string> requests = {
      "get a\r\n",
      "gets a b c\r\n",
      "set k 1 2 5\r\nhello\r\n",
      "add k 0 0 5 noreply\r\nworld\r\n",
      "gat 10 x y\n",
      "cas k 0 0 3 77\r\nabc\r\n",
      "mg k v q\r\n",
      "ms Zm9v 4 b T0\r\nab\r\n\r\n",
      "mn\r\n",
      "delete k 0 noreply\r\n",
      "bogus command\r\n",
      "set k x 0 5\r\nhello\r\n",
      "incr n 1\r\n",
      "set k 0 0 5\r\nhelloXX\r\n",
      "set k 0 0 2 noreply\r\nhi\r\n",
      "touch k 5\r\n",
      "flush_all 0\r\n",
      "stats items\r\n",
      "shutdown\r\n",
      "md k q\r\n",
      "ma k N0\r\n",
      "me k\r\n",
      "version\r\n",
      "prepend k 0 0 0\r\n\r\n",
      "get " + repeat('z', 250) + "\r\n",
      "quit\r\n",
  };
  std::string stream;
  std::vector<std::string> expected;
  for (const auto& r : requests) {
    stream += r;
    for (auto& line : run_session(r, {r.size()}))
      expected.push_back(line);
  }
  const auto log = check_every_split(stream);
  CHECK(log == expected);
  // The bad data chunk leaves its "\r\n" as an empty line; everything else is one outcome each.
  CHECK(log.size() == requests.size() + 1);
}

TEST_CASE("a pipeline of a hundred requests", "[memcache][request][pipeline]") {
  std::string stream;
  for (int i = 0; i < 100; ++i) {
    const std::string key = "key" + std::to_string(i);
    switch (i % 5) {
      case 0:
        stream += "get " + key + " other\r\n";
        break;
      case 1:
        stream += "set " + key + " 0 0 " + std::to_string(i) + "\r\n" + repeat('x', i) + "\r\n";
        break;
      case 2:
        stream += "ms " + key + " " + std::to_string(i) + " q\r\n" + repeat('y', i) + "\r\n";
        break;
      case 3:
        stream += "delete " + key + " noreply\r\n";
        break;
      default:
        stream += "mg " + key + " v k\r\n";
        break;
    }
  }
  RequestParser parser;
  size_t offset = 0;
  int parsed = 0;
  while (offset < stream.size()) {
    Request request;
    REQUIRE(parser.parse(stream.data() + offset, stream.size() - offset, request) ==
            ParseStatus::kOk);
    offset += request.frame_length;
    ++parsed;
  }
  CHECK(parsed == 100);
  CHECK(offset == stream.size());
  // Byte by byte is the same.
  std::vector<size_t> bytewise;
  for (size_t i = 1; i <= stream.size(); ++i)
    bytewise.push_back(i);
  CHECK(run_session(stream, bytewise) == run_session(stream, {stream.size()}));
  CHECK(run_session(stream, {stream.size()}).size() == 100);
}

TEST_CASE("a session closes on a lost frame, whatever came before", "[memcache][request]") {
  ParserLimits limits;
  limits.request_line_max = 32;
  const std::string stream = "get a\r\nset k 0 0 1\r\nx\r\n" + repeat('q', 40);
  const auto log = check_every_split(stream, limits);
  REQUIRE(log.size() == 3);
  CHECK(log[2].find("close=1") != std::string::npos);
}

// memcached 1.6.18 refuses a meta command with 20 or more tokens ("CLIENT_ERROR options flags
// too long"), for ms before reading its length, so it would then read the data block as a
// command and answer twice for one request. cachegate refuses such requests itself and skips
// the block.
TEST_CASE("meta commands with 20 or more tokens are refused as memcached does",
          "[memcache][request][meta]") {
  std::string flags;
  for (int i = 0; i < 17; ++i)
    flags += " T" + std::to_string(i);
  // ms k 2 + 17 flags = 20 tokens.
  auto e = parse_invalid("ms k 2" + flags + "\r\nhi\r\n");
  CHECK(e.reply.substr(0, 13) == "CLIENT_ERROR ");
  CHECK(e.swallow == 4);
  // mg k + 18 flags = 20 tokens.
  e = parse_invalid("mg k" + flags + " v\r\n");
  CHECK(e.reply.substr(0, 13) == "CLIENT_ERROR ");
}

// memcached (1.6.18, and 1.4 before it) closes a connection when it holds more than 2048 bytes of
// a line without its LF, unless the line starts with "get " or "gets " (try_read_command_ascii).
// On a shared backend connection that would fail every request in flight on it, depending only
// on where a read happens to end; so forwarded lines past 2048 bytes, other than get/gets, are
// refused (and storage commands keep framing: their data block is skipped).
TEST_CASE("lines that make memcached drop the connection are refused", "[memcache][request]") {
  const std::string pad(3000, ' ');
  for (const std::string& request :
       {"mg k v" + pad + "\r\n", "md k q" + pad + "\r\n", "ms k 1 T0" + pad + "\r\nx\r\n",
        "delete k" + pad + "\r\n", "incr k 1" + pad + "\r\n", "touch k 1" + pad + "\r\n",
        "set k 0 0 1" + pad + "\r\nx\r\n"}) {
    INFO(request.substr(0, 12));
    RequestParser parser;
    Request parsed;
    CHECK(parser.parse(request.data(), request.size(), parsed) == ParseStatus::kInvalid);
  }
}

TEST_CASE("spaces before the command are not part of what is forwarded", "[memcache][request]") {
  const std::string request = std::string(300, ' ') + "get k\r\n";
  RequestParser parser;
  Request parsed;
  REQUIRE(parser.parse(request.data(), request.size(), parsed) == ParseStatus::kOk);
  CHECK(parsed.start == 300);
  CHECK(std::string_view(request).substr(parsed.start, parsed.frame_length - parsed.start) ==
        "get k\r\n");
  const std::string plain = "set k 0 0 1\r\nx\r\n";
  REQUIRE(parser.parse(plain.data(), plain.size(), parsed) == ParseStatus::kOk);
  CHECK(parsed.start == 0);
}

TEST_CASE("me decodes its key only when its one flag is exactly b", "[memcache][request][meta]") {
  RequestParser parser;
  Request parsed;
  for (const std::string request : {"me YWJj bx\r\n", "me YWJj x b\r\n", "me YWJj\r\n"}) {
    INFO(request);
    REQUIRE(parser.parse(request.data(), request.size(), parsed) == ParseStatus::kOk);
    CHECK_FALSE(parsed.base64_key);
  }
  const std::string request = "me YWJj b\r\n";
  REQUIRE(parser.parse(request.data(), request.size(), parsed) == ParseStatus::kOk);
  CHECK(parsed.base64_key);
  CHECK(parser.decoded_key() == "abc");
}

}  // namespace
}  // namespace cachegate::protocol::memcache
