// Route tables and the route layer (routing/route_table.h, routing/routed_request.h): which rule
// a request takes, and how replicate, failover, warm-up and shadow turn the replies and failures
// of their pools into the client's one outcome. Each pool has one server, scripted in memory
// (scripted_servers.h), so the tests decide every reply and its order.

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routing/reply_judges.h"
#include "routing/route_table.h"
#include "routing/routed_request.h"
#include "tests/unit/routing/scripted_servers.h"

namespace cachegate::routing {
namespace {

using config::RouteOp;
using protocol::ReplyShape;
using scripted::Answer;
using scripted::Client;
using scripted::ScriptedServer;

config::PoolConfig one_server_pool(const std::string& name) {
  config::PoolConfig c;
  c.name = name;
  config::ServerConfig s;
  s.host = "backend-" + name;
  s.port = 11211;
  s.identity = s.host;
  s.spec = s.host + ":11211:1";
  c.servers.push_back(s);
  return c;
}

config::RouteRule rule_of(config::RouteKind kind, std::vector<std::string> pools) {
  config::RouteRule r;
  r.kind = kind;
  r.pools = std::move(pools);
  return r;
}

// Pools p0, p1, p2 and s (a shadow), each one scripted server, and a route table over them.
class Setup {
 public:
  explicit Setup(std::vector<config::RouteRule> rules) {
    for (const std::string name : {"p0", "p1", "p2", "s"}) {
      configs_.push_back(one_server_pool(name));
      servers_.push_back(std::make_unique<ScriptedServer>(name));
    }
    for (size_t i = 0; i < configs_.size(); ++i)
      pools_.push_back(
          std::make_unique<Pool>(configs_[i], std::vector<Destination*>{servers_[i].get()}));
    table_config_.name = "main";
    table_config_.rules = std::move(rules);
    table_ = std::make_unique<RouteTable>(table_config_, [this](std::string_view name) {
      for (size_t i = 0; i < configs_.size(); ++i)
        if (configs_[i].name == name) return pools_[i].get();
      return static_cast<Pool*>(nullptr);
    });
  }

  ScriptedServer& server(size_t i) { return *servers_[i]; }
  ScriptedServer& shadow() { return *servers_[3]; }
  RouteTable& table() { return *table_; }
  RouteCounters counters;

  // Sends `bytes` for `key` through rule `rule`; the outcome goes to `client` under `cookie`.
  void send(size_t rule, RouteOp op, std::string_view key, std::string_view bytes, Client& client,
            uint32_t cookie = 7) {
    const RoutedRequest request{key, &bytes, 1, ReplyShape::kMcLine, op};
    route_request(table_->rule(rule), request, judge_, counters, client, cookie, 1);
  }

 private:
  std::vector<config::PoolConfig> configs_;
  std::vector<std::unique_ptr<ScriptedServer>> servers_;
  std::vector<std::unique_ptr<Pool>> pools_;
  config::RouteTableConfig table_config_;
  std::unique_ptr<RouteTable> table_;
  MemcacheJudge judge_;
};

const Answer kStored = Answer::reply_of("STORED\r\n");
const Answer kNotStored = Answer::reply_of("NOT_STORED\r\n");
const Answer kMiss = Answer::reply_of("END\r\n");
const Answer kHit = Answer::reply_of("VALUE k 0 1\r\nv\r\nEND\r\n");
const Answer kDown = Answer::failure_of(Failure::kConnect);

TEST_CASE("routes: the longest matching prefix wins, ties go to the first rule", "[routes]") {
  std::vector<config::RouteRule> rules;
  auto add = [&](std::optional<std::string> prefix, std::string glob = "",
                 uint8_t ops = config::kAllRouteOps, std::vector<std::string> listeners = {},
                 std::vector<std::string> users = {}) {
    config::RouteRule r = rule_of(config::RouteKind::kPool, {"p0"});
    r.match.prefix = std::move(prefix);
    r.match.glob = std::move(glob);
    r.match.ops = ops;
    r.match.listeners = std::move(listeners);
    r.match.users = std::move(users);
    rules.push_back(r);
  };
  add("a:");                                              // 0
  add("a:b:");                                            // 1
  add(std::nullopt, "*:z");                               // 2
  add("a:b:", "", config::route_op_bit(RouteOp::kRead));  // 3: after 1, never chosen
  add("u:", "", config::kAllRouteOps, {}, {"alice"});     // 4
  add("l:", "", config::kAllRouteOps, {"side"});          // 5
  add("w:", "", config::route_op_bit(RouteOp::kWrite) | config::route_op_bit(RouteOp::kDelete));
  add(std::nullopt);  // 7: catch-all
  const auto pick = [&](std::string_view key, RouteOp op = RouteOp::kRead,
                        std::string_view listener = "front", std::string_view user = "") {
    return select_rule(rules, key, op, listener, user);
  };
  CHECK(pick("a:x") == 0);
  CHECK(pick("a:b:x") == 1);
  CHECK(pick("a:b:x", RouteOp::kWrite) == 1);
  CHECK(pick("a:x:z") == 0);  // a prefix rule beats a rule without one
  CHECK(pick("q:z") == 2);
  CHECK(pick("q") == 7);
  CHECK(pick("u:1") == 7);  // anonymous
  CHECK(pick("u:1", RouteOp::kRead, "front", "bob") == 7);
  CHECK(pick("u:1", RouteOp::kRead, "front", "alice") == 4);
  CHECK(pick("l:1") == 7);
  CHECK(pick("l:1", RouteOp::kRead, "side") == 5);
  CHECK(pick("w:1") == 7);
  CHECK(pick("w:1", RouteOp::kWrite) == 6);
  CHECK(pick("w:1", RouteOp::kDelete) == 6);
  CHECK(pick("w:1", RouteOp::kArithmetic) == 7);
  CHECK(pick("") == 7);
}

TEST_CASE("routes: all-sync answers after every pool, with the worst outcome", "[routes]") {
  config::RouteRule r = rule_of(config::RouteKind::kReplicate, {"p0", "p1", "p2"});
  r.mode = config::ReplicateMode::kAllSync;
  Setup s({r});
  Ref<Client> client(new Client());
  const char* request = "set k 0 0 1\r\nv\r\n";
  s.send(0, RouteOp::kWrite, "k", request, *client);
  for (size_t p = 0; p < 3; ++p)
    REQUIRE(s.server(p).sent().at(0).bytes == request);
  s.server(0).answer(kStored);
  s.server(2).answer(kNotStored);
  CHECK(client->outcomes.empty());
  s.server(1).answer(kStored);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "NOT_STORED\r\n");
  CHECK(client->outcomes[0].cookie == 7);

  s.send(0, RouteOp::kWrite, "k", request, *client);
  s.server(0).answer(kStored);
  s.server(1).answer(kDown);
  s.server(2).answer(Answer::reply_of("SERVER_ERROR out of memory\r\n", true));
  REQUIRE(client->outcomes.size() == 2);
  CHECK(client->outcomes[1].failed);
  CHECK(client->outcomes[1].failure == Failure::kConnect);
  CHECK(s.counters.replica_failures == 2);

  s.send(0, RouteOp::kWrite, "k", request, *client);
  for (size_t p = 0; p < 3; ++p)
    s.server(p).answer(kStored);
  CHECK(client->outcomes.at(2).reply == "STORED\r\n");
  CHECK(client->ref_count() == 1);  // every reference taken was given back
}

TEST_CASE("routes: quorum answers once a majority succeeded", "[routes]") {
  config::RouteRule r = rule_of(config::RouteKind::kReplicate, {"p0", "p1", "p2"});
  r.mode = config::ReplicateMode::kQuorum;
  Setup s({r});
  Ref<Client> client(new Client());
  s.send(0, RouteOp::kWrite, "k", "delete k\r\n", *client);
  s.server(1).answer(kDown);
  s.server(0).answer(Answer::reply_of("DELETED\r\n"));
  CHECK(client->outcomes.empty());
  s.server(2).answer(Answer::reply_of("DELETED\r\n"));
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "DELETED\r\n");
  CHECK(s.counters.replica_failures == 1);

  // No majority: the worst outcome once all are in.
  s.send(0, RouteOp::kWrite, "k", "delete k\r\n", *client);
  s.server(0).answer(kDown);
  s.server(1).answer(Answer::reply_of("NOT_FOUND\r\n"));
  CHECK(client->outcomes.size() == 1);
  s.server(2).answer(Answer::reply_of("DELETED\r\n"));
  REQUIRE(client->outcomes.size() == 2);
  CHECK(client->outcomes[1].failed);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("routes: all-async answers with the first pool and finishes the rest after", "[routes]") {
  config::RouteRule r = rule_of(config::RouteKind::kReplicate, {"p0", "p1", "p2"});
  r.mode = config::ReplicateMode::kAllAsync;
  Setup s({r});
  Ref<Client> client(new Client());
  s.send(0, RouteOp::kWrite, "k", "set k 0 0 1\r\nv\r\n", *client);
  CHECK(s.counters.async_pending == 2);
  s.server(0).answer(kStored);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "STORED\r\n");
  s.server(1).answer(kStored);
  s.server(2).answer(kDown);
  CHECK(s.counters.async_pending == 0);
  CHECK(s.counters.replica_failures == 1);
  CHECK(client->outcomes.size() == 1);
  CHECK(client->ref_count() == 1);

  // Past the bound, background copies are dropped and counted.
  s.server(1).script = [](std::string_view) { return std::optional<Answer>(); };
  for (uint64_t i = 0; i <= kMaxAsyncInFlight; ++i)
    s.send(0, RouteOp::kWrite, "k", "set k 0 0 1\r\nv\r\n", *client);
  CHECK(s.counters.async_dropped > 0);
  CHECK(s.counters.async_pending <= kMaxAsyncInFlight);
}

TEST_CASE("routes: replicated reads move on after failures, errors and (if asked) misses",
          "[routes]") {
  config::RouteRule plain = rule_of(config::RouteKind::kReplicate, {"p0", "p1", "p2"});
  config::RouteRule on_miss = plain;
  on_miss.miss_failover = true;
  config::RouteRule rr = plain;
  rr.read = config::ReadPolicy::kRoundRobin;
  Setup s({plain, on_miss, rr});
  Ref<Client> client(new Client());

  s.send(0, RouteOp::kRead, "k", "get k\r\n", *client);
  REQUIRE(s.server(0).sent().size() == 1);
  CHECK(s.server(1).sent().empty());
  s.server(0).answer(kDown);
  s.server(1).answer(Answer::reply_of("SERVER_ERROR busy\r\n", true));
  s.server(2).answer(kHit);
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "VALUE k 0 1\r\nv\r\nEND\r\n");
  CHECK(s.counters.failovers == 2);

  // A miss is an answer without miss_failover, and moves on with it.
  s.send(0, RouteOp::kRead, "k", "get k\r\n", *client);
  s.server(0).answer(kMiss);
  CHECK(client->outcomes.at(1).reply == "END\r\n");
  s.send(1, RouteOp::kRead, "k", "get k\r\n", *client);
  s.server(0).answer(kMiss);
  s.server(1).answer(kMiss);
  s.server(2).answer(kHit);
  CHECK(client->outcomes.at(2).reply == "VALUE k 0 1\r\nv\r\nEND\r\n");
  // Every pool failed: the last failure; every pool missed: a miss.
  s.send(1, RouteOp::kRead, "k", "get k\r\n", *client);
  s.server(0).answer(kMiss);
  s.server(1).answer(kDown);
  s.server(2).answer(kDown);
  CHECK(client->outcomes.at(3).reply == "END\r\n");  // the miss beats the failures after it
  s.send(0, RouteOp::kRead, "k", "get k\r\n", *client);
  s.server(0).answer(kDown);
  s.server(1).answer(kDown);
  s.server(2).answer(Answer::failure_of(Failure::kTimeout));
  CHECK(client->outcomes.at(4).failed);
  CHECK(client->outcomes.at(4).failure == Failure::kTimeout);

  // round_robin: each read starts one pool further.
  for (size_t p = 0; p < 3; ++p)
    s.server(p).forget_sent();
  for (int i = 0; i < 3; ++i) {
    s.send(2, RouteOp::kRead, "k", "get k\r\n", *client);
    s.server(static_cast<size_t>(i)).answer(kHit);
  }
  for (size_t p = 0; p < 3; ++p)
    CHECK(s.server(p).sent().size() == 1);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("routes: failover tries the pools in order, writes too", "[routes]") {
  Setup s({rule_of(config::RouteKind::kFailover, {"p0", "p1"})});
  Ref<Client> client(new Client());
  s.server(0).script = [](std::string_view) { return std::optional<Answer>(kDown); };
  s.send(0, RouteOp::kWrite, "k", "set k 0 0 1\r\nv\r\n", *client);
  REQUIRE(s.server(1).sent().size() == 1);
  s.server(1).answer(kStored);
  CHECK(client->outcomes.at(0).reply == "STORED\r\n");
  // A refusal is an answer, not a reason to move on.
  s.server(0).script = nullptr;
  s.send(0, RouteOp::kWrite, "k", "add k 0 0 1\r\nv\r\n", *client);
  s.server(0).answer(kNotStored);
  CHECK(client->outcomes.at(1).reply == "NOT_STORED\r\n");
  CHECK(s.server(1).sent().size() == 1);
}

TEST_CASE("routes: warm-up copies a warm hit into the cold pool with its TTL", "[routes]") {
  Setup s({rule_of(config::RouteKind::kWarmup, {"p0", "p1"})});
  Ref<Client> client(new Client());
  s.send(0, RouteOp::kRead, "k", "get k\r\n", *client);
  s.server(0).answer(kMiss);
  REQUIRE(s.server(1).sent().size() == 1);
  s.server(1).answer(Answer::reply_of("VALUE k 5 3\r\nabc\r\nEND\r\n"));
  REQUIRE(client->outcomes.size() == 1);
  CHECK(client->outcomes[0].reply == "VALUE k 5 3\r\nabc\r\nEND\r\n");
  // The warm pool is asked for the TTL, then the cold pool gets the item.
  REQUIRE(s.server(1).sent().size() == 2);
  CHECK(s.server(1).sent()[1].bytes == "mg k t\r\n");
  s.server(1).answer(Answer::reply_of("HD t120\r\n"));
  REQUIRE(s.server(0).sent().size() == 2);
  CHECK(s.server(0).sent()[1].bytes == "add k 5 120 3\r\nabc\r\n");
  s.server(0).answer(kStored);
  CHECK(s.counters.warmup_fills == 1);
  // Writes go to the cold pool only.
  s.send(0, RouteOp::kWrite, "k", "set k 0 0 1\r\nv\r\n", *client);
  CHECK(s.server(0).sent().size() == 3);
  CHECK(s.server(1).sent().size() == 2);
  // An item that expired meanwhile is not copied.
  s.send(0, RouteOp::kRead, "k", "get k\r\n", *client);
  s.server(0).answer(kStored);
  s.server(0).answer(kMiss);
  s.server(1).answer(kHit);
  s.server(1).answer(Answer::reply_of("EN\r\n"));
  CHECK(s.server(0).sent().size() == 4);
  CHECK(client->ref_count() == 1);
}

TEST_CASE("routes: a shadow gets its fraction, never holds up the client, and is bounded",
          "[routes]") {
  config::RouteRule r = rule_of(config::RouteKind::kPool, {"p0"});
  r.shadow_pool = "s";
  r.shadow_fraction = 0.25;
  Setup s({r});
  Ref<Client> client(new Client());
  s.server(0).script = [](std::string_view) { return std::optional<Answer>(kStored); };
  for (int i = 0; i < 8; ++i)
    s.send(0, RouteOp::kWrite, "k", "set k 0 0 1\r\nv\r\n", *client);
  CHECK(client->outcomes.size() == 8);
  CHECK(s.shadow().sent().size() == 2);
  CHECK(s.counters.shadow_pending == 2);
  s.shadow().answer(kDown);
  s.shadow().answer(kStored);
  CHECK(s.counters.shadow_failures == 1);
  CHECK(s.counters.shadow_pending == 0);
  // A shadow that never answers: past the bound, copies are dropped.
  for (uint64_t i = 0; i < 4 * (kMaxShadowInFlight + 10); ++i)
    s.send(0, RouteOp::kWrite, "k", "set k 0 0 1\r\nv\r\n", *client);
  CHECK(s.counters.shadow_pending == kMaxShadowInFlight);
  CHECK(s.counters.shadow_dropped == 10);
}

}  // namespace
}  // namespace cachegate::routing
