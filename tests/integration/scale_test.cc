// cachegate at the sizes it is deployed for: ten thousand clients connected at once, each served
// its own replies while all stay open, and a single client pipelining a million requests without
// reading, which the output and pipeline limits must hold to a bounded memory while every reply
// still arrives, in order.
//
// The clients are non-blocking sockets on one epoll set in the test's own thread: a thread per
// connection could not reach these numbers on a small machine.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fault_servers.h"
#include "tests/support/front_proxy.h"
#include "tests/support/memcache_cluster.h"
#include "tests/support/resp_client.h"
#include "tests/support/text_client.h"
#include "tests/support/tls_material.h"

namespace cachegate {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::ClusterOptions;
using testing::eventually;
using testing::FrontProxy;
using testing::MemcacheCluster;
using testing::resp_command;
using testing::TextClient;
using testing::value_item;

constexpr size_t kCrowd = 10000;
// Descriptors the test process needs besides the crowd: the fixtures' own clients and servers.
constexpr rlim_t kDescriptorsNeeded = kCrowd + 200;

// Sets the soft limit on open files for as long as it lives, then puts the old one back.
class SoftFileLimit {
 public:
  explicit SoftFileLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit wanted = saved_;
    wanted.rlim_cur = soft < saved_.rlim_max ? soft : saved_.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &wanted);
  }
  ~SoftFileLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  SoftFileLimit(const SoftFileLimit&) = delete;
  SoftFileLimit& operator=(const SoftFileLimit&) = delete;

 private:
  rlimit saved_{};
};

rlim_t hard_file_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_max;
}

// The soft and hard "Max open files" of a process, from /proc/<pid>/limits.
std::pair<std::string, std::string> open_files_limits(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    std::string soft, hard;
    fields >> soft >> hard;
    return {soft, hard};
  }
  return {};
}

long long rss_kib(pid_t pid) {
  return testing::proc_status_kib(pid, "VmRSS");
}

// A number from cachegate's memcached `stats` reply, or -1.
long long stat_of(TextClient& client, const std::string& name) {
  const auto reply = client.call("stats\r\n", "get");
  if (!reply) return -1;
  const std::string needle = "STAT " + name + " ";
  const size_t at = reply->find(needle);
  if (at == std::string::npos) return -1;
  return std::stoll(reply->substr(at + needle.size()));
}

int connect_nonblocking(uint16_t port, int buffer_size = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (buffer_size > 0) {
    // Before connecting, so that the window offered to cachegate is small from the start.
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_size, sizeof buffer_size);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_size, sizeof buffer_size);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Many client connections on one epoll set: each sends one request and expects one exact answer.
class Crowd {
 public:
  explicit Crowd(uint16_t port) : port_(port), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}
  ~Crowd() {
    close_all();
    if (epoll_ >= 0) ::close(epoll_);
  }
  Crowd(const Crowd&) = delete;
  Crowd& operator=(const Crowd&) = delete;

  size_t size() const { return clients_.size(); }

  // Opens `count` connections, `batch` at a time; after each batch, `accepted(n)` must turn true
  // (cachegate counts n of them): the listen queues are never overrun, which would only cost
  // SYN retransmissions, seconds each. The error, or empty.
  std::string open(size_t count, const std::function<bool(size_t)>& accepted, size_t batch = 500) {
    while (clients_.size() < count) {
      const size_t target = std::min(count, clients_.size() + batch);
      while (clients_.size() < target) {
        const int fd = connect_nonblocking(port_);
        if (fd < 0)
          return "connection " + std::to_string(clients_.size()) + ": " + std::strerror(errno);
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = clients_.size();
        ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
        clients_.push_back(Client{fd, {}, {}, false});
      }
      if (!eventually([&] { return accepted(clients_.size()); }, 20s))
        return "cachegate did not accept " + std::to_string(clients_.size()) + " connections";
    }
    return {};
  }

  // Sends request(i) on connection i and reads until each has as many bytes as expected(i);
  // returns how many got exactly their answer. The first problems are in problems().
  size_t exchange(const std::function<std::string(size_t)>& request,
                  const std::function<std::string(size_t)>& expected,
                  std::chrono::milliseconds limit = 30s) {
    for (size_t i = 0; i < clients_.size(); ++i) {
      clients_[i].expected = expected(i);
      const std::string bytes = request(i);
      // A few dozen bytes into an empty socket buffer go at once, or the connection failed.
      if (::send(clients_[i].fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(bytes.size()))
        problem(i, std::string("send: ") + std::strerror(errno));
    }
    size_t right = 0, finished = 0;
    for (const auto& c : clients_)
      finished += c.done ? 1 : 0;
    const auto deadline = Clock::now() + limit;
    std::vector<epoll_event> events(1024);
    char chunk[4096];
    while (finished < clients_.size() && Clock::now() < deadline) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      for (int e = 0; e < n; ++e) {
        const size_t i = events[e].data.u64;
        Client& c = clients_[i];
        if (c.done) continue;
        for (;;) {
          const ssize_t got = ::recv(c.fd, chunk, sizeof chunk, MSG_DONTWAIT);
          if (got > 0) {
            c.received.append(chunk, static_cast<size_t>(got));
            continue;
          }
          if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
          c.done = true;
          ++finished;
          problem(i, got == 0 ? "closed by cachegate" : std::strerror(errno));
          break;
        }
        if (c.done || c.received.size() < c.expected.size()) continue;
        c.done = true;
        ++finished;
        if (c.received == c.expected) {
          ++right;
        } else {
          problem(i, "got [" + testing::printable(c.received) + "], wanted [" +
                         testing::printable(c.expected) + "]");
        }
        // Nothing more is expected on it; it stays open, idle.
        epoll_event event{};
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, &event);
        std::string().swap(c.received);
      }
    }
    if (finished < clients_.size())
      problems_ += std::to_string(clients_.size() - finished) + " connections got no full reply\n";
    return right;
  }

  const std::string& problems() const { return problems_; }

  void close_all() {
    for (auto& c : clients_)
      if (c.fd >= 0) ::close(c.fd);
    clients_.clear();
  }

 private:
  struct Client {
    int fd;
    std::string expected;
    std::string received;
    bool done;
  };
  void problem(size_t i, const std::string& what) {
    if (++problem_count_ <= 10) problems_ += "connection " + std::to_string(i) + ": " + what + "\n";
  }

  uint16_t port_;
  int epoll_;
  std::vector<Client> clients_;
  std::string problems_;
  size_t problem_count_ = 0;
};

// Raises the test's own soft limit to the hard one for the crowd; a hard limit too low for it is
// a property of the machine, said plainly rather than as a failed connection.
void require_descriptors_for_crowd() {
  const rlim_t hard = hard_file_limit();
  INFO("this test opens " << kCrowd << " connections and needs a hard limit on open files of at "
                          << kDescriptorsNeeded << "; it is " << hard
                          << " (raise it: ulimit -Hn, or LimitNOFILE= / docker --ulimit nofile)");
  REQUIRE(hard >= kDescriptorsNeeded);
}

TEST_CASE("ten thousand memcached clients at once are each served while all stay open",
          "[scale][memcache]") {
  require_descriptors_for_crowd();
  ClusterOptions options;
  options.servers = 2;
  options.workers = 2;
  // Twenty thousand requests arrive at once; on a busy two-core machine the last ones wait.
  options.timeout_ms = 10000;
  std::unique_ptr<MemcacheCluster> cluster;
  {
    // Started with the soft limit most systems default to: cachegate must raise its own.
    SoftFileLimit usual(1024);
    cluster = std::make_unique<MemcacheCluster>(options);
  }
  const pid_t pid = cluster->proxy().process().pid();
  const auto [soft, hard] = open_files_limits(pid);
  INFO("cachegate's open files limit: soft " << soft << ", hard " << hard);
  CHECK(soft == hard);
  SoftFileLimit raised(hard_file_limit());

  TextClient observer("127.0.0.1", cluster->port());
  const long long before = stat_of(observer, "curr_connections");
  REQUIRE(before == 1);  // the observer itself

  Crowd crowd(cluster->port());
  const std::string opened = crowd.open(kCrowd, [&](size_t n) {
    return stat_of(observer, "curr_connections") >= before + static_cast<long long>(n);
  });
  if (!opened.empty()) FAIL(opened << "\ncachegate's log:\n" << cluster->proxy().log());

  // Each connection stores a value of its own and reads it back, in one write: a reply that
  // went to the wrong connection, or a request lost, shows as a mismatch.
  auto key = [](size_t i) { return "crowd-" + std::to_string(i); };
  auto value = [](size_t i) { return "value of " + std::to_string(i * 7919); };
  const size_t right = crowd.exchange(
      [&](size_t i) {
        const std::string v = value(i);
        return "set " + key(i) + " " + std::to_string(i) + " 0 " + std::to_string(v.size()) +
               "\r\n" + v + "\r\nget " + key(i) + "\r\n";
      },
      [&](size_t i) {
        return "STORED\r\n" + value_item(key(i), value(i), static_cast<uint32_t>(i)) + "END\r\n";
      });
  INFO(crowd.problems());
  CHECK(right == kCrowd);

  // With all of them open: cachegate runs, counts them, and serves a newcomer.
  CHECK(cluster->proxy().process().running());
  CHECK(stat_of(observer, "curr_connections") == before + static_cast<long long>(kCrowd));
  {
    auto fresh = cluster->client();
    CHECK(fresh->call("get " + key(4242) + "\r\n", "get") ==
          value_item(key(4242), value(4242), 4242) + "END\r\n");
  }
  // Both servers took part.
  std::vector<std::string> some_keys;
  for (size_t i = 0; i < 16; ++i)
    some_keys.push_back(key(i));
  for (size_t s = 0; s < cluster->size(); ++s)
    CHECK_FALSE(cluster->held_by(s, some_keys).empty());

  crowd.close_all();
  CHECK(eventually([&] { return stat_of(observer, "curr_connections") == before; }, 20s));
  CHECK(cluster->proxy().process().running());
}

TEST_CASE("ten thousand Redis clients at once are each served while all stay open",
          "[scale][redis]") {
  require_descriptors_for_crowd();
  std::unique_ptr<FrontProxy> proxy;
  {
    SoftFileLimit usual(1024);
    proxy =
        std::make_unique<FrontProxy>("  - {name: r, listen: \"127.0.0.1:{port1}\", pool: red}\n");
  }
  SoftFileLimit raised(hard_file_limit());
  TextClient observer("127.0.0.1", proxy->port(0));
  const long long before = stat_of(observer, "curr_connections");
  REQUIRE(before == 1);

  Crowd crowd(proxy->port(1));
  const std::string opened = crowd.open(kCrowd, [&](size_t n) {
    return stat_of(observer, "curr_connections") >= before + static_cast<long long>(n);
  });
  if (!opened.empty()) FAIL(opened << "\ncachegate's log:\n" << proxy->server().log());
  auto key = [](size_t i) { return "crowd:" + std::to_string(i); };
  auto value = [](size_t i) { return "value of " + std::to_string(i * 7919); };
  const size_t right = crowd.exchange(
      [&](size_t i) {
        return resp_command({"SET", key(i), value(i)}) + resp_command({"GET", key(i)});
      },
      [&](size_t i) {
        return "+OK\r\n$" + std::to_string(value(i).size()) + "\r\n" + value(i) + "\r\n";
      });
  INFO(crowd.problems());
  CHECK(right == kCrowd);
  CHECK(proxy->server().process().running());
  CHECK(stat_of(observer, "curr_connections") == before + static_cast<long long>(kCrowd));
  {
    testing::RespClient fresh(proxy->port(1));
    CHECK(fresh.call({"GET", key(977)}) ==
          "$" + std::to_string(value(977).size()) + "\r\n" + value(977) + "\r\n");
  }
  crowd.close_all();
  CHECK(eventually([&] { return stat_of(observer, "curr_connections") == before; }, 20s));
}

TEST_CASE("a thousand TLS clients at once are each served while all stay open",
          "[scale][tls][memcache]") {
  constexpr size_t kClients = 1000;
  testing::TlsMaterial material;
  FrontProxy proxy(
      "  - name: mt\n"
      "    listen: \"127.0.0.1:{port1}\"\n"
      "    pool: cache\n"
      "    tls:\n"
      "      cert: \"" +
      material.server.cert + "\"\n      key: \"" + material.server.key + "\"\n");
  SoftFileLimit raised(hard_file_limit());
  REQUIRE(hard_file_limit() >= kClients + 200);
  testing::TlsClientOptions tls;
  tls.ca_file = material.ca.cert;
  TextClient observer("127.0.0.1", proxy.port(0));

  // Blocking clients, one after another: each handshake completes before the next starts. (A
  // client context and a handshake each take milliseconds: a thousand keep the test short.)
  std::vector<std::unique_ptr<TextClient>> clients;
  for (size_t i = 0; i < kClients; ++i)
    clients.push_back(std::make_unique<TextClient>("127.0.0.1", proxy.port(1), tls));
  // Every request out before any reply is read: all sessions are busy at once.
  for (size_t i = 0; i < kClients; ++i)
    clients[i]->send("set tls-crowd-" + std::to_string(i) + " 0 0 " +
                     std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) +
                     "\r\nmg tls-crowd-" + std::to_string(i) + " v\r\n");
  size_t right = 0;
  std::string first_wrong;
  for (size_t i = 0; i < kClients; ++i) {
    const std::string v = std::to_string(i);
    const auto stored = clients[i]->read_reply("line");
    const auto got = clients[i]->read_reply("meta");
    const std::string want = "VA " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    if (stored == "STORED\r\n" && got == want) {
      ++right;
    } else if (first_wrong.empty()) {
      first_wrong = "client " + v + ": " + testing::printable(stored.value_or("<none>")) + " / " +
                    testing::printable(got.value_or("<none>"));
    }
  }
  INFO(first_wrong);
  CHECK(right == kClients);
  CHECK(stat_of(observer, "curr_connections") == static_cast<long long>(kClients) + 1);
  CHECK(stat_of(observer, "cachegate_tls_handshakes") == static_cast<long long>(kClients));
  clients.clear();
  CHECK(eventually([&] { return stat_of(observer, "curr_connections") == 1; }, 20s));
}

// --- one client, a million requests --------------------------------------------------------------

constexpr size_t kMillion = 1000000;
constexpr size_t kDistinctKeys = 100;
// Small limits make the bound on memory a meaningful one: without them the replies the client
// does not read would pile up in cachegate, far past it.
constexpr uint64_t kOutputMax = 1024 * 1024;
constexpr uint64_t kPipelineMax = 1000;
const std::vector<std::string> kLimits = {"client_output_max: 1m", "client_pipeline_max: 1000"};

// Keys long enough that a million requests are far more than any socket buffers hold, so the
// client really stalls; values small enough that the run stays short.
std::string pipeline_key(size_t k) {
  std::string key = "pipelined-" + std::to_string(k) + "-";
  key.resize(60, 'k');
  return key;
}
std::string pipeline_value(size_t k, size_t size) {
  std::string value = "v" + std::to_string(k) + ":";
  value.resize(size, static_cast<char>('a' + k % 26));
  return value;
}

struct PipelineOutcome {
  size_t written_when_stalled = 0;  // requests the client had written when cachegate stopped it
  long long rss_stalled_kib = 0;    // the largest of the samples taken meanwhile
  size_t replies = 0;               // complete, correct replies, in order
  std::string problem;              // the first wrong reply, or what went wrong
};

// Writes kMillion requests (request i is requests[i % kDistinctKeys]) on one connection without
// reading until the socket accepts no more and stays so, samples cachegate's RSS, then reads and
// writes the rest, checking each reply byte for byte against replies[i % kDistinctKeys].
PipelineOutcome pipeline_a_million(uint16_t port, pid_t proxy_pid,
                                   const std::vector<std::string>& requests,
                                   const std::vector<std::string>& replies) {
  PipelineOutcome out;
  // Small buffers on the client's side: what backs up, backs up in cachegate.
  const int fd = connect_nonblocking(port, 64 * 1024);
  if (fd < 0) {
    out.problem = std::string("connect: ") + std::strerror(errno);
    return out;
  }
  pollfd connected{fd, POLLOUT, 0};
  ::poll(&connected, 1, 5000);

  size_t next_request = 0;
  std::string pending;  // requests formatted but not yet accepted by the socket
  size_t pending_at = 0;
  // Sends as much as the socket takes; false once it takes nothing more.
  auto write_some = [&]() -> bool {
    bool progressed = false;
    for (;;) {
      if (pending_at == pending.size()) {
        if (next_request == kMillion) return progressed;
        pending.clear();
        pending_at = 0;
        while (pending.size() < 64 * 1024 && next_request < kMillion)
          pending += requests[next_request++ % kDistinctKeys];
      }
      const ssize_t n = ::send(fd, pending.data() + pending_at, pending.size() - pending_at,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        pending_at += static_cast<size_t>(n);
        progressed = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) out.problem = std::string("send: ") + std::strerror(errno);
      return progressed;
    }
  };
  auto written = [&] { return next_request - (pending.size() - pending_at) / requests[0].size(); };

  // Stalled: the socket has taken nothing for a while, though cachegate had time to read on.
  const auto stall_deadline = Clock::now() + 30s;
  int still = 0;
  while (still < 3 && out.problem.empty() && Clock::now() < stall_deadline) {
    if (write_some()) {
      still = 0;
    } else {
      ++still;
    }
    if (next_request == kMillion && pending_at == pending.size()) break;
    std::this_thread::sleep_for(100ms);
  }
  out.written_when_stalled = written();
  for (int sample = 0; sample < 5; ++sample) {
    out.rss_stalled_kib = std::max(out.rss_stalled_kib, rss_kib(proxy_pid));
    std::this_thread::sleep_for(50ms);
  }

  // Now read, and write the rest as the socket takes it.
  std::string in;
  size_t in_at = 0;
  std::vector<char> chunk(256 * 1024);
  auto last_progress = Clock::now();
  while (out.problem.empty() && out.replies < kMillion) {
    const bool more_to_write = next_request < kMillion || pending_at < pending.size();
    pollfd p{fd, static_cast<short>(POLLIN | (more_to_write ? POLLOUT : 0)), 0};
    ::poll(&p, 1, 100);
    if (Clock::now() - last_progress > 15s) {
      out.problem = "no progress for 15 s";
      break;
    }
    if ((p.revents & POLLOUT) != 0 && write_some()) last_progress = Clock::now();
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      out.problem =
          "connection closed by cachegate after " + std::to_string(out.replies) + " replies";
      break;
    }
    if (n < 0) continue;
    last_progress = Clock::now();
    in.append(chunk.data(), static_cast<size_t>(n));
    for (;;) {
      const std::string& want = replies[out.replies % kDistinctKeys];
      if (in.size() - in_at < want.size()) break;
      if (std::memcmp(in.data() + in_at, want.data(), want.size()) != 0) {
        out.problem = "reply " + std::to_string(out.replies) + ": got [" +
                      testing::printable(std::string_view(in).substr(in_at, want.size() + 40)) +
                      "], wanted [" + testing::printable(want) + "]";
        break;
      }
      in_at += want.size();
      if (++out.replies == kMillion) break;
    }
    if (in_at > in.size() / 2) {
      in.erase(0, in_at);
      in_at = 0;
    }
  }
  // Nothing past the last reply.
  if (out.problem.empty()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0 && ::recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT) > 0)
      out.problem = "bytes after the last reply";
    if (in_at != in.size()) out.problem = "bytes after the last reply";
  }
  ::close(fd);
  return out;
}

// What cachegate may hold for a client it has stopped reading from: the replies up to
// client_output_max (in a buffer that grows by doubling), the requests in flight with their
// replies and reply slots, and room for the allocator's own slack. Socket buffers are the
// kernel's, not in the process's RSS.
long long stalled_rss_bound_kib(long long baseline_kib, size_t request_size, size_t reply_size) {
  const uint64_t held = 2 * kOutputMax + kPipelineMax * (request_size + reply_size + 256);
  return baseline_kib + static_cast<long long>(held / 1024) + 16 * 1024;
}

void check_pipeline(const PipelineOutcome& outcome, long long baseline_kib, long long bound_kib,
                    size_t reply_size) {
  INFO("requests written when stalled: "
       << outcome.written_when_stalled << "; RSS before " << baseline_kib << " KiB, while stalled "
       << outcome.rss_stalled_kib << " KiB, bound " << bound_kib << " KiB");
  INFO(outcome.problem);
  // cachegate stopped taking requests before the million: the bound below is about that. The
  // replies to all of them would be far more than the bound.
  CHECK(outcome.written_when_stalled < kMillion);
  CHECK(static_cast<long long>(kMillion * reply_size / 1024) > 4 * (bound_kib - baseline_kib));
  CHECK(outcome.rss_stalled_kib > 0);
  if (!testing::cachegate_sanitized()) CHECK(outcome.rss_stalled_kib < bound_kib);
  CHECK(outcome.problem.empty());
  CHECK(outcome.replies == kMillion);
}

TEST_CASE("a memcached client pipelining a million gets without reading is held to the limits",
          "[scale][memcache]") {
  ClusterOptions options;
  options.servers = 2;
  options.workers = 1;
  options.timeout_ms = 10000;
  options.limits = kLimits;
  MemcacheCluster cluster(options);
  std::vector<std::string> requests, replies;
  {
    auto setter = cluster.client();
    for (size_t k = 0; k < kDistinctKeys; ++k) {
      const std::string key = pipeline_key(k), value = pipeline_value(k, 32);
      REQUIRE(setter->call("set " + key + " " + std::to_string(k) + " 0 " +
                           std::to_string(value.size()) + "\r\n" + value + "\r\n") == "STORED\r\n");
      requests.push_back("get " + key + "\r\n");
      replies.push_back(value_item(key, value, static_cast<uint32_t>(k)) + "END\r\n");
    }
    // A first pipeline, read as it goes, so that every buffer of the path has been made once.
    std::string warm;
    for (size_t i = 0; i < 2000; ++i)
      warm += requests[i % kDistinctKeys];
    std::thread writer([&] { setter->send(warm); });
    std::string want;
    for (size_t i = 0; i < 2000; ++i)
      want += replies[i % kDistinctKeys];
    const auto got = setter->read_exact(want.size());
    writer.join();
    REQUIRE(got == want);
  }
  const pid_t pid = cluster.proxy().process().pid();
  const long long baseline = rss_kib(pid);
  const long long bound = stalled_rss_bound_kib(baseline, requests[0].size(), replies[0].size());

  const PipelineOutcome outcome = pipeline_a_million(cluster.port(), pid, requests, replies);
  check_pipeline(outcome, baseline, bound, replies[0].size());
  TextClient observer("127.0.0.1", cluster.port());
  CHECK(stat_of(observer, "cachegate_paused_reads") >= 1);
  CHECK(stat_of(observer, "cachegate_output_limit_closes") == 0);
}

TEST_CASE("a Redis client pipelining a million GETs without reading is held to the limits",
          "[scale][redis]") {
  std::string limits = "limits:\n";
  for (const auto& line : kLimits)
    limits += "  " + line + "\n";
  FrontProxy proxy("  - {name: r, listen: \"127.0.0.1:{port1}\", pool: red}\n", limits, 1);
  std::vector<std::string> requests, replies;
  {
    testing::RespClient setter(proxy.port(1));
    for (size_t k = 0; k < kDistinctKeys; ++k) {
      const std::string key = pipeline_key(k), value = pipeline_value(k, 100);
      REQUIRE(setter.call({"SET", key, value}) == "+OK\r\n");
      requests.push_back(resp_command({"GET", key}));
      replies.push_back("$" + std::to_string(value.size()) + "\r\n" + value + "\r\n");
    }
    std::string warm;
    for (size_t i = 0; i < 2000; ++i)
      warm += requests[i % kDistinctKeys];
    const auto got = setter.pipeline(warm, 2000);
    REQUIRE(got.size() == 2000);
    for (size_t i = 0; i < got.size(); ++i)
      REQUIRE(got[i] == replies[i % kDistinctKeys]);
  }
  const pid_t pid = proxy.server().process().pid();
  const long long baseline = rss_kib(pid);
  const long long bound = stalled_rss_bound_kib(baseline, requests[0].size(), replies[0].size());

  const PipelineOutcome outcome = pipeline_a_million(proxy.port(1), pid, requests, replies);
  check_pipeline(outcome, baseline, bound, replies[0].size());
  const auto stats = proxy.stats();
  CHECK(stats.at("cachegate_paused_reads") >= 1);
  CHECK(stats.at("cachegate_output_limit_closes") == 0);
}

}  // namespace
}  // namespace cachegate
