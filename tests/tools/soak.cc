// cachegate_soak: the load driver of scripts/soak.sh.
//
// Reads cachegate's own configuration file to find its listeners, its pools and where the pools'
// rings put each key (the same loader and the same ketama code as cachegate), then runs client
// threads against the memcached and Redis listeners for a while: sets, adds, appends, prepends,
// incr, deletes, gets, meta gets, multi-gets; SET, GET, MSET, MGET, DEL, EXISTS, INCRBY, APPEND,
// some connections in RESP3; pipelined bursts; reconnects, some with requests still in flight.
//
// Every client owns its keys (their names start with the client's id), so it knows exactly what
// each key must hold: a ledger of what every key can hold now. A write whose reply says it
// happened (STORED, DELETED, +OK, an integer…) leaves one possibility; a write that got no
// definite answer (an error reply, a broken connection, no reply) may or may not have happened,
// so both outcomes stay possible until a later read shows which (on memcached also the key's
// absence: memcached drops a key's old value when a set fails for lack of memory). Every read is
// checked against the ledger while the load runs, and at the end every key is read back through
// cachegate and directly from the servers: from the server the ring names, which must hold what
// the ledger says, and from every other server of the pool, which must not hold the key at all.
//
// With --victim HOST:PORT (servers --chaos-command restarts, empty, every --chaos-every seconds)
// a key those servers own may also be found missing at any time: a server that restarts loses
// what it held, and the ledger then follows the server. A value that is present must still be
// exactly one the ledger allows, and keys of every other server are held to the ledger exactly.
//
// Exits 1 when a read disagreed with the ledger, an acknowledged write was lost, a key sat on a
// server its ring does not name, a reply did not frame, or a request went unanswered for
// --hang-seconds; 2 on bad usage or setup.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/load.h"
#include "protocol/memcache_reply.h"
#include "protocol/resp.h"
#include "routing/distribution.h"

namespace {

using namespace cachegate;
using Clock = std::chrono::steady_clock;
using protocol::ReplyShape;
namespace mc = protocol::memcache;
namespace resp = protocol::resp;

// --- options -----------------------------------------------------------------------------------

struct Options {
  std::string config;
  double seconds = 600;
  int mc_clients = 4;
  int redis_clients = 4;
  int keys = 200;            // per client
  size_t value_max = 16384;  // largest value written, besides rare big ones
  int pipeline_max = 32;
  uint64_t seed = 1;
  int cachegate_pid = 0;
  std::string tls_ca;  // CA of the TLS listeners' certificate; none: TLS listeners are not used
  std::vector<std::string> victims;
  std::string chaos_command;
  double chaos_every = 30;
  double hang_seconds = 20;
  bool verbose = false;
  int settle_ms = 2000;  // the pools' longest timeout and then some (set from the config)
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: cachegate_soak --config FILE [options]\n"
               "  --seconds S         load time (default 600)\n"
               "  --mc-clients N      memcached client threads (default 4)\n"
               "  --redis-clients N   Redis client threads (default 4)\n"
               "  --keys N            keys per client (default 200)\n"
               "  --value-max B       largest usual value (default 16384)\n"
               "  --pipeline-max N    longest pipelined burst (default 32)\n"
               "  --seed N            random seed (default 1)\n"
               "  --cachegate-pid P   report cachegate's RSS and CPU\n"
               "  --tls-ca FILE       also drive the TLS listeners, trusting FILE\n"
               "  --victim HOST:PORT  a server that --chaos-command may restart (repeatable)\n"
               "  --chaos-command C   run C (sh -c) every --chaos-every seconds during the load\n"
               "  --chaos-every S     default 30\n"
               "  --hang-seconds S    a request unanswered this long is a failure (default 20)\n"
               "  --verbose           print every disagreement, not only the first ones\n");
}

// --- connections -------------------------------------------------------------------------------

// A blocking client connection, plain or TLS, with a deadline on every wait.
class Conn {
 public:
  enum class Status { kOk, kClosed, kTimeout, kInvalid };

  ~Conn() { close(); }

  bool open(const std::string& host, uint16_t port, SSL_CTX* tls, double timeout_s) {
    close();
    // Not inherited by the servers the chaos command starts again: a socket they held would
    // stay open after this client closes it.
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close();
      return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{static_cast<time_t>(timeout_s), 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    timeout_s_ = timeout_s;
    if (tls != nullptr) {
      ssl_ = SSL_new(tls);
      SSL_set_fd(ssl_, fd_);
      SSL_set_tlsext_host_name(ssl_, "localhost");
      if (SSL_connect(ssl_) != 1) {
        close();
        return false;
      }
    }
    in_.clear();
    return true;
  }
  bool is_open() const { return fd_ >= 0; }

  void close() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    in_.clear();
  }

  // Writes all of `bytes`. A long pipelined burst is answered while it is still being written:
  // what arrives meanwhile is read into the buffer, so that neither side waits for the other to
  // read.
  bool send(std::string_view bytes) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
    while (!bytes.empty()) {
      if (ssl_ != nullptr) {
        const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      pollfd p{fd_, POLLIN | POLLOUT, 0};
      if (::poll(&p, 1, 1000) < 0 && errno != EINTR) return false;
      if (Clock::now() >= deadline) return false;
      if (p.revents & POLLIN) {
        char buf[65536];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return false;
        if (n > 0) in_.append(buf, static_cast<size_t>(n));
      }
      if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        if (n > 0) bytes.remove_prefix(static_cast<size_t>(n));
      }
    }
    return true;
  }

  // One reply of `shape` (memcached) or one RESP reply; `out` holds its bytes.
  Status read_reply(ReplyShape shape, std::string& out) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
    mc::ReplyFramer mc_framer;
    resp::ReplyFramer resp_framer;
    for (;;) {
      size_t length = 0;
      bool invalid = false;
      if (!in_.empty()) {
        if (protocol::is_resp(shape)) {
          resp::ReplyFrame f;
          switch (resp_framer.frame(in_.data(), in_.size(), f)) {
            case resp::ParseStatus::kOk:
              length = f.length;
              break;
            case resp::ParseStatus::kInvalid:
              invalid = true;
              break;
            case resp::ParseStatus::kNeedMore:
              break;
          }
        } else {
          mc::ReplyFrame f;
          switch (mc_framer.frame(in_.data(), in_.size(), shape, f)) {
            case mc::ParseStatus::kOk:
              length = f.length;
              break;
            case mc::ParseStatus::kInvalid:
              invalid = true;
              break;
            case mc::ParseStatus::kNeedMore:
              break;
          }
        }
      }
      if (invalid) return Status::kInvalid;
      if (length != 0) {
        out.assign(in_, 0, length);
        in_.erase(0, length);
        return Status::kOk;
      }
      if (Clock::now() >= deadline) return Status::kTimeout;
      char buf[65536];
      const ssize_t n =
          ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && ssl_ == nullptr && errno == EINTR) continue;
      if (n < 0 && ssl_ == nullptr && (errno == EAGAIN || errno == EWOULDBLOCK))
        return Status::kTimeout;
      if (ssl_ != nullptr && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return Status::kTimeout;
      return Status::kClosed;
    }
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string in_;
  double timeout_s_ = 10;
};

// --- the ledger --------------------------------------------------------------------------------

struct Value {
  std::string data;
  uint32_t flags = 0;
  bool operator==(const Value&) const = default;
};
using Maybe = std::optional<Value>;  // nullopt: the key is absent

std::string show(const Maybe& v) {
  if (!v) return "(absent)";
  std::string out = "\"";
  for (unsigned char c : v->data.substr(0, 40)) {
    if (c >= 0x20 && c < 0x7f && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (v->data.size() > 40) out += "…";
  out += "\" (" + std::to_string(v->data.size()) + " bytes";
  if (v->flags != 0) out += ", flags " + std::to_string(v->flags);
  return out + ")";
}

// What one key can hold now.
struct Expect {
  std::vector<Maybe> possible{std::nullopt};
  bool victim = false;   // its server may restart and lose it
  bool unknown = false;  // too many outcomes to follow: the next read says
};

constexpr size_t kMaxPossible = 16;

void add_possible(Expect& e, const Maybe& v) {
  if (e.unknown) return;
  if (std::find(e.possible.begin(), e.possible.end(), v) == e.possible.end())
    e.possible.push_back(v);
  if (e.possible.size() > kMaxPossible) {
    e.unknown = true;
    e.possible.clear();
  }
}

struct Stats {
  std::map<std::string, uint64_t> requests;  // by operation
  uint64_t sent = 0;
  uint64_t acknowledged_writes = 0;
  uint64_t uncertain_writes = 0;
  uint64_t reads_checked = 0;
  std::map<std::string, uint64_t> errors;  // by kind
  uint64_t wrong_reads = 0;
  uint64_t lost_writes = 0;      // at the end: an acknowledged value missing
  uint64_t lost_to_restart = 0;  // a victim's key found missing
  uint64_t stray_copies = 0;
  uint64_t bad_replies = 0;
  uint64_t hangs = 0;
  uint64_t reconnects = 0;
  uint64_t verified_through_proxy = 0;
  uint64_t verified_direct = 0;
  uint64_t unverified = 0;

  void merge(const Stats& o) {
    for (const auto& [k, v] : o.requests)
      requests[k] += v;
    for (const auto& [k, v] : o.errors)
      errors[k] += v;
    sent += o.sent;
    acknowledged_writes += o.acknowledged_writes;
    uncertain_writes += o.uncertain_writes;
    reads_checked += o.reads_checked;
    wrong_reads += o.wrong_reads;
    lost_writes += o.lost_writes;
    lost_to_restart += o.lost_to_restart;
    stray_copies += o.stray_copies;
    bad_replies += o.bad_replies;
    hangs += o.hangs;
    reconnects += o.reconnects;
    verified_through_proxy += o.verified_through_proxy;
    verified_direct += o.verified_direct;
    unverified += o.unverified;
  }
};

std::mutex print_mutex;
std::atomic<int> reports_left{40};
bool verbose = false;

void report(const std::string& who, const std::string& what) {
  if (!verbose && reports_left.fetch_sub(1) <= 0) return;
  std::lock_guard<std::mutex> lock(print_mutex);
  std::fprintf(stderr, "soak: %s: %s\n", who.c_str(), what.c_str());
}

// An error reply's kind for the summary: its first words, without numbers that vary.
std::string error_kind(std::string_view reply) {
  std::string_view line = reply.substr(0, reply.find('\r'));
  if (line.size() > 60) line = line.substr(0, 60);
  std::string out;
  for (char c : line)
    out.push_back(c >= '0' && c <= '9' ? '#' : c);
  return out;
}

// --- a key's owner, as cachegate's ring places it ----------------------------------------------

struct Server {
  std::string host;
  uint16_t port = 0;
  std::string name() const { return host + ":" + std::to_string(port); }
};

struct PoolView {
  std::vector<Server> servers;
  std::unique_ptr<routing::Distribution> ring;
  uint32_t owner(std::string_view key) const { return ring->server_for(key); }
};

PoolView pool_view(const config::PoolConfig& pool) {
  PoolView v;
  std::vector<routing::RingServer> ring;
  for (const auto& s : pool.servers) {
    v.servers.push_back({s.host, s.port});
    ring.push_back({s.identity, s.weight});
  }
  v.ring =
      std::make_unique<routing::Distribution>(pool.distribution, pool.hash, pool.hash_tag, ring);
  return v;
}

// --- operations --------------------------------------------------------------------------------

// What a client does to one key's ledger with a reply it got: a write, a read, or nothing
// certain.
class Client {
 public:
  Client(std::string id, const PoolView& pool, const Options& options, uint64_t seed,
         std::set<std::string> victims)
      : id_(std::move(id)), pool_(pool), options_(options), rng_(seed) {
    for (int i = 0; i < options.keys; ++i) {
      // Counters (incremented) and blobs (appended to) are separate keys: incr needs a number.
      const std::string name = id_ + ":" + (i % 4 == 0 ? "n" : "b") + std::to_string(i);
      keys_.push_back(name);
      Expect& e = ledger_[name];
      const uint32_t owner = pool_.owner(name);
      e.victim = owner < pool_.servers.size() && victims.count(pool_.servers[owner].name()) != 0;
    }
  }
  virtual ~Client() = default;

  Stats stats;

  // The load, until `until`.
  void run(Clock::time_point until) {
    while (Clock::now() < until) {
      if (!conn_.is_open()) {
        settle();
        if (!connect()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          continue;
        }
      }
      step();
      if (pick(200) == 0) {  // a reconnect, now and then with requests still in flight
        if (pick(2) == 0) abandon_in_flight();
        conn_.close();
        ++stats.reconnects;
      }
    }
    conn_.close();
    settle();
  }

  // Reads every key back through cachegate, and then from every server directly.
  virtual void verify() = 0;

 protected:
  struct Pending {
    std::string op;
    std::vector<std::string> keys;
    ReplyShape shape;
    // Applies the reply (nullopt: none came) to the ledger.
    std::function<void(const std::optional<std::string>&)> apply;
  };

  virtual bool connect() = 0;

  // Writes left without a reply may still be on their way to a server, through another of
  // cachegate's server connections than the next ones will take: before going on, wait until
  // they have either happened or never will (cachegate answers or gives up within the pools'
  // timeout).
  void settle() {
    if (!unsettled_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.settle_ms));
    unsettled_ = false;
  }
  virtual void add_random_op(std::vector<Pending>& burst, std::string& bytes) = 0;
  // Sends a few writes and closes without reading their replies.
  virtual void abandon_in_flight() = 0;

  size_t pick(size_t n) {
    return n <= 1 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }
  const std::string& random_key() { return keys_[pick(keys_.size())]; }
  const std::string& random_key(char kind) {
    for (;;) {
      const std::string& k = random_key();
      if (k[id_.size() + 1] == kind) return k;
    }
  }

  std::string random_value() {
    size_t n = pick(8) == 0 ? pick(options_.value_max + 1) : pick(100);
    if (pick(500) == 0) n = 200 * 1024;  // now and then a big one
    std::string v(n, 'x');
    for (size_t i = 0; i < n; ++i)
      v[i] = static_cast<char>(pick(16) == 0 ? pick(256) : 'a' + pick(26));
    if (n >= 4 && pick(4) == 0) v.replace(pick(n - 3), 2, "\r\n");  // protocol bytes in data
    return v;
  }

  // One step: a single request, or a pipelined burst.
  void step() {
    std::vector<Pending> burst;
    std::string bytes;
    const size_t count = pick(5) == 0 ? 2 + pick(options_.pipeline_max - 1) : 1;
    for (size_t i = 0; i < count; ++i)
      add_random_op(burst, bytes);
    for (const auto& p : burst)
      ++stats.requests[p.op];
    stats.sent += burst.size();
    exchange(burst, bytes);
  }

  // Sends the burst and applies each reply in order; what gets no reply stays uncertain.
  void exchange(std::vector<Pending>& burst, const std::string& bytes) {
    size_t done = 0;
    if (conn_.send(bytes)) {
      std::string reply;
      for (; done < burst.size(); ++done) {
        const auto status = conn_.read_reply(burst[done].shape, reply);
        if (status == Conn::Status::kOk) {
          burst[done].apply(reply);
          continue;
        }
        if (status == Conn::Status::kTimeout) {
          ++stats.hangs;
          report(id_, "no reply to " + burst[done].op + " within " +
                          std::to_string(options_.hang_seconds) + " s");
        } else if (status == Conn::Status::kInvalid) {
          ++stats.bad_replies;
          report(id_, "a reply to " + burst[done].op + " does not frame");
        } else {
          ++stats.errors["connection closed"];
        }
        conn_.close();
        unsettled_ = true;
        break;
      }
    } else {
      ++stats.errors["connection closed"];
      conn_.close();
      unsettled_ = true;
    }
    for (; done < burst.size(); ++done)
      burst[done].apply(std::nullopt);
  }

  // --- the ledger's rules ---

  // A read: `seen` must be something the ledger allows. At the end (`final`) nothing is on its
  // way any more, and an acknowledged value that is missing is a lost write.
  void observe(const std::string& key, const Maybe& seen, const std::string& how,
               bool final = false) {
    Expect& e = ledger_.at(key);
    ++stats.reads_checked;
    const bool allowed =
        e.unknown || std::find(e.possible.begin(), e.possible.end(), seen) != e.possible.end();
    if (!allowed) {
      std::string want;
      for (const auto& p : e.possible)
        want += (want.empty() ? "" : " or ") + show(p);
      if (e.victim && !seen) {
        ++stats.lost_to_restart;
      } else if (final && !seen) {
        ++stats.lost_writes;
        report(id_, how + ": " + key + " is missing; expected " + want);
      } else {
        ++stats.wrong_reads;
        report(id_, how + ": " + key + " gave " + show(seen) + ", expected " + want);
      }
    }
    e.possible = {seen};
    e.unknown = false;
  }

  // A write whose reply came back: `outcome(before)` is the reply each possible value gives and
  // what the key then holds. The reply must be one of those; the ledger keeps the values that
  // give it. An error reply nobody predicts makes the write uncertain.
  using Outcome = std::function<std::pair<std::string, Maybe>(const Maybe& before)>;
  void written(const std::string& key, const std::string& reply, const Outcome& outcome,
               bool is_error) {
    Expect& e = ledger_.at(key);
    if (e.unknown) {
      // Nothing to hold the reply to; a write whose result does not depend on what was there
      // (set, delete of a missing key …) makes the key known again.
      if (is_error) return uncertain(key, outcome, error_kind(reply));
      ++stats.acknowledged_writes;
      auto [r, v] = outcome(std::nullopt);
      if (r == reply) {
        e.possible = {v};
        e.unknown = false;
      }
      return;
    }
    std::vector<Maybe> before = e.possible;
    if (e.victim) before.push_back(std::nullopt);  // its server may have restarted since
    std::vector<Maybe> after;
    bool only_restarted = true;
    for (size_t i = 0; i < before.size(); ++i) {
      auto [r, v] = outcome(before[i]);
      if (r != reply) continue;
      if (std::find(after.begin(), after.end(), v) == after.end()) after.push_back(v);
      only_restarted = only_restarted && i >= e.possible.size();
    }
    if (!after.empty()) {
      if (only_restarted) ++stats.lost_to_restart;
      if (!is_error) ++stats.acknowledged_writes;
      e.possible = after;
      return;
    }
    if (is_error) return uncertain(key, outcome, error_kind(reply));
    ++stats.wrong_reads;
    std::string want;
    for (const auto& p : e.possible)
      want += (want.empty() ? "" : " or ") + outcome(p).first;
    report(id_, "a write to " + key + " was answered " + error_kind(reply) + ", expected " +
                    error_kind(want));
    e.unknown = true;
    e.possible.clear();
  }

  // A write that may or may not have happened.
  void uncertain(const std::string& key, const Outcome& outcome, const std::string& why) {
    Expect& e = ledger_.at(key);
    unsettled_ = true;
    ++stats.uncertain_writes;
    ++stats.errors[why];
    const std::vector<Maybe> before = e.possible;
    for (const auto& p : before)
      add_possible(e, outcome(p).second);
    if (memcached_) add_possible(e, std::nullopt);
  }

  // The final check reads keys in multi-key batches of this many.
  static constexpr size_t kVerifyBatch = 50;
  std::vector<std::string> verify_batch(size_t at) const {
    return {keys_.begin() + at, keys_.begin() + std::min(at + kVerifyBatch, keys_.size())};
  }

  // Reads the values of `batch`'s keys, in its order, on a connection; nothing when it cannot.
  using BatchRead =
      std::function<std::optional<std::vector<Maybe>>(Conn&, const std::vector<std::string>&)>;

  // The final check on the servers themselves: every key asked of every server, whose own
  // server must hold what the ledger allows and no other server may hold at all.
  void verify_on_servers(const BatchRead& read, const std::string& verb) {
    for (uint32_t s = 0; s < pool_.servers.size(); ++s) {
      Conn direct;
      if (!direct.open(pool_.servers[s].host, pool_.servers[s].port, nullptr, 10)) {
        report(id_, "cannot reach " + pool_.servers[s].name());
        stats.unverified += keys_.size();
        continue;
      }
      for (size_t at = 0; at < keys_.size(); at += kVerifyBatch) {
        const auto batch = verify_batch(at);
        const auto values = read(direct, batch);
        if (!values) {
          stats.unverified += batch.size();
          continue;
        }
        for (size_t i = 0; i < batch.size(); ++i) {
          const std::string& k = batch[i];
          if (pool_.owner(k) == s) {
            observe(k, (*values)[i], verb + " from " + pool_.servers[s].name(), true);
            ++stats.verified_direct;
          } else if ((*values)[i]) {
            ++stats.stray_copies;
            report(id_, k + " is on " + pool_.servers[s].name() + ", which its ring does not name");
          }
        }
      }
    }
  }

  std::string id_;
  const PoolView& pool_;
  const Options& options_;
  std::mt19937_64 rng_;
  std::vector<std::string> keys_;
  std::map<std::string, Expect> ledger_;
  Conn conn_;
  bool memcached_ = false;
  bool unsettled_ = false;
  // Why a write got no reply, for the summary.
  std::string no_reply_ = "no reply: connection lost";
};

// --- memcached ---------------------------------------------------------------------------------

std::string mc_storage(std::string_view cmd, std::string_view key, const Value& v) {
  return std::string(cmd) + " " + std::string(key) + " " + std::to_string(v.flags) + " 0 " +
         std::to_string(v.data.size()) + "\r\n" + v.data + "\r\n";
}

bool mc_error(std::string_view reply) {
  return mc::is_error_line(reply.substr(0, reply.find('\r')));
}

// The items of a retrieval reply, in order.
std::vector<std::pair<std::string, Value>> mc_items(std::string_view reply) {
  std::vector<std::pair<std::string, Value>> out;
  mc::ValueItems items(reply);
  std::string_view key, item;
  while (items.next(key, item)) {
    const size_t nl = item.find('\n');
    std::string_view line = item.substr(0, nl);
    if (line.ends_with('\r')) line.remove_suffix(1);
    // VALUE <key> <flags> <bytes>
    const size_t f0 = line.find(' ', 6) + 1;
    const size_t f1 = line.find(' ', f0);
    uint32_t flags = 0;
    std::from_chars(line.data() + f0, line.data() + f1, flags);
    const size_t data_start = nl + 1;
    out.push_back(
        {std::string(key),
         Value{std::string(item.substr(data_start, item.size() - data_start - 2)), flags}});
  }
  return out;
}

class McClient final : public Client {
 public:
  McClient(std::string id, const Server& listener, SSL_CTX* tls, const PoolView& pool,
           const Options& options, uint64_t seed, std::set<std::string> victims)
      : Client(std::move(id), pool, options, seed, std::move(victims)),
        listener_(listener),
        tls_(tls) {
    memcached_ = true;
  }

  bool connect() override {
    if (conn_.open(listener_.host, listener_.port, tls_, options_.hang_seconds)) return true;
    ++stats.errors["connect failed"];
    return false;
  }

  void add_random_op(std::vector<Pending>& burst, std::string& bytes) override {
    const size_t r = pick(100);
    if (r < 22) return set_op(burst, bytes, "set");
    if (r < 26) return set_op(burst, bytes, "add");
    if (r < 29) return set_op(burst, bytes, "replace");
    if (r < 36) return append_op(burst, bytes, pick(3) == 0 ? "prepend" : "append");
    if (r < 44) return incr_op(burst, bytes);
    if (r < 52) return delete_op(burst, bytes);
    if (r < 72) return get_op(burst, bytes, 1);
    if (r < 80) return meta_get_op(burst, bytes);
    return get_op(burst, bytes, 2 + pick(24));
  }

  void abandon_in_flight() override {
    std::vector<Pending> burst;
    std::string bytes;
    for (size_t n = 1 + pick(4); n > 0; --n)
      set_op(burst, bytes, "set");
    conn_.send(bytes);
    no_reply_ = "no reply: left in flight at a reconnect (on purpose)";
    for (auto& p : burst)
      p.apply(std::nullopt);
    no_reply_ = "no reply: connection lost";
  }

  void verify() override {
    // Through cachegate: multi-gets of 50 keys (split over the servers), retried while the
    // servers are still coming back.
    for (size_t at = 0; at < keys_.size(); at += kVerifyBatch) {
      const auto batch = verify_batch(at);
      std::string line = "get";
      for (const auto& k : batch)
        line += " " + k;
      line += "\r\n";
      std::optional<std::string> reply;
      for (int attempt = 0; attempt < 30 && !reply; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
        if (!conn_.is_open() && !connect()) continue;
        std::string r;
        if (!conn_.send(line) ||
            conn_.read_reply(ReplyShape::kMcRetrieval, r) != Conn::Status::kOk) {
          conn_.close();
          continue;
        }
        if (mc_error(r)) {
          ++stats.errors["verify: " + error_kind(r)];
          continue;
        }
        reply = r;
      }
      if (!reply) {
        stats.unverified += batch.size();
        continue;
      }
      check_items(batch, *reply, "get (at the end, through cachegate)", true);
      stats.verified_through_proxy += batch.size();
    }
    conn_.close();
    verify_on_servers(
        [](Conn& direct,
           const std::vector<std::string>& batch) -> std::optional<std::vector<Maybe>> {
          std::string line = "get";
          for (const auto& k : batch)
            line += " " + k;
          line += "\r\n";
          std::string r;
          if (!direct.send(line) ||
              direct.read_reply(ReplyShape::kMcRetrieval, r) != Conn::Status::kOk || mc_error(r))
            return std::nullopt;
          std::vector<Maybe> values(batch.size());
          for (const auto& [key, value] : mc_items(r))
            for (size_t i = 0; i < batch.size(); ++i)
              if (key == batch[i]) values[i] = value;
          return values;
        },
        "get");
  }

 private:
  void check_items(const std::vector<std::string>& asked, const std::string& reply,
                   const std::string& how, bool final = false) {
    // Items come in the order of the keys asked, misses left out.
    const auto items = mc_items(reply);
    size_t next = 0;
    for (const auto& k : asked) {
      Maybe seen;
      if (next < items.size() && items[next].first == k) seen = items[next++].second;
      observe(k, seen, how, final);
    }
    if (next != items.size()) {
      ++stats.wrong_reads;
      report(id_, how + ": items out of order or not asked for");
    }
  }

  void set_op(std::vector<Pending>& burst, std::string& bytes, const char* cmd) {
    const std::string& key = random_key(pick(3) == 0 ? 'n' : 'b');
    Value v{key[id_.size() + 1] == 'n' ? std::to_string(pick(1000000)) : random_value(),
            static_cast<uint32_t>(pick(4) == 0 ? pick(65536) : 0)};
    bytes += mc_storage(cmd, key, v);
    const std::string op = cmd;
    Outcome outcome = [op, v](const Maybe& before) -> std::pair<std::string, Maybe> {
      if (op == "add" && before) return {"NOT_STORED\r\n", before};
      if (op == "replace" && !before) return {"NOT_STORED\r\n", before};
      return {"STORED\r\n", v};
    };
    burst.push_back({op, {key}, ReplyShape::kMcLine, write_result(key, outcome)});
  }

  void append_op(std::vector<Pending>& burst, std::string& bytes, const char* cmd) {
    const std::string& key = random_key('b');
    const std::string piece = random_value().substr(0, 64);
    bytes += mc_storage(cmd, key, Value{piece, 0});
    const bool front = std::string_view(cmd) == "prepend";
    Outcome outcome = [piece, front](const Maybe& before) -> std::pair<std::string, Maybe> {
      if (!before) return {"NOT_STORED\r\n", before};
      Value v = *before;  // flags stay
      v.data = front ? piece + v.data : v.data + piece;
      return {"STORED\r\n", v};
    };
    burst.push_back({cmd, {key}, ReplyShape::kMcLine, write_result(key, outcome)});
  }

  void incr_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key('n');
    const uint64_t delta = pick(1000);
    bytes += "incr " + key + " " + std::to_string(delta) + "\r\n";
    Outcome outcome = [delta](const Maybe& before) -> std::pair<std::string, Maybe> {
      if (!before) return {"NOT_FOUND\r\n", before};
      uint64_t n = 0;
      const auto& d = before->data;
      auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), n);
      if (ec != std::errc() || p != d.data() + d.size() || d.empty())
        return {"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", before};
      Value v = *before;
      v.data = std::to_string(n + delta);
      return {v.data + "\r\n", v};
    };
    burst.push_back({"incr", {key}, ReplyShape::kMcLine, write_result(key, outcome)});
  }

  void delete_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key();
    bytes += "delete " + key + "\r\n";
    Outcome outcome = [](const Maybe& before) -> std::pair<std::string, Maybe> {
      return {before ? "DELETED\r\n" : "NOT_FOUND\r\n", std::nullopt};
    };
    burst.push_back({"delete", {key}, ReplyShape::kMcLine, write_result(key, outcome)});
  }

  std::function<void(const std::optional<std::string>&)> write_result(const std::string& key,
                                                                      Outcome outcome) {
    return [this, key, outcome](const std::optional<std::string>& reply) {
      if (!reply) return uncertain(key, outcome, no_reply_);
      written(key, *reply, outcome, mc_error(*reply));
    };
  }

  void get_op(std::vector<Pending>& burst, std::string& bytes, size_t count) {
    std::vector<std::string> asked;
    std::string line = "get";
    for (size_t i = 0; i < count; ++i) {
      asked.push_back(random_key());
      line += " " + asked.back();
    }
    bytes += line + "\r\n";
    burst.push_back({count == 1 ? "get" : "multi-get", asked, ReplyShape::kMcRetrieval,
                     [this, asked](const std::optional<std::string>& reply) {
                       if (!reply) return;
                       if (mc_error(*reply)) {
                         ++stats.errors[error_kind(*reply)];
                         return;
                       }
                       check_items(asked, *reply, asked.size() == 1 ? "get" : "multi-get");
                     }});
  }

  void meta_get_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key();
    bytes += "mg " + key + " v f\r\n";
    burst.push_back(
        {"mg", {key}, ReplyShape::kMcMeta, [this, key](const std::optional<std::string>& reply) {
           if (!reply) return;
           if (mc_error(*reply)) {
             ++stats.errors[error_kind(*reply)];
             return;
           }
           if (reply->starts_with("EN")) return observe(key, std::nullopt, "mg");
           // VA <size> f<flags>\r\n<data>\r\n
           const size_t nl = reply->find('\n');
           std::string_view line(reply->data(), nl);
           uint32_t flags = 0;
           const size_t f = line.find(" f");
           if (f != std::string_view::npos)
             std::from_chars(line.data() + f + 2, line.data() + line.size(), flags);
           observe(key, Value{reply->substr(nl + 1, reply->size() - nl - 3), flags}, "mg");
         }});
  }

  Server listener_;
  SSL_CTX* tls_;
};

// --- Redis -------------------------------------------------------------------------------------

std::string command(const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  resp::append_command(out, views.data(), views.size());
  return out;
}

std::string resp_int(int64_t v) {
  std::string out;
  resp::append_integer(out, v);
  return out;
}

// A bulk string or a null, as a Maybe; false when it is neither.
bool resp_value(std::string_view element, Maybe& out) {
  size_t pos = 0;
  resp::Value v;
  if (!resp::read_value(element, pos, v)) return false;
  if (v.is_null()) {
    out.reset();
    return true;
  }
  if (v.type != '$') return false;
  out = Value{std::string(v.payload), 0};
  return true;
}

class RedisClient final : public Client {
 public:
  RedisClient(std::string id, const Server& listener, SSL_CTX* tls, const PoolView& pool,
              const Options& options, uint64_t seed, std::set<std::string> victims)
      : Client(std::move(id), pool, options, seed, std::move(victims)),
        listener_(listener),
        tls_(tls) {}

  bool connect() override {
    if (!conn_.open(listener_.host, listener_.port, tls_, options_.hang_seconds)) {
      ++stats.errors["connect failed"];
      return false;
    }
    // Some connections speak RESP3.
    resp3_ = pick(3) == 0;
    if (resp3_) {
      std::string r;
      if (!conn_.send(command({"HELLO", "3"})) ||
          conn_.read_reply(ReplyShape::kResp3, r) != Conn::Status::kOk || r[0] == '-') {
        conn_.close();
        ++stats.errors["HELLO 3 failed"];
        return false;
      }
    }
    return true;
  }

  void add_random_op(std::vector<Pending>& burst, std::string& bytes) override {
    const size_t r = pick(100);
    if (r < 20) return set_op(burst, bytes);
    if (r < 30) return mset_op(burst, bytes);
    if (r < 38) return append_op(burst, bytes);
    if (r < 46) return incr_op(burst, bytes);
    if (r < 54) return del_op(burst, bytes);
    if (r < 58) return exists_op(burst, bytes);
    if (r < 80) return get_op(burst, bytes);
    return mget_op(burst, bytes);
  }

  void abandon_in_flight() override {
    std::vector<Pending> burst;
    std::string bytes;
    for (size_t n = 1 + pick(4); n > 0; --n)
      pick(2) == 0 ? set_op(burst, bytes) : mset_op(burst, bytes);
    conn_.send(bytes);
    no_reply_ = "no reply: left in flight at a reconnect (on purpose)";
    for (auto& p : burst)
      p.apply(std::nullopt);
    no_reply_ = "no reply: connection lost";
  }

  void verify() override {
    for (size_t at = 0; at < keys_.size(); at += kVerifyBatch) {
      const auto batch = verify_batch(at);
      std::vector<std::string> args = {"MGET"};
      args.insert(args.end(), batch.begin(), batch.end());
      std::optional<std::vector<Maybe>> values;
      for (int attempt = 0; attempt < 30 && !values; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
        if (!conn_.is_open() && !connect()) continue;
        std::string r;
        if (!conn_.send(command(args)) || conn_.read_reply(shape(), r) != Conn::Status::kOk) {
          conn_.close();
          continue;
        }
        if (r[0] == '-') {
          ++stats.errors["verify: " + error_kind(r)];
          continue;
        }
        values = array_values(r, batch.size());
        if (!values) break;
      }
      if (!values) {
        stats.unverified += batch.size();
        continue;
      }
      for (size_t i = 0; i < batch.size(); ++i)
        observe(batch[i], (*values)[i], "MGET (at the end, through cachegate)", true);
      stats.verified_through_proxy += batch.size();
    }
    conn_.close();
    verify_on_servers(
        [this](Conn& direct,
               const std::vector<std::string>& batch) -> std::optional<std::vector<Maybe>> {
          std::vector<std::string> args = {"MGET"};
          args.insert(args.end(), batch.begin(), batch.end());
          std::string r;
          if (!direct.send(command(args)) ||
              direct.read_reply(ReplyShape::kResp2, r) != Conn::Status::kOk)
            return std::nullopt;
          return array_values(r, batch.size());
        },
        "GET");
  }

 private:
  ReplyShape shape() const { return resp3_ ? ReplyShape::kResp3 : ReplyShape::kResp2; }
  std::string null() const { return resp3_ ? "_\r\n" : "$-1\r\n"; }

  std::optional<std::vector<Maybe>> array_values(std::string_view reply, size_t count) {
    size_t pos = 0;
    resp::Value top;
    if (!resp::read_value(reply, pos, top) || top.type != '*' ||
        top.count != static_cast<int64_t>(count)) {
      ++stats.wrong_reads;
      report(id_, "MGET of " + std::to_string(count) + " keys answered " + error_kind(reply));
      return std::nullopt;
    }
    std::vector<Maybe> out(count);
    size_t child = resp::children_start(top);
    for (size_t i = 0; i < count; ++i) {
      resp::Value v;
      if (!resp::read_value(top.raw, child, v) || !resp_value(v.raw, out[i])) {
        ++stats.wrong_reads;
        report(id_, "MGET answered an element that is no string");
        return std::nullopt;
      }
    }
    return out;
  }

  std::function<void(const std::optional<std::string>&)> write_result(const std::string& key,
                                                                      Outcome outcome) {
    return [this, key, outcome](const std::optional<std::string>& reply) {
      if (!reply) return uncertain(key, outcome, no_reply_);
      written(key, *reply, outcome, (*reply)[0] == '-' || (*reply)[0] == '!');
    };
  }

  void set_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key(pick(3) == 0 ? 'n' : 'b');
    const Value v{key[id_.size() + 1] == 'n' ? std::to_string(pick(1000000)) : random_value(), 0};
    bytes += command({"SET", key, v.data});
    Outcome outcome = [v](const Maybe&) -> std::pair<std::string, Maybe> { return {"+OK\r\n", v}; };
    burst.push_back({"SET", {key}, shape(), write_result(key, outcome)});
  }

  void mset_op(std::vector<Pending>& burst, std::string& bytes) {
    std::vector<std::string> args = {"MSET"};
    std::map<std::string, Value> last;  // a key named twice keeps its last value
    for (size_t n = 2 + pick(10); n > 0; --n) {
      const std::string& key = random_key('b');
      Value v{random_value().substr(0, 512), 0};
      args.push_back(key);
      args.push_back(v.data);
      last[key] = v;
    }
    bytes += command(args);
    std::vector<std::string> keys;
    for (const auto& [k, v] : last)
      keys.push_back(k);
    burst.push_back({"MSET", keys, shape(), [this, last](const std::optional<std::string>& reply) {
                       for (const auto& [key, v] : last) {
                         Outcome outcome = [v](const Maybe&) -> std::pair<std::string, Maybe> {
                           return {"+OK\r\n", v};
                         };
                         if (!reply) {
                           uncertain(key, outcome, no_reply_);
                         } else {
                           written(key, *reply, outcome, (*reply)[0] == '-');
                         }
                       }
                     }});
  }

  void append_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key('b');
    const std::string piece = random_value().substr(0, 64);
    bytes += command({"APPEND", key, piece});
    Outcome outcome = [piece](const Maybe& before) -> std::pair<std::string, Maybe> {
      Value v{(before ? before->data : "") + piece, 0};  // APPEND creates a missing key
      return {resp_int(static_cast<int64_t>(v.data.size())), v};
    };
    burst.push_back({"APPEND", {key}, shape(), write_result(key, outcome)});
  }

  void incr_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key('n');
    const int64_t delta = static_cast<int64_t>(pick(1000));
    bytes += command({"INCRBY", key, std::to_string(delta)});
    Outcome outcome = [delta](const Maybe& before) -> std::pair<std::string, Maybe> {
      int64_t n = 0;
      if (before) {
        const auto& d = before->data;
        auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), n);
        if (ec != std::errc() || p != d.data() + d.size() || d.empty())
          return {"-ERR value is not an integer or out of range\r\n", before};
      }
      const Value v{std::to_string(n + delta), 0};
      return {resp_int(n + delta), v};
    };
    burst.push_back({"INCRBY", {key}, shape(), write_result(key, outcome)});
  }

  // DEL and EXISTS of several keys answer one count: it must be one the ledger allows, and
  // after DEL every key is gone.
  void count_op(std::vector<Pending>& burst, std::string& bytes, const char* name, bool del) {
    std::vector<std::string> args = {name};
    for (size_t n = 1 + pick(6); n > 0; --n)
      args.push_back(random_key());
    bytes += command(args);
    std::vector<std::string> keys(args.begin() + 1, args.end());
    burst.push_back(
        {name, keys, shape(), [this, keys, del](const std::optional<std::string>& reply) {
           std::set<std::string> distinct(keys.begin(), keys.end());
           // DEL counts each key once, EXISTS each time it is named.
           int64_t least = 0, most = 0;
           for (const auto& k :
                del ? std::vector<std::string>(distinct.begin(), distinct.end()) : keys) {
             const Expect& e = ledger_.at(k);
             bool can_be_absent = e.unknown || e.victim, can_be_present = e.unknown;
             for (const auto& p : e.possible) {
               can_be_absent = can_be_absent || !p;
               can_be_present = can_be_present || p.has_value();
             }
             least += can_be_absent ? 0 : 1;
             most += can_be_present ? 1 : 0;
           }
           int64_t n = -1;
           if (reply && (*reply)[0] == ':')
             std::from_chars(reply->data() + 1, reply->data() + reply->size() - 2, n);
           if (reply && (*reply)[0] == ':' && (n < least || n > most)) {
             ++stats.wrong_reads;
             report(id_, std::string(del ? "DEL" : "EXISTS") + " answered " + std::to_string(n) +
                             ", expected " + std::to_string(least) + " to " + std::to_string(most));
           }
           if (reply && (*reply)[0] == '-') ++stats.errors[error_kind(*reply)];
           if (!del) return;
           for (const auto& k : distinct) {
             Expect& e = ledger_.at(k);
             if (reply && (*reply)[0] == ':') {
               ++stats.acknowledged_writes;
               e.possible = {std::nullopt};
               e.unknown = false;
             } else {
               ++stats.uncertain_writes;
               add_possible(e, std::nullopt);
             }
           }
         }});
  }
  void del_op(std::vector<Pending>& burst, std::string& bytes) {
    count_op(burst, bytes, "DEL", true);
  }
  void exists_op(std::vector<Pending>& burst, std::string& bytes) {
    count_op(burst, bytes, "EXISTS", false);
  }

  void get_op(std::vector<Pending>& burst, std::string& bytes) {
    const std::string& key = random_key();
    bytes += command({"GET", key});
    burst.push_back({"GET", {key}, shape(), [this, key](const std::optional<std::string>& reply) {
                       if (!reply) return;
                       if ((*reply)[0] == '-') {
                         ++stats.errors[error_kind(*reply)];
                         return;
                       }
                       Maybe seen;
                       if (!resp_value(*reply, seen)) {
                         ++stats.wrong_reads;
                         report(id_, "GET " + key + " answered " + error_kind(*reply));
                         return;
                       }
                       observe(key, seen, "GET");
                     }});
  }

  void mget_op(std::vector<Pending>& burst, std::string& bytes) {
    std::vector<std::string> args = {"MGET"};
    for (size_t n = 2 + pick(24); n > 0; --n)
      args.push_back(random_key());
    bytes += command(args);
    std::vector<std::string> keys(args.begin() + 1, args.end());
    burst.push_back({"MGET", keys, shape(), [this, keys](const std::optional<std::string>& reply) {
                       if (!reply) return;
                       if ((*reply)[0] == '-') {
                         ++stats.errors[error_kind(*reply)];
                         return;
                       }
                       const auto values = array_values(*reply, keys.size());
                       if (!values) return;
                       for (size_t i = 0; i < keys.size(); ++i)
                         observe(keys[i], (*values)[i], "MGET");
                     }});
  }

  Server listener_;
  SSL_CTX* tls_;
  bool resp3_ = false;
};

// --- cachegate's resources ---------------------------------------------------------------------

struct Usage {
  uint64_t rss_kb = 0;
  double cpu_s = 0;
};

Usage usage_of(int pid) {
  Usage u;
  if (pid <= 0) return u;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces: utime is the
  // 14th field, stime the 15th.
  const size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
      if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    u.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return u;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cachegate_soak: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--config") {
      o.config = next();
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--mc-clients") {
      o.mc_clients = std::stoi(next());
    } else if (a == "--redis-clients") {
      o.redis_clients = std::stoi(next());
    } else if (a == "--keys") {
      o.keys = std::max(4, std::stoi(next()));
    } else if (a == "--value-max") {
      o.value_max = std::stoul(next());
    } else if (a == "--pipeline-max") {
      o.pipeline_max = std::max(2, std::stoi(next()));
    } else if (a == "--seed") {
      o.seed = std::stoull(next());
    } else if (a == "--cachegate-pid") {
      o.cachegate_pid = std::stoi(next());
    } else if (a == "--tls-ca") {
      o.tls_ca = next();
    } else if (a == "--victim") {
      o.victims.push_back(next());
    } else if (a == "--chaos-command") {
      o.chaos_command = next();
    } else if (a == "--chaos-every") {
      o.chaos_every = std::stod(next());
    } else if (a == "--hang-seconds") {
      o.hang_seconds = std::stod(next());
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "cachegate_soak: unknown option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (o.config.empty()) {
    usage(stderr);
    return 2;
  }
  verbose = o.verbose;

  const config::LoadResult loaded = config::load_config_file(o.config);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s", config::format_errors(loaded).c_str());
    return 2;
  }
  const config::Config& cfg = loaded.config;
  for (const auto& p : cfg.pools)
    o.settle_ms = std::max<int>(o.settle_ms, static_cast<int>(p.timeout.count()) * 2 + 500);

  SSL_CTX* tls = nullptr;
  if (!o.tls_ca.empty()) {
    tls = SSL_CTX_new(TLS_client_method());
    if (SSL_CTX_load_verify_locations(tls, o.tls_ca.c_str(), nullptr) != 1) {
      std::fprintf(stderr, "cachegate_soak: cannot read %s\n", o.tls_ca.c_str());
      return 2;
    }
    SSL_CTX_set_verify(tls, SSL_VERIFY_PEER, nullptr);
  }

  // Each listener with a pool gets its clients; a TLS listener only with --tls-ca.
  struct Target {
    const config::ListenerConfig* listener;
    PoolView pool;
  };
  std::vector<Target> targets;
  for (const auto& l : cfg.listeners) {
    if (l.pool.empty() || (l.tls && tls == nullptr)) continue;
    const config::PoolConfig* pool = cfg.find_pool(l.pool);
    if (pool == nullptr) continue;
    targets.push_back({&l, pool_view(*pool)});
  }
  const std::set<std::string> victims(o.victims.begin(), o.victims.end());

  std::vector<std::unique_ptr<Client>> clients;
  uint64_t seed = o.seed;
  for (const auto& t : targets) {
    const bool memcached = t.listener->protocol == config::Protocol::kMemcached;
    // TLS listeners get one client each; plain ones the number asked for.
    const int n = t.listener->tls ? 1 : (memcached ? o.mc_clients : o.redis_clients);
    const Server at{t.listener->host, t.listener->port};
    for (int i = 0; i < n; ++i) {
      const std::string id =
          "soak" + std::to_string(o.seed) + "-" + t.listener->name + "-" + std::to_string(i);
      SSL_CTX* ctx = t.listener->tls ? tls : nullptr;
      if (memcached) {
        clients.push_back(std::make_unique<McClient>(id, at, ctx, t.pool, o, ++seed, victims));
      } else {
        clients.push_back(std::make_unique<RedisClient>(id, at, ctx, t.pool, o, ++seed, victims));
      }
    }
  }
  if (clients.empty()) {
    std::fprintf(stderr, "cachegate_soak: no listener with a pool in %s\n", o.config.c_str());
    return 2;
  }

  const Usage start = usage_of(o.cachegate_pid);
  const auto began = Clock::now();
  const auto until =
      began + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::atomic<bool> done{false};
  std::atomic<uint64_t> peak_rss{start.rss_kb};
  std::atomic<int> restarts{0};
  std::thread monitor([&] {
    auto next_chaos = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(o.chaos_every));
    auto next_note = Clock::now() + std::chrono::seconds(60);
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      const Usage u = usage_of(o.cachegate_pid);
      if (u.rss_kb > peak_rss) peak_rss = u.rss_kb;
      const auto now = Clock::now();
      if (!o.chaos_command.empty() && now >= next_chaos && now < until) {
        if (std::system(o.chaos_command.c_str()) != 0)
          std::fprintf(stderr, "soak: the chaos command failed\n");
        ++restarts;
        next_chaos = now + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.chaos_every));
      }
      if (now >= next_note && now < until) {
        std::fprintf(stderr, "soak: %.0f s of %.0f, cachegate RSS %llu kB\n",
                     std::chrono::duration<double>(now - began).count(), o.seconds,
                     static_cast<unsigned long long>(u.rss_kb));
        next_note = now + std::chrono::seconds(60);
      }
    }
  });

  std::vector<std::thread> threads;
  for (auto& c : clients)
    threads.emplace_back([&c, until] { c->run(until); });
  for (auto& t : threads)
    t.join();
  const Usage after_load = usage_of(o.cachegate_pid);
  // Verification once the load (and the chaos) is over.
  done = true;
  monitor.join();
  threads.clear();
  for (auto& c : clients)
    threads.emplace_back([&c] { c->verify(); });
  for (auto& t : threads)
    t.join();
  const Usage end = usage_of(o.cachegate_pid);
  const double load_s = std::chrono::duration<double>(Clock::now() - began).count();

  Stats total;
  for (const auto& c : clients)
    total.merge(c->stats);

  std::printf("soak summary\n");
  std::printf("  clients: %zu, load %.0f s (and verification: %.0f s in all), %d server restarts\n",
              clients.size(), o.seconds, load_s, restarts.load());
  std::printf("  requests: %llu (", static_cast<unsigned long long>(total.sent));
  bool first = true;
  for (const auto& [op, n] : total.requests) {
    std::printf("%s%s %llu", first ? "" : ", ", op.c_str(), static_cast<unsigned long long>(n));
    first = false;
  }
  std::printf(")\n");
  std::printf("  acknowledged writes: %llu, uncertain writes: %llu, reads checked: %llu\n",
              static_cast<unsigned long long>(total.acknowledged_writes),
              static_cast<unsigned long long>(total.uncertain_writes),
              static_cast<unsigned long long>(total.reads_checked));
  std::printf(
      "  keys verified at the end: %llu through cachegate, %llu on their servers, "
      "%llu could not be read\n",
      static_cast<unsigned long long>(total.verified_through_proxy),
      static_cast<unsigned long long>(total.verified_direct),
      static_cast<unsigned long long>(total.unverified));
  std::printf("  reconnects: %llu\n", static_cast<unsigned long long>(total.reconnects));
  std::printf("  errors:%s\n", total.errors.empty() ? " none" : "");
  for (const auto& [kind, n] : total.errors)
    std::printf("    %8llu  %s\n", static_cast<unsigned long long>(n), kind.c_str());
  if (o.cachegate_pid > 0) {
    std::printf(
        "  cachegate: RSS %llu kB at start, %llu kB after the load, %llu kB at the end "
        "(peak %llu kB); CPU %.1f s (%.0f %% of one core over the load)\n",
        static_cast<unsigned long long>(start.rss_kb),
        static_cast<unsigned long long>(after_load.rss_kb),
        static_cast<unsigned long long>(end.rss_kb),
        static_cast<unsigned long long>(peak_rss.load()), end.cpu_s - start.cpu_s,
        100.0 * (after_load.cpu_s - start.cpu_s) / std::max(1.0, o.seconds));
  }
  std::printf("  lost to server restarts (allowed): %llu\n",
              static_cast<unsigned long long>(total.lost_to_restart));
  std::printf(
      "  wrong reads: %llu, lost acknowledged writes: %llu, keys on the wrong server: "
      "%llu, replies that do not frame: %llu, requests unanswered for %.0f s: %llu\n",
      static_cast<unsigned long long>(total.wrong_reads),
      static_cast<unsigned long long>(total.lost_writes),
      static_cast<unsigned long long>(total.stray_copies),
      static_cast<unsigned long long>(total.bad_replies), o.hang_seconds,
      static_cast<unsigned long long>(total.hangs));
  const bool failed = total.wrong_reads || total.lost_writes || total.stray_copies ||
                      total.bad_replies || total.hangs;
  std::printf("soak: %s\n", failed ? "FAILED" : "passed");
  if (tls != nullptr) SSL_CTX_free(tls);
  return failed ? 1 : 0;
}
