#pragma once

#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct ssl_st;
struct ssl_ctx_st;

namespace cachegate::testing {

// How a TextClient speaks TLS: the CA that signed the server's certificate, the name to check
// (and send as SNI), and optionally a client certificate.
struct TlsClientOptions {
  std::string ca_file;
  std::string server_name = "localhost";
  std::string cert_file, key_file;  // both or neither
};

// A blocking TCP client for line-oriented protocols, with a receive timeout so a test never
// hangs on a missing reply. Reads are buffered; lines are returned without their CRLF.
class TextClient {
 public:
  TextClient(const std::string& host, uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Over TLS: the handshake is done here; throws std::runtime_error with OpenSSL's reason when
  // it fails (an untrusted server, a refused client certificate).
  TextClient(const std::string& host, uint16_t port, const TlsClientOptions& tls,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  ~TextClient();
  TextClient(const TextClient&) = delete;
  TextClient& operator=(const TextClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  void send(std::string_view bytes);
  // One line without CRLF; nullopt on timeout or when the peer closed.
  std::optional<std::string> read_line();
  // Exactly n bytes; nullopt on timeout or close.
  std::optional<std::string> read_exact(size_t n);
  // Everything up to and including the first line equal to `terminator` (or an error line:
  // ERROR, CLIENT_ERROR…, SERVER_ERROR…), as raw bytes with CRLFs; data blocks of VALUE/VA lines
  // are read by their declared length. nullopt on timeout/close.
  std::optional<std::string> read_until(std::string_view terminator);
  // One memcached reply to a command of the given kind: "get" (VALUE… END), "meta" (VA with
  // data or one line), or "line".
  std::optional<std::string> read_reply(std::string_view kind);
  // send(command) then read_reply(kind).
  std::optional<std::string> call(std::string_view command, std::string_view kind = "line");
  // True when the peer has closed the connection (reads EOF within `wait`).
  bool peer_closed(std::chrono::milliseconds wait = std::chrono::milliseconds(2000));
  void shutdown_write();
  void close();

 private:
  bool fill();
  // recv/send, through TLS when there is a session.
  ssize_t receive(char* data, size_t size, bool nonblocking);
  ssize_t transmit(const char* data, size_t size);
  int fd_ = -1;
  ssl_ctx_st* ssl_ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace cachegate::testing
