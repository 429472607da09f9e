// A long pipeline of mixed requests through cachegate in front of three memcached shards: every
// reply must come back in request order, byte for byte what a model of the cache predicts,
// with noreply and quiet requests answering nothing. The model is then checked against the
// servers themselves.

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tests/support/memcache_cluster.h"

namespace cachegate {
namespace {

using testing::ClusterOptions;
using testing::first_difference;
using testing::MemcacheCluster;
using testing::value_item;

struct Step {
  std::string request;
  std::string reply;  // exactly what must come back; empty for noreply and quiet hits
};

struct Model {
  std::map<std::string, std::string> values;
  std::map<std::string, uint32_t> flags;

  std::string get_items(const std::vector<std::string>& keys) const {
    std::string out;
    for (const auto& k : keys) {
      auto it = values.find(k);
      if (it != values.end()) out += value_item(k, it->second, flags.at(k));
    }
    return out + "END\r\n";
  }
};

// Values that look like protocol to a careless framer, plus plain ones of many sizes.
std::string make_value(std::mt19937& rng, size_t n) {
  static const std::vector<std::string> tricky = {
      "END\r\n",           "VALUE k 0 1\r\nx\r\nEND\r\n", "\r\n", "MN\r\nHD\r\n", "ERROR\r\n", "EN",
      "VA 5\r\nhello\r\n", "set x 0 0 1\r\ny\r\n",
  };
  std::uniform_int_distribution<int> pick(0, 9);
  int p = pick(rng);
  if (p < 3) return tricky[static_cast<size_t>(rng() % tricky.size())] + std::to_string(n);
  std::uniform_int_distribution<size_t> length(0, p == 9 ? 4000 : 60);
  std::string v(length(rng), 'a');
  for (auto& c : v)
    c = static_cast<char>('a' + rng() % 26);
  return v;
}

std::vector<Step> make_pipeline(std::mt19937& rng, const std::vector<std::string>& keys,
                                Model& model, const std::string& version_reply, size_t count) {
  std::vector<Step> steps;
  std::uniform_int_distribution<size_t> key_index(0, keys.size() - 1);
  std::uniform_int_distribution<int> op(0, 21);
  auto any_key = [&] { return keys[key_index(rng)]; };
  for (size_t i = 0; i < count; ++i) {
    const std::string k = any_key();
    const bool has = model.values.count(k) != 0;
    Step s;
    switch (op(rng)) {
      case 0:
      case 1:
      case 2: {  // set
        const std::string v = make_value(rng, i);
        const uint32_t f = static_cast<uint32_t>(rng() % 1000);
        s.request = "set " + k + " " + std::to_string(f) + " 0 " + std::to_string(v.size()) +
                    "\r\n" + v + "\r\n";
        s.reply = "STORED\r\n";
        model.values[k] = v;
        model.flags[k] = f;
        break;
      }
      case 3:
      case 4: {  // set noreply
        const std::string v = make_value(rng, i);
        s.request = "set " + k + " 3 0 " + std::to_string(v.size()) + " noreply\r\n" + v + "\r\n";
        model.values[k] = v;
        model.flags[k] = 3;
        break;
      }
      case 5:
      case 6:
        s.request = "get " + k + "\r\n";
        s.reply = model.get_items({k});
        break;
      case 7:
      case 8:
      case 9: {  // multi-get over the shards, duplicates allowed
        std::vector<std::string> ks;
        const size_t n = 2 + rng() % 8;
        for (size_t j = 0; j < n; ++j)
          ks.push_back(any_key());
        s.request = "get";
        for (const auto& x : ks)
          s.request += " " + x;
        s.request += "\r\n";
        s.reply = model.get_items(ks);
        break;
      }
      case 10:
        s.request = "delete " + k + "\r\n";
        s.reply = has ? "DELETED\r\n" : "NOT_FOUND\r\n";
        model.values.erase(k);
        break;
      case 11:
        s.request = "delete " + k + " noreply\r\n";
        model.values.erase(k);
        break;
      case 12: {  // add, either outcome, sometimes noreply
        const bool quiet = rng() % 2 == 0;
        s.request = "add " + k + " 9 0 3" + (quiet ? " noreply" : "") + "\r\nadd\r\n";
        if (!quiet) s.reply = has ? "NOT_STORED\r\n" : "STORED\r\n";
        if (!has) {
          model.values[k] = "add";
          model.flags[k] = 9;
        }
        break;
      }
      case 13: {  // append
        s.request = "append " + k + " 0 0 2\r\n+a\r\n";
        s.reply = has ? "STORED\r\n" : "NOT_STORED\r\n";
        if (has) model.values[k] += "+a";
        break;
      }
      case 14: {  // mg with value and key flags
        s.request = "mg " + k + " v k\r\n";
        s.reply = has ? "VA " + std::to_string(model.values[k].size()) + " k" + k + "\r\n" +
                            model.values[k] + "\r\n"
                      : "EN k" + k + "\r\n";  // memcached 1.6 reflects k (and O) on a miss
        break;
      }
      case 15: {  // quiet mg: a miss says nothing
        s.request = "mg " + k + " v q O" + std::to_string(i) + "\r\n";
        if (has) {
          s.reply = "VA " + std::to_string(model.values[k].size()) + " O" + std::to_string(i) +
                    "\r\n" + model.values[k] + "\r\n";
        }
        break;
      }
      case 16: {  // ms, loud or quiet
        const bool quiet = rng() % 2 == 0;
        const std::string v = make_value(rng, i);
        s.request = "ms " + k + " " + std::to_string(v.size()) + " F77" + (quiet ? " q" : "") +
                    "\r\n" + v + "\r\n";
        if (!quiet) s.reply = "HD\r\n";
        model.values[k] = v;
        model.flags[k] = 77;
        break;
      }
      case 17: {  // md, loud or quiet (quiet still reports NF)
        const bool quiet = rng() % 2 == 0;
        s.request = "md " + k + (quiet ? " q" : "") + "\r\n";
        s.reply = has ? (quiet ? "" : "HD\r\n") : "NF\r\n";
        model.values.erase(k);
        break;
      }
      case 18:
        s.request = "mn\r\n";
        s.reply = "MN\r\n";
        break;
      case 19:
        s.request = "version\r\n";
        s.reply = version_reply;
        break;
      case 20:
        s.request = "touch " + k + " 0\r\n";
        s.reply = has ? "TOUCHED\r\n" : "NOT_FOUND\r\n";
        break;
      default: {
        const std::string k2 = any_key();
        s.request = "gat 0 " + k + " " + k2 + "\r\n";
        s.reply = model.get_items({k, k2});
        break;
      }
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

TEST_CASE("a pipeline of 1,000 mixed requests is answered in order", "[memcache][pipeline]") {
  ClusterOptions options;
  options.servers = 3;
  MemcacheCluster cluster(options);
  auto groups = cluster.keys_per_server(8, "pipe-");
  std::vector<std::string> keys;
  for (const auto& g : groups)
    keys.insert(keys.end(), g.begin(), g.end());
  keys.push_back("pipe-never-stored-1");
  keys.push_back("pipe-never-stored-2");

  auto c = cluster.client(std::chrono::milliseconds(10000));
  const std::string version_reply = c->call("version\r\n").value_or("");
  REQUIRE(version_reply.rfind("VERSION ", 0) == 0);

  std::mt19937 rng(GENERATE(20240601u, 77u));
  Model model;
  const auto steps = make_pipeline(rng, keys, model, version_reply, 1000);
  std::string requests, replies;
  for (const auto& s : steps) {
    requests += s.request;
    replies += s.reply;
  }
  // Ends with a request that always answers, so a missing reply cannot hide at the end.
  requests += "mn\r\n";
  replies += "MN\r\n";

  SECTION("in one write") {
    c->send(requests);
  }
  SECTION("in pieces of random size") {
    std::uniform_int_distribution<size_t> piece(1, 700);
    for (size_t pos = 0; pos < requests.size();) {
      const size_t n = std::min(piece(rng), requests.size() - pos);
      c->send(std::string_view(requests).substr(pos, n));
      pos += n;
    }
  }

  auto got = c->read_exact(replies.size());
  REQUIRE(got);
  if (*got != replies) {
    // Name the first request whose reply differs.
    size_t pos = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      const std::string& want = steps[i].reply;
      if (got->compare(pos, want.size(), want) != 0) {
        INFO("request #" << i << ": " << steps[i].request.substr(0, 200));
        INFO("previous: " << (i > 0 ? steps[i - 1].request.substr(0, 200) : "-"));
        CHECK(got->substr(pos, want.size() + 80) == want);
        break;
      }
      pos += want.size();
    }
  }
  REQUIRE(*got == replies);
  // Nothing more than predicted.
  CHECK(c->call("mn\r\n") == "MN\r\n");

  // The servers hold exactly what the model says, each key on one shard only.
  for (size_t s = 0; s < groups.size(); ++s) {
    for (const auto& k : groups[s]) {
      INFO("key " << k << " on shard " << s);
      auto it = model.values.find(k);
      if (it == model.values.end()) {
        CHECK(cluster.holders(k).empty());
      } else {
        CHECK(cluster.direct_get(s, k) == it->second);
        CHECK(cluster.holders(k) == std::vector<size_t>{s});
      }
    }
  }
}

TEST_CASE("a client that half-closes after its requests still gets every reply",
          "[memcache][pipeline]") {
  ClusterOptions options;
  options.servers = 3;
  // With a pipeline limit of one, most requests are still unread when the end of input is seen.
  const bool tiny_pipeline = GENERATE(false, true);
  if (tiny_pipeline) options.limits = {"client_pipeline_max: 1"};
  INFO("client_pipeline_max " << (tiny_pipeline ? "1" : "default"));
  MemcacheCluster cluster(options);
  auto groups = cluster.keys_per_server(4, "hc-");
  std::vector<std::string> keys;
  for (const auto& g : groups)
    keys.insert(keys.end(), g.begin(), g.end());
  auto c = cluster.client(std::chrono::milliseconds(10000));
  const std::string version_reply = c->call("version\r\n").value_or("");
  std::mt19937 rng(99);
  Model model;
  const auto steps = make_pipeline(rng, keys, model, version_reply, 300);
  std::string requests, replies;
  for (const auto& s : steps) {
    requests += s.request;
    replies += s.reply;
  }
  c->send(requests);
  c->shutdown_write();
  CHECK(first_difference(c->read_exact(replies.size()), replies) == "");
  // Then cachegate closes its side, with nothing more sent.
  CHECK(c->peer_closed(std::chrono::milliseconds(3000)));
  CHECK_FALSE(c->read_line());
}

}  // namespace
}  // namespace cachegate
