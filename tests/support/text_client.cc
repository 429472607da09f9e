#include "tests/support/text_client.h"

#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
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

TextClient::TextClient(const std::string& host, uint16_t port, const TlsClientOptions& tls,
                       std::chrono::milliseconds timeout)
    : TextClient(host, port, timeout) {
  auto fail = [&](const std::string& what) {
    std::string reason = what;
    char text[256];
    while (unsigned long e = ERR_get_error()) {
      ERR_error_string_n(e, text, sizeof text);
      reason += std::string("; ") + text;
    }
    if (ssl_ != nullptr) {
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) reason += std::string("; ") + X509_verify_cert_error_string(verify);
    }
    close();
    throw std::runtime_error(reason);
  };
  ssl_ctx_ = SSL_CTX_new(TLS_client_method());
  if (ssl_ctx_ == nullptr) fail("SSL_CTX_new");
  SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ssl_ctx_, tls.ca_file.c_str(), nullptr) != 1)
    fail("cannot load the CA " + tls.ca_file);
  if (!tls.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx_, tls.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl_ctx_, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      fail("cannot load the client certificate " + tls.cert_file);
  }
  ssl_ = SSL_new(ssl_ctx_);
  SSL_set_fd(ssl_, fd_);
  SSL_set_tlsext_host_name(ssl_, tls.server_name.c_str());
  SSL_set1_host(ssl_, tls.server_name.c_str());
  if (SSL_connect(ssl_) != 1) fail("TLS handshake failed");
}

TextClient::~TextClient() {
  close();
}

void TextClient::close() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  ssl_ = nullptr;
  if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
  ssl_ctx_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ssize_t TextClient::receive(char* data, size_t size, bool nonblocking) {
  if (ssl_ == nullptr) return ::recv(fd_, data, size, nonblocking ? MSG_DONTWAIT : 0);
  if (nonblocking && SSL_pending(ssl_) == 0) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) {
      errno = EAGAIN;
      return -1;
    }
  }
  size_t done = 0;
  if (SSL_read_ex(ssl_, data, size, &done) == 1) return static_cast<ssize_t>(done);
  const int error = SSL_get_error(ssl_, 0);
  ERR_clear_error();
  if (error == SSL_ERROR_ZERO_RETURN) return 0;
  if (error == SSL_ERROR_SYSCALL && errno == 0) return 0;
  if (error == SSL_ERROR_SSL) {
    // OpenSSL 3 reports a peer that closed without close_notify as a protocol error.
    errno = ECONNRESET;
    return -1;
  }
  if (errno == 0) errno = EAGAIN;
  return -1;
}

ssize_t TextClient::transmit(const char* data, size_t size) {
  if (ssl_ == nullptr) return ::send(fd_, data, size, MSG_NOSIGNAL);
  size_t done = 0;
  if (SSL_write_ex(ssl_, data, size, &done) == 1) return static_cast<ssize_t>(done);
  ERR_clear_error();
  errno = EPIPE;
  return -1;
}

void TextClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void TextClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = transmit(bytes.data(), bytes.size());
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
    ssize_t n = receive(chunk, sizeof chunk, false);
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
    ssize_t n = receive(c, sizeof c, true);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      eof_ = true;
      return true;
    }
    if (n > 0) buffer_.append(c, static_cast<size_t>(n));
  }
  return false;
}

}  // namespace cachegate::testing
