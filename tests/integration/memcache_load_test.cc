// cachegate under load: many clients at once, replies far larger than socket buffers, clients
// that do not read, and limits small enough that backpressure kicks in on every request. Every
// reply is still checked byte for byte.

#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::first_difference;
using testing::MemcacheCluster;
using testing::TextClient;
using testing::value_item;

// Catch2's assertions are not thread-safe: workers collect problems here, checked after join.
class Problems {
 public:
  void add(std::string what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (list_.size() < 20) list_.push_back(std::move(what));
    ++count_;
  }
  size_t count() const { return count_; }
  std::string summary() const {
    std::string out;
    for (const auto& p : list_)
      out += p.substr(0, 300) + "\n";
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> list_;
  size_t count_ = 0;
};

TEST_CASE("fifty clients at once each get their own replies", "[memcache][load]") {
  const unsigned workers = GENERATE(1u, 2u);
  ClusterOptions options;
  options.servers = 3;
  options.workers = workers;
  MemcacheCluster cluster(options);
  constexpr int kClients = 50;
  constexpr int kRequests = 200;
  Problems problems;

  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      try {
        TextClient c("127.0.0.1", cluster.port(), std::chrono::milliseconds(10000));
        const std::string prefix = "c" + std::to_string(t) + "-";
        for (int i = 0; i < kRequests; ++i) {
          const std::string k = prefix + std::to_string(i % 16);
          const std::string v = std::to_string(t * 100000 + i) + std::string(i % 97, 'p');
          if (i % 4 == 0) {
            auto r = c.call("set " + k + " " + std::to_string(t) + " 0 " +
                            std::to_string(v.size()) + "\r\n" + v + "\r\n");
            if (r != "STORED\r\n") problems.add(k + ": set -> " + r.value_or("<none>"));
            auto g = c.call("get " + k + "\r\n", "get");
            const std::string want = value_item(k, v, static_cast<uint32_t>(t)) + "END\r\n";
            if (g != want) problems.add(k + ": get -> " + g.value_or("<none>"));
          } else if (i % 4 == 1) {
            // Pipelined: set, then a multi-get of three of this client's keys.
            const std::string k2 = prefix + std::to_string((i + 5) % 16);
            c.send("set " + k + " 0 0 " + std::to_string(v.size()) + " noreply\r\n" + v +
                   "\r\nset " + k2 + " 0 0 1\r\nz\r\nget " + k + " " + k2 + " " + k + "\r\n");
            auto s = c.read_reply("line");
            if (s != "STORED\r\n") problems.add(k2 + ": set -> " + s.value_or("<none>"));
            auto g = c.read_reply("get");
            const std::string want =
                value_item(k, v) + value_item(k2, "z") + value_item(k, v) + "END\r\n";
            if (g != want) problems.add(k + ": multi-get -> " + g.value_or("<none>"));
          } else if (i % 4 == 2) {
            auto r = c.call("delete " + k + "\r\n");
            if (r != "DELETED\r\n" && r != "NOT_FOUND\r\n")
              problems.add(k + ": delete -> " + r.value_or("<none>"));
            auto g = c.call("mg " + k + " v\r\n", "meta");
            if (g != "EN\r\n") problems.add(k + ": mg after delete -> " + g.value_or("<none>"));
          } else {
            auto r =
                c.call("ms " + k + " " + std::to_string(v.size()) + " T0\r\n" + v + "\r\n", "meta");
            if (r != "HD\r\n") problems.add(k + ": ms -> " + r.value_or("<none>"));
            auto g = c.call("mg " + k + " v\r\n", "meta");
            if (g != "VA " + std::to_string(v.size()) + "\r\n" + v + "\r\n")
              problems.add(k + ": mg -> " + g.value_or("<none>"));
          }
        }
      } catch (const std::exception& e) {
        problems.add(std::string("client ") + std::to_string(t) + ": " + e.what());
      }
    });
  }
  for (auto& th : threads)
    th.join();
  INFO(problems.summary());
  CHECK(problems.count() == 0);
  // Connections were really spread over the servers.
  for (size_t s = 0; s < cluster.size(); ++s) {
    auto d = cluster.direct(s);
    auto stats = d->call("stats\r\n", "get").value_or("");
    const size_t p = stats.find("STAT cmd_set ");
    REQUIRE(p != std::string::npos);
    CHECK(std::stoull(stats.substr(p + 13)) > 100);
  }
}

TEST_CASE("replies larger than socket buffers", "[memcache][load][large]") {
  ClusterOptions options;
  options.servers = 3;
  // The pool's timeout bounds a whole reply, however large: proxying 54 MB costs cachegate about
  // a quarter of a second of CPU, more than 400 ms on a busy two-core machine. What is tested
  // here is buffering and order, not speed.
  options.timeout_ms = 5000;
  MemcacheCluster cluster(options);
  auto c = cluster.client(std::chrono::milliseconds(20000));
  constexpr size_t kValue = 900 * 1024;
  constexpr int kKeys = 20;

  std::vector<std::string> keys, values;
  std::string sets;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back(std::to_string(i) + "-large");
    std::string v(kValue, static_cast<char>('a' + i));
    // Something distinctive at both ends, so a misplaced chunk shows.
    v.replace(0, keys.back().size(), keys.back());
    v.replace(v.size() - keys.back().size(), keys.back().size(), keys.back());
    values.push_back(std::move(v));
    sets += "set " + keys.back() + " " + std::to_string(i) + " 0 " + std::to_string(kValue) +
            "\r\n" + values.back() + "\r\n";
  }
  // All twenty sets in one write: 18 MB that cachegate must pass on while it reads.
  c->send(sets);
  for (int i = 0; i < kKeys; ++i)
    REQUIRE(c->read_line() == "STORED");
  // Spread over every shard.
  for (size_t s = 0; s < cluster.size(); ++s)
    CHECK_FALSE(cluster.held_by(s, keys).empty());

  std::string get = "get", expected;
  for (int i = 0; i < kKeys; ++i) {
    get += " " + keys[i];
    expected += value_item(keys[i], values[i], static_cast<uint32_t>(i));
  }
  expected += "END\r\n";

  SECTION("one multi-get of all twenty") {
    CHECK(first_difference(c->call(get + "\r\n", "get"), expected) == "");
  }

  SECTION("a client that does not read for a while") {
    // Three of them back to back: 54 MB of replies against a client that sleeps first.
    c->send(get + "\r\n" + get + "\r\n" + get + "\r\nmn\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int i = 0; i < 3; ++i)
      CHECK(first_difference(c->read_reply("get"), expected) == "");
    CHECK(c->read_reply("line") == "MN\r\n");
  }

  SECTION("single gets and gets in reverse order, pipelined") {
    std::string requests, want;
    for (int i = kKeys - 1; i >= 0; --i) {
      requests += "get " + keys[i] + "\r\n";
      want += value_item(keys[i], values[i], static_cast<uint32_t>(i)) + "END\r\n";
    }
    c->send(requests);
    CHECK(first_difference(c->read_exact(want.size()), want) == "");
  }

  SECTION("another client is served meanwhile") {
    c->send(get + "\r\n");
    auto other = cluster.client();
    CHECK(other->call("set small 0 0 1\r\ns\r\n") == "STORED\r\n");
    CHECK(other->call("get small\r\n", "get") == value_item("small", "s") + "END\r\n");
    CHECK(first_difference(c->read_reply("get"), expected) == "");
  }

  SECTION("a client that leaves in the middle of its replies") {
    {
      auto leaver = cluster.client();
      leaver->send(get + "\r\n" + get + "\r\n");
      leaver->read_exact(100000);
    }
    // cachegate carries on for everyone else.
    CHECK(first_difference(c->call(get + "\r\n", "get"), expected) == "");
  }
}

TEST_CASE("tiny pipeline and output limits only slow a client down", "[memcache][load][limits]") {
  ClusterOptions options;
  options.limits = {"client_pipeline_max: 1", "client_output_max: 1k"};
  MemcacheCluster cluster(options);
  const auto keys = cluster.keys_per_server(5, "bp-");
  auto c = cluster.client(std::chrono::milliseconds(20000));
  std::vector<std::string> all;
  for (const auto& g : keys)
    all.insert(all.end(), g.begin(), g.end());
  const std::string value(10 * 1024, 'b');
  for (const auto& k : all)
    REQUIRE(c->call("set " + k + " 0 0 " + std::to_string(value.size()) + "\r\n" + value +
                    "\r\n") == "STORED\r\n");

  const std::string version = c->call("version\r\n").value_or("?");
  std::string requests, expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string& a = all[i % all.size()];
    const std::string& b = all[(i * 7 + 3) % all.size()];
    switch (i % 5) {
      case 0:
        requests += "get " + a + " " + b + "\r\n";
        expected += value_item(a, value) + value_item(b, value) + "END\r\n";
        break;
      case 1:
        requests +=
            "set " + a + " 0 0 " + std::to_string(value.size()) + " noreply\r\n" + value + "\r\n";
        break;
      case 2:
        requests += "mg " + a + " s v q\r\nmg nothing v q\r\nmn\r\n";
        expected += "VA " + std::to_string(value.size()) + " s" + std::to_string(value.size()) +
                    "\r\n" + value + "\r\nMN\r\n";
        break;
      case 3:
        requests += "version\r\n";
        expected += version;
        break;
      default:
        requests += "touch " + b + " 0\r\n";
        expected += "TOUCHED\r\n";
        break;
    }
  }
  // Megabytes each way: written from another thread while this one reads, as a client must
  // when its replies can outgrow the socket buffers.
  std::thread writer([&] { c->send(requests); });
  auto got = c->read_exact(expected.size());
  writer.join();
  CHECK(first_difference(got, expected) == "");
  CHECK(c->call("mn\r\n") == "MN\r\n");
}

}  // namespace
}  // namespace cachegate
