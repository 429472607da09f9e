// Pool: auto-ejection takes a failing server's keys elsewhere and leaves every other key where it
// was, then gives them back after server_retry_timeout. RetrievalFanout and Broadcast: what each
// server is sent, how the parts' outcomes become the client's single outcome, and that every
// reference taken is given back.
//
// The servers are scripted in memory (scripted_servers.h).

#include "routing/fanout.h"
#include "routing/pool.h"
#include "tests/unit/routing/scripted_servers.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::routing {
namespace {

using namespace std::chrono_literals;
using protocol::ReplyShape;
using protocol::memcache::Span;
using scripted::Answer;
using scripted::Client;
using scripted::ScriptedServer;

config::PoolConfig pool_config(size_t servers, bool auto_eject,
                               std::chrono::milliseconds retry = 10s,
                               config::Distribution distribution = config::Distribution::kKetama) {
  config::PoolConfig c;
  c.name = "test";
  c.distribution = distribution;
  // md5 (classic ketama) spreads the tests' short, similar keys over all servers; the default
  // fnv1a_64 is, as in twemproxy, a 32-bit FNV whose small multiplier puts "user:0" to "user:29"
  // all on one server of three.
  c.hash = config::HashFunction::kMd5;
  c.auto_eject_hosts = auto_eject;
  c.server_retry_timeout = retry;
  for (size_t i = 0; i < servers; ++i) {
    config::ServerConfig s;
    s.name = "s" + std::to_string(i);
    s.identity = s.name;
    s.host = "backend-" + std::to_string(i);
    s.port = 11211;
    s.spec = s.host + ":11211:1 " + s.name;
    c.servers.push_back(s);
  }
  return c;
}

// --- what memcached would answer ---------------------------------------------------------------

std::vector<std::string_view> tokens(std::string_view line) {
  if (line.ends_with("\r\n")) line.remove_suffix(2);
  std::vector<std::string_view> out;
  while (!line.empty()) {
    const size_t space = line.find(' ');
    out.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
  }
  return out;
}

std::string item(std::string_view key, std::string_view data, uint32_t flags,
                 std::optional<uint64_t> cas) {
  std::string out =
      "VALUE " + std::string(key) + " " + std::to_string(flags) + " " + std::to_string(data.size());
  if (cas) out += " " + std::to_string(*cas);
  out += "\r\n" + std::string(data) + "\r\n";
  return out;
}

// One memcached's items, answering get/gets/gat/gats lines as memcached does: hits in the order
// the line lists them, misses left out, then END.
struct Store {
  struct Value {
    std::string data;
    uint32_t flags;
    uint64_t cas;
  };
  std::map<std::string, Value, std::less<>> values;

  std::string answer(std::string_view request) const {
    const auto t = tokens(request);
    REQUIRE(!t.empty());
    const bool touch = t[0] == "gat" || t[0] == "gats";
    const bool with_cas = t[0] == "gets" || t[0] == "gats";
    std::string out;
    for (size_t i = touch ? 2 : 1; i < t.size(); ++i) {
      auto it = values.find(t[i]);
      if (it == values.end()) continue;
      out += item(it->first, it->second.data, it->second.flags,
                  with_cas ? std::optional<uint64_t>(it->second.cas) : std::nullopt);
    }
    return out + "END\r\n";
  }
};

// A pool of scripted servers, each with its own store.
struct Fleet {
  explicit Fleet(size_t n, bool auto_eject = false, std::chrono::milliseconds retry = 10s)
      : config(pool_config(n, auto_eject, retry)), stores(n) {
    std::vector<Destination*> destinations;
    for (size_t i = 0; i < n; ++i) {
      servers.push_back(std::make_unique<ScriptedServer>(config.servers[i].spec));
      destinations.push_back(servers.back().get());
    }
    pool = std::make_unique<Pool>(config, destinations);
  }
  Fleet(const Fleet&) = delete;

  ScriptedServer& server(size_t i) { return *servers[i]; }

  // Stores `key` on the server the pool places it on.
  void put(const std::string& key, std::string data, uint32_t flags = 0) {
    const uint32_t s = pool->server_for(key);
    REQUIRE(s < stores.size());
    stores[s].values[key] = {std::move(data), flags, next_cas++};
  }

  // Every server answers from its store inside send().
  void answer_inline() {
    for (size_t i = 0; i < servers.size(); ++i) {
      servers[i]->script = [this, i](std::string_view request) -> std::optional<Answer> {
        return Answer::reply_of(stores[i].answer(request));
      };
    }
  }
  // Server `i` answers its oldest waiting request from its store.
  void answer_from_store(size_t i) {
    servers[i]->answer_with([this, i](std::string_view request) {
      return Answer::reply_of(stores[i].answer(request));
    });
  }

  config::PoolConfig config;  // the pool keeps a reference
  std::vector<Store> stores;
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  std::unique_ptr<Pool> pool;
  uint64_t next_cas = 1000;
};

// The client's request line, and its keys as spans into it, as the request parser gives them.
struct ClientRequest {
  std::string command;
  std::string exptime;
  std::string bytes;
  std::vector<Span> keys;
  std::vector<std::string> key_strings;
};

ClientRequest client_request(std::string command, std::vector<std::string> keys,
                             std::string exptime = {}) {
  ClientRequest r;
  r.command = std::move(command);
  r.exptime = std::move(exptime);
  r.bytes = r.command;
  if (!r.exptime.empty()) r.bytes += " " + r.exptime;
  for (const auto& k : keys) {
    r.bytes += " ";
    r.keys.push_back({static_cast<uint32_t>(r.bytes.size()), static_cast<uint32_t>(k.size())});
    r.bytes += k;
  }
  r.bytes += "\r\n";
  r.key_strings = std::move(keys);
  return r;
}

constexpr uint32_t kAffinity = 7;

void start_retrieval(Fleet& fleet, const ClientRequest& r, Client& client, uint32_t cookie,
                     size_t max_line = 0) {
  std::vector<uint32_t> server_of_key;
  for (const auto& k : r.keys) {
    server_of_key.push_back(fleet.pool->server_for(k.in(r.bytes.data())));
    REQUIRE(server_of_key.back() != Distribution::kNoServer);
  }
  RetrievalFanout::start(*fleet.pool, r.command, r.exptime, r.bytes.data(), r.keys, server_of_key,
                         client, cookie, kAffinity, max_line);
}

std::vector<std::string> numbered_keys(const std::string& prefix, int count) {
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i)
    keys.push_back(prefix + std::to_string(i));
  return keys;
}

// What one memcached holding every key would answer.
std::string expected_merge(Fleet& fleet, const ClientRequest& r) {
  Store all;
  for (const auto& s : fleet.stores)
    all.values.insert(s.values.begin(), s.values.end());
  return all.answer(r.bytes);
}

// --- Pool: auto-ejection -----------------------------------------------------------------------

std::vector<uint32_t> placements(Pool& pool, const std::vector<std::string>& keys) {
  std::vector<uint32_t> out;
  for (const auto& k : keys)
    out.push_back(pool.server_for(k));
  return out;
}

// Sleeps past the retry deadline of an ejection made at `ejected_at`.
void sleep_past(Pool::Clock::time_point ejected_at, std::chrono::milliseconds retry) {
  std::this_thread::sleep_until(ejected_at + retry + 5ms);
}

TEST_CASE("without auto_eject_hosts a failing server keeps its keys", "[pool]") {
  const auto config = pool_config(3, false);
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  std::vector<Destination*> destinations;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(std::make_unique<ScriptedServer>("s" + std::to_string(i)));
    destinations.push_back(servers.back().get());
  }
  Pool pool(config, destinations);
  const auto keys = numbered_keys("key:", 1000);
  const auto before = placements(pool, keys);

  pool.on_server_ejected(1);
  CHECK(pool.is_live(1));
  CHECK(pool.ejected_count() == 0);
  CHECK(pool.live_for_stats(1));
  CHECK(pool.ejected_for_stats() == 0);
  CHECK(pool.distribution().live_servers() == 3);
  CHECK(placements(pool, keys) == before);
}

TEST_CASE("an ejected server's keys move to the others and every other key stays", "[pool]") {
  Fleet fleet(3, true, 10s);
  Pool& pool = *fleet.pool;
  const auto keys = numbered_keys("key:", 1000);
  const auto before = placements(pool, keys);
  for (uint32_t s = 0; s < 3; ++s)
    REQUIRE(std::count(before.begin(), before.end(), s) > 100);

  pool.on_server_ejected(1);
  CHECK_FALSE(pool.is_live(1));
  CHECK(pool.is_live(0));
  CHECK(pool.is_live(2));
  CHECK(pool.ejected_count() == 1);
  CHECK(pool.live_for_stats(0));
  CHECK_FALSE(pool.live_for_stats(1));
  CHECK(pool.live_for_stats(2));
  CHECK(pool.ejected_for_stats() == 1);
  CHECK(pool.distribution().live_servers() == 2);

  const auto after = placements(pool, keys);
  std::set<uint32_t> new_homes;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (before[i] == 1) {
      CHECK(after[i] != 1);
      CHECK(after[i] != Distribution::kNoServer);
      new_homes.insert(after[i]);
    } else {
      CHECK(after[i] == before[i]);
    }
  }
  // Spread over both survivors (ketama), not all dumped on one.
  CHECK(new_homes == std::set<uint32_t>{0, 2});

  SECTION("reporting it again, or a server that does not exist, changes nothing") {
    pool.on_server_ejected(1);
    pool.on_server_ejected(3);
    pool.on_server_ejected(Distribution::kNoServer);
    CHECK(pool.ejected_count() == 1);
    CHECK(pool.ejected_for_stats() == 1);
    CHECK(placements(pool, keys) == after);
  }
  SECTION("a second ejection moves only that server's keys") {
    pool.on_server_ejected(2);
    CHECK(pool.ejected_count() == 2);
    CHECK(pool.ejected_for_stats() == 2);
    CHECK_FALSE(pool.live_for_stats(2));
    CHECK(placements(pool, keys) == std::vector<uint32_t>(keys.size(), 0));
  }
}

TEST_CASE("modula: an ejected server gets no keys", "[pool]") {
  const auto config = pool_config(3, true, 10s, config::Distribution::kModula);
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  std::vector<Destination*> destinations;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(std::make_unique<ScriptedServer>("s" + std::to_string(i)));
    destinations.push_back(servers.back().get());
  }
  Pool pool(config, destinations);
  const auto keys = numbered_keys("key:", 300);
  pool.on_server_ejected(0);
  const auto after = placements(pool, keys);
  CHECK(std::count(after.begin(), after.end(), 0u) == 0);
  CHECK(std::count(after.begin(), after.end(), 1u) > 0);
  CHECK(std::count(after.begin(), after.end(), 2u) > 0);
}

TEST_CASE("an ejected server comes back after server_retry_timeout", "[pool]") {
  constexpr auto kRetry = 50ms;
  Fleet fleet(3, true, kRetry);
  Pool& pool = *fleet.pool;
  const auto keys = numbered_keys("key:", 1000);
  const auto before = placements(pool, keys);

  SECTION("its keys return to it") {
    const auto ejected_at = Pool::Clock::now();
    pool.on_server_ejected(1);
    CHECK(pool.ejected_for_stats() == 1);
    sleep_past(ejected_at, kRetry);
    CHECK(placements(pool, keys) == before);
    CHECK(pool.is_live(1));
    CHECK(pool.ejected_count() == 0);
    CHECK(pool.live_for_stats(1));
    CHECK(pool.ejected_for_stats() == 0);
    CHECK(pool.distribution().live_servers() == 3);

    // And it can be ejected again.
    pool.on_server_ejected(1);
    CHECK(pool.ejected_count() == 1);
    CHECK_FALSE(pool.live_for_stats(1));
  }
  SECTION("each server on its own clock") {
    const auto first_at = Pool::Clock::now();
    pool.on_server_ejected(0);
    sleep_past(first_at, kRetry);
    const auto second_at = Pool::Clock::now();
    pool.on_server_ejected(2);
    const uint32_t s = pool.server_for("anything");
    CHECK(s != Distribution::kNoServer);
    CHECK(pool.is_live(0));
    // Server 2's own timeout has not run out, unless this machine stalled for all of it.
    if (Pool::Clock::now() < second_at + kRetry) {
      CHECK_FALSE(pool.is_live(2));
      CHECK(pool.ejected_for_stats() == 1);
    }
    sleep_past(second_at, kRetry);
    CHECK(placements(pool, keys) == before);
    CHECK(pool.ejected_for_stats() == 0);
  }
}

TEST_CASE("with every server ejected no key has a server, until they return", "[pool]") {
  constexpr auto kRetry = 50ms;

  SECTION("three servers") {
    Fleet fleet(3, true, kRetry);
    Pool& pool = *fleet.pool;
    const auto keys = numbered_keys("key:", 200);
    const auto before = placements(pool, keys);
    const auto ejected_at = Pool::Clock::now();
    for (uint32_t s = 0; s < 3; ++s)
      pool.on_server_ejected(s);
    CHECK(pool.ejected_count() == 3);
    CHECK(pool.ejected_for_stats() == 3);
    CHECK(pool.distribution().live_servers() == 0);
    if (Pool::Clock::now() < ejected_at + kRetry) {
      CHECK(placements(pool, keys) == std::vector<uint32_t>(keys.size(), Distribution::kNoServer));
    }
    sleep_past(ejected_at, kRetry);
    CHECK(placements(pool, keys) == before);
    CHECK(pool.ejected_for_stats() == 0);
  }
  SECTION("a one-server pool, which otherwise never hashes") {
    Fleet fleet(1, true, kRetry);
    Pool& pool = *fleet.pool;
    CHECK(pool.server_for("k") == 0);
    const auto ejected_at = Pool::Clock::now();
    pool.on_server_ejected(0);
    if (Pool::Clock::now() < ejected_at + kRetry) {
      CHECK(pool.server_for("k") == Distribution::kNoServer);
      CHECK_FALSE(pool.live_for_stats(0));
    }
    sleep_past(ejected_at, kRetry);
    CHECK(pool.server_for("k") == 0);
    CHECK(pool.live_for_stats(0));
  }
}

// --- RetrievalFanout ---------------------------------------------------------------------------

// The ten keys the fanout tests use, spread by the pool over all three servers.
std::vector<std::string> ten_keys(Fleet& fleet) {
  auto keys = numbered_keys("user:", 10);
  std::set<uint32_t> servers;
  for (const auto& k : keys)
    servers.insert(fleet.pool->server_for(k));
  REQUIRE(servers == std::set<uint32_t>{0, 1, 2});
  return keys;
}

// The sub-request one server should get: its keys, in the client's order.
std::string sub_request(Fleet& fleet, const ClientRequest& r, uint32_t server) {
  std::string line = r.command;
  if (!r.exptime.empty()) line += " " + r.exptime;
  for (const auto& k : r.key_strings)
    if (fleet.pool->server_for(k) == server) line += " " + k;
  return line + "\r\n";
}

TEST_CASE("a multi-get is split into one request per server, merged in the client's order",
          "[fanout]") {
  Fleet fleet(3);
  auto keys = ten_keys(fleet);
  // Hits and misses on every server; one key asked for twice.
  for (size_t i = 0; i < keys.size(); ++i)
    if (i % 3 != 1) fleet.put(keys[i], "value of " + keys[i], static_cast<uint32_t>(i));
  keys.push_back(keys[0]);
  auto client = make_ref<Client>();

  for (const char* command : {"get", "gets"}) {
    SECTION(command) {
      const auto request = client_request(command, keys);
      start_retrieval(fleet, request, *client, 42);

      ReplyHandler* fanout = nullptr;
      for (uint32_t s = 0; s < 3; ++s) {
        const auto& sent = fleet.server(s).sent();
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].bytes == sub_request(fleet, request, s));
        CHECK(sent[0].shape == ReplyShape::kMcRetrieval);
        CHECK(sent[0].affinity == kAffinity);
        if (fanout == nullptr) fanout = sent[0].handler;
        CHECK(sent[0].handler == fanout);
      }
      // Held by the three requests in flight, and holding the client.
      CHECK(fanout->ref_count() == 3);
      CHECK(client->ref_count() == 2);

      // Answers in any order; nothing reaches the client before the last.
      fleet.answer_from_store(2);
      fleet.answer_from_store(0);
      CHECK(client->outcomes.empty());
      CHECK(fanout->ref_count() == 1);
      fleet.answer_from_store(1);

      REQUIRE(client->outcomes.size() == 1);
      const auto& outcome = client->outcomes[0];
      CHECK(outcome.cookie == 42);
      CHECK_FALSE(outcome.failed);
      CHECK_FALSE(outcome.error);
      CHECK(outcome.reply == expected_merge(fleet, request));
      CHECK(client->ref_count() == 1);
    }
  }
}

TEST_CASE("a failing part fails the whole multi-get, once every part is done", "[fanout]") {
  Fleet fleet(3);
  const auto keys = ten_keys(fleet);
  for (const auto& k : keys)
    fleet.put(k, "v");
  auto client = make_ref<Client>();
  const auto request = client_request("get", keys);
  start_retrieval(fleet, request, *client, 5);

  SECTION("one failure") {
    fleet.server(1).answer(Answer::failure_of(Failure::kTimeout));
    CHECK(client->outcomes.empty());
    fleet.answer_from_store(0);
    CHECK(client->outcomes.empty());
    fleet.answer_from_store(2);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kTimeout);
    CHECK(client->outcomes[0].cookie == 5);
  }
  SECTION("several failures: the first one") {
    fleet.server(2).answer(Answer::failure_of(Failure::kConnect));
    fleet.server(0).answer(Answer::failure_of(Failure::kClosed));
    fleet.server(1).answer(Answer::failure_of(Failure::kTimeout));
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kConnect);
  }
  SECTION("a failure wins over an error line") {
    fleet.server(0).answer(Answer::reply_of("SERVER_ERROR out of memory\r\n", true));
    fleet.server(1).answer(Answer::failure_of(Failure::kProtocol));
    fleet.answer_from_store(2);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kProtocol);
  }
  CHECK(client->ref_count() == 1);
}

TEST_CASE("an error line from a part is the client's reply", "[fanout]") {
  Fleet fleet(3);
  const auto keys = ten_keys(fleet);
  for (const auto& k : keys)
    fleet.put(k, "v");
  auto client = make_ref<Client>();
  const auto request = client_request("get", keys);
  start_retrieval(fleet, request, *client, 9);

  SECTION("one error") {
    fleet.answer_from_store(0);
    fleet.server(2).answer(Answer::reply_of("SERVER_ERROR out of memory\r\n", true));
    CHECK(client->outcomes.empty());
    fleet.answer_from_store(1);
    REQUIRE(client->outcomes.size() == 1);
    CHECK_FALSE(client->outcomes[0].failed);
    CHECK(client->outcomes[0].error);
    CHECK(client->outcomes[0].reply == "SERVER_ERROR out of memory\r\n");
    CHECK(client->outcomes[0].cookie == 9);
  }
  SECTION("items before an error line are not passed on") {
    fleet.answer_from_store(0);
    fleet.answer_from_store(1);
    fleet.server(2).answer(
        Answer::reply_of("VALUE " + keys[0] + " 0 1\r\nv\r\nSERVER_ERROR out of memory\r\n", true));
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].error);
    CHECK(client->outcomes[0].reply == "SERVER_ERROR out of memory\r\n");
  }
  SECTION("several errors: the first one") {
    fleet.server(1).answer(Answer::reply_of("CLIENT_ERROR bad data chunk\r\n", true));
    fleet.server(0).answer(Answer::reply_of("SERVER_ERROR busy\r\n", true));
    fleet.answer_from_store(2);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].error);
    CHECK(client->outcomes[0].reply == "CLIENT_ERROR bad data chunk\r\n");
  }
  CHECK(client->ref_count() == 1);
}

TEST_CASE("parts answered inside send() (fail-fast) complete the fanout", "[fanout]") {
  Fleet fleet(3);
  const auto keys = ten_keys(fleet);
  for (size_t i = 0; i < keys.size(); i += 2)
    fleet.put(keys[i], "v" + std::to_string(i));
  auto client = make_ref<Client>();
  const auto request = client_request("get", keys);

  SECTION("every part at once: the outcome is there when start() returns") {
    fleet.answer_inline();
    start_retrieval(fleet, request, *client, 1);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].reply == expected_merge(fleet, request));
  }
  SECTION("every server backing off") {
    for (auto& s : fleet.servers)
      s->script = [](std::string_view) { return Answer::failure_of(Failure::kUnavailable); };
    start_retrieval(fleet, request, *client, 1);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kUnavailable);
  }
  SECTION("the first server sent to fails fast, the others answer later") {
    const uint32_t first = fleet.pool->server_for(keys[0]);
    fleet.server(first).script = [](std::string_view) {
      return Answer::failure_of(Failure::kUnavailable);
    };
    start_retrieval(fleet, request, *client, 1);
    CHECK(client->outcomes.empty());
    for (uint32_t s = 0; s < 3; ++s)
      if (s != first) fleet.answer_from_store(s);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kUnavailable);
  }
  SECTION("the first server sent to answers later, the others inline") {
    fleet.answer_inline();
    const uint32_t first = fleet.pool->server_for(keys[0]);
    fleet.server(first).script = nullptr;
    start_retrieval(fleet, request, *client, 1);
    CHECK(client->outcomes.empty());
    fleet.answer_from_store(first);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].reply == expected_merge(fleet, request));
  }
  CHECK(client->ref_count() == 1);
}

// The lines a greedy split of each server's keys gives: a key goes on its server's current line
// unless the line, CRLF included, would pass max_line.
std::map<uint32_t, std::vector<std::string>> expected_split(Fleet& fleet, const ClientRequest& r,
                                                            size_t max_line) {
  const std::string head = r.command + " " + r.exptime;
  std::map<uint32_t, std::vector<std::string>> lines;
  std::map<uint32_t, std::string> current;
  for (const auto& k : r.key_strings) {
    const uint32_t s = fleet.pool->server_for(k);
    auto [it, fresh] = current.try_emplace(s, head);
    if (!fresh && it->second.size() + 1 + k.size() + 2 > max_line) {
      lines[s].push_back(it->second + "\r\n");
      it->second = head;
    }
    it->second += " " + k;
  }
  for (auto& [s, line] : current)
    lines[s].push_back(line + "\r\n");
  return lines;
}

TEST_CASE("gat/gats lines longer than max_line are split per server", "[fanout]") {
  // memcached drops a connection holding more than 2048 bytes of a non-get line.
  constexpr size_t kMaxLine = 2048;
  Fleet fleet(3);
  std::vector<std::string> keys;
  for (int i = 0; i < 90; ++i) {
    std::string k = "session:" + std::to_string(i) + ":";
    k.resize(120 + static_cast<size_t>(i % 7), 'k');
    keys.push_back(k);
    if (i % 4 != 3) fleet.put(k, "data " + std::to_string(i), 3);
  }
  auto client = make_ref<Client>();
  fleet.answer_inline();

  for (const char* command : {"gat", "gats"}) {
    SECTION(command) {
      const auto request = client_request(command, keys, "300");
      REQUIRE(request.bytes.size() > 3 * kMaxLine);
      start_retrieval(fleet, request, *client, 3, kMaxLine);

      const auto expected = expected_split(fleet, request, kMaxLine);
      size_t parts = 0;
      for (uint32_t s = 0; s < 3; ++s) {
        std::vector<std::string> got;
        for (const auto& sent : fleet.server(s).sent()) {
          CHECK(sent.bytes.size() <= kMaxLine);
          CHECK(sent.bytes.starts_with(std::string(command) + " 300 "));
          got.push_back(sent.bytes);
        }
        CHECK(got.size() >= 2);
        CHECK(got == expected.at(s));
        parts += got.size();
      }
      CHECK(parts >= 6);
      REQUIRE(client->outcomes.size() == 1);
      CHECK_FALSE(client->outcomes[0].failed);
      CHECK(client->outcomes[0].reply == expected_merge(fleet, request));
    }
  }
  CHECK(client->ref_count() == 1);
}

TEST_CASE("a split line may be exactly max_line long, CRLF included", "[fanout]") {
  // One server, ten-byte keys: "gat 300" + 3 * " <key>" + CRLF is 42 bytes.
  constexpr size_t kMaxLine = 7 + 3 * 11 + 2;
  Fleet fleet(1);
  std::vector<std::string> keys;
  for (int i = 0; i < 7; ++i) {
    keys.push_back("key-" + std::string(5, static_cast<char>('a' + i)) + "0");
    REQUIRE(keys.back().size() == 10);
    fleet.put(keys.back(), std::to_string(i));
  }
  auto client = make_ref<Client>();
  fleet.answer_inline();
  const auto request = client_request("gat", keys, "300");
  start_retrieval(fleet, request, *client, 3, kMaxLine);

  const auto& sent = fleet.server(0).sent();
  REQUIRE(sent.size() == 3);
  CHECK(sent[0].bytes == "gat 300 " + keys[0] + " " + keys[1] + " " + keys[2] + "\r\n");
  CHECK(sent[0].bytes.size() == kMaxLine);
  CHECK(sent[1].bytes == "gat 300 " + keys[3] + " " + keys[4] + " " + keys[5] + "\r\n");
  CHECK(sent[2].bytes == "gat 300 " + keys[6] + "\r\n");
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == expected_merge(fleet, request));
}

TEST_CASE("fanouts are recycled and give back every reference", "[fanout]") {
  Fleet fleet(3);
  const auto keys = ten_keys(fleet);
  for (const auto& k : keys)
    fleet.put(k, "v");
  auto client = make_ref<Client>();
  const auto request = client_request("get", keys);

  start_retrieval(fleet, request, *client, 1);
  ReplyHandler* first = fleet.server(0).sent().at(0).handler;
  for (uint32_t s = 0; s < 3; ++s)
    fleet.answer_from_store(s);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->ref_count() == 1);

  // The finished one is reused for the next request.
  start_retrieval(fleet, request, *client, 2);
  ReplyHandler* second = fleet.server(0).sent().at(1).handler;
  CHECK(second == first);
  // Two at once are two objects.
  start_retrieval(fleet, request, *client, 3);
  ReplyHandler* third = fleet.server(0).sent().at(2).handler;
  CHECK(third != second);
  CHECK(client->ref_count() == 3);
  CHECK(second->ref_count() == 3);
  CHECK(third->ref_count() == 3);
  for (uint32_t s = 0; s < 3; ++s) {
    fleet.answer_from_store(s);
    fleet.answer_from_store(s);
  }
  REQUIRE(client->outcomes.size() == 3);
  CHECK(client->outcomes[1].cookie == 2);
  CHECK(client->outcomes[2].cookie == 3);
  CHECK(client->outcomes[1].reply == client->outcomes[0].reply);
  CHECK(client->outcomes[2].reply == client->outcomes[0].reply);
  CHECK(client->ref_count() == 1);

  SECTION("a recycled fanout carries nothing over from its last use") {
    // The last use ended in an error line and a failure; the next one must merge normally.
    start_retrieval(fleet, request, *client, 4);
    fleet.server(0).answer(Answer::reply_of("SERVER_ERROR busy\r\n", true));
    fleet.server(1).answer(Answer::failure_of(Failure::kTimeout));
    fleet.answer_from_store(2);
    REQUIRE(client->outcomes.size() == 4);
    CHECK(client->outcomes[3].failed);
    fleet.answer_inline();
    start_retrieval(fleet, request, *client, 5);
    REQUIRE(client->outcomes.size() == 5);
    CHECK_FALSE(client->outcomes[4].failed);
    CHECK_FALSE(client->outcomes[4].error);
    CHECK(client->outcomes[4].reply == client->outcomes[0].reply);
  }
  SECTION("the next fanout started from inside the client's callback") {
    // Parts answered inline: the second fanout starts and finishes while the first is still
    // reporting its outcome.
    fleet.answer_inline();
    client->then = [&] { start_retrieval(fleet, request, *client, 5); };
    start_retrieval(fleet, request, *client, 4);
    REQUIRE(client->outcomes.size() == 5);
    CHECK(client->outcomes[3].cookie == 4);
    CHECK(client->outcomes[4].cookie == 5);
    CHECK(client->outcomes[3].reply == client->outcomes[0].reply);
    CHECK(client->outcomes[4].reply == client->outcomes[0].reply);
  }
  SECTION("the next fanout started from inside the callback, answered later") {
    client->then = [&] { start_retrieval(fleet, request, *client, 5); };
    start_retrieval(fleet, request, *client, 4);
    for (uint32_t s = 0; s < 3; ++s)
      fleet.answer_from_store(s);
    REQUIRE(client->outcomes.size() == 4);
    for (uint32_t s = 0; s < 3; ++s) {
      REQUIRE(fleet.server(s).waiting() == 1);
      CHECK(fleet.server(s).sent().back().handler != fleet.server(s).sent().at(3).handler);
      fleet.answer_from_store(s);
    }
    REQUIRE(client->outcomes.size() == 5);
    CHECK(client->outcomes[4].cookie == 5);
    CHECK(client->outcomes[4].reply == client->outcomes[0].reply);
  }
  SECTION("many in a row") {
    fleet.answer_inline();
    for (uint32_t i = 0; i < 1000; ++i)
      start_retrieval(fleet, request, *client, 100 + i);
    REQUIRE(client->outcomes.size() == 1003);
    CHECK(client->outcomes.back().cookie == 1099);
    CHECK(client->outcomes.back().reply == client->outcomes[0].reply);
  }
  CHECK(client->ref_count() == 1);
}

// --- Broadcast ---------------------------------------------------------------------------------

void start_broadcast(Fleet& fleet, Client& client, uint32_t cookie) {
  // As for "flush_all noreply": the request goes out in pieces, the noreply token left out.
  const std::string_view pieces[2] = {"flush_all 0", "\r\n"};
  Broadcast::start(*fleet.pool, pieces, 2, ReplyShape::kMcLine, client, cookie, kAffinity);
}

TEST_CASE("a multi-get charges the parts it holds to its client until it answers", "[fanout]") {
  Fleet fleet(3);
  const auto keys = ten_keys(fleet);
  for (const auto& k : keys)
    fleet.put(k, std::string(100, 'v'));
  auto client = make_ref<Client>();
  const auto request = client_request("get", keys);
  std::vector<uint32_t> server_of_key;
  for (const auto& k : request.keys)
    server_of_key.push_back(fleet.pool->server_for(k.in(request.bytes.data())));
  RetrievalFanout::start(*fleet.pool, request.command, request.exptime, request.bytes.data(),
                         request.keys, server_of_key, *client, 1, kAffinity);
  fleet.answer_from_store(0);
  CHECK(client->charged > 0);
  fleet.answer_from_store(1);
  const int64_t two_parts = client->charged;
  CHECK(two_parts > 0);
  SECTION("released when the merged reply is delivered") {
    fleet.answer_from_store(2);
    REQUIRE(client->outcomes.size() == 1);
    REQUIRE_FALSE(client->outcomes[0].failed);
    CHECK(client->charged == 0);
    CHECK(client->most_charged >=
          static_cast<int64_t>(client->outcomes[0].reply.size()) - 5);  // all but END
  }
  SECTION("released when a part fails") {
    fleet.server(2).answer(Answer::failure_of(Failure::kTimeout));
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->charged == 0);
  }
}

TEST_CASE("a broadcast reaches every server and answers once", "[broadcast]") {
  Fleet fleet(3);
  auto client = make_ref<Client>();
  start_broadcast(fleet, *client, 11);

  ReplyHandler* broadcast = fleet.server(0).sent().at(0).handler;
  for (uint32_t s = 0; s < 3; ++s) {
    const auto& sent = fleet.server(s).sent();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].bytes == "flush_all 0\r\n");
    CHECK(sent[0].shape == ReplyShape::kMcLine);
    CHECK(sent[0].affinity == kAffinity);
    CHECK(sent[0].cookie == s);
    CHECK(sent[0].handler == broadcast);
  }
  CHECK(broadcast->ref_count() == 3);
  CHECK(client->ref_count() == 2);

  SECTION("all OK: server 0's reply, whoever answers last") {
    // Replies told apart so that it shows whose is passed on.
    fleet.server(2).answer(Answer::reply_of("OK\r\n"));
    fleet.server(0).answer(Answer::reply_of("OK from s0\r\n"));
    CHECK(client->outcomes.empty());
    fleet.server(1).answer(Answer::reply_of("OK\r\n"));
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].cookie == 11);
    CHECK_FALSE(client->outcomes[0].failed);
    CHECK_FALSE(client->outcomes[0].error);
    CHECK(client->outcomes[0].reply == "OK from s0\r\n");
  }
  SECTION("one error reply wins, before or after server 0's") {
    const bool error_first = GENERATE(true, false);
    if (error_first) fleet.server(1).answer(Answer::reply_of("SERVER_ERROR busy\r\n", true));
    fleet.server(0).answer(Answer::reply_of("OK\r\n"));
    if (!error_first) fleet.server(1).answer(Answer::reply_of("SERVER_ERROR busy\r\n", true));
    fleet.server(2).answer(Answer::reply_of("OK\r\n"));
    REQUIRE(client->outcomes.size() == 1);
    CHECK_FALSE(client->outcomes[0].failed);
    CHECK(client->outcomes[0].error);
    CHECK(client->outcomes[0].reply == "SERVER_ERROR busy\r\n");
  }
  SECTION("several error replies: the first received") {
    fleet.server(2).answer(Answer::reply_of("SERVER_ERROR two\r\n", true));
    fleet.server(0).answer(Answer::reply_of("SERVER_ERROR zero\r\n", true));
    fleet.server(1).answer(Answer::reply_of("OK\r\n"));
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].error);
    CHECK(client->outcomes[0].reply == "SERVER_ERROR two\r\n");
  }
  SECTION("one failure wins, even over an error reply") {
    fleet.server(0).answer(Answer::reply_of("SERVER_ERROR zero\r\n", true));
    fleet.server(2).answer(Answer::failure_of(Failure::kTimeout));
    CHECK(client->outcomes.empty());
    fleet.server(1).answer(Answer::failure_of(Failure::kClosed));
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kTimeout);
    CHECK(client->outcomes[0].cookie == 11);
  }
  CHECK(client->ref_count() == 1);
}

TEST_CASE("a broadcast answered inside send() completes before start() returns", "[broadcast]") {
  Fleet fleet(3);
  auto client = make_ref<Client>();

  SECTION("all OK") {
    for (auto& s : fleet.servers)
      s->script = [](std::string_view) { return Answer::reply_of("OK\r\n"); };
    start_broadcast(fleet, *client, 1);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].reply == "OK\r\n");
    CHECK_FALSE(client->outcomes[0].error);
  }
  SECTION("one server backing off") {
    for (auto& s : fleet.servers)
      s->script = [](std::string_view) { return Answer::reply_of("OK\r\n"); };
    fleet.server(1).script = [](std::string_view) {
      return Answer::failure_of(Failure::kUnavailable);
    };
    start_broadcast(fleet, *client, 1);
    REQUIRE(client->outcomes.size() == 1);
    CHECK(client->outcomes[0].failed);
    CHECK(client->outcomes[0].failure == Failure::kUnavailable);
  }
  CHECK(client->ref_count() == 1);
}

TEST_CASE("broadcasts are recycled and carry nothing over", "[broadcast]") {
  Fleet fleet(3);
  auto client = make_ref<Client>();
  start_broadcast(fleet, *client, 1);
  ReplyHandler* first = fleet.server(0).sent().at(0).handler;
  fleet.server(0).answer(Answer::reply_of("OK\r\n"));
  fleet.server(1).answer(Answer::reply_of("SERVER_ERROR busy\r\n", true));
  fleet.server(2).answer(Answer::failure_of(Failure::kClosed));
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].failed);

  start_broadcast(fleet, *client, 2);
  CHECK(fleet.server(0).sent().at(1).handler == first);
  for (uint32_t s = 0; s < 3; ++s)
    fleet.server(s).answer(Answer::reply_of("OK\r\n"));
  REQUIRE(client->outcomes.size() == 2);
  CHECK_FALSE(client->outcomes[1].failed);
  CHECK_FALSE(client->outcomes[1].error);
  CHECK(client->outcomes[1].reply == "OK\r\n");
  CHECK(client->ref_count() == 1);
}

}  // namespace
}  // namespace cachegate::routing
