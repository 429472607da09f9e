// libFuzzer target: requests split over the servers of a pool, and the servers' replies merged
// into the client's one reply (routing/resp_fanout.h, routing/fanout.h, routing/part_collector.h).
//
// The input is a script, read front to back (past its end every choice is 0, so every input is a
// complete scenario): the client's request — Redis MGET, MSET, DEL, UNLINK, EXISTS or TOUCH split
// by key; DBSIZE, KEYS, INFO, SCRIPT …, PUBSUB …, RANDOMKEY, FLUSHALL, CONFIG SET to every server;
// SCAN; memcached get/gets/gat/gats split by key; flush_all to every server — which server holds
// each key, and for each sub-request whether it is answered inside send() (a server that fails
// fast) or later, in which order, and how: as the server would from the keys it holds, with an
// error, with a failure, mangled (a wrong count, a wrong type, items out of order, cut short), or
// with bytes taken from the input. Every answer first goes through the backends' reply framer, as
// on a real connection: what does not frame is a failure (kProtocol; kTimeout when incomplete).
//
// What must hold for every input, besides memory safety:
// - every sub-request is one well-formed request of the client's command, naming exactly the
//   keys of the server it went to, in the client's order (MSET: each with its value);
// - the client gets exactly one outcome, under its cookie, only after the last part is in; every
//   byte charged to it for held replies is given back, and no reference to it is kept;
// - a part's failure is the outcome (the first one to arrive); else a part's error reply is (the
//   first one; memcached: its error line alone);
// - otherwise the reply frames as exactly one reply of the client's protocol and shape, all its
//   bytes, and is flagged an error exactly when it is one; and per merge: MGET has one element
//   per key, sums are the sums, KEYS holds every element of every part, a memcached multi-get
//   holds only items of keys asked for, in the client's order, and ends with END;
// - when every part answered as a server would, the reply is byte for byte what one server holding
//   every key would have answered (memcached: also with the namespace taken off the keys).

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "protocol/key_namespace.h"
#include "protocol/memcache_reply.h"
#include "protocol/memcache_request.h"
#include "protocol/redis_commands.h"
#include "protocol/resp.h"
#include "routing/destination.h"
#include "routing/fanout.h"
#include "routing/pool.h"
#include "routing/redis_policy.h"
#include "routing/resp_fanout.h"

namespace {

using namespace cachegate;
using protocol::ReplyShape;
using routing::Failure;
using routing::Ref;
using routing::ReplyHandler;
using routing::RespMerge;
namespace mc = protocol::memcache;
namespace resp = protocol::resp;

// Checked on every input; a violation is a crash libFuzzer keeps.
void require(bool condition) {
  if (!condition) std::abort();
}

// REPLY_MERGER_TRACE=1 in the environment prints each input's exchange: what a crash was doing.
bool tracing() {
  static const bool on = std::getenv("REPLY_MERGER_TRACE") != nullptr;
  return on;
}
void trace(std::string_view what, std::string_view bytes) {
  if (!tracing()) return;
  std::string text;
  for (unsigned char c : bytes) {
    if (c == '\r') {
      text += "\\r";
    } else if (c == '\n') {
      text += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      text += hex;
    } else {
      text.push_back(static_cast<char>(c));
    }
  }
  std::fprintf(stderr, "%.*s %s\n", static_cast<int>(what.size()), what.data(), text.c_str());
}

constexpr size_t kMaxServers = 5;
constexpr uint32_t kCookie = 77;
constexpr uint32_t kAffinity = 3;
constexpr std::string_view kNamespace = "ns:";

// --- the input ---------------------------------------------------------------------------------

class Script {
 public:
  Script(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // One of n choices (n > 0).
  size_t pick(size_t n) {
    if (n <= 1) return 0;
    if (n <= 256) return byte() % n;
    return (size_t{byte()} | size_t{byte()} << 8) % n;
  }
  bool flip() { return (byte() & 1) != 0; }
  // A length of at most `max` (one byte, or two past 255), then that many bytes.
  std::string_view bytes(size_t max) {
    const size_t wanted = pick(max + 1);
    const size_t n = std::min(wanted, size_ - pos_);
    std::string_view out(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// --- framing, as the backends and the client see it --------------------------------------------

// How many bytes of `bytes` make the first reply of `shape`, as a backend connection frames its
// stream; 0 when they do not make one.
struct Framed {
  resp::ParseStatus status = resp::ParseStatus::kInvalid;
  size_t length = 0;   // the whole frame
  size_t payload = 0;  // what the request's handler gets
  bool error = false;
};
Framed frame(std::string_view bytes, ReplyShape shape) {
  Framed out;
  if (protocol::is_resp(shape)) {
    resp::ReplyFramer framer;
    resp::ReplyFrame f;
    out.status = framer.frame(bytes.data(), bytes.size(), f);
    out.length = out.payload = f.length;
    out.error = f.error;
    return out;
  }
  mc::ReplyFramer framer;
  mc::ReplyFrame f;
  switch (framer.frame(bytes.data(), bytes.size(), shape, f)) {
    case mc::ParseStatus::kOk:
      out.status = resp::ParseStatus::kOk;
      break;
    case mc::ParseStatus::kNeedMore:
      out.status = resp::ParseStatus::kNeedMore;
      break;
    case mc::ParseStatus::kInvalid:
      out.status = resp::ParseStatus::kInvalid;
      break;
  }
  out.length = f.length;
  out.payload = f.payload_length;
  out.error = f.error;
  return out;
}

// The client's reply must be exactly one reply of `shape`, every byte of it.
bool frames_whole(std::string_view reply, ReplyShape shape, bool& error) {
  const Framed f = frame(reply, shape);
  error = f.error;
  return f.status == resp::ParseStatus::kOk && f.length == reply.size() && f.payload == f.length;
}

// What a server's bytes become on a backend connection: the first frame, or a failure.
struct Answer {
  bool failed = false;
  Failure failure = Failure::kClosed;
  std::string reply;
  bool error = false;
};
Answer as_delivered(std::string_view bytes, ReplyShape shape) {
  const Framed f = frame(bytes, shape);
  Answer a;
  if (f.status == resp::ParseStatus::kOk) {
    a.reply.assign(bytes.substr(0, f.payload));
    a.error = f.error;
  } else {
    // An incomplete reply leaves the request waiting until its timeout; bytes that are no reply
    // make the connection reset.
    a.failed = true;
    a.failure = f.status == resp::ParseStatus::kNeedMore ? Failure::kTimeout : Failure::kProtocol;
  }
  return a;
}

std::string bulk(std::string_view s) {
  std::string out;
  resp::append_bulk(out, s);
  return out;
}
std::string integer(int64_t v) {
  std::string out;
  resp::append_integer(out, v);
  return out;
}
std::string null_of(ReplyShape shape) {
  return shape == ReplyShape::kResp3 ? "_\r\n" : "$-1\r\n";
}

// The top-level elements of an aggregate reply (a map's keys and values both), or nullopt.
std::optional<std::vector<std::string_view>> children(std::string_view reply) {
  size_t pos = 0;
  resp::Value top;
  if (!resp::read_value(reply, pos, top) || !top.is_aggregate() || top.count < 0) return {};
  const int64_t n = top.type == '%' ? top.count * 2 : top.count;
  std::vector<std::string_view> out;
  size_t child = resp::children_start(top);
  for (int64_t i = 0; i < n; ++i) {
    resp::Value v;
    if (!resp::read_value(top.raw, child, v)) return {};
    out.push_back(v.raw);
  }
  return out;
}

std::optional<int64_t> integer_of(std::string_view reply) {
  size_t pos = 0;
  resp::Value v;
  if (!resp::read_value(reply, pos, v) || v.type != ':') return {};
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.payload.data(), v.payload.data() + v.payload.size(), out);
  if (ec != std::errc() || p != v.payload.data() + v.payload.size()) return {};
  return out;
}

// --- the servers -------------------------------------------------------------------------------

// What a scenario does with each sub-request its fan-out sends.
class Scenario {
 public:
  virtual ~Scenario() = default;
  // Checks a sub-request as it is sent (before any answer).
  virtual void check_sent(uint32_t server, std::string_view request, ReplyShape shape) = 0;
  // What the server would answer; may change what it holds (DEL, MSET).
  virtual std::string faithful(uint32_t server, std::string_view request, ReplyShape shape) = 0;
  // An error reply of the protocol, maybe after some items.
  virtual std::string error_reply(Script& in, std::string_view faithful, ReplyShape shape) = 0;
  // The faithful reply made wrong in some way.
  virtual std::string mangled(Script& in, std::string faithful, ReplyShape shape) = 0;
};

struct Sent {
  uint32_t server;
  std::string request;
  ReplyShape shape;
  Ref<ReplyHandler> handler;
  uint32_t cookie;
};

// Carries one input's sub-requests: answers each inside send() or later, in the script's order.
class Exchange {
 public:
  Exchange(Script& in, Scenario& scenario) : in_(in), scenario_(scenario) {}

  void send(uint32_t server, const std::string_view* pieces, size_t count, ReplyShape shape,
            ReplyHandler& handler, uint32_t cookie) {
    std::string request;
    for (size_t i = 0; i < count; ++i)
      request.append(pieces[i]);
    ++sent_;
    trace("sent to s" + std::to_string(server) + ", part " + std::to_string(cookie) + ":", request);
    scenario_.check_sent(server, request, shape);
    Sent s{server, std::move(request), shape, Ref<ReplyHandler>(&handler), cookie};
    if (in_.pick(3) == 0) {
      answer(s);
    } else {
      waiting_.push_back(std::move(s));
    }
  }

  // Answers what waits, in the order the script picks.
  void drain() {
    while (!waiting_.empty()) {
      const size_t i = in_.pick(waiting_.size());
      Sent s = std::move(waiting_[i]);
      waiting_.erase(waiting_.begin() + static_cast<ptrdiff_t>(i));
      answer(s);
    }
  }

  size_t sent() const { return sent_; }
  size_t answered() const { return answered_; }
  bool all_faithful() const { return all_faithful_; }
  const std::optional<Failure>& first_failure() const { return first_failure_; }
  const std::optional<std::string>& first_error() const { return first_error_; }
  // Each part's reply as delivered, by cookie (for merges that are checked against them).
  const std::map<uint32_t, std::string>& replies() const { return replies_; }

 private:
  void answer(Sent& s) {
    Answer a;
    switch (in_.pick(9)) {
      case 0:
      case 1:
      case 2:
      case 3:
        a = as_delivered(scenario_.faithful(s.server, s.request, s.shape), s.shape);
        break;
      case 4:
        a = as_delivered(
            scenario_.error_reply(in_, scenario_.faithful(s.server, s.request, s.shape), s.shape),
            s.shape);
        all_faithful_ = false;
        break;
      case 5:
        a.failed = true;
        a.failure = static_cast<Failure>(in_.pick(routing::kFailureKinds));
        all_faithful_ = false;
        break;
      case 6:
        a = as_delivered(in_.bytes(4096), s.shape);
        all_faithful_ = false;
        break;
      case 7: {
        a = as_delivered(
            scenario_.mangled(in_, scenario_.faithful(s.server, s.request, s.shape), s.shape),
            s.shape);
        all_faithful_ = false;
        break;
      }
      default: {
        std::string whole = scenario_.faithful(s.server, s.request, s.shape);
        a = as_delivered(std::string_view(whole).substr(0, in_.pick(whole.size() + 1)), s.shape);
        all_faithful_ = all_faithful_ && !a.failed && a.reply == whole;
        break;
      }
    }
    ++answered_;
    const std::string who = "s" + std::to_string(s.server) + ", part " + std::to_string(s.cookie);
    if (a.failed) {
      trace(who + " failed:", routing::failure_name(a.failure));
    } else {
      trace(who + (a.error ? " answered an error:" : " answered:"), a.reply);
    }
    if (a.failed) {
      all_faithful_ = false;
      if (!first_failure_) first_failure_ = a.failure;
      s.handler->on_failure(s.cookie, a.failure);
    } else {
      if (a.error && !first_error_) first_error_ = a.reply;
      replies_[s.cookie] = a.reply;
      s.handler->on_reply(s.cookie, a.reply, a.error);
    }
    s.handler.reset();
  }

  Script& in_;
  Scenario& scenario_;
  std::vector<Sent> waiting_;
  size_t sent_ = 0;
  size_t answered_ = 0;
  bool all_faithful_ = true;
  std::optional<Failure> first_failure_;
  std::optional<std::string> first_error_;
  std::map<uint32_t, std::string> replies_;
};

Exchange* current = nullptr;

class FuzzServer final : public routing::Destination {
 public:
  FuzzServer(uint32_t index, std::string name) : index_(index), name_(std::move(name)) {}
  void send(const std::string_view* pieces, size_t count, ReplyShape shape, ReplyHandler& handler,
            uint32_t cookie, uint32_t, std::chrono::milliseconds) override {
    current->send(index_, pieces, count, shape, handler, cookie);
  }
  std::string_view name() const override { return name_; }

 private:
  uint32_t index_;
  std::string name_;
};

// Pools of 1 to kMaxServers servers, built once: the fan-outs only ask them for their servers.
routing::Pool& pool_of(size_t servers) {
  struct Fleet {
    config::PoolConfig config;
    std::vector<std::unique_ptr<FuzzServer>> servers;
    std::unique_ptr<routing::Pool> pool;
  };
  static std::array<std::unique_ptr<Fleet>, kMaxServers + 1> fleets;
  auto& fleet = fleets[servers];
  if (!fleet) {
    fleet = std::make_unique<Fleet>();
    fleet->config.name = "fuzz";
    fleet->config.distribution = config::Distribution::kModula;
    std::vector<routing::Destination*> destinations;
    for (size_t i = 0; i < servers; ++i) {
      config::ServerConfig s;
      s.name = s.identity = "s" + std::to_string(i);
      s.host = "127.0.0.1";
      s.port = static_cast<uint16_t>(7000 + i);
      s.spec = "127.0.0.1:" + std::to_string(s.port) + ":1 " + s.name;
      fleet->config.servers.push_back(s);
      fleet->servers.push_back(std::make_unique<FuzzServer>(static_cast<uint32_t>(i), s.spec));
      destinations.push_back(fleet->servers.back().get());
    }
    fleet->pool = std::make_unique<routing::Pool>(fleet->config, destinations);
  }
  return *fleet->pool;
}

// --- the client --------------------------------------------------------------------------------

class Client final : public ReplyHandler {
 public:
  explicit Client(const Exchange& exchange) : exchange_(exchange) {}

  void on_reply(uint32_t cookie, std::string_view reply, bool error) override {
    record(cookie);
    this->reply.assign(reply);
    this->error = error;
  }
  void on_failure(uint32_t cookie, Failure failure) override {
    record(cookie);
    failed = true;
    this->failure = failure;
  }
  void charge(int64_t bytes) override {
    charged += bytes;
    require(charged >= 0);
  }

  int outcomes = 0;
  bool failed = false;
  Failure failure = Failure::kClosed;
  std::string reply;
  bool error = false;
  int64_t charged = 0;

 private:
  void record(uint32_t cookie) {
    require(cookie == kCookie);
    require(++outcomes == 1);
    // Only once every part is in: nothing may still be waiting for an answer.
    require(exchange_.answered() == exchange_.sent());
    require(charged == 0);
  }
  const Exchange& exchange_;
};

// What every fan-out owes its client, whatever the servers did. Returns true when the outcome is
// the merge of replies (no failure, no error reply from a part).
bool check_outcome(const Exchange& exchange, Client& client, bool memcached) {
  if (client.failed) {
    trace("client failed:", routing::failure_name(client.failure));
  } else {
    trace(client.error ? "client got an error:" : "client got:", client.reply);
  }
  require(client.outcomes == 1);
  require(client.charged == 0);
  if (exchange.first_failure()) {
    require(client.failed && client.failure == *exchange.first_failure());
    return false;
  }
  require(!client.failed);
  if (exchange.first_error()) {
    require(client.error);
    std::string_view expected = *exchange.first_error();
    bool error = false;
    if (memcached) {
      // Only the error line: items before it would read as a complete answer.
      const size_t nl =
          expected.size() >= 2 ? expected.rfind('\n', expected.size() - 2) : std::string::npos;
      if (nl != std::string_view::npos) expected.remove_prefix(nl + 1);
      require(frames_whole(client.reply, ReplyShape::kMcLine, error) && error);
    }
    require(client.reply == expected);
    return false;
  }
  return true;
}

// --- Redis: requests split by key --------------------------------------------------------------

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

// Distinct keys, some in the namespace.
std::vector<std::string> make_keys(Script& in, size_t count, bool memcached) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < count; ++i) {
    std::string k(in.bytes(10));
    if (memcached)  // what memcached accepts as a key: no spaces, no control characters
      for (char& c : k)
        if (c <= 0x20 || c >= 0x7f) c = static_cast<char>(0x21 + static_cast<uint8_t>(c) % 94);
    // Keys are never empty, also not inside a namespace (a client cannot name an empty key).
    if (k.empty()) k = "#" + std::to_string(i);
    if (in.pick(4) == 0) k.insert(0, kNamespace);
    if (k == kNamespace || std::find(keys.begin(), keys.end(), k) != keys.end())
      k += "#" + std::to_string(i);
    keys.push_back(std::move(k));
  }
  return keys;
}

// Parses one RESP request that must be all of `request`; its arguments.
std::vector<std::string> parse_command(std::string_view request) {
  resp::RequestParser parser;
  resp::Request r;
  require(parser.parse(request.data(), request.size(), r) == resp::ParseStatus::kOk);
  require(r.length == request.size() && !r.is_inline);
  return {parser.args().begin(), parser.args().end()};
}

std::string redis_error(Script& in, ReplyShape shape) {
  static constexpr std::string_view kErrors[] = {
      "-ERR unknown command\r\n",
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
      "-OOM command not allowed when used memory > 'maxmemory'.\r\n",
      "-LOADING Redis is loading the dataset in memory\r\n",
      "!21\r\nSYNTAX invalid syntax\r\n",
      "-\r\n",
  };
  return std::string(kErrors[in.pick(std::size(kErrors))]);
}

// A RESP reply made wrong: a count off by one, another type, nested, behind an attribute, an
// integer at its limits, a few bytes overwritten (inside a string they keep its framing).
std::string mangle_resp(Script& in, std::string reply) {
  static constexpr std::string_view kOthers[] = {
      ":1\r\n",
      "+OK\r\n",
      "$-1\r\n",
      "*-1\r\n",
      "_\r\n",
      "*0\r\n",
      "%1\r\n+a\r\n:1\r\n",
      "~2\r\n:1\r\n:1\r\n",
      ",1.5\r\n",
      "#t\r\n",
      "(12345678901234567890\r\n",
      "$1\r\nx\r\n",
      ":9223372036854775807\r\n",
      ":-9223372036854775808\r\n",
      ":-1\r\n",
      "*1\r\n*0\r\n",
  };
  size_t pos = 0;
  resp::Value top;
  const bool aggregate = resp::read_value(reply, pos, top) && top.is_aggregate() && top.count >= 0;
  switch (in.pick(7)) {
    case 5:
      for (size_t n = 1 + in.pick(4); n > 0 && !reply.empty(); --n)
        reply[in.pick(reply.size())] = static_cast<char>(in.byte());
      return reply;
    case 0:
    case 1: {
      if (!aggregate) break;
      // The count one less (framing then stops an element early) or one more, with an element.
      const size_t header = resp::children_start(top);
      const int64_t count = top.count + (in.flip() ? 1 : -1);
      if (count < 0) break;
      std::string out(1, top.type);
      out += std::to_string(count) + "\r\n";
      out += reply.substr(header);
      if (count > top.count) out += std::string(kOthers[in.pick(std::size(kOthers))]);
      return out;
    }
    case 2:
      return "*1\r\n" + reply;
    case 3:
      return "|1\r\n+ttl\r\n:100\r\n" + reply;
    case 4: {
      // nulls of the other protocol
      std::string out;
      for (size_t i = 0; i < reply.size(); ++i) {
        if (reply.compare(i, 5, "$-1\r\n") == 0) {
          out += "_\r\n";
          i += 4;
        } else if (reply.compare(i, 3, "_\r\n") == 0) {
          out += "$-1\r\n";
          i += 2;
        } else {
          out.push_back(reply[i]);
        }
      }
      return out;
    }
    default:
      break;
  }
  return std::string(kOthers[in.pick(std::size(kOthers))]);
}

class RedisKeyed final : public Scenario {
 public:
  // Each key's server, and its value when the server holds it.
  struct Key {
    std::string name;
    uint32_t server = 0;
    std::optional<std::string> value;
  };

  RedisKeyed(std::string command, std::vector<Key> keys) : command_(std::move(command)) {
    for (auto& k : keys)
      keys_.emplace(k.name, std::move(k));
  }

  const Key& key(std::string_view name) const {
    auto it = keys_.find(name);
    require(it != keys_.end());
    return it->second;
  }
  std::map<std::string, Key, std::less<>>& keys() { return keys_; }

  // Per server, the keys (and MSET values) it was sent, in the order sent.
  std::vector<std::vector<std::string>> sent_args =
      std::vector<std::vector<std::string>>(kMaxServers);

  void check_sent(uint32_t server, std::string_view request, ReplyShape) override {
    const auto args = parse_command(request);
    require(args.size() >= 2 && args[0] == command_);
    const bool mset = upper(command_) == "MSET";
    require(!mset || args.size() % 2 == 1);
    for (size_t i = 1; i < args.size(); i += mset ? 2 : 1) {
      require(key(args[i]).server == server);
      sent_args[server].push_back(args[i]);
      if (mset) sent_args[server].push_back(args[i + 1]);
    }
  }

  std::string faithful(uint32_t server, std::string_view request, ReplyShape shape) override {
    const auto args = parse_command(request);
    return answer(args, shape, [&](std::string_view k) -> Key& {
      auto it = keys_.find(k);
      require(it != keys_.end() && it->second.server == server);
      return it->second;
    });
  }

  // What a redis-server answers to `args`, `lookup` giving what it holds under a key (which the
  // command may change).
  template <class Lookup>
  std::string answer(const std::vector<std::string>& args, ReplyShape shape, Lookup&& lookup) {
    const std::string name = upper(args[0]);
    if (name == "MGET") {
      std::string out;
      resp::append_array(out, args.size() - 1);
      for (size_t i = 1; i < args.size(); ++i) {
        const Key& k = lookup(args[i]);
        out += k.value ? bulk(*k.value) : null_of(shape);
      }
      return out;
    }
    if (name == "MSET") {
      for (size_t i = 1; i + 1 < args.size(); i += 2)
        lookup(args[i]).value = args[i + 1];
      return "+OK\r\n";
    }
    int64_t n = 0;
    for (size_t i = 1; i < args.size(); ++i) {
      Key& k = lookup(args[i]);
      if (!k.value) continue;
      ++n;
      if (name == "DEL" || name == "UNLINK") k.value.reset();
    }
    return integer(n);
  }

  std::string error_reply(Script& in, std::string_view, ReplyShape shape) override {
    return redis_error(in, shape);
  }
  std::string mangled(Script& in, std::string reply, ReplyShape) override {
    return mangle_resp(in, std::move(reply));
  }

 private:
  std::string command_;
  std::map<std::string, Key, std::less<>> keys_;
};

void redis_keyed(Script& in) {
  static constexpr std::string_view kCommands[] = {"MGET",   "MSET",  "DEL",
                                                   "EXISTS", "TOUCH", "UNLINK"};
  std::string command(kCommands[in.pick(std::size(kCommands))]);
  if (in.flip())  // commands are matched in any case
    for (char& c : command)
      c = static_cast<char>(c - 'A' + 'a');
  const size_t servers = 1 + in.pick(kMaxServers);
  const size_t distinct = 1 + in.pick(8);
  const auto names = make_keys(in, distinct, false);
  std::vector<RedisKeyed::Key> keys;
  for (const auto& n : names) {
    RedisKeyed::Key k{n, static_cast<uint32_t>(in.pick(servers)), {}};
    if (in.pick(3) != 0) k.value = std::string(in.bytes(12));
    keys.push_back(std::move(k));
  }
  const bool mset = upper(command) == "MSET";
  // The client's request, as a session holds it: parsed from its bytes.
  std::vector<std::string> client_args = {command};
  const size_t count = 1 + in.pick(12);
  for (size_t i = 0; i < count; ++i) {
    client_args.push_back(names[in.pick(names.size())]);
    if (mset) client_args.push_back(std::string(in.bytes(8)));
  }
  std::string request;
  {
    std::vector<std::string_view> views(client_args.begin(), client_args.end());
    resp::append_command(request, views.data(), views.size());
  }
  trace("client sent " + std::to_string(servers) + " servers:", request);
  resp::RequestParser parser;
  resp::Request parsed;
  require(parser.parse(request.data(), request.size(), parsed) == resp::ParseStatus::kOk);
  const auto& args = parser.args();
  const auto resolved = protocol::redis::resolve(args.data(), args.size());
  require(resolved.status == protocol::redis::Dispatch::kOk);
  const auto policy = routing::redis_policy(*resolved.command);
  require(policy.route == routing::RedisRoute::kSplit);
  std::vector<uint32_t> key_index;
  require(protocol::redis::key_positions(*resolved.command, args.data(), args.size(), key_index));
  require(key_index.size() == count);

  RedisKeyed scenario(command, keys);
  std::vector<uint32_t> server_of_key;
  for (uint32_t k : key_index)
    server_of_key.push_back(scenario.key(args[k]).server);
  const ReplyShape shape = in.flip() ? ReplyShape::kResp3 : ReplyShape::kResp2;

  // What one server holding every key would answer, and hold after.
  RedisKeyed single(command, keys);
  const std::string expected = single.answer(
      client_args,
      shape, [&](std::string_view k) -> auto& { return single.keys().find(k)->second; });

  Exchange exchange(in, scenario);
  current = &exchange;
  auto client = routing::make_ref<Client>(exchange);
  routing::RespFanout::start_keyed(pool_of(servers), args.data(), args.size(), key_index,
                                   server_of_key, resolved.command->name == "mset", policy.merge,
                                   shape, *client, kCookie, kAffinity);
  exchange.drain();
  // One sub-request per server holding any of the keys.
  std::vector<uint32_t> distinct_servers(server_of_key);
  std::sort(distinct_servers.begin(), distinct_servers.end());
  distinct_servers.erase(std::unique(distinct_servers.begin(), distinct_servers.end()),
                         distinct_servers.end());
  require(exchange.sent() == distinct_servers.size());

  // Every key went to its server, once, in the client's order.
  std::vector<std::vector<std::string>> want(kMaxServers);
  for (uint32_t k : key_index) {
    want[scenario.key(args[k]).server].emplace_back(args[k]);
    if (mset) want[scenario.key(args[k]).server].emplace_back(args[k + 1]);
  }
  require(want == scenario.sent_args);

  if (check_outcome(exchange, *client, false)) {
    bool error = false;
    require(frames_whole(client->reply, shape, error));
    require(error == client->error);
    const std::string_view bad = "-ERR cachegate: a server sent an unexpected reply\r\n";
    switch (policy.merge) {
      case RespMerge::kValuesInKeyOrder: {
        // Parts in the order their server first comes up among the keys; each key's value is
        // the one its part gave at that key's place, and a part with more or fewer values than
        // keys makes the whole reply an error.
        std::vector<uint32_t> part_server;
        std::vector<uint32_t> part_of_key;
        for (uint32_t server : server_of_key) {
          auto at = std::find(part_server.begin(), part_server.end(), server);
          if (at == part_server.end()) at = part_server.insert(at, server);
          part_of_key.push_back(static_cast<uint32_t>(at - part_server.begin()));
        }
        std::vector<std::vector<std::string_view>> values(part_server.size());
        bool fits = true;
        for (uint32_t p = 0; p < part_server.size(); ++p) {
          const auto e = children(exchange.replies().at(p));
          if (e) values[p] = *e;
          fits = fits && e &&
                 values[p].size() ==
                     static_cast<size_t>(std::count(part_of_key.begin(), part_of_key.end(), p));
        }
        if (!fits) {
          require(client->reply == bad);
          break;
        }
        const auto elements = children(client->reply);
        require(elements && elements->size() == count);
        std::vector<size_t> next(part_server.size(), 0);
        for (size_t i = 0; i < count; ++i)
          require((*elements)[i] == values[part_of_key[i]][next[part_of_key[i]]++]);
        break;
      }
      case RespMerge::kSumIntegers: {
        if (client->reply == bad) break;
        // The sum of the parts' integers, which must all have been integers.
        int64_t total = 0;
        for (const auto& [cookie, reply] : exchange.replies()) {
          const auto v = integer_of(reply);
          require(v && !__builtin_add_overflow(total, *v, &total));
        }
        require(integer_of(client->reply) == total);
        break;
      }
      case RespMerge::kAllOk: {
        // +OK, or the first part (in part order) that said something else.
        std::string want = "+OK\r\n";
        for (const auto& [cookie, reply] : exchange.replies()) {
          if (reply != want) {
            want = reply;
            break;
          }
        }
        require(client->reply == want);
        break;
      }
      default:
        require(false);
    }
    if (exchange.all_faithful()) {
      require(client->reply == expected);
      for (const auto& [name, k] : single.keys())
        require(scenario.key(name).value == k.value);
    }
  }
  current = nullptr;
  require(client->ref_count() == 1);
}

// --- Redis: requests to every server ------------------------------------------------------------

class RedisPool final : public Scenario {
 public:
  RedisPool(std::vector<std::string> args, Script& in) : args_(std::move(args)), in_(in) {}

  void check_sent(uint32_t, std::string_view request, ReplyShape) override {
    require(parse_command(request) == args_);
  }

  std::string faithful(uint32_t server, std::string_view, ReplyShape shape) override {
    const std::string name = upper(args_[0]);
    const std::string sub = args_.size() > 1 ? upper(args_[1]) : "";
    if (name == "DBSIZE") return integer(static_cast<int64_t>(in_.pick(1000)));
    if (name == "KEYS" || (name == "PUBSUB" && sub == "CHANNELS")) {
      const size_t n = in_.pick(4);
      std::string out;
      resp::append_array(out, n);
      for (size_t i = 0; i < n; ++i)
        out += bulk((in_.flip() ? std::string(kNamespace) : "") + "s" + std::to_string(server) +
                    ":" + std::to_string(i));
      return out;
    }
    if (name == "SCRIPT" && sub == "EXISTS") {
      std::string out;
      resp::append_array(out, args_.size() - 2);
      for (size_t i = 2; i < args_.size(); ++i)
        out += integer(in_.pick(2));
      return out;
    }
    if (name == "SCRIPT" && sub == "LOAD") return bulk("e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    if (name == "PUBSUB" && sub == "NUMSUB") {
      std::string out;
      resp::append_array(out, (args_.size() - 2) * 2);
      for (size_t i = 2; i < args_.size(); ++i)
        out += bulk(args_[i]) + integer(static_cast<int64_t>(in_.pick(5)));
      return out;
    }
    if (name == "RANDOMKEY")
      return in_.flip() ? null_of(shape) : bulk("k" + std::to_string(server));
    if (name == "INFO") {
      std::string text = "# Server\r\nredis_version:7.0.15\r\ntcp_port:6379\r\n\r\n";
      if (args_.size() == 1 || upper(args_[1]) == "KEYSPACE") {
        if (args_.size() > 1) text.clear();
        text += "# Keyspace\r\n";
        for (int db : {0, 1, 15}) {
          if (!in_.flip()) continue;
          const uint64_t keys = in_.pick(100) + 1;
          const uint64_t expires = in_.pick(keys + 1);
          text += "db" + std::to_string(db) + ":keys=" + std::to_string(keys) +
                  ",expires=" + std::to_string(expires) +
                  ",avg_ttl=" + std::to_string(expires ? in_.pick(100000) : 0) + "\r\n";
        }
      }
      if (shape != ReplyShape::kResp3) return bulk(text);
      return "=" + std::to_string(text.size() + 4) + "\r\ntxt:" + text + "\r\n";
    }
    return "+OK\r\n";  // FLUSHALL, FLUSHDB, SCRIPT FLUSH, CONFIG SET
  }

  std::string error_reply(Script& in, std::string_view, ReplyShape shape) override {
    return redis_error(in, shape);
  }
  std::string mangled(Script& in, std::string reply, ReplyShape) override {
    return mangle_resp(in, std::move(reply));
  }

 private:
  std::vector<std::string> args_;
  Script& in_;
};

// INFO's text, from a bulk string or a verbatim string.
std::string_view info_text(std::string_view reply) {
  size_t pos = 0;
  resp::Value v;
  if (!resp::read_value(reply, pos, v)) return {};
  std::string_view text = v.payload;
  if (v.type == '=' && text.size() >= 4) text.remove_prefix(4);
  return text;
}

// The merged INFO of faithful replies: the prefix, server 0's sections, the Keyspace lines summed.
std::string expected_info(const std::vector<std::string>& replies, std::string_view prefix,
                          ReplyShape shape) {
  struct Db {
    uint64_t keys = 0, expires = 0, ttl_sum = 0;
  };
  std::map<int, Db> dbs;
  for (const auto& reply : replies) {
    std::string_view text = info_text(reply);
    const size_t at = text.find("# Keyspace\r\n");
    if (at == std::string_view::npos) continue;
    text.remove_prefix(at + 12);
    while (!text.empty()) {
      const std::string_view line = text.substr(0, text.find("\r\n"));
      text.remove_prefix(line.size() + 2);
      int db = 0;
      uint64_t keys = 0, expires = 0, ttl = 0;
      require(std::sscanf(std::string(line).c_str(), "db%d:keys=%lu,expires=%lu,avg_ttl=%lu", &db,
                          &keys, &expires, &ttl) == 4);
      Db& d = dbs[db];
      d.keys += keys;
      d.expires += expires;
      d.ttl_sum += ttl * expires;
    }
  }
  std::string text(prefix);
  const std::string_view first = info_text(replies[0]);
  const size_t keyspace = first.find("# Keyspace");
  text.append(first.substr(0, keyspace));
  if (keyspace != std::string_view::npos) {
    text += "# Keyspace\r\n";
    for (const auto& [db, d] : dbs)
      text += "db" + std::to_string(db) + ":keys=" + std::to_string(d.keys) +
              ",expires=" + std::to_string(d.expires) +
              ",avg_ttl=" + std::to_string(d.expires ? d.ttl_sum / d.expires : 0) + "\r\n";
  }
  if (shape != ReplyShape::kResp3) return bulk(text);
  return "=" + std::to_string(text.size() + 4) + "\r\ntxt:" + text + "\r\n";
}

void redis_pool(Script& in) {
  static const std::vector<std::vector<std::string>> kRequests = {
      {"DBSIZE"},
      {"KEYS", "*"},
      {"INFO"},
      {"INFO", "keyspace"},
      {"INFO", "server"},
      {"SCRIPT", "EXISTS", "a", "b", "c"},
      {"SCRIPT", "LOAD", "return 1"},
      {"SCRIPT", "FLUSH"},
      {"PUBSUB", "NUMSUB", "ch1", "ch2"},
      {"PUBSUB", "NUMSUB"},
      {"PUBSUB", "CHANNELS"},
      {"RANDOMKEY"},
      {"FLUSHALL"},
      {"FLUSHDB"},
      {"CONFIG", "SET", "maxmemory", "0"},
  };
  const std::vector<std::string>& args = kRequests[in.pick(kRequests.size())];
  std::vector<std::string_view> views(args.begin(), args.end());
  const auto resolved = protocol::redis::resolve(views.data(), views.size());
  require(resolved.status == protocol::redis::Dispatch::kOk);
  const auto policy = routing::redis_policy(*resolved.command);
  require(policy.route == routing::RedisRoute::kAllServers);
  std::string request;
  resp::append_command(request, views.data(), views.size());

  const size_t servers = 1 + in.pick(kMaxServers);
  const ReplyShape shape = in.flip() ? ReplyShape::kResp3 : ReplyShape::kResp2;
  const int protocol = shape == ReplyShape::kResp3 ? 3 : 2;
  const std::string prefix = in.flip() ? "# Proxy\r\nproxy:cachegate\r\n\r\n" : "";

  trace("client sent " + std::to_string(servers) + " servers:", request);
  RedisPool scenario(args, in);
  Exchange exchange(in, scenario);
  current = &exchange;
  auto client = routing::make_ref<Client>(exchange);
  routing::RespFanout::start_pool(pool_of(servers), request, policy.merge, shape, protocol,
                                  policy.merge == RespMerge::kInfo ? prefix : "", *client, kCookie,
                                  kAffinity);
  exchange.drain();
  require(exchange.sent() == servers);

  if (check_outcome(exchange, *client, false)) {
    bool error = false;
    require(frames_whole(client->reply, shape, error));
    require(error == client->error);
    std::vector<std::string> replies;
    for (const auto& [cookie, reply] : exchange.replies())
      replies.push_back(reply);
    require(replies.size() == servers);
    const std::string_view bad = "-ERR cachegate: a server sent an unexpected reply\r\n";
    switch (policy.merge) {
      case RespMerge::kSumIntegers: {
        if (client->reply == bad) break;
        int64_t total = 0;
        for (const auto& r : replies) {
          const auto v = integer_of(r);
          require(v && !__builtin_add_overflow(total, *v, &total));
        }
        require(integer_of(client->reply) == total);
        break;
      }
      case RespMerge::kAllOk: {
        std::string want = "+OK\r\n";
        for (const auto& r : replies) {
          if (r != want) {
            want = r;
            break;
          }
        }
        require(client->reply == want);
        break;
      }
      case RespMerge::kFirstReply:
        require(client->reply == replies[0]);
        break;
      case RespMerge::kFirstNonNull: {
        // The first reply that is not a null, else server 0's.
        std::string want = replies[0];
        for (const auto& r : replies) {
          size_t pos = 0;
          resp::Value v;
          if (resp::read_value(r, pos, v) && !v.is_null()) {
            want = r;
            break;
          }
        }
        require(client->reply == want);
        break;
      }
      case RespMerge::kConcatArrays: {
        if (client->reply == bad) break;
        // Every element of every part, in server order.
        std::vector<std::string_view> all;
        for (const auto& r : replies) {
          const auto e = children(r);
          require(e.has_value());
          all.insert(all.end(), e->begin(), e->end());
        }
        const auto merged = children(client->reply);
        require(merged && *merged == all);
        // And so, for a namespaced user, it still frames as one reply with the prefix taken off.
        std::string stripped;
        if (resp::strip_reply_keys(client->reply, resp::KeyReply::kKeyList, kNamespace, stripped)) {
          bool e = false;
          require(frames_whole(stripped, shape, e) && !e);
        }
        break;
      }
      case RespMerge::kAndArrays:
      case RespMerge::kSumCounts: {
        if (client->reply == bad) break;
        const auto first = children(replies[0]);
        const auto merged = children(client->reply);
        require(first && merged && merged->size() == first->size());
        break;
      }
      case RespMerge::kInfo: {
        size_t pos = 0;
        resp::Value v;
        require(resp::read_value(client->reply, pos, v));
        require(v.type == (protocol == 3 ? '=' : '$'));
        require(info_text(client->reply).starts_with(prefix));
        break;
      }
      case RespMerge::kValuesInKeyOrder:
        require(false);
    }
    if (exchange.all_faithful()) {
      switch (policy.merge) {
        case RespMerge::kSumIntegers: {
          int64_t total = 0;
          for (const auto& r : replies)
            total += *integer_of(r);
          require(client->reply == integer(total));
          break;
        }
        case RespMerge::kInfo:
          require(client->reply == expected_info(replies, prefix, shape));
          break;
        case RespMerge::kAndArrays: {
          std::string want;
          resp::append_array(want, args.size() - 2);
          for (size_t i = 0; i < args.size() - 2; ++i) {
            bool all = true;
            for (const auto& r : replies)
              all = all && (*children(r))[i] == ":1\r\n";
            want += all ? ":1\r\n" : ":0\r\n";
          }
          require(client->reply == want);
          break;
        }
        case RespMerge::kSumCounts: {
          std::string want;
          resp::append_array(want, (args.size() - 2) * 2);
          for (size_t i = 2; i < args.size(); ++i) {
            int64_t total = 0;
            for (const auto& r : replies)
              total += *integer_of((*children(r))[(i - 2) * 2 + 1]);
            want += bulk(args[i]) + integer(total);
          }
          require(client->reply == want);
          break;
        }
        case RespMerge::kFirstNonNull: {
          std::string want = replies[0];
          for (const auto& r : replies) {
            if (r != null_of(shape)) {
              want = r;
              break;
            }
          }
          require(client->reply == want);
          break;
        }
        case RespMerge::kAllOk:
          require(client->reply == "+OK\r\n");
          break;
        default:
          break;  // checked above already
      }
    }
  }
  current = nullptr;
  require(client->ref_count() == 1);
}

// --- Redis: SCAN over a pool ---------------------------------------------------------------------

class RedisScan final : public Scenario {
 public:
  RedisScan(uint32_t server, uint64_t server_cursor, std::vector<std::string> rest, Script& in)
      : server_(server), server_cursor_(server_cursor), rest_(std::move(rest)), in_(in) {}

  void check_sent(uint32_t server, std::string_view request, ReplyShape) override {
    std::vector<std::string> want = {"SCAN", std::to_string(server_cursor_)};
    want.insert(want.end(), rest_.begin(), rest_.end());
    require(server == server_ && parse_command(request) == want);
  }
  std::string faithful(uint32_t server, std::string_view, ReplyShape) override {
    // Redis cursors index its hash table: far below 2^64.
    const uint64_t next = in_.flip() ? 0 : in_.pick(1u << 16) * 65537;
    std::string out = "*2\r\n" + bulk(std::to_string(next));
    const size_t n = in_.pick(4);
    resp::append_array(out, n);
    for (size_t i = 0; i < n; ++i)
      out += bulk("key" + std::to_string(i));
    return out;
  }
  std::string error_reply(Script& in, std::string_view, ReplyShape shape) override {
    return redis_error(in, shape);
  }
  std::string mangled(Script& in, std::string reply, ReplyShape) override {
    // A cursor near 2^64, or the reply made wrong some other way.
    static constexpr std::string_view kCursors[] = {"18446744073709551615", "9223372036854775808",
                                                    "2305843009213693952", "1152921504606846975"};
    if (!in.flip()) return mangle_resp(in, std::move(reply));
    return "*2\r\n" + bulk(kCursors[in.pick(std::size(kCursors))]) + "*0\r\n";
  }

 private:
  uint32_t server_;
  uint64_t server_cursor_;
  std::vector<std::string> rest_;
  Script& in_;
};

void redis_scan(Script& in) {
  const size_t servers = 1 + in.pick(kMaxServers);
  routing::ScanCursor cursor{static_cast<uint32_t>(in.pick(servers)), in.pick(1u << 16)};
  // The client's cursor names the server and that server's own cursor.
  routing::ScanCursor decoded;
  require(
      routing::decode_scan_cursor(routing::encode_scan_cursor(cursor, servers), servers, decoded));
  require(decoded.server == cursor.server && decoded.server_cursor == cursor.server_cursor);
  std::vector<std::string> rest;
  if (in.flip()) rest = {"MATCH", "user:*"};
  if (in.flip()) rest.insert(rest.end(), {"COUNT", "100"});
  std::vector<std::string_view> rest_views(rest.begin(), rest.end());
  const ReplyShape shape = in.flip() ? ReplyShape::kResp3 : ReplyShape::kResp2;

  trace("client sent " + std::to_string(servers) + " servers: SCAN",
        routing::encode_scan_cursor(cursor, servers));
  RedisScan scenario(cursor.server, cursor.server_cursor, rest, in);
  Exchange exchange(in, scenario);
  current = &exchange;
  auto client = routing::make_ref<Client>(exchange);
  routing::ScanRequest::start(pool_of(servers), cursor, rest_views.data(), rest_views.size(), shape,
                              *client, kCookie, kAffinity);
  exchange.drain();
  require(exchange.sent() == 1);

  if (check_outcome(exchange, *client, false)) {
    bool error = false;
    require(frames_whole(client->reply, shape, error));
    require(error == client->error);
    if (!client->error) {
      // [cursor, keys]: the client's cursor leads to where the server said to go on.
      const auto merged = children(client->reply);
      const auto part = children(exchange.replies().begin()->second);
      require(merged && merged->size() == 2 && part && part->size() == 2);
      require((*merged)[1] == (*part)[1]);
      size_t pos = 0;
      resp::Value c;
      require(resp::read_value((*merged)[0], pos, c) && c.type == '$');
      pos = 0;
      resp::Value theirs;
      require(resp::read_value((*part)[0], pos, theirs));
      uint64_t next = 0;
      std::from_chars(theirs.payload.data(), theirs.payload.data() + theirs.payload.size(), next);
      const bool last = next == 0 && cursor.server + 1 >= servers;
      if (last) {
        require(c.payload == "0");
      } else {
        routing::ScanCursor following;
        require(routing::decode_scan_cursor(c.payload, servers, following));
        if (next == 0) {
          require(following.server == cursor.server + 1 && following.server_cursor == 0);
        } else {
          require(following.server == cursor.server && following.server_cursor == next);
        }
      }
    }
  }
  current = nullptr;
  require(client->ref_count() == 1);
}

// --- memcached: multi-gets split by key ---------------------------------------------------------

class McRetrieval final : public Scenario {
 public:
  struct Item {
    std::string data;
    uint32_t flags = 0;
    uint64_t cas = 0;
  };
  struct Key {
    uint32_t server = 0;
    std::optional<Item> item;
  };

  McRetrieval(std::string command, std::string exptime,
              std::map<std::string, Key, std::less<>> keys)
      : command_(std::move(command)), exptime_(std::move(exptime)), keys_(std::move(keys)) {}

  size_t max_line = 0;
  std::vector<std::vector<std::string>> sent_keys =
      std::vector<std::vector<std::string>>(kMaxServers);

  void check_sent(uint32_t server, std::string_view request, ReplyShape shape) override {
    require(shape == ReplyShape::kMcRetrieval);
    mc::RequestParser parser;
    mc::Request r;
    require(parser.parse(request.data(), request.size(), r) == mc::ParseStatus::kOk);
    require(r.frame_length == request.size() && r.start == 0);
    require(mc::command_name(r.command) == command_);
    require(r.exptime.in(request.data()) == exptime_);
    // A line split for memcached's limit fits it, unless one key alone is longer.
    if (max_line != 0) require(request.size() <= max_line || parser.keys().size() == 1);
    for (const auto& k : parser.keys()) {
      const std::string_view key = k.in(request.data());
      auto it = keys_.find(key);
      require(it != keys_.end() && it->second.server == server);
      sent_keys[server].emplace_back(key);
    }
  }

  std::string item_of(std::string_view key, const Item& item) const {
    const bool cas = command_ == "gets" || command_ == "gats";
    std::string out = "VALUE " + std::string(key) + " " + std::to_string(item.flags) + " " +
                      std::to_string(item.data.size());
    if (cas) out += " " + std::to_string(item.cas);
    return out + "\r\n" + item.data + "\r\n";
  }

  // Hits in the order asked, misses left out, END.
  std::string answer(const std::vector<std::string_view>& keys) const {
    std::string out;
    for (auto k : keys) {
      auto it = keys_.find(k);
      if (it != keys_.end() && it->second.item) out += item_of(k, *it->second.item);
    }
    return out + "END\r\n";
  }

  std::string faithful(uint32_t, std::string_view request, ReplyShape) override {
    mc::RequestParser parser;
    mc::Request r;
    require(parser.parse(request.data(), request.size(), r) == mc::ParseStatus::kOk);
    std::vector<std::string_view> keys;
    for (const auto& k : parser.keys())
      keys.push_back(k.in(request.data()));
    return answer(keys);
  }

  std::string error_reply(Script& in, std::string_view faithful, ReplyShape) override {
    static constexpr std::string_view kErrors[] = {
        "SERVER_ERROR out of memory writing get response\r\n",
        "CLIENT_ERROR bad command line format\r\n",
        "ERROR\r\n",
        "SERVER_ERROR\n",
    };
    std::string out;
    // memcached stops a multi-get it cannot finish after the items it has written.
    if (in.flip()) {
      mc::ValueItems items(faithful);
      std::string_view key, item;
      for (size_t n = in.pick(4); n > 0 && items.next(key, item); --n)
        out += item;
    }
    return out + std::string(kErrors[in.pick(std::size(kErrors))]);
  }

  std::string mangled(Script& in, std::string reply, ReplyShape) override {
    std::vector<std::string> items;
    {
      mc::ValueItems walk(reply);
      std::string_view key, item;
      while (walk.next(key, item))
        items.emplace_back(item);
    }
    switch (in.pick(7)) {
      case 0:  // items in another order
        std::reverse(items.begin(), items.end());
        break;
      case 1:  // an item nobody asked for
        items.insert(items.begin() + static_cast<ptrdiff_t>(in.pick(items.size() + 1)),
                     "VALUE " + std::string(kNamespace) + "zz 0 1\r\nz\r\n");
        break;
      case 2:  // an item twice
        if (!items.empty()) items.push_back(items[in.pick(items.size())]);
        break;
      case 3:  // items lost
        items.clear();
        break;
      case 4: {  // the VALUE line in another spelling: bare LF, extra spaces, a cas
        if (items.empty()) break;
        std::string& it = items[in.pick(items.size())];
        const size_t crlf = it.find("\r\n");
        const size_t space = it.find(' ', 6);
        switch (in.pick(3)) {
          case 0:
            it.erase(crlf, 1);
            break;
          case 1:
            it.insert(space, "  ");
            break;
          default:
            it.insert(crlf, " 18446744073709551615");
            break;
        }
        break;
      }
      case 5:  // a few bytes overwritten: inside a data block they keep the framing
        for (size_t n = 1 + in.pick(4); n > 0; --n)
          reply[in.pick(reply.size())] = static_cast<char>(in.byte());
        return reply;
      default:
        return std::string(in.bytes(64)) + reply;
    }
    std::string out;
    for (const auto& i : items)
      out += i;
    return out + (in.flip() ? "END\r\n" : "END\n");
  }

  const std::map<std::string, Key, std::less<>>& keys() const { return keys_; }

 private:
  std::string command_;
  std::string exptime_;
  std::map<std::string, Key, std::less<>> keys_;
};

void mc_retrieval(Script& in) {
  static constexpr std::string_view kCommands[] = {"get", "gets", "gat", "gats"};
  const std::string command(kCommands[in.pick(std::size(kCommands))]);
  const bool touch = command == "gat" || command == "gats";
  const std::string exptime = touch ? std::to_string(in.pick(1000)) : "";
  const size_t servers = 1 + in.pick(kMaxServers);
  const auto names = make_keys(in, 1 + in.pick(8), true);
  std::map<std::string, McRetrieval::Key, std::less<>> keys;
  for (const auto& n : names) {
    McRetrieval::Key k{static_cast<uint32_t>(in.pick(servers)), {}};
    if (in.pick(3) != 0) {
      static constexpr uint32_t kFlags[] = {0, 1, 4294967295u};
      k.item = McRetrieval::Item{std::string(in.bytes(16)), kFlags[in.pick(3)],
                                 in.pick(1u << 16) * 4099};
    }
    keys.emplace(n, std::move(k));
  }
  // The client's line, parsed as a session parses it.
  std::string line = command;
  if (touch) line += " " + exptime;
  const size_t count = 1 + in.pick(16);
  std::vector<std::string> asked;
  for (size_t i = 0; i < count; ++i) {
    asked.push_back(names[in.pick(names.size())]);
    line += " " + asked.back();
  }
  line += "\r\n";
  trace("client sent " + std::to_string(servers) + " servers:", line);
  mc::RequestParser parser;
  mc::Request r;
  require(parser.parse(line.data(), line.size(), r) == mc::ParseStatus::kOk);
  require(parser.keys().size() == count);
  // memcached's own limit for gat/gats lines (kMaxServerLine), or a short one that splits a
  // server's keys over several requests.
  size_t max_line = 0;
  if (touch) max_line = in.flip() ? mc::kMaxServerLine : 16 + in.pick(48);

  McRetrieval scenario(command, exptime, keys);
  scenario.max_line = max_line;
  std::vector<uint32_t> server_of_key;
  for (const auto& k : parser.keys())
    server_of_key.push_back(keys.find(k.in(line.data()))->second.server);
  std::vector<std::string_view> asked_views(asked.begin(), asked.end());
  const std::string expected = scenario.answer(asked_views);

  Exchange exchange(in, scenario);
  current = &exchange;
  auto client = routing::make_ref<Client>(exchange);
  routing::RetrievalFanout::start(pool_of(servers), mc::command_name(r.command),
                                  r.exptime.in(line.data()), line.data(), parser.keys(),
                                  server_of_key, *client, kCookie, kAffinity, max_line);
  exchange.drain();

  std::vector<std::vector<std::string>> want(kMaxServers);
  for (const auto& k : asked)
    want[keys.find(k)->second.server].push_back(k);
  require(want == scenario.sent_keys);

  if (check_outcome(exchange, *client, true)) {
    bool error = false;
    require(frames_whole(client->reply, ReplyShape::kMcRetrieval, error));
    require(!error && !client->error);
    require(client->reply.ends_with("END\r\n"));
    // Items only of keys asked for, in the client's order, at most one per key asked.
    mc::ValueItems items(client->reply);
    std::string_view key, item;
    size_t next = 0, item_bytes = 0;
    while (items.next(key, item)) {
      while (next < asked.size() && asked[next] != key)
        ++next;
      require(next < asked.size());
      ++next;
      item_bytes += item.size();
    }
    require(item_bytes + 5 == client->reply.size());
    if (exchange.all_faithful()) require(client->reply == expected);
    // A namespaced user's reply, with the prefix taken off every key, is still one reply.
    std::string stripped;
    mc::strip_value_keys(client->reply, kNamespace, stripped);
    require(frames_whole(stripped, ReplyShape::kMcRetrieval, error) && !error);
  }
  current = nullptr;
  require(client->ref_count() == 1);
}

// --- memcached: flush_all to every server --------------------------------------------------------

class McBroadcast final : public Scenario {
 public:
  void check_sent(uint32_t, std::string_view request, ReplyShape shape) override {
    require(request == "flush_all\r\n" && shape == ReplyShape::kMcLine);
  }
  std::string faithful(uint32_t, std::string_view, ReplyShape) override { return "OK\r\n"; }
  std::string error_reply(Script& in, std::string_view, ReplyShape) override {
    return in.flip() ? "SERVER_ERROR flush_all disabled\r\n" : "ERROR\r\n";
  }
  std::string mangled(Script& in, std::string, ReplyShape) override {
    return in.flip() ? "VALUE a 0 1\r\na\r\nEND\r\n" : "STORED\r\n";
  }
};

void mc_broadcast(Script& in) {
  const size_t servers = 1 + in.pick(kMaxServers);
  trace("client sent " + std::to_string(servers) + " servers:", "flush_all\r\n");
  McBroadcast scenario;
  Exchange exchange(in, scenario);
  current = &exchange;
  auto client = routing::make_ref<Client>(exchange);
  const std::string_view piece = "flush_all\r\n";
  routing::Broadcast::start(pool_of(servers), &piece, 1, ReplyShape::kMcLine, *client, kCookie,
                            kAffinity);
  exchange.drain();
  require(exchange.sent() == servers);
  if (check_outcome(exchange, *client, false)) {
    bool error = false;
    require(frames_whole(client->reply, ReplyShape::kMcLine, error));
    require(!error && !client->error);
    require(client->reply == exchange.replies().at(0));
  }
  current = nullptr;
  require(client->ref_count() == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script in(data, size);
  switch (in.pick(5)) {
    case 0:
      redis_keyed(in);
      break;
    case 1:
      redis_pool(in);
      break;
    case 2:
      redis_scan(in);
      break;
    case 3:
      mc_retrieval(in);
      break;
    default:
      mc_broadcast(in);
      break;
  }
  return 0;
}
