#include "tests/support/text_client.h"

#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace cachegate::testing {

namespace {
bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool is_error_line(std::string_view line) {
  return line == "ERROR" || starts_with(line, "CLIENT_ERROR") || starts_with(line, "SERVER_ERROR");
}
}  // namespace

TextClient::TextClient(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  fd_ = connect_tcp(host, port);
  if (fd_ < 0)
    throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + " failed");
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

TextClient::~TextClient() {
  close();
}

void TextClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void TextClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void TextClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("send failed");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

bool TextClient::fill() {
  if (eof_ || fd_ < 0) return false;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) eof_ = true;
    return false;  // timeout or error
  }
}

std::optional<std::string> TextClient::read_line() {
  for (;;) {
    auto pos = buffer_.find("\r\n");
    if (pos != std::string::npos) {
      std::string line = buffer_.substr(0, pos);
      buffer_.erase(0, pos + 2);
      return line;
    }
    if (!fill()) return std::nullopt;
  }
}

std::optional<std::string> TextClient::read_exact(size_t n) {
  while (buffer_.size() < n)
    if (!fill()) return std::nullopt;
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

std::optional<std::string> TextClient::read_until(std::string_view terminator) {
  std::string out;
  for (;;) {
    auto line = read_line();
    if (!line) return std::nullopt;
    out += *line;
    out += "\r\n";
    if (*line == terminator || is_error_line(*line)) return out;
    size_t data_len = 0;
    bool has_data = false;
    if (starts_with(*line, "VALUE ")) {
      // VALUE <key> <flags> <bytes> [<cas>]
      size_t p = 0;
      int field = 0;
      std::string_view l = *line;
      while (field < 3 && p != std::string_view::npos) {
        p = l.find(' ', p + 1);
        ++field;
      }
      if (p != std::string_view::npos) {
        data_len = std::strtoull(l.data() + p + 1, nullptr, 10);
        has_data = true;
      }
    } else if (starts_with(*line, "VA ")) {
      data_len = std::strtoull(line->c_str() + 3, nullptr, 10);
      has_data = true;
    }
    if (has_data) {
      auto data = read_exact(data_len + 2);
      if (!data) return std::nullopt;
      out += *data;
    }
  }
}

std::optional<std::string> TextClient::read_reply(std::string_view kind) {
  if (kind == "get") return read_until("END");
  if (kind == "meta") {
    auto line = read_line();
    if (!line) return std::nullopt;
    std::string out = *line + "\r\n";
    if (starts_with(*line, "VA ")) {
      auto data = read_exact(std::strtoull(line->c_str() + 3, nullptr, 10) + 2);
      if (!data) return std::nullopt;
      out += *data;
    }
    return out;
  }
  auto line = read_line();
  if (!line) return std::nullopt;
  return *line + "\r\n";
}

std::optional<std::string> TextClient::call(std::string_view command, std::string_view kind) {
  send(command);
  return read_reply(kind);
}

bool TextClient::peer_closed(std::chrono::milliseconds wait) {
  if (eof_) return true;
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (::poll(&p, 1, left > 0 ? left : 0) <= 0) return false;
    char c[4096];
    ssize_t n = ::recv(fd_, c, sizeof c, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      eof_ = true;
      return true;
    }
    if (n > 0) buffer_.append(c, static_cast<size_t>(n));
  }
  return false;
}

}  // namespace cachegate::testing
