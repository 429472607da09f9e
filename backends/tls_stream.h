#pragma once

// TLS over a non-blocking socket that the worker's epoll loop drives: every call returns at
// once, saying whether it needs the socket readable or writable to go on. Used for client
// connections (server side) and for connections to TLS servers (client side).

#include <sys/types.h>

#include <string>
#include <vector>

#include "config/config.h"

struct ssl_st;
struct ssl_ctx_st;

namespace cachegate::backends {

// One TLS connection over a non-blocking socket, either side (the SSL object says which). Every
// call returns at once.
class TlsStream {
 public:
  enum class Io : uint8_t {
    kOk,         // done; for read/write, `done` bytes moved
    kWantRead,   // retry when the socket is readable
    kWantWrite,  // retry when the socket is writable
    kEof,        // the peer closed the TLS session (close_notify) or the socket
    kError,      // anything else: the connection is unusable
  };

  explicit TlsStream(ssl_st* ssl) : ssl_(ssl) {}
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  Io handshake();
  Io read(char* data, size_t size, size_t& done);
  Io write(const char* data, size_t size, size_t& done);
  // read()/write() as recv/send report: > 0 bytes moved, 0 at the end of the stream, -1 with
  // errno EAGAIN (wait for the socket either way) or ECONNRESET (the connection is unusable).
  ssize_t receive(char* data, size_t size);
  ssize_t transmit(const char* data, size_t size);
  // Sends close_notify once, without waiting for the peer's.
  void shutdown();

  // After the handshake: the verified client certificate's subject CN and subject alternative
  // names (DNS, email, URI), for mapping to users; empty without a verified certificate.
  std::vector<std::string> peer_identities() const;
  // What went wrong, for a debug log line (OpenSSL's error queue, cleared).
  std::string last_error();

 private:
  Io result(int ret);
  ssl_st* ssl_;
};

// The OpenSSL error queue as text (cleared), for messages.
std::string openssl_errors();

// A client context for a pool's `tls:` (CA or the system's, optional client certificate, TLS 1.2
// at least, verification on unless turned off). nullptr with `error` set on failure. The caller
// owns it (free_client_context).
ssl_ctx_st* make_client_context(const config::PoolTlsConfig& config, std::string& error);
void free_client_context(ssl_ctx_st* context);
// A client-side connection object on `fd`: SNI and the name verified are `server_name`, or the
// server's `host` (an IP address is then checked against the certificate's IP SANs).
ssl_st* new_client_connection(ssl_ctx_st* context, int fd, const config::PoolTlsConfig& config,
                              const std::string& host);

}  // namespace cachegate::backends
