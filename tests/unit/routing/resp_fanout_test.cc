// RespFanout and ScanRequest: what each Redis server of a pool is sent, and how the servers'
// replies become the one reply a single redis-server holding every key would have sent. A part
// that fails or answers with an error decides the client's outcome, delivered once, after the
// last part; every byte charged to the client while parts wait is given back.
//
// The servers are scripted in memory. Each keeps its own keys and answers MGET, MSET, DEL,
// EXISTS and SCAN as redis-server 7.0.15 does (the reply bytes were checked against one); the
// other commands are answered with fixed replies captured from redis-server.

#include "routing/resp_fanout.h"
#include "routing/pool.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "protocol/resp.h"
#include "tests/unit/routing/scripted_servers.h"

namespace cachegate::routing {
namespace {

using namespace std::string_literals;
using protocol::ReplyShape;
namespace resp = protocol::resp;
using scripted::Answer;
using scripted::Client;
using scripted::ScriptedServer;

config::PoolConfig pool_config(size_t servers) {
  config::PoolConfig c;
  c.name = "redis";
  c.protocol = config::Protocol::kRedis;
  c.distribution = config::Distribution::kKetama;
  c.hash = config::HashFunction::kMd5;
  for (size_t i = 0; i < servers; ++i) {
    config::ServerConfig s;
    s.name = "r" + std::to_string(i);
    s.identity = s.name;
    s.host = "redis-" + std::to_string(i);
    s.port = 6379;
    s.spec = s.host + ":6379:1 " + s.name;
    c.servers.push_back(s);
  }
  return c;
}

// As a backend connection flags a reply: an error when it starts with '-' or '!'.
Answer resp_answer(std::string reply) {
  const bool error = !reply.empty() && (reply[0] == '-' || reply[0] == '!');
  return Answer::reply_of(std::move(reply), error);
}

// --- what redis-server would answer ------------------------------------------------------------

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

std::string command(const std::vector<std::string_view>& args) {
  std::string out;
  resp::append_command(out, args.data(), args.size());
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

// One redis-server's keys, answering the data commands the fan-outs send.
struct Store {
  std::map<std::string, std::string, std::less<>> values;
  int protocol = 2;

  std::string null() const { return protocol == 3 ? "_\r\n" : "$-1\r\n"; }

  // SCAN cursors are opaque numbers to a client; these are 1000 + the index of the next key, so
  // that they look nothing like the client's cursors.
  std::string scan(uint64_t cursor, size_t count) const {
    const size_t start = cursor == 0 ? 0 : static_cast<size_t>(cursor - 1000);
    std::vector<std::string> keys;
    auto it = values.begin();
    std::advance(it, std::min(start, values.size()));
    for (; it != values.end() && keys.size() < count; ++it)
      keys.push_back(it->first);
    const size_t end = start + keys.size();
    const std::string next = end < values.size() ? std::to_string(1000 + end) : "0";
    std::string out = "*2\r\n" + bulk(next) + "*" + std::to_string(keys.size()) + "\r\n";
    for (const auto& k : keys)
      out += bulk(k);
    return out;
  }

  std::string answer(std::string_view request) {
    resp::RequestParser parser;
    resp::Request r;
    REQUIRE(parser.parse(request.data(), request.size(), r) == resp::ParseStatus::kOk);
    REQUIRE(r.length == request.size());
    const auto& a = parser.args();
    const std::string name = upper(a[0]);
    if (name == "MGET") {
      std::string out = "*" + std::to_string(a.size() - 1) + "\r\n";
      for (size_t i = 1; i < a.size(); ++i) {
        auto it = values.find(a[i]);
        out += it == values.end() ? null() : bulk(it->second);
      }
      return out;
    }
    if (name == "MSET") {
      REQUIRE(a.size() % 2 == 1);
      for (size_t i = 1; i < a.size(); i += 2)
        values[std::string(a[i])] = std::string(a[i + 1]);
      return "+OK\r\n";
    }
    if (name == "DEL" || name == "UNLINK" || name == "EXISTS" || name == "TOUCH") {
      int64_t n = 0;
      for (size_t i = 1; i < a.size(); ++i) {
        auto it = values.find(a[i]);
        if (it == values.end()) continue;
        ++n;
        if (name == "DEL" || name == "UNLINK") values.erase(it);
      }
      return ":" + std::to_string(n) + "\r\n";
    }
    if (name == "DBSIZE") return ":" + std::to_string(values.size()) + "\r\n";
    if (name == "KEYS") {
      std::string out = "*" + std::to_string(values.size()) + "\r\n";
      for (const auto& [k, v] : values)
        out += bulk(k);
      return out;
    }
    if (name == "SCAN") {
      size_t count = 10;
      for (size_t i = 2; i + 1 < a.size(); i += 2)
        if (upper(a[i]) == "COUNT") count = std::stoul(std::string(a[i + 1]));
      return scan(std::stoull(std::string(a[1])), count);
    }
    FAIL("the scripted server does not know " << name);
    return {};
  }
};

// A pool of scripted servers, each with its own keys.
struct Fleet {
  explicit Fleet(size_t n) : config(pool_config(n)), stores(n) {
    std::vector<Destination*> destinations;
    for (size_t i = 0; i < n; ++i) {
      servers.push_back(std::make_unique<ScriptedServer>(config.servers[i].spec));
      destinations.push_back(servers.back().get());
    }
    pool = std::make_unique<Pool>(config, destinations);
  }
  Fleet(const Fleet&) = delete;

  ScriptedServer& server(size_t i) { return *servers[i]; }

  // Every server answers from its store inside send().
  void answer_inline() {
    for (size_t i = 0; i < servers.size(); ++i) {
      servers[i]->script = [this, i](std::string_view request) -> std::optional<Answer> {
        return resp_answer(stores[i].answer(request));
      };
    }
  }
  // Server `i` answers its oldest waiting request from its store.
  void answer_from_store(size_t i) {
    servers[i]->answer_with(
        [this, i](std::string_view request) { return resp_answer(stores[i].answer(request)); });
  }
  // Every server answers requests with `reply` inside send().
  void answer_all_with(const std::vector<std::string>& replies) {
    REQUIRE(replies.size() == servers.size());
    for (size_t i = 0; i < servers.size(); ++i) {
      servers[i]->script = [reply = replies[i]](std::string_view) -> std::optional<Answer> {
        return resp_answer(reply);
      };
    }
  }

  config::PoolConfig config;  // the pool keeps a reference
  std::vector<Store> stores;
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  std::unique_ptr<Pool> pool;
};

constexpr uint32_t kAffinity = 7;

// A keyed request as the session hands it over: the client's arguments, the index of each key
// among them, and the server of each key.
struct KeyedRequest {
  std::vector<std::string> args;
  std::vector<uint32_t> key_index;
  std::vector<uint32_t> server_of_key;
};

void start_keyed(Fleet& fleet, const KeyedRequest& r, RespMerge merge, Client& client,
                 uint32_t cookie, ReplyShape shape = ReplyShape::kResp2) {
  std::vector<std::string_view> views(r.args.begin(), r.args.end());
  RespFanout::start_keyed(*fleet.pool, views.data(), views.size(), r.key_index, r.server_of_key,
                          upper(r.args[0]) == "MSET", merge, shape, client, cookie, kAffinity);
}

// MGET/DEL/EXISTS of `keys`, key i on server `servers[i]`.
KeyedRequest keyed(std::string name, const std::vector<std::string>& keys,
                   const std::vector<uint32_t>& servers) {
  KeyedRequest r;
  r.args.push_back(std::move(name));
  for (size_t i = 0; i < keys.size(); ++i) {
    r.args.push_back(keys[i]);
    r.key_index.push_back(static_cast<uint32_t>(i + 1));
  }
  r.server_of_key = servers;
  return r;
}

// What one redis-server holding every store's keys would answer.
std::string single_server_answer(Fleet& fleet, const KeyedRequest& r, int protocol = 2) {
  Store all;
  all.protocol = protocol;
  for (const auto& s : fleet.stores)
    all.values.insert(s.values.begin(), s.values.end());
  std::vector<std::string_view> views(r.args.begin(), r.args.end());
  return all.answer(command(views));
}

// --- keyed fan-outs ----------------------------------------------------------------------------

TEST_CASE("MGET is split into one request per server and merged in the client's order",
          "[resp-fanout]") {
  Fleet fleet(3);
  // key i lives on server placement[i]; k1, k5 and k8 are missing; k0 is asked for twice.
  const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4",
                                         "k5", "k6", "k7", "k8", "k0"};
  const std::vector<uint32_t> placement = {2, 0, 1, 2, 0, 1, 1, 0, 2, 2};
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i] != "k1" && keys[i] != "k5" && keys[i] != "k8")
      fleet.stores[placement[i]].values[keys[i]] = "value of " + keys[i];
  const KeyedRequest request = keyed("MGET", keys, placement);
  auto client = make_ref<Client>();

  start_keyed(fleet, request, RespMerge::kValuesInKeyOrder, *client, 42);

  // Parts in the order their server first appears among the keys; each server's keys in the
  // client's order.
  CHECK(fleet.server(2).sent().at(0).bytes == command({"MGET", "k0", "k3", "k8", "k0"}));
  CHECK(fleet.server(0).sent().at(0).bytes == command({"MGET", "k1", "k4", "k7"}));
  CHECK(fleet.server(1).sent().at(0).bytes == command({"MGET", "k2", "k5", "k6"}));
  ReplyHandler* fanout = fleet.server(0).sent()[0].handler;
  for (uint32_t s = 0; s < 3; ++s) {
    REQUIRE(fleet.server(s).sent().size() == 1);
    CHECK(fleet.server(s).sent()[0].shape == ReplyShape::kResp2);
    CHECK(fleet.server(s).sent()[0].affinity == kAffinity);
    CHECK(fleet.server(s).sent()[0].handler == fanout);
  }
  CHECK(fleet.server(2).sent()[0].cookie == 0);
  CHECK(fleet.server(0).sent()[0].cookie == 1);
  CHECK(fleet.server(1).sent()[0].cookie == 2);
  CHECK(fanout->ref_count() == 3);
  CHECK(client->ref_count() == 2);

  // Answers in any order; nothing reaches the client before the last.
  fleet.answer_from_store(1);
  fleet.answer_from_store(2);
  CHECK(client->outcomes.empty());
  CHECK(client->charged > 0);
  fleet.answer_from_store(0);

  REQUIRE(client->outcomes.size() == 1);
  const auto& outcome = client->outcomes[0];
  CHECK(outcome.cookie == 42);
  CHECK_FALSE(outcome.failed);
  CHECK_FALSE(outcome.error);
  CHECK(outcome.reply == single_server_answer(fleet, request));
  CHECK(outcome.reply ==
        "*10\r\n$11\r\nvalue of k0\r\n$-1\r\n$11\r\nvalue of k2\r\n$11\r\nvalue of k3\r\n"
        "$11\r\nvalue of k4\r\n$-1\r\n$11\r\nvalue of k6\r\n$11\r\nvalue of k7\r\n$-1\r\n"
        "$11\r\nvalue of k0\r\n");
  // Every byte charged while parts waited was given back before the outcome.
  CHECK(outcome.charged_at_outcome == 0);
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("MGET in RESP3 keeps the servers' nulls", "[resp-fanout]") {
  Fleet fleet(3);
  for (auto& s : fleet.stores)
    s.protocol = 3;
  fleet.stores[1].values["b"] = "B";
  const KeyedRequest request = keyed("MGET", {"a", "b", "c"}, {0, 1, 2});
  fleet.answer_inline();
  auto client = make_ref<Client>();
  start_keyed(fleet, request, RespMerge::kValuesInKeyOrder, *client, 1, ReplyShape::kResp3);
  CHECK(fleet.server(0).sent().at(0).shape == ReplyShape::kResp3);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "*3\r\n_\r\n$1\r\nB\r\n_\r\n");
  CHECK(client->outcomes[0].reply == single_server_answer(fleet, request, 3));
}

TEST_CASE("keys all on one server still make one request", "[resp-fanout]") {
  Fleet fleet(3);
  fleet.stores[1].values = {{"a", "1"}, {"b", "2"}};
  fleet.answer_inline();
  auto client = make_ref<Client>();
  start_keyed(fleet, keyed("MGET", {"a", "x", "b"}, {1, 1, 1}), RespMerge::kValuesInKeyOrder,
              *client, 5);
  CHECK(fleet.server(0).sent().empty());
  CHECK(fleet.server(2).sent().empty());
  REQUIRE(fleet.server(1).sent().size() == 1);
  CHECK(fleet.server(1).sent()[0].bytes == command({"MGET", "a", "x", "b"}));
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
}

TEST_CASE("MSET sends each key's value with it to the key's server", "[resp-fanout]") {
  Fleet fleet(3);
  fleet.answer_inline();
  KeyedRequest request;
  request.args = {"MSET", "a", "1", "b", "two", "c", "", "d", "4\r\n"};
  request.key_index = {1, 3, 5, 7};
  request.server_of_key = {1, 0, 1, 2};
  auto client = make_ref<Client>();
  start_keyed(fleet, request, RespMerge::kAllOk, *client, 9);

  CHECK(fleet.server(1).sent().at(0).bytes == command({"MSET", "a", "1", "c", ""}));
  CHECK(fleet.server(0).sent().at(0).bytes == command({"MSET", "b", "two"}));
  CHECK(fleet.server(2).sent().at(0).bytes == command({"MSET", "d", "4\r\n"}));
  using Values = std::map<std::string, std::string, std::less<>>;
  CHECK(fleet.stores[0].values == Values{{"b", "two"}});
  CHECK(fleet.stores[1].values == Values{{"a", "1"}, {"c", ""}});
  CHECK(fleet.stores[2].values == Values{{"d", "4\r\n"}});
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "+OK\r\n");
  CHECK_FALSE(client->outcomes[0].error);
  CHECK(client->outcomes[0].cookie == 9);
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("DEL and EXISTS sum the servers' counts", "[resp-fanout]") {
  Fleet fleet(3);
  fleet.stores[0].values = {{"a", "1"}, {"d", "4"}};
  fleet.stores[1].values = {{"b", "2"}};
  fleet.stores[2].values = {{"c", "3"}};
  fleet.answer_inline();
  auto client = make_ref<Client>();

  // EXISTS counts a key named twice twice, as redis does.
  const auto exists = keyed("EXISTS", {"a", "a", "b", "nosuch", "c"}, {0, 0, 1, 2, 2});
  start_keyed(fleet, exists, RespMerge::kSumIntegers, *client, 1);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == ":4\r\n");
  CHECK(client->outcomes[0].reply == single_server_answer(fleet, exists));

  const auto del = keyed("DEL", {"a", "b", "nosuch", "d"}, {0, 1, 2, 0});
  start_keyed(fleet, del, RespMerge::kSumIntegers, *client, 2);
  REQUIRE(client->outcomes.size() == 2);
  CHECK(client->outcomes[1].reply == ":3\r\n");
  CHECK(fleet.server(0).sent().back().bytes == command({"DEL", "a", "d"}));
  CHECK(fleet.stores[0].values.empty());
  CHECK(fleet.stores[1].values.empty());
  CHECK(fleet.stores[2].values.size() == 1);
  CHECK(client->charged == 0);
}

TEST_CASE("a part that fails fails the request, once, after every part", "[resp-fanout]") {
  Fleet fleet(3);
  fleet.stores[0].values["a"] = "1";
  auto client = make_ref<Client>();
  const auto request = keyed("MGET", {"a", "b", "c"}, {0, 1, 2});

  SECTION("answered later, the failure in the middle") {
    start_keyed(fleet, request, RespMerge::kValuesInKeyOrder, *client, 3);
    fleet.answer_from_store(0);
    fleet.server(1).answer(Answer::failure_of(Failure::kTimeout));
    CHECK(client->outcomes.empty());
    fleet.answer_from_store(2);
  }
  SECTION("failing fast inside send(), before the other parts are even sent") {
    fleet.server(0).script = [](std::string_view) -> std::optional<Answer> {
      return Answer::failure_of(Failure::kTimeout);
    };
    start_keyed(fleet, request, RespMerge::kValuesInKeyOrder, *client, 3);
    CHECK(client->outcomes.empty());
    CHECK(fleet.server(1).waiting() == 1);
    CHECK(fleet.server(2).waiting() == 1);
    fleet.answer_from_store(1);
    fleet.answer_from_store(2);
  }
  SECTION("two parts failing: the first failure is the one reported") {
    start_keyed(fleet, request, RespMerge::kValuesInKeyOrder, *client, 3);
    fleet.server(2).answer(Answer::failure_of(Failure::kTimeout));
    fleet.server(0).answer(Answer::failure_of(Failure::kClosed));
    CHECK(client->outcomes.empty());
    fleet.answer_from_store(1);
  }
  SECTION("a failure wins over an error reply") {
    start_keyed(fleet, request, RespMerge::kValuesInKeyOrder, *client, 3);
    fleet.server(0).answer(resp_answer("-ERR something\r\n"));
    fleet.server(1).answer(Answer::failure_of(Failure::kTimeout));
    fleet.answer_from_store(2);
  }
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].failed);
  CHECK(client->outcomes[0].failure == Failure::kTimeout);
  CHECK(client->outcomes[0].cookie == 3);
  CHECK(client->outcomes[0].charged_at_outcome == 0);
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("an error reply from one part is the client's reply", "[resp-fanout]") {
  Fleet fleet(3);
  auto client = make_ref<Client>();
  const std::string wrongtype =
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
  start_keyed(fleet, keyed("MGET", {"a", "b", "c"}, {0, 1, 2}), RespMerge::kValuesInKeyOrder,
              *client, 4);
  fleet.answer_from_store(0);
  fleet.server(1).answer(resp_answer(wrongtype));
  fleet.server(2).answer(resp_answer("-ERR second\r\n"));
  REQUIRE(client->outcomes.size() == 1);
  CHECK_FALSE(client->outcomes[0].failed);
  CHECK(client->outcomes[0].error);
  CHECK(client->outcomes[0].reply == wrongtype);
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("an unexpected reply from a part becomes an error", "[resp-fanout]") {
  Fleet fleet(2);
  auto client = make_ref<Client>();
  const std::string unexpected = "-ERR cachegate: a server sent an unexpected reply\r\n";
  SECTION("MGET answered with fewer values than keys") {
    fleet.answer_all_with({"*1\r\n$1\r\nx\r\n", "*1\r\n$1\r\ny\r\n"});
    start_keyed(fleet, keyed("MGET", {"a", "b", "c"}, {0, 1, 0}), RespMerge::kValuesInKeyOrder,
                *client, 1);
  }
  SECTION("MGET answered with a non-array") {
    fleet.answer_all_with({"+OK\r\n", "*1\r\n$1\r\ny\r\n"});
    start_keyed(fleet, keyed("MGET", {"a", "b"}, {0, 1}), RespMerge::kValuesInKeyOrder, *client, 1);
  }
  SECTION("MGET answered with more values than keys") {
    // The extra value says the reply is not the answer to what was asked: none of it is used.
    fleet.answer_all_with({"*2\r\n$1\r\nx\r\n$1\r\nz\r\n", "*1\r\n$1\r\ny\r\n"});
    start_keyed(fleet, keyed("MGET", {"a", "b"}, {0, 1}), RespMerge::kValuesInKeyOrder, *client, 1);
  }
  SECTION("DEL answered with a non-integer") {
    fleet.answer_all_with({":1\r\n", "$1\r\n1\r\n"});
    start_keyed(fleet, keyed("DEL", {"a", "b"}, {0, 1}), RespMerge::kSumIntegers, *client, 1);
  }
  SECTION("DEL answered with counts whose sum does not fit 64 bits") {
    fleet.answer_all_with({":9223372036854775807\r\n", ":1\r\n"});
    start_keyed(fleet, keyed("DEL", {"a", "b"}, {0, 1}), RespMerge::kSumIntegers, *client, 1);
  }
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == unexpected);
  CHECK(client->outcomes[0].error);
  CHECK(client->charged == 0);
}

TEST_CASE("a client may start its next fan-out from inside the outcome callback", "[resp-fanout]") {
  Fleet fleet(3);
  fleet.stores[0].values["a"] = "A";
  fleet.stores[1].values["b"] = "B";
  fleet.stores[2].values["c"] = "C";
  fleet.answer_inline();
  auto client = make_ref<Client>();
  client->then = [&] {
    start_keyed(fleet, keyed("MGET", {"c", "b", "a"}, {2, 1, 0}), RespMerge::kValuesInKeyOrder,
                *client, 2);
  };
  start_keyed(fleet, keyed("MGET", {"a", "b", "c", "d"}, {0, 1, 2, 0}),
              RespMerge::kValuesInKeyOrder, *client, 1);
  REQUIRE(client->outcomes.size() == 2);
  CHECK(client->outcomes[0].cookie == 1);
  CHECK(client->outcomes[0].reply == "*4\r\n$1\r\nA\r\n$1\r\nB\r\n$1\r\nC\r\n$-1\r\n");
  CHECK(client->outcomes[1].cookie == 2);
  CHECK(client->outcomes[1].reply == "*3\r\n$1\r\nC\r\n$1\r\nB\r\n$1\r\nA\r\n");
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
}

// --- pool fan-outs -----------------------------------------------------------------------------

struct PoolResult {
  std::string reply;
  bool error = false;
};

// Sends `request` to every server of a fleet whose servers answer `replies`, and returns the
// client's outcome after checking what every server was sent.
PoolResult run_pool(const std::vector<std::string>& replies, std::string_view request,
                    RespMerge merge, int protocol = 2, std::string_view info_prefix = {}) {
  Fleet fleet(replies.size());
  // Answered later, last server first, so the merge cannot rely on arrival order.
  auto client = make_ref<Client>();
  const ReplyShape shape = protocol == 3 ? ReplyShape::kResp3 : ReplyShape::kResp2;
  RespFanout::start_pool(*fleet.pool, request, merge, shape, protocol, info_prefix, *client, 11,
                         kAffinity);
  for (size_t s = 0; s < replies.size(); ++s) {
    REQUIRE(fleet.server(s).sent().size() == 1);
    CHECK(fleet.server(s).sent()[0].bytes == request);
    CHECK(fleet.server(s).sent()[0].shape == shape);
    CHECK(fleet.server(s).sent()[0].cookie == s);
  }
  for (size_t s = replies.size(); s-- > 0;) {
    CHECK(client->outcomes.empty());
    fleet.server(s).answer(resp_answer(replies[s]));
  }
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].cookie == 11);
  CHECK_FALSE(client->outcomes[0].failed);
  CHECK(client->outcomes[0].charged_at_outcome == 0);
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
  return {client->outcomes[0].reply, client->outcomes[0].error};
}

TEST_CASE("KEYS concatenates every server's keys", "[resp-fanout][pool]") {
  const auto r = run_pool({"*2\r\n$1\r\na\r\n$2\r\ne1\r\n", "*0\r\n", "*1\r\n$1\r\nz\r\n"},
                          command({"KEYS", "*"}), RespMerge::kConcatArrays);
  CHECK(r.reply == "*3\r\n$1\r\na\r\n$2\r\ne1\r\n$1\r\nz\r\n");
  CHECK_FALSE(r.error);
  CHECK(run_pool({"*0\r\n", "*0\r\n"}, command({"KEYS", "x"}), RespMerge::kConcatArrays).reply ==
        "*0\r\n");
  // A RESP3 map counts pairs: all of its keys and values are elements, as in RESP2's flat array.
  CHECK(run_pool({"%1\r\n+a\r\n:1\r\n", "*1\r\n$1\r\nz\r\n"}, command({"KEYS", "*"}),
                 RespMerge::kConcatArrays, 3)
            .reply == "*3\r\n+a\r\n:1\r\n$1\r\nz\r\n");
}

TEST_CASE("DBSIZE sums the servers' counts", "[resp-fanout][pool]") {
  CHECK(run_pool({":3\r\n", ":0\r\n", ":5\r\n"}, command({"DBSIZE"}), RespMerge::kSumIntegers)
            .reply == ":8\r\n");
}

TEST_CASE("SCRIPT EXISTS: 1 only where every server has the script", "[resp-fanout][pool]") {
  const auto r =
      run_pool({"*3\r\n:1\r\n:0\r\n:1\r\n", "*3\r\n:1\r\n:1\r\n:0\r\n", "*3\r\n:1\r\n:1\r\n:1\r\n"},
               command({"SCRIPT", "EXISTS", "s1", "s2", "s3"}), RespMerge::kAndArrays);
  CHECK(r.reply == "*3\r\n:1\r\n:0\r\n:0\r\n");
  // Servers that disagree on the number of answers sent something unexpected.
  CHECK(run_pool({"*1\r\n:1\r\n", "*2\r\n:1\r\n:1\r\n"}, command({"SCRIPT", "EXISTS", "s1"}),
                 RespMerge::kAndArrays)
            .error);
}

TEST_CASE("PUBSUB NUMSUB: each channel's counts summed over the servers", "[resp-fanout][pool]") {
  const auto r = run_pool(
      {"*4\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:0\r\n", "*4\r\n$1\r\na\r\n:0\r\n$1\r\nb\r\n:3\r\n"},
      command({"PUBSUB", "NUMSUB", "a", "b"}), RespMerge::kSumCounts);
  CHECK(r.reply == "*4\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:3\r\n");
  CHECK_FALSE(r.error);
  // Servers that disagree on the length, or a count that is not an integer: unexpected.
  CHECK(run_pool({"*2\r\n$1\r\na\r\n:1\r\n", "*0\r\n"}, command({"PUBSUB", "NUMSUB", "a"}),
                 RespMerge::kSumCounts)
            .error);
  CHECK(run_pool({"*2\r\n$1\r\na\r\n$1\r\nx\r\n", "*2\r\n$1\r\na\r\n:1\r\n"},
                 command({"PUBSUB", "NUMSUB", "a"}), RespMerge::kSumCounts)
            .error);
}

TEST_CASE("RANDOMKEY: the first server that has a key", "[resp-fanout][pool]") {
  CHECK(run_pool({"$-1\r\n", "$3\r\nfoo\r\n", "$3\r\nbar\r\n"}, command({"RANDOMKEY"}),
                 RespMerge::kFirstNonNull)
            .reply == "$3\r\nfoo\r\n");
  CHECK(run_pool({"$-1\r\n", "$-1\r\n"}, command({"RANDOMKEY"}), RespMerge::kFirstNonNull).reply ==
        "$-1\r\n");
  CHECK(run_pool({"_\r\n", "_\r\n", "$1\r\nk\r\n"}, command({"RANDOMKEY"}),
                 RespMerge::kFirstNonNull, 3)
            .reply == "$1\r\nk\r\n");
  CHECK(run_pool({"_\r\n", "_\r\n"}, command({"RANDOMKEY"}), RespMerge::kFirstNonNull, 3).reply ==
        "_\r\n");
}

TEST_CASE("FLUSHALL, CONFIG SET: +OK when every server says so, else the error",
          "[resp-fanout][pool]") {
  CHECK(
      run_pool({"+OK\r\n", "+OK\r\n", "+OK\r\n"}, command({"FLUSHALL"}), RespMerge::kAllOk).reply ==
      "+OK\r\n");
  const std::string refused =
      "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n";
  const auto r = run_pool({"+OK\r\n", refused, "+OK\r\n"},
                          command({"CONFIG", "SET", "nosuch", "1"}), RespMerge::kAllOk);
  CHECK(r.reply == refused);
  CHECK(r.error);
}

TEST_CASE("SCRIPT LOAD: the first server's answer", "[resp-fanout][pool]") {
  const std::string sha = "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n";
  CHECK(
      run_pool({sha, sha}, command({"SCRIPT", "LOAD", "return 1"}), RespMerge::kFirstReply).reply ==
      sha);
}

TEST_CASE("a pool fan-out with a failing server fails once, after every server",
          "[resp-fanout][pool]") {
  Fleet fleet(3);
  auto client = make_ref<Client>();
  RespFanout::start_pool(*fleet.pool, command({"DBSIZE"}), RespMerge::kSumIntegers,
                         ReplyShape::kResp2, 2, {}, *client, 5, kAffinity);
  fleet.server(1).answer(Answer::failure_of(Failure::kConnect));
  fleet.server(0).answer(resp_answer(":1\r\n"));
  CHECK(client->outcomes.empty());
  fleet.server(2).answer(resp_answer(":1\r\n"));
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].failed);
  CHECK(client->outcomes[0].failure == Failure::kConnect);
  CHECK(client->charged == 0);
  CHECK(client->ref_count() == 1);
}

// --- INFO --------------------------------------------------------------------------------------

// Sections as redis-server 7.0.15 writes them (shortened): "# Name", "field:value" lines, a blank
// line between sections, Keyspace last.
const std::string kServerSection =
    "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\ntcp_port:6379\r\n\r\n"
    "# Clients\r\nconnected_clients:1\r\nmaxclients:10000\r\n\r\n";

std::string info(std::string_view keyspace_lines) {
  return kServerSection + "# Keyspace\r\n" + std::string(keyspace_lines);
}
std::string verbatim(std::string_view text) {
  return "=" + std::to_string(text.size() + 4) + "\r\ntxt:" + std::string(text) + "\r\n";
}

const std::string kPrefix = "# Proxy\r\nproxy:cachegate\r\nservers:3\r\n\r\n";

TEST_CASE("INFO: our section, server 0's sections, then every server's Keyspace summed",
          "[resp-fanout][pool][info]") {
  const std::vector<std::string> texts = {
      info("db0:keys=3,expires=2,avg_ttl=1000\r\ndb2:keys=2,expires=1,avg_ttl=500\r\n"),
      info("db0:keys=1,expires=1,avg_ttl=4000\r\n"),
      info(""),  // an empty server has a Keyspace heading and no lines
  };
  // avg_ttl is weighted by each server's keys with an expiry: (2*1000 + 1*4000) / 3.
  const std::string merged = kPrefix + kServerSection +
                             "# Keyspace\r\ndb0:keys=4,expires=3,avg_ttl=2000\r\n"
                             "db2:keys=2,expires=1,avg_ttl=500\r\n";
  SECTION("RESP2: a bulk string") {
    std::vector<std::string> replies;
    for (const auto& t : texts)
      replies.push_back(bulk(t));
    const auto r = run_pool(replies, command({"INFO"}), RespMerge::kInfo, 2, kPrefix);
    CHECK(r.reply == bulk(merged));
    CHECK_FALSE(r.error);
  }
  SECTION("RESP3: a verbatim string, as redis sends INFO after HELLO 3") {
    std::vector<std::string> replies;
    for (const auto& t : texts)
      replies.push_back(verbatim(t));
    const auto r = run_pool(replies, command({"INFO"}), RespMerge::kInfo, 3, kPrefix);
    CHECK(r.reply == verbatim(merged));
    CHECK(r.reply.substr(0, r.reply.find('\n') + 5) ==
          "=" + std::to_string(merged.size() + 4) + "\r\ntxt:");
  }
  SECTION("the merged text frames as one reply") {
    std::vector<std::string> replies;
    for (const auto& t : texts)
      replies.push_back(verbatim(t));
    const auto r = run_pool(replies, command({"INFO"}), RespMerge::kInfo, 3, kPrefix);
    resp::ReplyFramer framer;
    resp::ReplyFrame f;
    CHECK(framer.frame(r.reply.data(), r.reply.size(), f) == resp::ParseStatus::kOk);
    CHECK(f.length == r.reply.size());
  }
}

TEST_CASE("INFO: Keyspace variations", "[resp-fanout][pool][info]") {
  SECTION("every server empty: the heading alone, as redis answers INFO keyspace") {
    const auto r = run_pool({bulk("# Keyspace\r\n"), bulk("# Keyspace\r\n")},
                            command({"INFO", "keyspace"}), RespMerge::kInfo, 2, {});
    CHECK(r.reply == bulk("# Keyspace\r\n"));
  }
  SECTION("INFO keyspace: a db only some servers have") {
    const auto r = run_pool({bulk("# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"),
                             bulk("# Keyspace\r\ndb3:keys=7,expires=7,avg_ttl=70\r\n")},
                            command({"INFO", "keyspace"}), RespMerge::kInfo, 2, {});
    CHECK(r.reply == bulk("# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
                          "db3:keys=7,expires=7,avg_ttl=70\r\n"));
  }
  SECTION("sections without Keyspace are server 0's, after our own") {
    const auto r = run_pool({bulk(kServerSection), bulk("# Server\r\nredis_version:other\r\n")},
                            command({"INFO", "server", "clients"}), RespMerge::kInfo, 2, kPrefix);
    CHECK(r.reply == bulk(kPrefix + kServerSection));
  }
  SECTION("a section after Keyspace is kept after the merged Keyspace") {
    const std::string after = "\r\n# Later\r\nfield:1\r\n";
    const auto r = run_pool({bulk(info("db0:keys=1,expires=0,avg_ttl=0\r\n") + after),
                             bulk(info("db0:keys=2,expires=0,avg_ttl=0\r\n") + after)},
                            command({"INFO", "everything"}), RespMerge::kInfo, 2, {});
    CHECK(r.reply ==
          bulk(kServerSection + "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n" + after));
  }
  SECTION("Keyspace lines cachegate cannot read are left out of the sums") {
    const auto r = run_pool({bulk("# Keyspace\r\ndb1ifkeys=4,expires=1\r\ndbx:keys=2\r\n"
                                  "db0:keys=1,expires=1,avg_ttl=10\r\n"),
                             bulk("# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=30\r\n")},
                            command({"INFO", "keyspace"}), RespMerge::kInfo, 2, {});
    CHECK(r.reply == bulk("# Keyspace\r\ndb0:keys=3,expires=2,avg_ttl=20\r\n"));
  }
  SECTION("sums past 64 bits stay at the largest value") {
    const auto r = run_pool({bulk("# Keyspace\r\n"
                                  "db0:keys=18446744073709551615,expires=1,"
                                  "avg_ttl=18446744073709551615\r\n"),
                             bulk("# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n")},
                            command({"INFO", "keyspace"}), RespMerge::kInfo, 2, {});
    CHECK(r.reply == bulk("# Keyspace\r\ndb0:keys=18446744073709551615,expires=1,"
                          "avg_ttl=18446744073709551615\r\n"));
  }
  SECTION("an error from one server is the client's reply") {
    const auto r = run_pool({bulk(info("")), "-ERR busy\r\n"}, command({"INFO"}), RespMerge::kInfo,
                            2, kPrefix);
    CHECK(r.reply == "-ERR busy\r\n");
    CHECK(r.error);
  }
}

// --- SCAN cursors ------------------------------------------------------------------------------

TEST_CASE("SCAN cursors carry the server index in their low bits", "[resp-fanout][scan]") {
  CHECK(scan_server_bits(1) == 0);
  CHECK(scan_server_bits(2) == 1);
  CHECK(scan_server_bits(3) == 2);
  CHECK(scan_server_bits(4) == 2);
  CHECK(scan_server_bits(5) == 3);
  CHECK(scan_server_bits(8) == 3);
  CHECK(scan_server_bits(9) == 4);

  for (size_t servers : {1, 2, 3, 5, 8, 9}) {
    for (uint32_t server = 0; server < servers; ++server) {
      for (uint64_t cursor : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{17}, uint64_t{12345},
                              uint64_t{1} << 40}) {
        INFO(servers << " servers, server " << server << ", cursor " << cursor);
        const std::string text = encode_scan_cursor(ScanCursor{server, cursor}, servers);
        CHECK(text == std::to_string((cursor << scan_server_bits(servers)) | server));
        ScanCursor back;
        REQUIRE(decode_scan_cursor(text, servers, back));
        CHECK(back.server == server);
        CHECK(back.server_cursor == cursor);
      }
    }
    // The start of an iteration is "0", as a client expects.
    CHECK(encode_scan_cursor(ScanCursor{0, 0}, servers) == "0");
    ScanCursor start{9, 9};
    REQUIRE(decode_scan_cursor("0", servers, start));
    CHECK(start.server == 0);
    CHECK(start.server_cursor == 0);
  }
}

TEST_CASE("SCAN cursors cachegate did not hand out are refused", "[resp-fanout][scan]") {
  ScanCursor c;
  for (const char* text :
       {"", "abc", "12a", "-1", " 1", "1 ", "+1", "0x10", "1.5", "18446744073709551616"}) {
    INFO(text);
    CHECK_FALSE(decode_scan_cursor(text, 3, c));
  }
  // Server indexes the pool does not have.
  CHECK_FALSE(decode_scan_cursor("3", 3, c));
  CHECK_FALSE(decode_scan_cursor("7", 3, c));
  CHECK_FALSE(decode_scan_cursor("15", 3, c));
  CHECK(decode_scan_cursor("6", 3, c));
  CHECK(c.server == 2);
  CHECK(c.server_cursor == 1);
  for (const char* text : {"5", "6", "7", "13"})
    CHECK_FALSE(decode_scan_cursor(text, 5, c));
  for (const char* text : {"9", "15", "31"})
    CHECK_FALSE(decode_scan_cursor(text, 9, c));
  // With eight servers every index is one.
  for (uint64_t v = 0; v < 64; ++v)
    CHECK(decode_scan_cursor(std::to_string(v), 8, c));
  // With one server every number is that server's own cursor.
  REQUIRE(decode_scan_cursor("18446744073709551615", 1, c));
  CHECK(c.server == 0);
  CHECK(c.server_cursor == UINT64_MAX);
}

// Starts a SCAN with the client's cursor text and extra arguments; returns the outcome.
Client::Outcome scan_once(Fleet& fleet, std::string_view client_cursor,
                          const std::vector<std::string_view>& rest = {}) {
  ScanCursor cursor;
  REQUIRE(decode_scan_cursor(client_cursor, fleet.pool->size(), cursor));
  auto client = make_ref<Client>();
  ScanRequest::start(*fleet.pool, cursor, rest.data(), rest.size(), ReplyShape::kResp2, *client, 21,
                     kAffinity);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].cookie == 21);
  CHECK(client->ref_count() == 1);
  return client->outcomes[0];
}

// The [cursor, keys] of a SCAN reply.
std::pair<std::string, std::vector<std::string>> scan_reply(std::string_view reply) {
  size_t pos = 0;
  resp::Value top;
  REQUIRE(resp::read_value(reply, pos, top));
  REQUIRE(top.type == '*');
  REQUIRE(top.count == 2);
  size_t child = resp::children_start(top);
  resp::Value cursor, keys;
  REQUIRE(resp::read_value(top.raw, child, cursor));
  REQUIRE(cursor.type == '$');
  REQUIRE(resp::read_value(top.raw, child, keys));
  std::vector<std::string> out;
  size_t k = resp::children_start(keys);
  for (int64_t i = 0; i < keys.count; ++i) {
    resp::Value v;
    REQUIRE(resp::read_value(keys.raw, k, v));
    out.emplace_back(v.payload);
  }
  return {std::string(cursor.payload), out};
}

TEST_CASE("ScanRequest: the server the cursor names, with the client's other arguments",
          "[resp-fanout][scan]") {
  Fleet fleet(3);
  for (int i = 0; i < 5; ++i)
    fleet.stores[1].values["k" + std::to_string(i)] = "v";
  fleet.answer_inline();

  SECTION("a server cursor that is not 0: the same server next") {
    const auto outcome = scan_once(fleet, encode_scan_cursor({1, 1001}, 3), {"COUNT", "2"});
    REQUIRE(fleet.server(1).sent().size() == 1);
    CHECK(fleet.server(1).sent()[0].bytes == command({"SCAN", "1001", "COUNT", "2"}));
    CHECK(fleet.server(1).sent()[0].affinity == kAffinity);
    CHECK(fleet.server(0).sent().empty());
    CHECK(fleet.server(2).sent().empty());
    const auto [cursor, keys] = scan_reply(outcome.reply);
    CHECK(keys == std::vector<std::string>{"k1", "k2"});
    CHECK(cursor == encode_scan_cursor({1, 1003}, 3));
    CHECK(cursor == std::to_string(1003 * 4 + 1));
    CHECK_FALSE(outcome.error);
  }
  SECTION("server cursor 0 from a server that is not the last: the next server, at 0") {
    const auto outcome = scan_once(fleet, encode_scan_cursor({1, 1003}, 3), {"COUNT", "10"});
    const auto [cursor, keys] = scan_reply(outcome.reply);
    CHECK(keys == std::vector<std::string>{"k3", "k4"});
    CHECK(cursor == "2");
    ScanCursor next;
    REQUIRE(decode_scan_cursor(cursor, 3, next));
    CHECK(next.server == 2);
    CHECK(next.server_cursor == 0);
  }
  SECTION("server cursor 0 from the last server: the iteration is over") {
    const auto outcome = scan_once(fleet, "2", {"MATCH", "k*", "TYPE", "string"});
    CHECK(fleet.server(2).sent().at(0).bytes ==
          command({"SCAN", "0", "MATCH", "k*", "TYPE", "string"}));
    CHECK(outcome.reply == "*2\r\n$1\r\n0\r\n*0\r\n");
  }
  SECTION("the keys element is passed on as the server sent it") {
    fleet.server(0).script = [](std::string_view) -> std::optional<Answer> {
      return resp_answer("*2\r\n$2\r\n17\r\n*2\r\n$1\r\na\r\n$3\r\nb\0c\r\n"s);
    };
    const auto outcome = scan_once(fleet, "0");
    CHECK(outcome.reply == "*2\r\n$2\r\n68\r\n*2\r\n$1\r\na\r\n$3\r\nb\0c\r\n"s);
  }
}

TEST_CASE("ScanRequest: errors, failures and unexpected replies", "[resp-fanout][scan]") {
  Fleet fleet(2);
  SECTION("an error reply is passed on") {
    fleet.server(1).script = [](std::string_view) -> std::optional<Answer> {
      return resp_answer("-ERR syntax error\r\n");
    };
    const auto outcome = scan_once(fleet, "1", {"BADARG"});
    CHECK(outcome.reply == "-ERR syntax error\r\n");
    CHECK(outcome.error);
  }
  SECTION("a failure is passed on") {
    fleet.server(0).script = [](std::string_view) -> std::optional<Answer> {
      return Answer::failure_of(Failure::kUnavailable);
    };
    const auto outcome = scan_once(fleet, "0");
    CHECK(outcome.failed);
    CHECK(outcome.failure == Failure::kUnavailable);
  }
  SECTION("a reply that is not [cursor, keys]") {
    for (const char* reply :
         {"+OK\r\n", "*1\r\n$1\r\n0\r\n", "*2\r\n$1\r\nx\r\n*0\r\n", "*2\r\n$2\r\n1x\r\n*0\r\n",
          "%2\r\n$1\r\n0\r\n*0\r\n$1\r\na\r\n$1\r\nb\r\n",
          // Two servers take one bit of the client's cursor: a server cursor using the top bit
          // would come back as 0, ending the client's iteration with keys not yet seen.
          "*2\r\n$19\r\n9223372036854775808\r\n*0\r\n"}) {
      INFO(reply);
      fleet.server(0).script = [reply](std::string_view) -> std::optional<Answer> {
        return resp_answer(reply);
      };
      const auto outcome = scan_once(fleet, "0");
      CHECK(outcome.reply == "-ERR cachegate: a server sent an unexpected SCAN reply\r\n");
      CHECK(outcome.error);
    }
  }
}

TEST_CASE("a full SCAN iteration visits every key of every server exactly once",
          "[resp-fanout][scan]") {
  for (size_t servers : {1, 2, 3, 5}) {
    INFO(servers << " servers");
    Fleet fleet(servers);
    std::set<std::string> all;
    for (size_t s = 0; s < servers; ++s) {
      // Several pages per server, and one server with no keys at all.
      const size_t n = s == 1 ? 0 : 7 + 3 * s;
      for (size_t i = 0; i < n; ++i) {
        const std::string key = "s" + std::to_string(s) + ":k" + std::to_string(i);
        fleet.stores[s].values[key] = "v";
        all.insert(key);
      }
    }
    fleet.answer_inline();
    std::multiset<std::string> seen;
    std::string cursor = "0";
    int calls = 0;
    do {
      const auto outcome = scan_once(fleet, cursor, {"COUNT", "3"});
      REQUIRE_FALSE(outcome.error);
      auto [next, keys] = scan_reply(outcome.reply);
      seen.insert(keys.begin(), keys.end());
      cursor = next;
      REQUIRE(++calls < 100);
    } while (cursor != "0");
    CHECK(seen == std::multiset<std::string>(all.begin(), all.end()));
    size_t requests = 0;
    for (size_t s = 0; s < servers; ++s)
      requests += fleet.server(s).sent().size();
    CHECK(requests == static_cast<size_t>(calls));
  }
}

}  // namespace
}  // namespace cachegate::routing
