// The RESP front door byte for byte: inline commands (what `printf 'PING\r\n' | nc` and telnet
// users send), requests split at every byte, and protocol errors, which redis-server answers
// with "-ERR Protocol error: …" and then closes. The same bytes go to a redis-server directly
// and to cachegate in front of three servers; everything either sends back until it closes the
// connection must be identical.

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::printable;
using testing::RedisCluster;
using testing::RedisServer;
using testing::RespClient;
using testing::TextClient;

// Sent after every input: its echo ends an exchange that leaves the connection open, so no test
// waits for a timeout.
const std::string kSentinel = "*2\r\n$4\r\nECHO\r\n$12\r\nend-of-input\r\n";
const std::string kSentinelReply = "$12\r\nend-of-input\r\n";

// Everything the peer sends in answer to `bytes` (followed by the sentinel) until it echoes the
// sentinel or closes the connection ("<closed>" is appended then).
std::string exchange(uint16_t port, const std::string& bytes) {
  TextClient c("127.0.0.1", port, std::chrono::milliseconds(3000));
  c.send(bytes + kSentinel);
  std::string out;
  for (;;) {
    if (out.size() >= kSentinelReply.size() &&
        out.compare(out.size() - kSentinelReply.size(), kSentinelReply.size(), kSentinelReply) == 0)
      return out;
    auto chunk = c.read_exact(1);
    if (!chunk) break;
    out += *chunk;
  }
  if (c.peer_closed(std::chrono::milliseconds(0))) out += "<closed>";
  return out;
}

TEST_CASE("inline commands are answered as redis-server answers them", "[redis][protocol]") {
  RedisCluster cluster;
  RedisServer direct;
  const std::vector<std::string> inputs = {
      "PING\r\n",
      "PING\n",
      "ping hello\r\n",
      "SET inline:a \"b c\"\r\nGET inline:a\r\n",
      "SET inline:b 'single \"quoted\"'\r\nGET inline:b\r\n",
      "SET inline:c \"\\x41\\x42\\r\\n\"\r\nGET inline:c\r\nSTRLEN inline:c\r\n",
      "\r\n   \r\nPING\r\n",
      "ECHO 'x y'\r\n",
      "MSET inline:1 a inline:2 b inline:3 c\r\nMGET inline:1 inline:2 inline:3 inline:4\r\n",
      "DEL inline:1 inline:2 inline:3 inline:a inline:b inline:c\r\n",
      "GET\r\n",
      "NOSUCH arg\r\n",
      "SET inline:d \"unbalanced\r\n",
      "SET inline:e \"a\"b\r\n",
      // Inline and multibulk requests mixed in one write.
      "PING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\nECHO def\r\n*1\r\n$4\r\nPING\r\n",
      "*0\r\nPING\r\n",
      "*-1\r\nPING\r\n",
      // redis skips the two bytes after a bulk without looking at them.
      "*1\r\n$4\r\nPINGxx",
      "*2\r\n$4\r\nECHO\r\n$3\r\nabcde\r\n",
      // A line starting with '$' is an inline command named "$3".
      "$3\r\nabc\r\n",
  };
  for (const auto& in : inputs) {
    INFO(printable(in));
    const std::string want = exchange(direct.port(), in);
    CHECK(printable(exchange(cluster.port(), in)) == printable(want));
  }
}

TEST_CASE("protocol errors are redis's own, and close the connection", "[redis][protocol]") {
  RedisCluster cluster;
  RedisServer direct;
  const std::vector<std::string> inputs = {
      "*1\r\n$x\r\n",          "*abc\r\n",
      "*1\r\n$-1\r\n",         "*1\r\n$abc\r\n",
      "*1\r\n$600000000\r\n",  "PING\r\n*1\r\n$x\r\nPING\r\n",
      "SET a \"b\r\nPING\r\n",
  };
  for (const auto& in : inputs) {
    INFO(printable(in));
    const std::string want = exchange(direct.port(), in);
    REQUIRE(want.find("-ERR Protocol error: ") != std::string::npos);
    REQUIRE(want.find("<closed>") != std::string::npos);
    CHECK(printable(exchange(cluster.port(), in)) == printable(want));
  }
  // An inline line longer than redis allows (64 KiB), seen before its end arrives.
  const std::string long_inline = "SET k " + std::string(200 * 1024, 'x');
  REQUIRE(exchange(direct.port(), long_inline).find("Protocol error") != std::string::npos);
  CHECK(exchange(cluster.port(), long_inline) == exchange(direct.port(), long_inline));
  // cachegate bounds the element count before allocating; redis-server would wait for more.
  const std::string huge = exchange(cluster.port(), "*3000000\r\n");
  CHECK(huge == "-ERR Protocol error: invalid multibulk length\r\n<closed>");
  // The connection closed on is the client's only: others carry on.
  RespClient other(cluster.port());
  CHECK(other.call({"PING"}) == "+PONG\r\n");
}

TEST_CASE("a request arriving one byte at a time is framed like any other", "[redis][protocol]") {
  RedisCluster cluster;
  RespClient c(cluster.port());
  const std::string value = "split\r\nvalue";
  const std::string request = testing::resp_command({"SET", "bytewise", value}) +
                              testing::resp_command({"GET", "bytewise"}) + "PING\r\n" +
                              testing::resp_command({"MGET", "bytewise", "nothing", "bytewise"});
  for (char ch : request) {
    c.send_raw(std::string(1, ch));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  CHECK(c.read() == "+OK\r\n");
  CHECK(c.read() == testing::resp_bulk(value));
  CHECK(c.read() == "+PONG\r\n");
  CHECK(c.read() == "*3\r\n" + testing::resp_bulk(value) + "$-1\r\n" + testing::resp_bulk(value));
}

}  // namespace
}  // namespace cachegate
