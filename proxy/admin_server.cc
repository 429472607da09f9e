#include "proxy/admin_server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "proxy/log.h"
#include "proxy/tls.h"

namespace cachegate::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// An admin request is a GET with a short target and a few headers: 8 KiB is generous (and what
// most servers allow), and a body has no use at all (1 KiB tolerates clients that send a small
// one anyway).
constexpr uint32_t kHeaderLimit = 8 * 1024;
constexpr uint64_t kBodyLimit = 1024;
// After an error response the rest of the request is read and dropped before the socket is
// closed: closing with unread data makes the kernel send a reset, which can destroy the
// response before the client has read it. Bounded in bytes and in time.
constexpr size_t kLingerBytes = 64 * 1024;
constexpr std::chrono::milliseconds kLingerTime{2000};
// accept() failing (no descriptors left) is retried after a pause, not in a busy loop.
constexpr std::chrono::milliseconds kAcceptRetry{100};

// Paths served without the token: probes (a kubelet, a load balancer) carry no credentials.
// Compared exactly, as the handler sees them, so no other spelling reaches the handler
// unauthenticated.
bool is_public_path(std::string_view path) {
  return path == "/healthz" || path == "/readyz";
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: '+' is a space, %XX a byte. A malformed escape
// is kept as written.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 &&
               hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(percent_decode(part), std::string());
    } else {
      out.emplace_back(percent_decode(part.substr(0, eq)), percent_decode(part.substr(eq + 1)));
    }
  }
  return out;
}

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view data) {
  Digest out{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr);
  return out;
}

// The bearer token, kept only as its digest. Comparing digests with CRYPTO_memcmp takes the same
// time whatever the given token holds, and its length shows only in how long hashing the given
// token takes, which the client knows anyway.
class TokenCheck {
 public:
  explicit TokenCheck(const std::string& token)
      : enabled_(!token.empty()), size_(token.size()), digest_(sha256(token)) {}

  bool enabled() const { return enabled_; }

  // `authorization` is the Authorization header's value: "Bearer <token>", the scheme in any
  // case (RFC 7235, section 2.1).
  bool accepts(std::string_view authorization) const {
    constexpr std::string_view kScheme = "bearer";
    if (authorization.size() <= kScheme.size()) return false;
    for (size_t i = 0; i < kScheme.size(); ++i) {
      const char c = authorization[i];
      if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) return false;
    }
    std::string_view given = authorization.substr(kScheme.size());
    if (given.front() != ' ') return false;
    while (!given.empty() && given.front() == ' ')
      given.remove_prefix(1);
    const Digest d = sha256(given);
    const bool same_digest = CRYPTO_memcmp(d.data(), digest_.data(), d.size()) == 0;
    return same_digest & (given.size() == size_);
  }

 private:
  bool enabled_;
  size_t size_;
  Digest digest_;
};

std::string describe(const tcp::endpoint& e) {
  if (e.address().is_v6()) return "[" + e.address().to_string() + "]:" + std::to_string(e.port());
  return e.address().to_string() + ":" + std::to_string(e.port());
}

}  // namespace

// --- connections -------------------------------------------------------------------------------

struct AdminServer::Impl {
  Impl(const config::AdminConfig& c, Handler h) : config(c), handler(std::move(h)), token(c.token) {
    if (config.tls) tls = std::make_unique<ListenerTls>(*config.tls);
  }

  void shutdown();
  void accept();
  void on_accept(error_code ec, tcp::socket socket);
  AdminResponse respond(const AdminRequest& request);

  // Whatever is on the admin thread and must be closed by stop(): a connection being told apart
  // (plain or TLS), or an HTTP session.
  class Connection : public std::enable_shared_from_this<Connection> {
   public:
    explicit Connection(Impl& impl) : impl_(impl), id_(impl.next_id++) {}
    virtual ~Connection() { impl_.connections.erase(id_); }
    virtual void close() = 0;
    void enlist() { impl_.connections.emplace(id_, weak_from_this()); }

   protected:
    Impl& impl_;
    const uint64_t id_;
  };
  template <class Derived>
  class Session;
  class PlainSession;
  class TlsSession;
  class Detector;

  const config::AdminConfig config;
  const Handler handler;
  const TokenCheck token;
  // Declared before io, so that connections destroyed with the io_context still find them.
  std::unique_ptr<ListenerTls> tls;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections;
  uint64_t next_id = 0;
  bool stopping = false;

  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer retry_timer{io};
  tcp::endpoint bound;
  std::mutex stop_mutex;
  std::thread thread;
};

// The HTTP exchange, shared by plain and TLS connections (Derived supplies stream(), run(),
// finish() and linger()): read a request under its deadline, answer it, and go on, or close.
template <class Derived>
class AdminServer::Impl::Session : public Connection {
 public:
  Session(Impl& impl, beast::flat_buffer&& buffer) : Connection(impl), buffer_(std::move(buffer)) {}

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }
  std::shared_ptr<Derived> self() { return std::static_pointer_cast<Derived>(shared_from_this()); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(derived().stream()); }

  void read_request() {
    if (impl_.stopping) return;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    lowest().expires_after(impl_.config.request_timeout);
    http::async_read(derived().stream(), buffer_, *parser_,
                     [self = self()](error_code ec, size_t) { self->on_read(ec); });
  }

  // Plain HTTP on a port that requires TLS: the request is read and answered with a 400 saying
  // so, rather than a handshake failure the client would show as gibberish.
  bool require_tls_ = false;

 private:
  void on_read(error_code ec) {
    if (ec == http::error::end_of_stream) return derived().finish();
    if (ec) {
      static const auto& http_errors = make_error_code(http::error::bad_target).category();
      if (ec.category() != http_errors || ec == http::error::partial_message) {
        // Timeout, reset, EOF within a request, or stop(): nothing to answer.
        log(LogLevel::kDebug, "admin: connection closed: ", ec.message());
        return;
      }
      if (ec == http::error::header_limit) {
        return error_reply(http::status::request_header_fields_too_large,
                           "request headers larger than 8 KiB\n");
      }
      if (ec == http::error::body_limit)
        return error_reply(http::status::payload_too_large, "request body not accepted\n");
      return error_reply(http::status::bad_request, "bad request: " + ec.message() + "\n");
    }
    handle(parser_->get());
  }

  void handle(const http::request<http::string_body>& request) {
    const bool head = request.method() == http::verb::head;
    const bool keep_alive = request.keep_alive();
    const unsigned version = request.version();
    if (require_tls_) {
      return reply(http::status::bad_request, "text/plain; charset=utf-8",
                   "this admin endpoint requires TLS (https://)\n", head, false, version);
    }
    if (request.method() != http::verb::get && !head) {
      prepare(http::status::method_not_allowed, "text/plain; charset=utf-8",
              "method not allowed: use GET or HEAD\n", false, keep_alive, version);
      response_.set(http::field::allow, "GET, HEAD");
      return write(!keep_alive, false);
    }
    const std::string_view target = request.target();
    if (target.empty() || target.front() != '/') {
      return reply(http::status::bad_request, "text/plain; charset=utf-8",
                   "bad request: the target must be a path\n", head, false, version);
    }
    const size_t question = target.find('?');
    AdminRequest admin_request;
    admin_request.path = target.substr(0, question);
    if (question != std::string_view::npos)
      admin_request.query = parse_query(target.substr(question + 1));

    if (impl_.token.enabled() && !is_public_path(admin_request.path)) {
      const auto authorization = request.find(http::field::authorization);
      if (authorization == request.end() || !impl_.token.accepts(authorization->value())) {
        log(LogLevel::kDebug, "admin: refused a request without the right token");
        prepare(http::status::unauthorized, "text/plain; charset=utf-8",
                "unauthorized: send Authorization: Bearer <token>\n", head, keep_alive, version);
        response_.set(http::field::www_authenticate, "Bearer");
        return write(!keep_alive, false);
      }
    }

    AdminResponse answer = impl_.respond(admin_request);
    return reply(static_cast<http::status>(answer.status), answer.content_type,
                 std::move(answer.body), head, keep_alive, version);
  }

  // An error that ends the connection: the rest of the request is drained first (linger()).
  void error_reply(http::status status, std::string body) {
    prepare(status, "text/plain; charset=utf-8", std::move(body), false, false, 11);
    write(true, true);
  }

  void reply(http::status status, std::string_view content_type, std::string body, bool head,
             bool keep_alive, unsigned version) {
    prepare(status, content_type, std::move(body), head, keep_alive, version);
    write(!keep_alive, false);
  }

  void prepare(http::status status, std::string_view content_type, std::string body, bool head,
               bool keep_alive, unsigned version) {
    response_ = http::response<http::string_body>();
    response_.version(version);
    response_.result(status);
    response_.set(http::field::server, "cachegate");
    response_.set(http::field::cache_control, "no-store");
    response_.set(http::field::content_type, content_type);
    const auto code = static_cast<unsigned>(status);
    // A 204 has no Content-Length (RFC 9110, section 8.6), and neither it nor a 304 has content.
    if (code != 204 && code != 304) {
      response_.content_length(body.size());
      if (!head) response_.body() = std::move(body);
    }
    response_.keep_alive(keep_alive);
  }

  void write(bool close_after, bool linger) {
    lowest().expires_after(impl_.config.request_timeout);
    http::async_write(derived().stream(), response_,
                      [self = self(), close_after, linger](error_code ec, size_t) {
                        if (ec) {
                          log(LogLevel::kDebug, "admin: cannot write a response: ", ec.message());
                          return;
                        }
                        if (!close_after) return self->read_request();
                        if (linger) return self->derived().linger();
                        self->derived().finish();
                      });
  }

 protected:
  beast::flat_buffer buffer_;

 private:
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

class AdminServer::Impl::PlainSession : public Session<PlainSession> {
 public:
  PlainSession(Impl& impl, beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
               bool require_tls)
      : Session(impl, std::move(buffer)), stream_(std::move(stream)) {
    require_tls_ = require_tls;
  }

  beast::tcp_stream& stream() { return stream_; }
  void run() { read_request(); }
  void close() override { stream_.close(); }

  // Done: our FIN goes out now, the socket closes with the session.
  void finish() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void linger() {
    finish();
    stream_.expires_after(std::min(impl_.config.request_timeout, kLingerTime));
    drain();
  }

 private:
  void drain() {
    stream_.async_read_some(asio::buffer(scratch_), [self = self()](error_code ec, size_t n) {
      self->drained_ += n;
      if (!ec && self->drained_ < kLingerBytes && !self->impl_.stopping) self->drain();
    });
  }

  beast::tcp_stream stream_;
  std::array<char, 4096> scratch_;
  size_t drained_ = 0;
};

class AdminServer::Impl::TlsSession : public Session<TlsSession> {
 public:
  // `ssl` (from ListenerTls::new_connection) is now owned by the session's stream.
  TlsSession(Impl& impl, beast::tcp_stream&& stream, ssl_st* ssl, beast::flat_buffer&& buffer)
      : Session(impl, std::move(buffer)), stream_(std::move(stream), ssl) {}

  asio::ssl::stream<beast::tcp_stream>& stream() { return stream_; }
  void close() override { beast::get_lowest_layer(stream_).close(); }

  // The handshake runs under the deadline the Detector set; the bytes it already read are the
  // start of the ClientHello.
  void run() {
    stream_.async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                            [self = self()](error_code ec, size_t used) {
                              if (ec) {
                                log(LogLevel::kDebug,
                                    "admin: TLS handshake failed: ", ec.message());
                                return;
                              }
                              self->buffer_.consume(used);
                              self->read_request();
                            });
  }

  // close_notify, then the socket closes with the session; bounded, as a peer may never answer.
  void finish() {
    if (impl_.stopping) return;
    beast::get_lowest_layer(stream_).expires_after(
        std::min(impl_.config.request_timeout, kLingerTime));
    stream_.async_shutdown([self = self()](error_code) {});
  }
  void linger() { finish(); }

 private:
  asio::ssl::stream<beast::tcp_stream> stream_;
};

// With `tls:`, the first bytes tell a TLS ClientHello from plain HTTP: the latter is served in
// `mode: optional` and told to use https otherwise.
class AdminServer::Impl::Detector : public Connection {
 public:
  Detector(Impl& impl, tcp::socket&& socket) : Connection(impl), stream_(std::move(socket)) {}

  void run() {
    // One deadline for telling the protocols apart and the whole handshake.
    stream_.expires_after(
        std::min(impl_.config.request_timeout, impl_.config.tls->handshake_timeout));
    beast::async_detect_ssl(stream_, buffer_,
                            [self = std::static_pointer_cast<Detector>(shared_from_this())](
                                error_code ec, bool tls) { self->on_detect(ec, tls); });
  }
  void close() override {
    if (!handed_off_) stream_.close();
  }

 private:
  void on_detect(error_code ec, bool is_tls) {
    if (ec || impl_.stopping) return;
    // The stream moves to the session below; a moved-from stream must not be closed.
    handed_off_ = true;
    if (!is_tls) {
      const bool required = impl_.config.tls->mode == config::TlsMode::kRequired;
      auto session =
          std::make_shared<PlainSession>(impl_, std::move(stream_), std::move(buffer_), required);
      session->enlist();
      return session->run();
    }
    ssl_st* ssl = impl_.tls->new_connection(stream_.socket().native_handle());
    if (ssl == nullptr) {
      log(LogLevel::kWarning, "admin: no TLS context for a new connection");
      return;
    }
    auto session = std::make_shared<TlsSession>(impl_, std::move(stream_), ssl, std::move(buffer_));
    session->enlist();
    session->run();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool handed_off_ = false;
};

// --- the server --------------------------------------------------------------------------------

AdminResponse AdminServer::Impl::respond(const AdminRequest& request) {
  // The handler is the operator-facing part of the process: whatever it throws answers this
  // request with a 500 and leaves every other connection alone.
  AdminResponse response;
  try {
    response = handler(request);
  } catch (const std::exception& e) {
    log(LogLevel::kWarning, "admin: handler failed for ", request.path, ": ", e.what());
    return {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
  } catch (...) {
    log(LogLevel::kWarning, "admin: handler failed for ", request.path);
    return {500, "text/plain; charset=utf-8", "internal error\n"};
  }
  if (response.status < 200 || response.status > 599) {
    log(LogLevel::kWarning, "admin: handler answered ", request.path, " with status ",
        response.status);
    return {500, "text/plain; charset=utf-8",
            "internal error: invalid status " + std::to_string(response.status) + "\n"};
  }
  return response;
}

void AdminServer::Impl::accept() {
  acceptor.async_accept(
      io, [this](error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void AdminServer::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (stopping || ec == asio::error::operation_aborted) return;
  if (ec) {
    log(LogLevel::kWarning, "admin: accept failed: ", ec.message());
    retry_timer.expires_after(kAcceptRetry);
    retry_timer.async_wait([this](error_code e) {
      if (!e && !stopping) accept();
    });
    return;
  }
  if (connections.size() >= config.max_connections) {
    log(LogLevel::kDebug, "admin: ", config.max_connections,
        " connections open; closing a new one");
    error_code ignored;
    socket.close(ignored);
  } else if (tls) {
    auto detector = std::make_shared<Detector>(*this, std::move(socket));
    detector->enlist();
    detector->run();
  } else {
    auto session = std::make_shared<PlainSession>(*this, beast::tcp_stream(std::move(socket)),
                                                  beast::flat_buffer(), false);
    session->enlist();
    session->run();
  }
  accept();
}

void AdminServer::Impl::shutdown() {
  stopping = true;
  error_code ignored;
  acceptor.close(ignored);
  retry_timer.cancel();
  // Closing cancels each connection's operations; their handlers see the error and let go, and
  // run() returns once none is left.
  // Locked first: a connection released while the map is walked would erase itself from it.
  std::vector<std::shared_ptr<Connection>> open;
  for (auto& [id, weak] : connections) {
    if (auto connection = weak.lock()) open.push_back(std::move(connection));
  }
  for (auto& connection : open)
    connection->close();
}

AdminServer::AdminServer(const config::AdminConfig& config, Handler handler)
    : impl_(std::make_unique<Impl>(config, std::move(handler))) {}

AdminServer::~AdminServer() {
  stop();
}

bool AdminServer::start(std::string& error) {
  Impl& impl = *impl_;
  // Against a stop() from another thread while starting.
  std::lock_guard<std::mutex> lock(impl.stop_mutex);
  const bool v6 = impl.config.host.find(':') != std::string::npos;
  const std::string where = (v6 ? "[" + impl.config.host + "]" : impl.config.host) + ":" +
                            std::to_string(impl.config.port);
  auto fail = [&](std::string message) {
    error = std::move(message);
    log(LogLevel::kWarning, "admin: ", error);
    error_code ignored;
    impl.acceptor.close(ignored);
    return false;
  };
  if (impl.thread.joinable() || impl.stopping || impl.acceptor.is_open()) {
    // Not through fail(): the running endpoint's acceptor is not ours to close.
    error = "the endpoint was started before";
    return false;
  }
  if (impl.tls) {
    std::string problem;
    if (!impl.tls->load(problem)) return fail("cannot load TLS: " + problem);
  }
  error_code ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(impl.config.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, impl.config.port);
  } else {
    tcp::resolver resolver(impl.io);
    const auto results = resolver.resolve(impl.config.host, std::to_string(impl.config.port),
                                          tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return fail("cannot resolve '" + impl.config.host +
                  "': " + (ec ? ec.message() : std::string("no addresses")));
    }
    endpoint = results.begin()->endpoint();
  }
  impl.acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint.address().is_v6()) impl.acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) impl.bound = impl.acceptor.local_endpoint(ec);
  if (ec) return fail("cannot listen on " + where + ": " + ec.message());

  const std::string scheme = impl.tls ? "https" : "http";
  log(LogLevel::kInfo, "admin endpoint on ", scheme, "://", describe(impl.bound));
  if (!impl.token.enabled() && !impl.bound.address().is_loopback()) {
    log(LogLevel::kWarning, "admin endpoint on ", describe(impl.bound),
        " has no token_file: anyone who can reach it can use it");
  }
  impl.accept();
  impl.thread = std::thread([&impl] {
    set_thread_log_name("admin");
    for (;;) {
      // Sessions handle their own errors; anything else (an allocation failure) costs at most
      // the operation it came from, and the endpoint keeps serving.
      try {
        impl.io.run();
        return;
      } catch (const std::exception& e) {
        log(LogLevel::kError, "admin: unexpected error: ", e.what());
      }
    }
  });
  return true;
}

boost::asio::ip::basic_endpoint<boost::asio::ip::tcp> AdminServer::endpoint() const {
  return impl_->bound;
}

void AdminServer::stop() {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.stop_mutex);
  if (!impl.thread.joinable()) return;
  asio::post(impl.io, [&impl] { impl.shutdown(); });
  // From the admin thread itself (the handler) the thread cannot wait for itself; it ends once
  // the shutdown above has run, and a later stop() from elsewhere joins it.
  if (impl.thread.get_id() == std::this_thread::get_id()) return;
  impl.thread.join();
}

bool AdminServer::reload_tls(bool only_changed) {
  ListenerTls* tls = impl_->tls.get();
  if (tls == nullptr) return true;
  if (only_changed && !tls->files_changed()) return true;
  std::string error;
  if (!tls->load(error)) {
    log(LogLevel::kWarning,
        "admin: cannot reload TLS, the previous certificate stays in use: ", error);
    return false;
  }
  log(LogLevel::kInfo, "admin: TLS certificate reloaded");
  return true;
}

}  // namespace cachegate::proxy
