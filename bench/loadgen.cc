// cachegate_loadgen: a closed-loop memcached text-protocol load generator for bench/run.sh.
//
// Every connection keeps exactly `depth` requests in flight: a new request is sent only when a
// reply completes, so the offered load adapts to the target and the numbers measure its
// capacity at that concurrency. The loop is plain epoll over non-blocking sockets, one per
// thread, with no allocation per request: on a 2-core machine every microsecond spent here is
// taken from the proxy being measured. Results are one JSON line on stdout.
//
// With several --servers the generator routes keys itself (key id modulo the number of servers,
// connection i to server i modulo the number of servers), which is the "direct" baseline: the
// same traffic without any proxy in between.
//
// --idle N is another mode (bench/idle_connections.sh): N connections, plain or TLS, that each
// make one request and then stay open and silent until standard input closes, to measure what
// an idle client costs the process it is connected to.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "histogram.h"
#include "memcache_reply.h"

namespace cachegate::bench {
namespace {

constexpr int kKeyDigits = 8;
constexpr size_t kMaxMultigetKeys = 100;
constexpr size_t kMaxDepth = 4096;

enum class Workload { kGetSet, kMultiget, kPipeline };

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

struct Options {
  std::vector<Endpoint> servers;
  std::string host = "127.0.0.1";
  uint16_t port = 11211;
  int connections = 32;
  int threads = 1;
  int depth = 0;  // 0: the workload's default
  double duration = 5.0;
  double warmup = 1.0;
  Workload workload = Workload::kGetSet;
  uint32_t keys = 10000;
  uint32_t value_size = 100;
  bool prefill = false;
  int get_percent = 90;
  uint32_t multiget_keys = 10;
  std::string key_prefix = "key:";
  std::string label;
  std::vector<pid_t> cpu_pids;
  std::vector<pid_t> backend_pids;
  uint64_t seed = 1;
  int idle = 0;  // --idle: connections to hold open; 0 for a load run
  bool tls = false;
  std::string tls_ca;  // verify the server against it; empty: no verification
};

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// xoshiro-style generators are overkill here; splitmix64 is fast, tiny and good enough to pick
// keys and operations.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>((next() >> 32) * n >> 32); }

 private:
  uint64_t state_;
};

// Keys are the prefix followed by a fixed-width decimal id, so every key has the same length
// and a request's size does not depend on which keys it happens to pick.
class KeySpace {
 public:
  KeySpace(std::string prefix, uint32_t count, uint32_t shards)
      : prefix_(std::move(prefix)), count_(count), shards_(shards) {}

  size_t width() const { return prefix_.size() + kKeyDigits; }
  uint32_t count() const { return count_; }
  uint32_t shards() const { return shards_; }

  // Number of ids with id % shards == shard.
  uint32_t count_in_shard(uint32_t shard) const {
    return shard < count_ ? (count_ - shard + shards_ - 1) / shards_ : 0;
  }
  uint32_t pick(uint32_t shard, Rng& rng) const {
    return rng.below(count_in_shard(shard)) * shards_ + shard;
  }
  void format(uint32_t id, char* out) const {
    std::memcpy(out, prefix_.data(), prefix_.size());
    char* d = out + width();
    for (int i = 0; i < kKeyDigits; ++i) {
      *--d = static_cast<char>('0' + id % 10);
      id /= 10;
    }
  }

 private:
  std::string prefix_;
  uint32_t count_;
  uint32_t shards_;
};

struct Stats {
  uint64_t requests = 0;
  uint64_t gets = 0;
  uint64_t sets = 0;
  uint64_t get_keys = 0;
  uint64_t misses = 0;
  uint64_t error_replies = 0;
  uint64_t bad_values = 0;
  uint64_t protocol_errors = 0;
  uint64_t disconnects = 0;
  uint64_t lost = 0;  // requests in flight on a connection that broke
  LatencyHistogram latency;

  void reset() { *this = Stats{}; }
  void merge(const Stats& o) {
    requests += o.requests;
    gets += o.gets;
    sets += o.sets;
    get_keys += o.get_keys;
    misses += o.misses;
    error_replies += o.error_replies;
    bad_values += o.bad_values;
    protocol_errors += o.protocol_errors;
    disconnects += o.disconnects;
    lost += o.lost;
    latency.merge(o.latency);
  }
  uint64_t errors() const { return error_replies + bad_values + protocol_errors + lost; }
};

// 0: warm-up, 1: measuring, 2: stop. Workers reset their counters when they see 1.
std::atomic<int> g_phase{0};

int connect_to(const Endpoint& ep, bool nonblocking) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(ep.port);
  if (inet_pton(AF_INET, ep.host.c_str(), &addr.sin_addr) != 1) {
    errno = EINVAL;
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  // Loopback connects complete (or are refused) immediately, so connecting in blocking mode and
  // switching afterwards keeps the event loop free of a connect state.
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (nonblocking) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
  return fd;
}

// A growable byte buffer with a consumed prefix; compaction happens only when the live bytes
// are few, so steady state is a memmove of at most a partial reply.
class Buffer {
 public:
  explicit Buffer(size_t capacity) : data_(capacity) {}
  char* begin() { return data_.data() + head_; }
  size_t size() const { return tail_ - head_; }
  std::string_view view() const { return {data_.data() + head_, tail_ - head_}; }
  void consume(size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }
  void clear() { head_ = tail_ = 0; }
  // Room to append at least `n` bytes.
  char* reserve(size_t n) {
    if (data_.size() - tail_ < n) {
      if (head_ > 0) {
        std::memmove(data_.data(), data_.data() + head_, tail_ - head_);
        tail_ -= head_;
        head_ = 0;
      }
      if (data_.size() - tail_ < n) data_.resize(std::max(data_.size() * 2, tail_ + n));
    }
    return data_.data() + tail_;
  }
  size_t room() const { return data_.size() - tail_; }
  void commit(size_t n) { tail_ += n; }

 private:
  std::vector<char> data_;
  size_t head_ = 0;
  size_t tail_ = 0;
};

struct InFlight {
  uint64_t sent_ns = 0;
  bool is_set = false;
  uint8_t nkeys = 0;
  uint32_t key_ids[kMaxMultigetKeys];
};

struct Conn {
  int fd = -1;
  uint32_t server = 0;
  Buffer in{64 * 1024};
  Buffer out{16 * 1024};
  std::vector<InFlight> ring;  // FIFO of requests in flight, `depth` slots
  size_t ring_head = 0;
  size_t ring_count = 0;
  bool want_write = false;
  uint64_t retry_at = 0;
};

class Worker {
 public:
  Worker(const Options& opt, const KeySpace& keys, uint64_t seed)
      : opt_(opt), keys_(keys), rng_(seed) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::runtime_error("epoll_create1 failed");
  }
  ~Worker() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epfd_);
  }

  void add_connection(uint32_t server) {
    conns_.emplace_back();
    conns_.back().server = server;
    conns_.back().ring.resize(static_cast<size_t>(opt_.depth));
  }

  // Connects everything before the clock starts; an unreachable target is a setup error.
  void connect_all() {
    for (Conn& c : conns_) {
      if (!open(c)) {
        const Endpoint& ep = opt_.servers[c.server];
        throw std::runtime_error("cannot connect to " + ep.host + ":" + std::to_string(ep.port) +
                                 ": " + std::strerror(errno));
      }
    }
  }

  void run() {
    for (Conn& c : conns_) {
      fill(c, now_ns());
      flush(c);
    }
    epoll_event events[64];
    int phase = 0;
    for (;;) {
      const int n = epoll_wait(epfd_, events, 64, 20);
      const int p = g_phase.load(std::memory_order_relaxed);
      if (p != phase) {
        if (p == 2) break;
        if (p == 1) stats_.reset();
        phase = p;
      }
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u32];
        if (c.fd < 0) continue;
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        if (c.fd >= 0 && (events[i].events & EPOLLOUT)) flush(c);
      }
      if (dead_ > 0) revive();
    }
  }

  const Stats& stats() const { return stats_; }

 private:
  bool open(Conn& c) {
    c.fd = connect_to(opt_.servers[c.server], true);
    if (c.fd < 0) return false;
    c.in.clear();
    c.out.clear();
    c.ring_head = c.ring_count = 0;
    c.want_write = false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  // A broken connection loses its in-flight requests (counted as errors) and is reopened; a
  // proxy that drops clients under load shows up in the error count, not as a hang.
  void fail(Conn& c) {
    stats_.lost += c.ring_count;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.fd = -1;
    c.retry_at = 0;
    ++dead_;
  }

  void revive() {
    const uint64_t now = now_ns();
    for (Conn& c : conns_) {
      if (c.fd >= 0 || now < c.retry_at) continue;
      if (open(c)) {
        --dead_;
        fill(c, now);
        flush(c);
      } else {
        c.retry_at = now + 100'000'000;  // the target is down; try again in 100 ms
      }
    }
  }

  void on_readable(Conn& c) {
    for (;;) {
      c.in.reserve(4096);
      const ssize_t n = recv(c.fd, c.in.begin() + c.in.size(), c.in.room(), 0);
      if (n > 0) {
        c.in.commit(static_cast<size_t>(n));
        const uint64_t now = now_ns();
        if (!drain(c, now)) return;
        fill(c, now);
        flush(c);
        if (c.fd < 0 || c.in.room() > 0) return;
        continue;  // the buffer was filled completely; there may be more
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      ++stats_.disconnects;
      fail(c);
      return;
    }
  }

  // Consumes every complete reply at the front of the input. False if the connection broke.
  bool drain(Conn& c, uint64_t now) {
    while (c.ring_count > 0) {
      InFlight& req = c.ring[c.ring_head];
      const std::string_view in = c.in.view();
      ReplyResult r;
      if (req.is_set) {
        r = parse_store_reply(in);
      } else {
        r = parse_get_reply(
            in, req.nkeys,
            [&](size_t i) {
              keys_.format(req.key_ids[i], scratch_);
              return std::string_view(scratch_, keys_.width());
            },
            opt_.value_size);
      }
      if (r.status == ReplyStatus::kNeedMore) break;
      if (r.status == ReplyStatus::kInvalid) {
        ++stats_.protocol_errors;
        fail(c);
        return false;
      }
      c.in.consume(r.consumed);
      ++stats_.requests;
      stats_.latency.record(now - req.sent_ns);
      if (req.is_set) {
        ++stats_.sets;
      } else {
        ++stats_.gets;
        stats_.get_keys += req.nkeys;
        if (!r.error_reply) stats_.misses += req.nkeys - r.hits;
      }
      if (r.error_reply) ++stats_.error_replies;
      if (r.bad_value) ++stats_.bad_values;
      c.ring_head = (c.ring_head + 1) % c.ring.size();
      --c.ring_count;
    }
    if (c.ring_count == 0 && c.in.size() > 0) {
      // Bytes nobody asked for: the stream is out of step with our requests.
      ++stats_.protocol_errors;
      fail(c);
      return false;
    }
    return true;
  }

  // Tops the connection up to `depth` requests in flight.
  void fill(Conn& c, uint64_t now) {
    while (c.ring_count < c.ring.size()) {
      InFlight& req = c.ring[(c.ring_head + c.ring_count) % c.ring.size()];
      req.sent_ns = now;
      switch (opt_.workload) {
        case Workload::kGetSet:
          req.is_set = rng_.below(100) >= static_cast<uint32_t>(opt_.get_percent);
          req.nkeys = 1;
          req.key_ids[0] = keys_.pick(c.server, rng_);
          break;
        case Workload::kPipeline:
          req.is_set = false;
          req.nkeys = 1;
          req.key_ids[0] = keys_.pick(c.server, rng_);
          break;
        case Workload::kMultiget:
          req.is_set = false;
          req.nkeys = static_cast<uint8_t>(opt_.multiget_keys);
          pick_distinct(c.server, req);
          break;
      }
      encode(c, req);
      ++c.ring_count;
    }
  }

  // Distinct keys keep the reply check simple and match what a real multiget would ask for.
  void pick_distinct(uint32_t server, InFlight& req) {
    const uint32_t available = keys_.count_in_shard(server);
    for (size_t i = 0; i < req.nkeys; ++i) {
      uint32_t id;
      bool repeat;
      do {
        id = keys_.pick(server, rng_);
        repeat = false;
        for (size_t j = 0; j < i && i < available; ++j)
          repeat |= req.key_ids[j] == id;
      } while (repeat);
      req.key_ids[i] = id;
    }
  }

  void encode(Conn& c, const InFlight& req) {
    const size_t kw = keys_.width();
    if (req.is_set) {
      char header[64];
      const size_t vs = opt_.value_size;
      char* p = c.out.reserve(4 + kw + sizeof header + vs + 2);
      std::memcpy(p, "set ", 4);
      keys_.format(req.key_ids[0], p + 4);
      const int h = std::snprintf(header, sizeof header, " 0 0 %zu\r\n", vs);
      std::memcpy(p + 4 + kw, header, static_cast<size_t>(h));
      char* v = p + 4 + kw + h;
      fill_value(std::string_view(p + 4, kw), v, vs);
      std::memcpy(v + vs, "\r\n", 2);
      c.out.commit(4 + kw + static_cast<size_t>(h) + vs + 2);
      return;
    }
    char* p = c.out.reserve(3 + req.nkeys * (kw + 1) + 2);
    std::memcpy(p, "get", 3);
    char* q = p + 3;
    for (size_t i = 0; i < req.nkeys; ++i) {
      *q++ = ' ';
      keys_.format(req.key_ids[i], q);
      q += kw;
    }
    std::memcpy(q, "\r\n", 2);
    c.out.commit(static_cast<size_t>(q + 2 - p));
  }

  void flush(Conn& c) {
    if (c.fd < 0) return;
    while (c.out.size() > 0) {
      const ssize_t n = send(c.fd, c.out.begin(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.consume(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        set_write_interest(c, true);
        return;
      }
      ++stats_.disconnects;
      fail(c);
      return;
    }
    set_write_interest(c, false);
  }

  void set_write_interest(Conn& c, bool on) {
    if (c.want_write == on) return;
    c.want_write = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  const Options& opt_;
  const KeySpace& keys_;
  Rng rng_;
  int epfd_ = -1;
  std::vector<Conn> conns_;
  size_t dead_ = 0;
  Stats stats_;
  char scratch_[64];
};

// Sets every key once, over one blocking connection per server, so that gets hit. Batches of
// pipelined sets keep it to a fraction of a second for the default key space.
void prefill(const Options& opt, const KeySpace& keys) {
  constexpr uint32_t kBatch = 200;
  std::vector<char> out;
  std::vector<char> in(64 * 1024);
  for (uint32_t s = 0; s < opt.servers.size(); ++s) {
    int fd = connect_to(opt.servers[s], false);
    if (fd < 0) {
      throw std::runtime_error("prefill: cannot connect to " + opt.servers[s].host + ":" +
                               std::to_string(opt.servers[s].port));
    }
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const uint32_t total = keys.count_in_shard(s);
    for (uint32_t first = 0; first < total; first += kBatch) {
      const uint32_t n = std::min(kBatch, total - first);
      out.clear();
      char key[64];
      for (uint32_t i = 0; i < n; ++i) {
        keys.format((first + i) * keys.shards() + s, key);
        const std::string header = "set " + std::string(key, keys.width()) + " 0 0 " +
                                   std::to_string(opt.value_size) + "\r\n";
        out.insert(out.end(), header.begin(), header.end());
        const size_t at = out.size();
        out.resize(at + opt.value_size + 2);
        fill_value(std::string_view(key, keys.width()), out.data() + at, opt.value_size);
        std::memcpy(out.data() + at + opt.value_size, "\r\n", 2);
      }
      for (size_t sent = 0; sent < out.size();) {
        const ssize_t w = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (w <= 0) throw std::runtime_error("prefill: send failed");
        sent += static_cast<size_t>(w);
      }
      size_t have = 0;
      for (uint32_t done = 0; done < n;) {
        const ReplyResult r = parse_store_reply(std::string_view(in.data(), have));
        if (r.status == ReplyStatus::kOk && !r.error_reply) {
          std::memmove(in.data(), in.data() + r.consumed, have - r.consumed);
          have -= r.consumed;
          ++done;
          continue;
        }
        if (r.status != ReplyStatus::kNeedMore) {
          throw std::runtime_error("prefill: unexpected reply to set");
        }
        const ssize_t got = recv(fd, in.data() + have, in.size() - have, 0);
        if (got <= 0) throw std::runtime_error("prefill: connection closed or timed out");
        have += static_cast<size_t>(got);
      }
    }
    close(fd);
  }
}

// utime + stime of a process, all threads included, in microseconds.
double process_cpu_us(pid_t pid) {
  const std::string path =
      pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) return 0;
  // The command name (field 2) may contain spaces and parentheses; fields resume after the
  // last ')'. utime and stime are fields 14 and 15.
  const size_t close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(line.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  static const long ticks = sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) * 1e6 / static_cast<double>(ticks);
}

double total_cpu_us(const std::vector<pid_t>& pids) {
  double sum = 0;
  for (pid_t p : pids)
    sum += process_cpu_us(p);
  return sum;
}

// Machine-wide CPU from the first line of /proc/stat, in microseconds: time spent running
// anything (user, nice, system, irq, softirq) and time the hypervisor gave to someone else.
struct MachineCpu {
  double busy_us = 0;
  double steal_us = 0;
};

MachineCpu machine_cpu() {
  std::ifstream f("/proc/stat");
  std::string name;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  f >> name >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  static const long ticks = sysconf(_SC_CLK_TCK);
  const double tick_us = 1e6 / static_cast<double>(ticks);
  return {static_cast<double>(user + nice + system + irq + softirq) * tick_us,
          static_cast<double>(steal) * tick_us};
}

// --idle: connections that each send one `get` (a miss) and, once its "END" is in, stay open
// without a byte more either way. Opening is paced, a window of handshakes at a time, so that
// the target's listen queue never overflows (a dropped SYN costs a second) and a TLS target is
// not swamped with handshakes. Prints one JSON line when every connection is idle, then holds
// them until standard input reaches its end.
int run_idle(const Options& opt) {
  constexpr size_t kWindow = 256;
  // Every connection is a descriptor, beyond the usual soft limit of 1024.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  SSL_CTX* ctx = nullptr;
  if (opt.tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!opt.tls_ca.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, opt.tls_ca.c_str(), nullptr) != 1)
        throw std::runtime_error("cannot load --tls-ca " + opt.tls_ca);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
  }
  enum class Step : uint8_t { kHandshake, kSend, kReceive, kIdle };
  struct IdleConn {
    int fd = -1;
    SSL* ssl = nullptr;
    Step step = Step::kSend;
    std::string request, reply;
    uint32_t events = 0;
  };
  const Endpoint target = opt.servers.front();
  std::vector<IdleConn> conns(static_cast<size_t>(opt.idle));
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  size_t opened = 0, busy = 0, idle = 0, errors = 0;
  std::string first_error;
  auto fail = [&](IdleConn& c, const std::string& why) {
    if (first_error.empty()) first_error = why;
    ++errors;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    if (c.ssl != nullptr) SSL_free(c.ssl);
    c.ssl = nullptr;
    close(c.fd);
    c.fd = -1;
    --busy;
  };
  auto wait_for = [&](IdleConn& c, uint32_t events) {
    if (c.events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = static_cast<uint64_t>(&c - conns.data());
    epoll_ctl(epfd, c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
    c.events = events;
  };
  // Moves a connection on until it must wait for its socket; false when it failed.
  auto advance = [&](IdleConn& c) {
    for (;;) {
      int r = 1;
      switch (c.step) {
        case Step::kHandshake:
          r = SSL_connect(c.ssl);
          if (r == 1) c.step = Step::kSend;
          break;
        case Step::kSend: {
          const ssize_t n =
              c.ssl != nullptr
                  ? SSL_write(c.ssl, c.request.data(), static_cast<int>(c.request.size()))
                  : send(c.fd, c.request.data(), c.request.size(), MSG_NOSIGNAL);
          r = static_cast<int>(n);
          // Both write a few bytes at once or not at all (SSL_write without partial writes).
          if (n == static_cast<ssize_t>(c.request.size())) c.step = Step::kReceive;
          if (n < 0 && c.ssl == nullptr && errno == EAGAIN) {
            wait_for(c, EPOLLOUT);
            return true;
          }
          break;
        }
        case Step::kReceive: {
          char buf[512];
          const ssize_t n =
              c.ssl != nullptr ? SSL_read(c.ssl, buf, sizeof buf) : recv(c.fd, buf, sizeof buf, 0);
          r = static_cast<int>(n);
          if (n > 0) c.reply.append(buf, static_cast<size_t>(n));
          if (n < 0 && c.ssl == nullptr && errno == EAGAIN) {
            wait_for(c, EPOLLIN);
            return true;
          }
          if (n == 0 && c.ssl == nullptr) {
            fail(c, "closed by the target");
            return false;
          }
          if (c.reply.size() >= 5) {
            if (c.reply != "END\r\n") {
              fail(c, "unexpected reply: " + c.reply.substr(0, 80));
              return false;
            }
            // Idle from here on: nothing more is read, nothing more is written.
            epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
            c.step = Step::kIdle;
            std::string().swap(c.request);
            std::string().swap(c.reply);
            --busy;
            ++idle;
            return true;
          }
          break;
        }
        case Step::kIdle:
          return true;
      }
      if (c.ssl != nullptr && r <= 0) {
        const int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
          wait_for(c, EPOLLIN);
          return true;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
          wait_for(c, EPOLLOUT);
          return true;
        }
        char text[256];
        ERR_error_string_n(ERR_get_error(), text, sizeof text);
        fail(c, std::string("TLS: ") + text);
        return false;
      }
      if (c.ssl == nullptr && r < 0 && errno != EINTR) {
        fail(c, std::strerror(errno));
        return false;
      }
    }
  };

  const uint64_t start = now_ns();
  uint64_t last_progress = start;
  epoll_event events[256];
  while (opened < conns.size() || busy > 0) {
    if (now_ns() - last_progress > 30'000'000'000u) {
      if (first_error.empty()) first_error = "no progress for 30 s";
      errors += busy;
      break;
    }
    while (opened < conns.size() && busy < kWindow) {
      IdleConn& c = conns[opened];
      c.request = "get " + opt.key_prefix + "idle-" + std::to_string(opened) + "\r\n";
      ++opened;
      c.fd = connect_to(target, true);
      if (c.fd < 0) {
        if (first_error.empty()) first_error = std::string("connect: ") + std::strerror(errno);
        ++errors;
        continue;
      }
      ++busy;
      if (ctx != nullptr) {
        c.ssl = SSL_new(ctx);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_tlsext_host_name(c.ssl, "localhost");
        if (!opt.tls_ca.empty()) SSL_set1_host(c.ssl, "localhost");
        c.step = Step::kHandshake;
      }
      advance(c);
    }
    const int n = epoll_wait(epfd, events, 256, 1000);
    if (n > 0) last_progress = now_ns();
    for (int i = 0; i < n; ++i) {
      IdleConn& c = conns[events[i].data.u64];
      if (c.fd >= 0 && c.step != Step::kIdle) advance(c);
    }
  }
  std::printf("{\"idle_connections\":%zu,\"tls\":%s,\"errors\":%zu,\"open_s\":%.3f%s%s%s}\n", idle,
              opt.tls ? "true" : "false", errors, static_cast<double>(now_ns() - start) / 1e9,
              first_error.empty() ? "" : ",\"error\":\"", first_error.c_str(),
              first_error.empty() ? "" : "\"");
  std::fflush(stdout);
  char sink[256];
  while (read(STDIN_FILENO, sink, sizeof sink) > 0) {
  }
  for (IdleConn& c : conns) {
    if (c.ssl != nullptr) SSL_free(c.ssl);
    if (c.fd >= 0) close(c.fd);
  }
  close(epfd);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return errors == 0 ? 0 : 1;
}

// Binds `count` sockets to 127.0.0.1:0 at once, so the kernel hands out distinct ports, prints
// them and releases them for the servers the caller is about to start.
int print_free_ports(int count) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("free-ports");
      return 1;
    }
    std::printf("%s%u", i ? " " : "", ntohs(addr.sin_port));
    fds.push_back(fd);
  }
  std::printf("\n");
  for (int fd : fds)
    close(fd);
  return 0;
}

void usage() {
  std::fputs(
      "usage: cachegate_loadgen [options]\n"
      "  --host H / --port P     target (default 127.0.0.1:11211)\n"
      "  --servers H:P,H:P,...   route keys over several servers directly (key id mod N)\n"
      "  --connections C         connections in total (default 32)\n"
      "  --threads T             event-loop threads (default 1)\n"
      "  --depth D               requests in flight per connection (default 1; pipeline 16)\n"
      "  --duration S            measured seconds (default 5)\n"
      "  --warmup S              seconds before measuring (default 1)\n"
      "  --workload W            getset | multiget | pipeline (default getset)\n"
      "  --keys N                key space (default 10000)\n"
      "  --value-size B          value bytes (default 100)\n"
      "  --get-percent P         gets in getset, rest sets (default 90)\n"
      "  --multiget-keys K       keys per multiget (default 10)\n"
      "  --key-prefix S          (default \"key:\")\n"
      "  --prefill               set every key before the run\n"
      "  --label L               copied into the result line\n"
      "  --cpu-pids P,P          processes whose CPU per request is reported (cpu_us_per_req)\n"
      "  --backend-pids P,P      same, reported as backend_cpu_us_per_req\n"
      "  --seed N                random seed (default 1)\n"
      "  --free-ports N          print N free loopback ports and exit\n"
      "  --idle N                open N connections, one get each, then hold them idle until\n"
      "                          standard input closes (prints one JSON line when all are idle)\n"
      "  --tls                   with --idle: over TLS (the handshake completes first)\n"
      "  --tls-ca FILE           with --tls: verify the server (name \"localhost\") against it\n",
      stderr);
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.emplace_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

Endpoint parse_endpoint(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("expected HOST:PORT, got " + s);
  return {s.substr(0, colon), static_cast<uint16_t>(std::stoul(s.substr(colon + 1)))};
}

std::vector<pid_t> parse_pids(const std::string& s) {
  std::vector<pid_t> out;
  for (const std::string& p : split(s, ',')) {
    if (!p.empty()) out.push_back(static_cast<pid_t>(std::stol(p)));
  }
  return out;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--host") {
      o.host = value();
    } else if (a == "--port") {
      o.port = static_cast<uint16_t>(std::stoul(value()));
    } else if (a == "--servers") {
      for (const std::string& s : split(value(), ','))
        o.servers.push_back(parse_endpoint(s));
    } else if (a == "--connections") {
      o.connections = std::stoi(value());
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--depth") {
      o.depth = std::stoi(value());
    } else if (a == "--duration") {
      o.duration = std::stod(value());
    } else if (a == "--warmup") {
      o.warmup = std::stod(value());
    } else if (a == "--workload") {
      const std::string w = value();
      if (w == "getset") {
        o.workload = Workload::kGetSet;
      } else if (w == "multiget") {
        o.workload = Workload::kMultiget;
      } else if (w == "pipeline") {
        o.workload = Workload::kPipeline;
      } else {
        throw std::invalid_argument("unknown workload " + w);
      }
    } else if (a == "--keys") {
      o.keys = static_cast<uint32_t>(std::stoul(value()));
    } else if (a == "--value-size") {
      o.value_size = static_cast<uint32_t>(std::stoul(value()));
    } else if (a == "--get-percent") {
      o.get_percent = std::stoi(value());
    } else if (a == "--multiget-keys") {
      o.multiget_keys = static_cast<uint32_t>(std::stoul(value()));
    } else if (a == "--key-prefix") {
      o.key_prefix = value();
    } else if (a == "--prefill") {
      o.prefill = true;
    } else if (a == "--label") {
      o.label = value();
    } else if (a == "--cpu-pids") {
      o.cpu_pids = parse_pids(value());
    } else if (a == "--backend-pids") {
      o.backend_pids = parse_pids(value());
    } else if (a == "--seed") {
      o.seed = std::stoull(value());
    } else if (a == "--idle") {
      o.idle = std::stoi(value());
    } else if (a == "--tls") {
      o.tls = true;
    } else if (a == "--tls-ca") {
      o.tls_ca = value();
    } else {
      throw std::invalid_argument("unknown option " + std::string(a));
    }
  }
  if (o.servers.empty()) o.servers.push_back({o.host, o.port});
  if (o.idle < 0) throw std::invalid_argument("--idle must not be negative");
  if (o.tls && o.idle == 0) throw std::invalid_argument("--tls is for --idle only");
  if (o.depth == 0) o.depth = o.workload == Workload::kPipeline ? 16 : 1;
  if (o.connections < static_cast<int>(o.servers.size()))
    throw std::invalid_argument("need at least one connection per server");
  if (o.threads < 1 || o.threads > o.connections)
    throw std::invalid_argument("--threads must be between 1 and --connections");
  if (o.depth < 1 || static_cast<size_t>(o.depth) > kMaxDepth)
    throw std::invalid_argument("--depth must be between 1 and 4096");
  if (o.keys < o.servers.size() || o.keys > 100'000'000)
    throw std::invalid_argument("--keys must be between the number of servers and 10^8");
  if (o.multiget_keys < 1 || o.multiget_keys > kMaxMultigetKeys)
    throw std::invalid_argument("--multiget-keys must be between 1 and 100");
  if (o.key_prefix.size() + kKeyDigits > 48) throw std::invalid_argument("--key-prefix too long");
  if (o.get_percent < 0 || o.get_percent > 100)
    throw std::invalid_argument("--get-percent must be between 0 and 100");
  if (o.duration <= 0 || o.warmup < 0) throw std::invalid_argument("bad --duration or --warmup");
  return o;
}

const char* workload_name(Workload w) {
  switch (w) {
    case Workload::kGetSet:
      return "getset";
    case Workload::kMultiget:
      return "multiget";
    case Workload::kPipeline:
      return "pipeline";
  }
  return "?";
}

void sleep_seconds(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

int run(const Options& opt) {
  const KeySpace keys(opt.key_prefix, opt.keys, static_cast<uint32_t>(opt.servers.size()));
  if (opt.prefill) prefill(opt, keys);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < opt.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(opt, keys, opt.seed * 1000003u + t));
  }
  for (int i = 0; i < opt.connections; ++i) {
    workers[static_cast<size_t>(i % opt.threads)]->add_connection(
        static_cast<uint32_t>(i % opt.servers.size()));
  }
  for (auto& w : workers)
    w->connect_all();

  std::vector<std::thread> threads;
  for (auto& w : workers)
    threads.emplace_back([&w] { w->run(); });

  // Everything whose CPU is accounted for; the rest of the machine's busy time is other work
  // sharing the cores, reported so that a disturbed run can be recognised.
  std::vector<pid_t> known = opt.cpu_pids;
  for (pid_t p : opt.backend_pids) {
    if (std::find(known.begin(), known.end(), p) == known.end()) known.push_back(p);
  }
  known.push_back(getpid());

  sleep_seconds(opt.warmup);
  const double cpu0 = total_cpu_us(opt.cpu_pids);
  const double backend0 = total_cpu_us(opt.backend_pids);
  const double self0 = process_cpu_us(0);
  const double known0 = total_cpu_us(known);
  const MachineCpu machine0 = machine_cpu();
  const uint64_t t0 = now_ns();
  g_phase.store(1, std::memory_order_relaxed);
  sleep_seconds(opt.duration);
  g_phase.store(2, std::memory_order_relaxed);
  const uint64_t t1 = now_ns();
  const double cpu1 = total_cpu_us(opt.cpu_pids);
  const double backend1 = total_cpu_us(opt.backend_pids);
  const double self1 = process_cpu_us(0);
  const double known1 = total_cpu_us(known);
  const MachineCpu machine1 = machine_cpu();
  for (auto& t : threads)
    t.join();

  Stats total;
  for (auto& w : workers)
    total.merge(w->stats());
  const double secs = static_cast<double>(t1 - t0) / 1e9;
  const double reqs = static_cast<double>(total.requests);
  auto per_req = [&](double cpu) { return reqs > 0 ? cpu / reqs : 0.0; };
  // In percent of one core over the measured interval; small negative values are tick rounding.
  const double other_pct =
      std::max(0.0, (machine1.busy_us - machine0.busy_us) - (known1 - known0)) / (secs * 1e4);
  const double steal_pct = (machine1.steal_us - machine0.steal_us) / (secs * 1e4);
  auto us = [&](double q) { return static_cast<double>(total.latency.percentile(q)) / 1000.0; };

  std::printf(
      "{\"label\":\"%s\",\"workload\":\"%s\",\"servers\":%zu,\"connections\":%d,\"threads\":%d,"
      "\"depth\":%d,\"keys\":%u,\"value_size\":%u,\"duration_s\":%.3f,\"requests\":%" PRIu64
      ",\"rps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"max_us\":%.1f,\"gets\":%" PRIu64 ",\"sets\":%" PRIu64 ",\"get_keys\":%" PRIu64
      ",\"misses\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"error_replies\":%" PRIu64
      ",\"bad_values\":%" PRIu64 ",\"protocol_errors\":%" PRIu64 ",\"disconnects\":%" PRIu64
      ",\"lost\":%" PRIu64
      ",\"cpu_us_per_req\":%.3f,\"backend_cpu_us_per_req\":%.3f,\"loadgen_cpu_us_per_req\":%.3f,"
      "\"other_cpu_pct\":%.1f,\"steal_pct\":%.1f}"
      "\n",
      opt.label.c_str(), workload_name(opt.workload), opt.servers.size(), opt.connections,
      opt.threads, opt.depth, opt.keys, opt.value_size, secs, total.requests, reqs / secs, us(0.50),
      us(0.90), us(0.99), us(0.999), static_cast<double>(total.latency.max()) / 1000.0, total.gets,
      total.sets, total.get_keys, total.misses, total.errors(), total.error_replies,
      total.bad_values, total.protocol_errors, total.disconnects, total.lost, per_req(cpu1 - cpu0),
      per_req(backend1 - backend0), per_req(self1 - self0), other_pct, steal_pct);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace cachegate::bench

int main(int argc, char** argv) {
  using namespace cachegate::bench;
  try {
    if (argc == 3 && std::string_view(argv[1]) == "--free-ports") {
      return print_free_ports(std::stoi(argv[2]));
    }
    if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
      usage();
      return 0;
    }
    const Options options = parse_options(argc, argv);
    return options.idle > 0 ? run_idle(options) : run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cachegate_loadgen: %s\n", e.what());
    if (dynamic_cast<const std::invalid_argument*>(&e) != nullptr) usage();
    return 2;
  }
}
