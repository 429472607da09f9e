#pragma once

// TLS for client connections.
//
// A listener's server context is built with Boost.Asio's ssl::context (certificate chain,
// private key, client CA, verification mode) and tuned with OpenSSL directly (minimum version,
// cipher lists). Connections then run OpenSSL on the session's own non-blocking socket, driven
// by the worker's edge-triggered epoll set like a plain socket: asio::ssl::stream would need an
// Asio socket and an extra wait per read, which the plain path already avoids.
//
// Reload: a new context is built from the files and swapped in for connections accepted from
// then on; open connections keep the context they started with (OpenSSL counts references). A
// context that fails to build leaves the previous one in place.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "backends/tls_stream.h"
#include "config/config.h"

struct ssl_ctx_st;
struct ssl_st;

namespace cachegate::proxy {

class ListenerTls {
 public:
  explicit ListenerTls(const config::ListenerTlsConfig& config) : config_(config) {}
  ~ListenerTls();
  ListenerTls(const ListenerTls&) = delete;
  ListenerTls& operator=(const ListenerTls&) = delete;

  // (Re)builds the context from the files. On failure `error` says why and the previous
  // context, if any, stays in use. Thread-safe.
  bool load(std::string& error);
  // True when a file changed (inode, size or modification time) since the last load attempt.
  bool files_changed() const;

  // A new server-side connection object for `fd`, from the current context; nullptr when there
  // is none. Thread-safe.
  ssl_st* new_connection(int fd);

  const config::ListenerTlsConfig& config() const { return config_; }
  uint64_t reloads() const { return reloads_.load(std::memory_order_relaxed); }
  uint64_t reload_failures() const { return reload_failures_.load(std::memory_order_relaxed); }

 private:
  struct FileStamp {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  std::vector<FileStamp> stamp_files() const;

  const config::ListenerTlsConfig& config_;
  mutable std::mutex mutex_;
  ssl_ctx_st* context_ = nullptr;
  std::vector<FileStamp> stamps_;
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> reload_failures_{0};
};

// Connections use backends::TlsStream (shared with server connections).
using backends::TlsStream;

}  // namespace cachegate::proxy
