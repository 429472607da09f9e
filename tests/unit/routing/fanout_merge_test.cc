// merge_retrieval: the "coalesce" half of a multi-get split across servers. The client must get
// exactly the reply one memcached holding every key would have sent: items in the order of its
// keys (duplicates included), misses left out, one END.

#include "routing/fanout.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::routing {
namespace {

std::string item(std::string_view key, std::string_view data, std::string_view flags = "0") {
  return "VALUE " + std::string(key) + " " + std::string(flags) + " " +
         std::to_string(data.size()) + "\r\n" + std::string(data) + "\r\n";
}

std::string gets_item(std::string_view key, std::string_view data, uint64_t cas) {
  return "VALUE " + std::string(key) + " 0 " + std::to_string(data.size()) + " " +
         std::to_string(cas) + "\r\n" + std::string(data) + "\r\n";
}

std::string merge(const std::vector<std::string_view>& keys,
                  const std::vector<uint32_t>& part_of_key,
                  const std::vector<std::string>& part_replies) {
  std::vector<std::string_view> parts(part_replies.begin(), part_replies.end());
  std::string out;
  merge_retrieval(keys, part_of_key, parts, out);
  return out;
}

TEST_CASE("keys spread over parts come back in the client's order", "[fanout][merge]") {
  SECTION("two parts, interleaved") {
    // get a b c d: a and c on part 0, b and d on part 1.
    const std::string reply = merge(
        {"a", "b", "c", "d"}, {0, 1, 0, 1},
        {item("a", "A") + item("c", "C") + "END\r\n", item("b", "B") + item("d", "D") + "END\r\n"});
    CHECK(reply == item("a", "A") + item("b", "B") + item("c", "C") + item("d", "D") + "END\r\n");
  }
  SECTION("three parts") {
    const std::string reply = merge({"k1", "k2", "k3", "k4", "k5", "k6"}, {2, 0, 1, 2, 0, 1},
                                    {item("k2", "2") + item("k5", "5") + "END\r\n",
                                     item("k3", "3") + item("k6", "6") + "END\r\n",
                                     item("k1", "1") + item("k4", "4") + "END\r\n"});
    CHECK(reply == item("k1", "1") + item("k2", "2") + item("k3", "3") + item("k4", "4") +
                       item("k5", "5") + item("k6", "6") + "END\r\n");
  }
  SECTION("one part holds everything") {
    const std::string all = item("x", "1") + item("y", "22") + "END\r\n";
    CHECK(merge({"x", "y"}, {0, 0}, {all}) == all);
  }
}

TEST_CASE("misses are left out", "[fanout][merge]") {
  SECTION("some misses in each part") {
    // a (part 0) hit, b (part 1) miss, c (part 0) miss, d (part 1) hit, e (part 2) miss.
    const std::string reply =
        merge({"a", "b", "c", "d", "e"}, {0, 1, 0, 1, 2},
              {item("a", "A") + "END\r\n", item("d", "D") + "END\r\n", "END\r\n"});
    CHECK(reply == item("a", "A") + item("d", "D") + "END\r\n");
  }
  SECTION("all misses: just END") {
    CHECK(merge({"a", "b", "c"}, {0, 1, 2}, {"END\r\n", "END\r\n", "END\r\n"}) == "END\r\n");
  }
  SECTION("a miss for a key that is a prefix of the next one") {
    const std::string reply = merge({"a", "ab", "abc"}, {0, 0, 0}, {item("ab", "x") + "END\r\n"});
    CHECK(reply == item("ab", "x") + "END\r\n");
  }
  SECTION("nothing asked, nothing sent") {
    CHECK(merge({}, {}, {}) == "END\r\n");
  }
}

TEST_CASE("duplicate keys give duplicate items, as from memcached", "[fanout][merge]") {
  SECTION("get a a: one server answers both") {
    const std::string reply =
        merge({"a", "a"}, {0, 0}, {item("a", "1") + item("a", "1") + "END\r\n"});
    CHECK(reply == item("a", "1") + item("a", "1") + "END\r\n");
  }
  SECTION("get a b a: the duplicate around a key from another part") {
    const std::string reply =
        merge({"a", "b", "a"}, {0, 1, 0},
              {item("a", "1") + item("a", "1") + "END\r\n", item("b", "2") + "END\r\n"});
    CHECK(reply == item("a", "1") + item("b", "2") + item("a", "1") + "END\r\n");
  }
  SECTION("a duplicated miss") {
    const std::string reply =
        merge({"a", "b", "a"}, {0, 1, 0}, {"END\r\n", item("b", "2") + "END\r\n"});
    CHECK(reply == item("b", "2") + "END\r\n");
  }
}

TEST_CASE("items are passed on whole: flags, cas, any data", "[fanout][merge]") {
  SECTION("gets keeps each item's cas unique") {
    const std::string reply = merge({"a", "b"}, {1, 0},
                                    {gets_item("b", "bee", 18446744073709551615ull) + "END\r\n",
                                     gets_item("a", "ay", 42) + "END\r\n"});
    CHECK(reply ==
          gets_item("a", "ay", 42) + gets_item("b", "bee", 18446744073709551615ull) + "END\r\n");
  }
  SECTION("flags") {
    const std::string reply =
        merge({"a", "b"}, {0, 1},
              {item("a", "x", "4294967295") + "END\r\n", item("b", "y", "7") + "END\r\n"});
    CHECK(reply == item("a", "x", "4294967295") + item("b", "y", "7") + "END\r\n");
  }
  SECTION("values holding protocol text and binary bytes") {
    const std::string tricky = "\r\nEND\r\nVALUE b 0 1\r\nz\r\n";
    const std::string binary("\0\x80\xff\r\n", 5);
    const std::string reply =
        merge({"a", "b", "c"}, {0, 1, 0},
              {item("a", tricky) + item("c", "") + "END\r\n", item("b", binary) + "END\r\n"});
    CHECK(reply == item("a", tricky) + item("b", binary) + item("c", "") + "END\r\n");
  }
  SECTION("the merged reply is appended to what is already there") {
    std::vector<std::string_view> keys = {"a"};
    std::vector<uint32_t> part_of_key = {0};
    const std::string part = item("a", "1") + "END\r\n";
    std::vector<std::string_view> parts = {part};
    std::string out = "previous reply\r\n";
    merge_retrieval(keys, part_of_key, parts, out);
    CHECK(out == "previous reply\r\n" + part);
  }
}

TEST_CASE("a large multi-get over three parts", "[fanout][merge]") {
  std::vector<std::string> key_storage;
  for (int i = 0; i < 300; ++i)
    key_storage.push_back("key:" + std::to_string(i));
  std::vector<std::string_view> keys(key_storage.begin(), key_storage.end());
  std::vector<uint32_t> part_of_key;
  std::vector<std::string> parts(3);
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    const uint32_t part = static_cast<uint32_t>((i * 7 + i / 3) % 3);
    part_of_key.push_back(part);
    if (i % 4 == 1) continue;  // a miss
    const std::string it = gets_item(keys[i], std::string(static_cast<size_t>(i % 50), 'v'),
                                     static_cast<uint64_t>(i) * 1000);
    parts[part] += it;
    expected += it;
  }
  for (auto& p : parts)
    p += "END\r\n";
  CHECK(merge(keys, part_of_key, parts) == expected + "END\r\n");
}

}  // namespace
}  // namespace cachegate::routing
