#pragma once

// The admin endpoint: a small HTTP/1.1 server (GET and HEAD) on a thread and io_context of its
// own, so that operators can look at the process while the workers are busy, and a stuck or
// flooding admin client cannot slow clients of the cache. What each path answers is the
// handler's business; this class owns the connections, their bounds, TLS and the bearer token.
//
// Bounds, each so that one misbehaving admin client costs little: request headers up to 8 KiB
// (431 past that), request bodies up to 1 KiB (413), every request and every response write
// within config.request_timeout (the connection is closed otherwise; an idle keep-alive
// connection too), the TLS handshake within the smaller of request_timeout and
// tls.handshake_timeout, and at most config.max_connections connections (further ones are
// closed as soon as they are accepted).
//
// Beast and Asio stay in admin_server.cc; only the endpoint type is named here.

#include <boost/asio/ip/basic_endpoint.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace boost::asio::ip {
class tcp;
}  // namespace boost::asio::ip

namespace cachegate::proxy {

struct AdminRequest {
  // The request target's path, as sent (not percent-decoded, never empty, starts with '/').
  std::string_view path;
  // The query string split on '&' and '=', each name and value percent-decoded ('+' is a space),
  // in the order sent; "a" without '=' has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
};

struct AdminResponse {
  unsigned status = 200;  // 200–599 (anything else becomes a 500)
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  // Called on the admin thread, one request at a time; may block (only admin clients wait).
  // An exception becomes a 500 whose body is its message. Never called for a request that failed
  // the token check, was malformed, or was not GET or HEAD.
  using Handler = std::function<AdminResponse(const AdminRequest&)>;

  // `config` is copied; nothing happens until start().
  AdminServer(const config::AdminConfig& config, Handler handler);
  // Stops (see stop()).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Loads the TLS context (when config.tls is set), resolves config.host (the first address
  // wins), binds, listens and starts the admin thread. On failure returns false with `error`
  // saying why ("cannot listen on 127.0.0.1:9090: Address already in use"; also logged as a
  // warning, prefixed "admin: "); nothing is left running. Call once.
  bool start(std::string& error);

  // The bound address: the real port when config.port is 0. Valid after start() succeeded;
  // thread-safe from then on.
  boost::asio::ip::basic_endpoint<boost::asio::ip::tcp> endpoint() const;

  // Closes the listening socket and every open connection (a handler call in progress finishes
  // first; its response may not reach the client) and joins the admin thread. Thread-safe and
  // idempotent, but not to be called from the handler (it would wait for itself).
  void stop();

  // Builds a new TLS context from config.tls's files (with `only_changed`, only when one of them
  // changed since the last attempt) for connections accepted from then on; open connections keep
  // theirs. Returns false, logging why, when the new context cannot be built: the previous one
  // stays in use. True when there is no TLS or nothing changed. Thread-safe.
  bool reload_tls(bool only_changed);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachegate::proxy
