// ReplyFramer and ValueItems. A backend connection cuts its reply stream by the shape each
// request expects, strictly in order, so a frame that ends one byte early or late corrupts every
// reply after it. Each reply is therefore also fed one byte at a time and split at every point,
// with the framer resumed the way a connection resumes it (reset() only after kOk).

#include "protocol/memcache_reply.h"

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

// Fresh, exactly sized storage for every call: the framer must keep offsets, not pointers (a
// connection's buffer moves when it grows), and must not read past `size`.
std::unique_ptr<char[]> exact_copy(std::string_view bytes) {
  std::unique_ptr<char[]> copy(new char[bytes.size() == 0 ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return copy;
}

ParseStatus frame_copy(ReplyFramer& framer, std::string_view bytes, ReplyShape shape,
                       ReplyFrame& out) {
  auto copy = exact_copy(bytes);
  return framer.frame(copy.get(), bytes.size(), shape, out);
}

const char* shape_name(ReplyShape shape) {
  switch (shape) {
    case ReplyShape::kMcLine:
      return "line";
    case ReplyShape::kMcRetrieval:
      return "retrieval";
    case ReplyShape::kMcMeta:
      return "meta";
    case ReplyShape::kMcMetaQuiet:
      return "meta-quiet";
    default:
      return "resp";
  }
}

std::string describe(const ReplyFrame& f) {
  return "length=" + std::to_string(f.length) + " payload=" + std::to_string(f.payload_length) +
         " error=" + std::to_string(f.error);
}

// Plays a stream of replies to a framer the way a backend connection does, bytes arriving up to
// each position in `arrivals`: frame the front reply with its request's shape, hand it over,
// reset, consume it; wait on kNeedMore; stop on kInvalid.
std::vector<std::string> run_connection(std::string_view stream,
                                        const std::vector<ReplyShape>& shapes,
                                        const std::vector<size_t>& arrivals,
                                        uint64_t reply_size_max = 64 * 1024 * 1024) {
  ReplyFramer framer(reply_size_max);
  std::string buffered;
  size_t received = 0;
  size_t next_shape = 0;
  std::vector<std::string> log;
  for (size_t upto : arrivals) {
    buffered.append(stream.substr(received, upto - received));
    received = upto;
    while (next_shape < shapes.size() && !buffered.empty()) {
      ReplyFrame frame;
      const ParseStatus status = frame_copy(framer, buffered, shapes[next_shape], frame);
      if (status == ParseStatus::kNeedMore) break;
      if (status == ParseStatus::kInvalid) {
        log.push_back("invalid");
        return log;
      }
      REQUIRE(frame.length > 0);
      REQUIRE(frame.length <= buffered.size());
      REQUIRE(frame.payload_length <= frame.length);
      log.push_back(std::string(shape_name(shapes[next_shape])) + " " + describe(frame) + " '" +
                    buffered.substr(0, frame.payload_length) + "'");
      framer.reset();
      buffered.erase(0, frame.length);
      ++next_shape;
    }
  }
  if (!buffered.empty()) log.push_back("left over: " + std::to_string(buffered.size()));
  return log;
}

std::vector<std::string> check_every_split(std::string_view stream,
                                           const std::vector<ReplyShape>& shapes,
                                           uint64_t reply_size_max = 64 * 1024 * 1024) {
  const auto whole = run_connection(stream, shapes, {stream.size()}, reply_size_max);
  std::vector<size_t> bytewise;
  for (size_t i = 1; i <= stream.size(); ++i)
    bytewise.push_back(i);
  {
    INFO("one byte at a time");
    REQUIRE(run_connection(stream, shapes, bytewise, reply_size_max) == whole);
  }
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    INFO("split at " << cut);
    REQUIRE(run_connection(stream, shapes, {cut, stream.size()}, reply_size_max) == whole);
  }
  return whole;
}

// `reply` must be exactly one complete reply of `shape`. Checks it byte by byte and at every
// split point with one resumed framer, and returns the frame.
ReplyFrame frame_ok(std::string_view reply, ReplyShape shape,
                    uint64_t reply_size_max = 64 * 1024 * 1024) {
  INFO(shape_name(shape) << " reply: " << reply);
  ReplyFramer framer(reply_size_max);
  ReplyFrame whole;
  REQUIRE(frame_copy(framer, reply, shape, whole) == ParseStatus::kOk);
  framer.reset();
  REQUIRE(whole.length == reply.size());
  REQUIRE(whole.payload_length <= whole.length);

  // One byte at a time: kNeedMore until the last byte, then the same frame.
  for (size_t i = 1; i < reply.size(); ++i) {
    INFO("prefix of " << i << " bytes");
    ReplyFrame partial;
    REQUIRE(frame_copy(framer, reply.substr(0, i), shape, partial) == ParseStatus::kNeedMore);
  }
  ReplyFrame last;
  REQUIRE(frame_copy(framer, reply, shape, last) == ParseStatus::kOk);
  REQUIRE(describe(last) == describe(whole));
  framer.reset();

  // Every split: the first part, then all of it.
  for (size_t cut = 1; cut < reply.size(); ++cut) {
    INFO("split at " << cut);
    ReplyFrame partial;
    REQUIRE(frame_copy(framer, reply.substr(0, cut), shape, partial) == ParseStatus::kNeedMore);
    ReplyFrame again;
    REQUIRE(frame_copy(framer, reply, shape, again) == ParseStatus::kOk);
    REQUIRE(describe(again) == describe(whole));
    framer.reset();
  }

  // Followed by the start of the next reply: the frame ends where it ended alone.
  const std::string followed = std::string(reply) + "VALUE next 0 1\r\n";
  ReplyFrame before_next;
  REQUIRE(frame_copy(framer, followed, shape, before_next) == ParseStatus::kOk);
  REQUIRE(describe(before_next) == describe(whole));
  framer.reset();
  return whole;
}

// `reply` read as `shape` must be rejected, and no prefix of it may be taken as a frame.
void frame_invalid(std::string_view reply, ReplyShape shape,
                   uint64_t reply_size_max = 64 * 1024 * 1024) {
  INFO(shape_name(shape) << " reply: " << reply);
  ReplyFramer framer(reply_size_max);
  ReplyFrame frame;
  REQUIRE(frame_copy(framer, reply, shape, frame) == ParseStatus::kInvalid);
  ReplyFramer fresh(reply_size_max);
  for (size_t i = 1; i < reply.size(); ++i) {
    INFO("prefix of " << i << " bytes");
    ReplyFrame partial;
    const ParseStatus status = frame_copy(fresh, reply.substr(0, i), shape, partial);
    REQUIRE(status != ParseStatus::kOk);
    if (status == ParseStatus::kInvalid) return;  // the connection is reset here
  }
  REQUIRE(frame_copy(fresh, reply, shape, frame) == ParseStatus::kInvalid);
}

// --- kMcLine -----------------------------------------------------------------------------------

TEST_CASE("one-line replies", "[memcache][reply]") {
  for (std::string line :
       {"STORED\r\n"s, "NOT_STORED\r\n"s, "EXISTS\r\n"s, "NOT_FOUND\r\n"s, "DELETED\r\n"s,
        "TOUCHED\r\n"s, "OK\r\n"s, "42\r\n"s, "18446744073709551615\r\n"s, "VERSION 1.6.18\r\n"s,
        "END\r\n"s, "STORED\n"s}) {
    auto f = frame_ok(line, ReplyShape::kMcLine);
    CHECK(f.payload_length == line.size());
    CHECK_FALSE(f.error);
  }
  for (std::string line :
       {"ERROR\r\n"s, "ERROR unknown command\r\n"s, "CLIENT_ERROR bad data chunk\r\n"s,
        "SERVER_ERROR out of memory storing object\r\n"s,
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"s}) {
    auto f = frame_ok(line, ReplyShape::kMcLine);
    CHECK(f.payload_length == line.size());
    CHECK(f.error);
  }
}

TEST_CASE("a retrieval or meta reply where one line was expected is out of step",
          "[memcache][reply]") {
  frame_invalid("VALUE k 0 1\r\nx\r\nEND\r\n", ReplyShape::kMcLine);
  frame_invalid("VA 1\r\nx\r\n", ReplyShape::kMcLine);
}

TEST_CASE("a line memcached never sends where one line was expected is not a reply",
          "[memcache][reply]") {
  // A server that speaks another protocol, or a stream gone wrong: its lines must not reach the
  // client as answers.
  for (std::string line : {"HTTP/1.1 200 OK\r\n"s, "WHATEVER\r\n"s, "\r\n"s, "stored\r\n"s,
                           "STORED \r\n"s, "HD\r\n"s, "-1\r\n"s, "123456789012345678901\r\n"s,
                           "+OK\r\n"s, std::string("\x81\x00\xde\xad\r\n", 6)}) {
    INFO(line);
    frame_invalid(line, ReplyShape::kMcLine);
  }
}

TEST_CASE("is_error_line", "[memcache][reply]") {
  CHECK(is_error_line("ERROR"));
  CHECK(is_error_line("ERROR too many tokens"));
  CHECK(is_error_line("CLIENT_ERROR bad command line format"));
  CHECK(is_error_line("SERVER_ERROR out of memory"));
  CHECK_FALSE(is_error_line("ERRORS"));
  CHECK_FALSE(is_error_line("STORED"));
  CHECK_FALSE(is_error_line("END"));
  CHECK_FALSE(is_error_line(""));
  CHECK_FALSE(is_error_line("VALUE ERROR 0 1"));
}

// --- kMcRetrieval ------------------------------------------------------------------------------

TEST_CASE("retrieval replies: zero to many items", "[memcache][reply]") {
  SECTION("a miss") {
    auto f = frame_ok("END\r\n", ReplyShape::kMcRetrieval);
    CHECK(f.payload_length == 5);
    CHECK_FALSE(f.error);
  }
  SECTION("one item") {
    const std::string reply = "VALUE k 0 5\r\nhello\r\nEND\r\n";
    auto f = frame_ok(reply, ReplyShape::kMcRetrieval);
    CHECK(f.payload_length == reply.size());
    CHECK_FALSE(f.error);
  }
  SECTION("gets: items with a cas unique") {
    frame_ok("VALUE a 5 3 12345\r\nabc\r\nVALUE b 4294967295 0 18446744073709551615\r\n\r\nEND\r\n",
             ReplyShape::kMcRetrieval);
  }
  SECTION("a value holding END and VALUE lines is skipped by its length") {
    const std::string data = "\r\nEND\r\nVALUE x 0 1\r\ny\r\nEND\r\n";
    const std::string reply =
        "VALUE k 0 " + std::to_string(data.size()) + "\r\n" + data + "\r\nEND\r\n";
    auto f = frame_ok(reply, ReplyShape::kMcRetrieval);
    CHECK(f.length == reply.size());
  }
  SECTION("an empty value") {
    frame_ok("VALUE k 0 0\r\n\r\nEND\r\n", ReplyShape::kMcRetrieval);
  }
  SECTION("binary values") {
    frame_ok("VALUE k 0 4\r\n\x00\r\n\x80\r\nEND\r\n"s, ReplyShape::kMcRetrieval);
  }
  SECTION("many items") {
    std::string reply;
    for (int i = 0; i < 20; ++i) {
      const std::string data(static_cast<size_t>(i), static_cast<char>('a' + i % 26));
      reply += "VALUE key" + std::to_string(i) + " " + std::to_string(i) + " " +
               std::to_string(data.size()) + "\r\n" + data + "\r\n";
    }
    reply += "END\r\n";
    auto f = frame_ok(reply, ReplyShape::kMcRetrieval);
    CHECK(f.length == reply.size());
  }
  SECTION("a key of 250 bytes") {
    frame_ok("VALUE " + std::string(250, 'k') + " 0 1\r\nx\r\nEND\r\n", ReplyShape::kMcRetrieval);
  }
}

TEST_CASE("an error line ends a retrieval reply, also after items", "[memcache][reply]") {
  for (std::string error : {"ERROR\r\n"s, "CLIENT_ERROR bad command line format\r\n"s,
                            "SERVER_ERROR out of memory writing get response\r\n"s}) {
    auto f = frame_ok(error, ReplyShape::kMcRetrieval);
    CHECK(f.error);
    CHECK(f.payload_length == error.size());
    const std::string after_items = "VALUE a 0 1\r\nx\r\nVALUE b 0 2\r\nyy\r\n" + error;
    f = frame_ok(after_items, ReplyShape::kMcRetrieval);
    CHECK(f.error);
    CHECK(f.length == after_items.size());
    CHECK(f.payload_length == after_items.size());
  }
}

TEST_CASE("malformed retrieval replies", "[memcache][reply]") {
  for (std::string reply : {
           "STORED\r\n"s,
           "garbage\r\n"s,
           "VA 1\r\nx\r\n"s,
           "VALUE k 0\r\nx\r\nEND\r\n"s,
           "VALUE k 0 x\r\nx\r\nEND\r\n"s,
           "VALUE k 0 -1\r\nEND\r\n"s,
           "VALUE k 0 1\r\nxy\r\nEND\r\n"s,  // data block longer than announced
           "VALUE k 0 2\r\nx\r\nEND\r\n"s,   // shorter: the CRLF is not where it must be
           "VALUE a 0 1\r\nx\r\nSTORED\r\n"s,
           "VALUE a 0 1\r\nx\r\nEND \r\n"s,
           "VALUE k 0 99999999999999999999\r\n"s,
       }) {
    frame_invalid(reply, ReplyShape::kMcRetrieval);
  }
}

TEST_CASE("retrieval replies are bounded by reply_size_max", "[memcache][reply]") {
  // One VALUE over the bound is refused from its line, before its data arrives.
  frame_invalid("VALUE k 0 101\r\n", ReplyShape::kMcRetrieval, 100);
  // Items that fit one by one but not together.
  frame_invalid("VALUE a 0 40\r\n" + std::string(40, 'a') + "\r\nVALUE b 0 40\r\n" +
                    std::string(40, 'b') + "\r\nEND\r\n",
                ReplyShape::kMcRetrieval, 100);
  // At the bound.
  frame_ok("VALUE a 0 40\r\n" + std::string(40, 'a') + "\r\nEND\r\n", ReplyShape::kMcRetrieval,
           100);
}

TEST_CASE("reply lines longer than kMaxReplyLine", "[memcache][reply]") {
  const std::string almost(kMaxReplyLine - 1, 'x');
  const std::string too_long(kMaxReplyLine, 'x');
  for (ReplyShape shape : {ReplyShape::kMcLine, ReplyShape::kMcRetrieval, ReplyShape::kMcMeta,
                           ReplyShape::kMcMetaQuiet}) {
    INFO(shape_name(shape));
    ReplyFramer framer;
    ReplyFrame frame;
    CHECK(frame_copy(framer, almost, shape, frame) == ParseStatus::kNeedMore);
    ReplyFramer framer2;
    CHECK(frame_copy(framer2, too_long, shape, frame) == ParseStatus::kInvalid);
  }
  // The longest accepted line, LF included.
  const std::string longest = "SERVER_ERROR " + std::string(kMaxReplyLine - 15, 'x') + "\r\n";
  REQUIRE(longest.size() == kMaxReplyLine);
  ReplyFramer framer;
  ReplyFrame frame;
  CHECK(frame_copy(framer, longest, ReplyShape::kMcLine, frame) == ParseStatus::kOk);
  // After items the bound applies to each line on its own.
  ReplyFramer framer2;
  CHECK(frame_copy(framer2, "VALUE a 0 1\r\nx\r\n" + too_long, ReplyShape::kMcRetrieval, frame) ==
        ParseStatus::kInvalid);
}

// --- kMcMeta -----------------------------------------------------------------------------------

TEST_CASE("meta replies", "[memcache][reply][meta]") {
  for (std::string line :
       {"HD\r\n"s, "EN\r\n"s, "NF\r\n"s, "NS\r\n"s, "EX\r\n"s, "MN\r\n"s, "HD Oabc kZm9v b\r\n"s,
        "HD c123 t-1\r\n"s, "ME foo exp=-1 la=3 cas=2 fetch=no cls=1 size=63\r\n"s}) {
    auto f = frame_ok(line, ReplyShape::kMcMeta);
    CHECK(f.payload_length == line.size());
    CHECK_FALSE(f.error);
  }
  for (std::string line : {"CLIENT_ERROR bad command line format\r\n"s,
                           "SERVER_ERROR out of memory\r\n"s, "ERROR\r\n"s}) {
    auto f = frame_ok(line, ReplyShape::kMcMeta);
    CHECK(f.error);
  }
  SECTION("VA with its data block") {
    auto f = frame_ok("VA 5 s5 t-1\r\nhello\r\n", ReplyShape::kMcMeta);
    CHECK(f.length == 20);
    CHECK(f.payload_length == 20);
    CHECK_FALSE(f.error);
    frame_ok("VA 0\r\n\r\n", ReplyShape::kMcMeta);
    // Data that looks like replies is data.
    frame_ok("VA 12 f0\r\nMN\r\nHD\r\nEN\r\n\r\n", ReplyShape::kMcMeta);
  }
}

TEST_CASE("malformed meta replies", "[memcache][reply][meta]") {
  for (std::string reply :
       {"STORED\r\n"s, "garbage\r\n"s, "END\r\n"s, "VALUE k 0 1\r\nx\r\nEND\r\n"s, "VA x\r\n"s,
        "VA -1\r\n"s, "VA 1\r\nxy\r\n"s, "VA 3\r\nx\r\nMN\r\n"s, "H\r\n"s, "\r\n"s}) {
    frame_invalid(reply, ReplyShape::kMcMeta);
  }
  frame_invalid("VA 11\r\n", ReplyShape::kMcMeta, 10);
  frame_ok("VA 10\r\n0123456789\r\n", ReplyShape::kMcMeta, 10);
}

// --- kMcMetaQuiet ------------------------------------------------------------------------------

TEST_CASE("quiet meta replies end at the MN of the appended mn", "[memcache][reply][meta]") {
  SECTION("nothing before MN: the request's reply is empty") {
    auto f = frame_ok("MN\r\n", ReplyShape::kMcMetaQuiet);
    CHECK(f.length == 4);
    CHECK(f.payload_length == 0);
    CHECK_FALSE(f.error);
  }
  SECTION("a value, then MN") {
    auto f = frame_ok("VA 1\r\nx\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    CHECK(f.length == 13);
    CHECK(f.payload_length == 9);
    CHECK_FALSE(f.error);
  }
  SECTION("one line, then MN") {
    auto f = frame_ok("HD O5\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    CHECK(f.length == 11);
    CHECK(f.payload_length == 7);
    f = frame_ok("EN\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    CHECK(f.payload_length == 4);
  }
  SECTION("a value whose data is MN") {
    auto f = frame_ok("VA 4\r\nMN\r\n\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    CHECK(f.payload_length == 12);
    CHECK(f.length == 16);
  }
  SECTION("two replies before MN are out of step") {
    frame_invalid("HD\r\nHD\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    frame_invalid("VA 1\r\nx\r\nEN\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    frame_invalid("CLIENT_ERROR x\r\nHD\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
  }
  SECTION("garbage") {
    frame_invalid("STORED\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
    frame_invalid("VA 2\r\nx\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
  }
}

// --- streams -----------------------------------------------------------------------------------

TEST_CASE("a stream of replies frames the same however it is cut", "[memcache][reply]") {
  const std::vector<std::pair<ReplyShape, std::string>> replies = {
      {ReplyShape::kMcLine, "STORED\r\n"},
      {ReplyShape::kMcRetrieval, "VALUE a 0 5\r\nhello\r\nVALUE b 1 3 99\r\nEND\r\nEND\r\n"},
      {ReplyShape::kMcMeta, "VA 2 f3\r\nhi\r\n"},
      {ReplyShape::kMcMetaQuiet, "MN\r\n"},
      {ReplyShape::kMcMetaQuiet, "VA 2\r\nMN\r\nMN\r\n"},
      {ReplyShape::kMcRetrieval, "END\r\n"},
      {ReplyShape::kMcMeta, "HD\r\n"},
      {ReplyShape::kMcRetrieval, "VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory\r\n"},
      {ReplyShape::kMcLine, "DELETED\r\n"},
      {ReplyShape::kMcMetaQuiet, "NF\r\nMN\r\n"},
      {ReplyShape::kMcLine, "ERROR\r\n"},
      {ReplyShape::kMcMeta, "EN\r\n"},
  };
  std::string stream;
  std::vector<ReplyShape> shapes;
  std::vector<std::string> expected;
  for (const auto& [shape, reply] : replies) {
    stream += reply;
    shapes.push_back(shape);
    for (auto& entry : run_connection(reply, {shape}, {reply.size()}))
      expected.push_back(entry);
  }
  const auto log = check_every_split(stream, shapes);
  CHECK(log == expected);
  CHECK(log.size() == replies.size());
}

TEST_CASE("a framer resumes a retrieval reply across reads", "[memcache][reply]") {
  // A large multi-get arriving in chunks, as it does from a socket.
  std::string reply;
  for (int i = 0; i < 50; ++i)
    reply += "VALUE k" + std::to_string(i) + " 0 100\r\n" + std::string(100, 'v') + "\r\n";
  reply += "END\r\n";
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{100}, size_t{1000}}) {
    INFO("chunk " << chunk);
    ReplyFramer framer;
    ReplyFrame frame;
    size_t have = 0;
    ParseStatus status = ParseStatus::kNeedMore;
    while (status == ParseStatus::kNeedMore) {
      have = std::min(reply.size(), have + chunk);
      status = frame_copy(framer, std::string_view(reply).substr(0, have), ReplyShape::kMcRetrieval,
                          frame);
      if (have < reply.size()) REQUIRE(status == ParseStatus::kNeedMore);
    }
    CHECK(status == ParseStatus::kOk);
    CHECK(frame.length == reply.size());
  }
}

// --- ValueItems --------------------------------------------------------------------------------

TEST_CASE("ValueItems walks the items of a retrieval reply", "[memcache][reply]") {
  SECTION("items, keys, and all of their bytes") {
    const std::string a = "VALUE a 0 1\r\nx\r\n";
    const std::string bb = "VALUE bb 5 3 77\r\nabc\r\n";
    const std::string tricky = "VALUE c 0 14\r\nEND\r\nVALUE d 0\r\n";
    REQUIRE(tricky.size() == 14 + 16);
    const std::string reply = a + bb + tricky + "END\r\n";  // ValueItems only views it
    ValueItems items(reply);
    std::string_view key, item;
    REQUIRE(items.next(key, item));
    CHECK(key == "a");
    CHECK(item == a);
    REQUIRE(items.next(key, item));
    CHECK(key == "bb");
    CHECK(item == bb);
    REQUIRE(items.next(key, item));
    CHECK(key == "c");
    CHECK(item == tricky);
    CHECK_FALSE(items.next(key, item));
    CHECK_FALSE(items.next(key, item));
  }
  SECTION("a miss has none") {
    ValueItems items("END\r\n");
    std::string_view key, item;
    CHECK_FALSE(items.next(key, item));
  }
  SECTION("an empty value") {
    ValueItems items("VALUE k 0 0\r\n\r\nEND\r\n");
    std::string_view key, item;
    REQUIRE(items.next(key, item));
    CHECK(key == "k");
    CHECK(item == "VALUE k 0 0\r\n\r\n");
    CHECK_FALSE(items.next(key, item));
  }
  SECTION("stops at an error line") {
    ValueItems items("VALUE k 0 1\r\nx\r\nSERVER_ERROR out of memory\r\n");
    std::string_view key, item;
    REQUIRE(items.next(key, item));
    CHECK_FALSE(items.next(key, item));
  }
  SECTION("stops at a truncated item") {
    ValueItems items("VALUE k 0 10\r\nshort\r\n");
    std::string_view key, item;
    CHECK_FALSE(items.next(key, item));
  }
}

// memcached returns errors in quiet mode ("Errors are always returned"); the frame says so, also
// when the MN arrives in a later read than the error.
TEST_CASE("a quiet meta reply that is an error is marked as one", "[memcache][reply][meta]") {
  auto f = frame_ok("CLIENT_ERROR bad data chunk\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
  CHECK(f.payload_length == 29);
  CHECK(f.error);
  f = frame_ok("SERVER_ERROR out of memory\r\nMN\r\n", ReplyShape::kMcMetaQuiet);
  CHECK(f.error);
}

}  // namespace
}  // namespace cachegate::protocol::memcache
