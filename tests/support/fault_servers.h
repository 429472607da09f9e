#pragma once

// Misbehaving peers for fault tests, each on its own loopback port chosen by the kernel:
//
//   ScriptedServer  accepts connections and runs a test's script on each, on a thread of its
//                   own: a server that never answers, answers garbage, closes mid-reply, or
//                   answers properly, as the script says.
//   DelayRelay      a TCP relay in front of a real server that holds back or trickles the
//                   server's replies (requests pass at once).
//
// Both stop their threads and close every socket on destruction; reads and sleeps wake up
// every few milliseconds to notice, so no test waits on a peer that went quiet. Header-only so
// it needs no change to the test support library's build.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace cachegate::testing {

namespace fault_detail {

constexpr int kPollMs = 10;

// A listening socket on 127.0.0.1, port chosen by the kernel: no window in which another
// process could take it, unlike a port looked up first and bound later.
inline int listen_loopback(uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

// Waits until `fd` is readable; false when `stop` is set first.
inline bool wait_readable(int fd, const std::atomic<bool>& stop) {
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, kPollMs);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
  return false;
}

// Sleeps for `d`, or less when `stop` is set meanwhile; false when it was.
inline bool pause(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(5)));
  }
  return false;
}

// Writes everything; false when the peer is gone. A send timeout keeps a peer that stopped
// reading from holding the thread forever.
inline bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

inline void set_send_timeout(int fd) {
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace fault_detail

// One accepted connection of a ScriptedServer, as its script sees it. Reads return nullopt once
// the client closed or the server is stopping.
class ScriptedPeer {
 public:
  ScriptedPeer(int fd, const std::atomic<bool>& stop, std::function<void(std::string_view)> record)
      : fd_(fd), stop_(stop), record_(std::move(record)) {}

  // Bytes up to and including the first `delimiter`.
  std::optional<std::string> read_until(std::string_view delimiter) {
    for (;;) {
      const size_t at = buffer_.find(delimiter);
      if (at != std::string::npos) return take(at + delimiter.size());
      if (!fill()) return std::nullopt;
    }
  }
  std::optional<std::string> read_exact(size_t n) {
    while (buffer_.size() < n)
      if (!fill()) return std::nullopt;
    return take(n);
  }

  // One memcached text request: its line and, for storage commands, the data block after it.
  std::optional<std::string> read_memcache_request() {
    auto line = read_until("\r\n");
    if (!line) return std::nullopt;
    static constexpr std::string_view kStorage[] = {"set ",     "add ", "replace ", "append ",
                                                    "prepend ", "cas ", "ms "};
    size_t length_field = 0;
    for (auto name : kStorage) {
      if (line->rfind(name, 0) != 0) continue;
      length_field = name == "ms " ? 2 : 4;
      break;
    }
    if (length_field == 0) return line;
    const auto fields = split(*line);
    if (fields.size() <= length_field) return line;
    auto data = read_exact(std::strtoull(fields[length_field].c_str(), nullptr, 10) + 2);
    if (!data) return std::nullopt;
    return *line + *data;
  }

  // One RESP multibulk request's arguments.
  std::optional<std::vector<std::string>> read_resp_request() {
    auto header = read_until("\r\n");
    if (!header || header->empty() || (*header)[0] != '*') return std::nullopt;
    const long count = std::strtol(header->c_str() + 1, nullptr, 10);
    std::vector<std::string> args;
    for (long i = 0; i < count; ++i) {
      auto length = read_until("\r\n");
      if (!length || length->empty() || (*length)[0] != '$') return std::nullopt;
      auto body = read_exact(std::strtoull(length->c_str() + 1, nullptr, 10) + 2);
      if (!body) return std::nullopt;
      args.push_back(body->substr(0, body->size() - 2));
    }
    return args;
  }

  bool write(std::string_view bytes) { return fault_detail::write_all(fd_, bytes); }
  // Reads and drops whatever comes until the client closes or the server stops: a server that
  // accepted the connection and never answers.
  void ignore_everything() {
    while (fill())
      buffer_.clear();
  }
  // Sleeps, waking early when the server stops; false when it does.
  bool pause(std::chrono::milliseconds d) { return fault_detail::pause(d, stop_); }
  // Ends the connection now (a FIN, not a reset).
  void close() { ::shutdown(fd_, SHUT_RDWR); }

  static std::vector<std::string> split(std::string_view line) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < line.size()) {
      const size_t end = line.find_first_of(" \r\n", pos);
      if (end != pos) out.emplace_back(line.substr(pos, end - pos));
      if (end == std::string_view::npos) break;
      pos = end + 1;
    }
    return out;
  }

 private:
  bool fill() {
    if (!fault_detail::wait_readable(fd_, stop_)) return false;
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    record_(std::string_view(chunk, static_cast<size_t>(n)));
    return true;
  }
  std::string take(size_t n) {
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  int fd_;
  const std::atomic<bool>& stop_;
  std::function<void(std::string_view)> record_;
  std::string buffer_;
};

// A TCP server on 127.0.0.1 whose every connection runs `script` on a thread of its own, with
// the connection's number (0 for the first accepted). The connection closes when the script
// returns. Everything received on any connection is kept for received().
class ScriptedServer {
 public:
  using Script = std::function<void(ScriptedPeer&, size_t connection)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = fault_detail::listen_loopback(port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& c : connections_) {
      ::shutdown(c->fd, SHUT_RDWR);
      c->thread.join();
      ::close(c->fd);
    }
    ::close(listener_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  uint16_t port() const { return port_; }
  // Connections accepted so far.
  size_t connections() const { return accepted_; }
  // Every byte received so far, on every connection, in arrival order per connection.
  std::string received() const {
    std::lock_guard<std::mutex> lock(received_mutex_);
    return received_;
  }

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
  };

  void accept_loop() {
    while (fault_detail::wait_readable(listener_, stop_)) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      fault_detail::set_send_timeout(fd);
      const size_t number = accepted_++;
      auto c = std::make_unique<Connection>();
      c->fd = fd;
      c->thread = std::thread([this, fd, number] {
        ScriptedPeer peer(fd, stop_, [this](std::string_view bytes) {
          std::lock_guard<std::mutex> lock(received_mutex_);
          received_.append(bytes);
        });
        script_(peer, number);
        // The script is done with it: the client sees the end of the stream.
        ::shutdown(fd, SHUT_RDWR);
      });
      std::lock_guard<std::mutex> lock(mutex_);
      connections_.push_back(std::move(c));
    }
  }

  Script script_;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> connections_;
  mutable std::mutex received_mutex_;
  std::string received_;
};

// A TCP relay on 127.0.0.1 in front of a server on 127.0.0.1:`upstream_port`. Requests pass at
// once; replies are held back by `delay` after they arrive, then passed on in pieces of
// `trickle_bytes` with `trickle_interval` between them (all at once while trickle_bytes is 0).
// The settings may change at any time and apply to the bytes read next.
class DelayRelay {
 public:
  explicit DelayRelay(uint16_t upstream_port) : upstream_port_(upstream_port) {
    listener_ = fault_detail::listen_loopback(port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~DelayRelay() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& c : connections_) {
      ::shutdown(c->client, SHUT_RDWR);
      ::shutdown(c->server, SHUT_RDWR);
      c->requests.join();
      c->replies.join();
      ::close(c->client);
      ::close(c->server);
    }
    ::close(listener_);
  }
  DelayRelay(const DelayRelay&) = delete;
  DelayRelay& operator=(const DelayRelay&) = delete;

  uint16_t port() const { return port_; }
  void set_delay(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }
  void set_trickle(size_t bytes, std::chrono::milliseconds interval) {
    trickle_interval_ms_ = interval.count();
    trickle_bytes_ = bytes;
  }

 private:
  struct Connection {
    int client = -1, server = -1;
    std::thread requests, replies;
  };

  void accept_loop() {
    while (fault_detail::wait_readable(listener_, stop_)) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(upstream_port_);
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (server >= 0) ::close(server);
        ::close(client);
        continue;
      }
      fault_detail::set_send_timeout(client);
      fault_detail::set_send_timeout(server);
      auto c = std::make_unique<Connection>();
      c->client = client;
      c->server = server;
      c->requests = std::thread([this, client, server] { pump(client, server, false); });
      c->replies = std::thread([this, client, server] { pump(server, client, true); });
      std::lock_guard<std::mutex> lock(mutex_);
      connections_.push_back(std::move(c));
    }
  }

  // Copies `from` to `to` until either end closes; the end of one direction is passed on as a
  // half-close, so the other direction can still drain.
  void pump(int from, int to, bool held_back) {
    char chunk[16384];
    while (fault_detail::wait_readable(from, stop_)) {
      const ssize_t n = ::recv(from, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      std::string_view bytes(chunk, static_cast<size_t>(n));
      if (held_back) {
        if (!fault_detail::pause(std::chrono::milliseconds(delay_ms_.load()), stop_)) break;
        const size_t piece = trickle_bytes_;
        bool ok = true;
        while (ok && !bytes.empty()) {
          const size_t take = piece == 0 ? bytes.size() : std::min(piece, bytes.size());
          ok = fault_detail::write_all(to, bytes.substr(0, take));
          bytes.remove_prefix(take);
          if (ok && !bytes.empty())
            ok = fault_detail::pause(std::chrono::milliseconds(trickle_interval_ms_.load()), stop_);
        }
        if (!ok) break;
      } else if (!fault_detail::write_all(to, bytes)) {
        break;
      }
    }
    ::shutdown(to, SHUT_WR);
  }

  uint16_t upstream_port_;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<long> delay_ms_{0};
  std::atomic<size_t> trickle_bytes_{0};
  std::atomic<long> trickle_interval_ms_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmSize"), or -1 when it cannot be read.
inline long long proc_status_kib(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()));
  return -1;
}

}  // namespace cachegate::testing
