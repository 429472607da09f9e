// The admin HTTP server against real clients: raw HTTP/1.1 over a blocking socket (TextClient,
// plain and TLS) where the bytes on the wire matter, and curl where a real HTTP client's view is
// the point. Every server listens on 127.0.0.1 port 0; certificates are made per run.

#include "proxy/admin_server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/text_client.h"
#include "tests/support/tls_material.h"

namespace cachegate::proxy {
namespace {

using Catch::Matchers::Contains;
using std::chrono::milliseconds;
using testing::TextClient;

const testing::TlsMaterial& tls_material() {
  static const testing::TlsMaterial m;
  return m;
}

config::AdminConfig plain_config() {
  config::AdminConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.request_timeout = milliseconds(5000);
  return c;
}

config::AdminConfig tls_config(config::TlsMode mode = config::TlsMode::kRequired) {
  config::AdminConfig c = plain_config();
  config::ListenerTlsConfig tls;
  tls.cert = tls_material().server.cert;
  tls.key = tls_material().server.key;
  tls.mode = mode;
  c.tls = tls;
  return c;
}

// A started server whose handler answers a few fixed paths and counts its calls.
class Server {
 public:
  explicit Server(const config::AdminConfig& config)
      : server_(config, [this](const AdminRequest& r) { return handle(r); }) {
    std::string error;
    if (!server_.start(error)) FAIL(error);
    port_ = server_.endpoint().port();
    REQUIRE(port_ != 0);
  }

  uint16_t port() const { return port_; }
  int calls() const { return calls_.load(); }
  AdminServer& server() { return server_; }
  std::string url(const std::string& target, const std::string& scheme = "http") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + target;
  }

 private:
  AdminResponse handle(const AdminRequest& r) {
    ++calls_;
    if (r.path == "/hello" || r.path == "/healthz" || r.path == "/readyz")
      return {200, "text/plain; charset=utf-8", "hello\n"};
    if (r.path == "/echo") {
      AdminResponse out{200, "text/plain; charset=utf-8", ""};
      for (const auto& [name, value] : r.query)
        out.body += "[" + name + "]=[" + value + "]\n";
      return out;
    }
    if (r.path == "/json") return {200, "application/json", "{\"ok\":true}"};
    if (r.path == "/teapot") return {418, "text/plain; charset=utf-8", "short and stout\n"};
    if (r.path == "/throw") throw std::runtime_error("boom at the handler");
    if (r.path == "/bad-status") return {42, "text/plain", "?"};
    return {404, "text/plain; charset=utf-8", "no such page\n"};
  }

  std::atomic<int> calls_{0};
  AdminServer server_;
  uint16_t port_ = 0;
};

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One HTTP/1.1 response; a HEAD response has no body whatever its Content-Length says.
std::optional<Reply> read_reply(TextClient& c, bool head = false) {
  const auto status_line = c.read_line();
  if (!status_line || status_line->rfind("HTTP/1.", 0) != 0 || status_line->size() < 12)
    return std::nullopt;
  Reply r;
  r.status = std::stoi(status_line->substr(9, 3));
  for (;;) {
    const auto line = c.read_line();
    if (!line) return std::nullopt;
    if (line->empty()) break;
    const size_t colon = line->find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string name = line->substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    std::string value = line->substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    r.headers[name] = value;
  }
  if (!head && r.headers.count("content-length")) {
    const auto body = c.read_exact(std::stoul(r.headers["content-length"]));
    if (!body) return std::nullopt;
    r.body = *body;
  }
  return r;
}

std::string request(const std::string& method, const std::string& target,
                    const std::string& extra_headers = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers + "\r\n";
}

Reply exchange(TextClient& c, const std::string& method, const std::string& target,
               const std::string& extra_headers = "") {
  c.send(request(method, target, extra_headers));
  auto r = read_reply(c, method == "HEAD");
  REQUIRE(r.has_value());
  return *r;
}

struct CurlResult {
  int exit_code = -1;
  int status = 0;
  std::string body;  // with the headers first when asked for with -i; curl's errors too
};

CurlResult curl(std::vector<std::string> args) {
  std::vector<std::string> argv{"/usr/bin/curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  CurlResult r;
  r.exit_code = testing::run_command(argv, &output, milliseconds(20000));
  const size_t last = output.rfind('\n');
  if (last != std::string::npos) {
    r.body = output.substr(0, last);
    r.status = std::atoi(output.c_str() + last + 1);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("admin server: GET answers with the handler's status, headers and body", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  const Reply hello = exchange(c, "GET", "/hello");
  CHECK(hello.status == 200);
  CHECK(hello.body == "hello\n");
  CHECK(hello.header("content-type") == "text/plain; charset=utf-8");
  CHECK(hello.header("content-length") == "6");
  CHECK(hello.header("cache-control") == "no-store");
  CHECK(hello.header("server") == "cachegate");

  const Reply json = exchange(c, "GET", "/json");
  CHECK(json.status == 200);
  CHECK(json.header("content-type") == "application/json");
  CHECK(json.body == "{\"ok\":true}");

  const Reply missing = exchange(c, "GET", "/nowhere");
  CHECK(missing.status == 404);
  CHECK(missing.body == "no such page\n");
  const Reply teapot = exchange(c, "GET", "/teapot");
  CHECK(teapot.status == 418);
  CHECK(teapot.body == "short and stout\n");
  CHECK(s.calls() == 4);

  const CurlResult by_curl = curl({s.url("/hello")});
  CHECK(by_curl.exit_code == 0);
  CHECK(by_curl.status == 200);
  CHECK(by_curl.body == "hello\n");
}

TEST_CASE("admin server: the query string is split on & and = and percent-decoded", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  const Reply r = exchange(c, "GET", "/echo?a=1&b=hello+world&c=%2Fx%3D%26y&&flag&e=&%7e=%zz&x=%4");
  CHECK(r.status == 200);
  CHECK(r.body ==
        "[a]=[1]\n[b]=[hello world]\n[c]=[/x=&y]\n[flag]=[]\n[e]=[]\n[~]=[%zz]\n[x]=[%4]\n");
  CHECK(exchange(c, "GET", "/echo").body.empty());
  CHECK(exchange(c, "GET", "/echo?").body.empty());
}

TEST_CASE("admin server: HEAD has GET's headers and no body", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  const Reply head = exchange(c, "HEAD", "/hello");
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == "6");
  CHECK(head.header("content-type") == "text/plain; charset=utf-8");
  // Had a body followed, this reply would not parse.
  const Reply get = exchange(c, "GET", "/teapot");
  CHECK(get.status == 418);
  CHECK(get.body == "short and stout\n");

  const CurlResult by_curl = curl({"-I", s.url("/hello")});
  CHECK(by_curl.exit_code == 0);
  CHECK(by_curl.status == 200);
}

TEST_CASE("admin server: methods other than GET and HEAD get 405", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  for (const std::string method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    INFO(method);
    const Reply r = exchange(c, method, "/hello", "Content-Length: 0\r\n");
    CHECK(r.status == 405);
    CHECK(r.header("allow") == "GET, HEAD");
    CHECK(r.header("cache-control") == "no-store");
  }
  // The connection stays usable.
  CHECK(exchange(c, "GET", "/hello").status == 200);
  CHECK(s.calls() == 1);

  const CurlResult by_curl = curl({"-X", "POST", "-d", "x=1", s.url("/hello")});
  CHECK(by_curl.status == 405);
  CHECK(s.calls() == 1);
}

TEST_CASE("admin server: a token is required except on /healthz and /readyz", "[admin]") {
  config::AdminConfig config = plain_config();
  config.token = "s3cret-t0ken";
  Server s(config);
  TextClient c("127.0.0.1", s.port());

  const Reply none = exchange(c, "GET", "/hello");
  CHECK(none.status == 401);
  CHECK(none.header("www-authenticate") == "Bearer");
  CHECK_THAT(none.body, !Contains("s3cret"));
  for (const std::string value :
       {"Bearer wrong", "Bearer s3cret-t0ke", "Bearer s3cret-t0ken2", "Bearer ", "Bearer",
        "Basic czNjcmV0LXQwa2Vu", "s3cret-t0ken", "Bearers3cret-t0ken"}) {
    INFO(value);
    const Reply r = exchange(c, "GET", "/hello", "Authorization: " + value + "\r\n");
    CHECK(r.status == 401);
    CHECK(r.header("www-authenticate") == "Bearer");
  }
  CHECK(exchange(c, "HEAD", "/hello").status == 401);
  // Only the exact probe paths are open.
  CHECK(exchange(c, "GET", "/healthz/").status == 401);
  CHECK(exchange(c, "GET", "/healthz%20").status == 401);
  CHECK(s.calls() == 0);

  CHECK(exchange(c, "GET", "/hello", "Authorization: Bearer s3cret-t0ken\r\n").status == 200);
  CHECK(exchange(c, "GET", "/hello", "Authorization: bearer   s3cret-t0ken\r\n").status == 200);
  CHECK(exchange(c, "GET", "/healthz").status == 200);
  CHECK(exchange(c, "GET", "/readyz?verbose=1").status == 200);
  CHECK(s.calls() == 4);

  CHECK(curl({s.url("/hello")}).status == 401);
  const CurlResult ok = curl({"-H", "Authorization: Bearer s3cret-t0ken", s.url("/hello")});
  CHECK(ok.status == 200);
  CHECK(ok.body == "hello\n");
  CHECK(curl({s.url("/healthz")}).status == 200);
}

TEST_CASE("admin server: oversized headers get 431 and the connection is closed", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  c.send(request("GET", "/hello", "X-Big: " + std::string(10000, 'a') + "\r\n"));
  const auto r = read_reply(c);
  REQUIRE(r.has_value());
  CHECK(r->status == 431);
  CHECK(r->header("connection") == "close");
  CHECK(c.peer_closed(milliseconds(5000)));
  CHECK(s.calls() == 0);

  // Just under the limit is fine.
  TextClient d("127.0.0.1", s.port());
  CHECK(exchange(d, "GET", "/hello", "X-Big: " + std::string(7000, 'a') + "\r\n").status == 200);
}

TEST_CASE("admin server: bodies over 1 KiB get 413 and bad requests 400, then close", "[admin]") {
  Server s(plain_config());
  {
    TextClient c("127.0.0.1", s.port());
    c.send(request("GET", "/hello", "Content-Length: 2000\r\n") + std::string(2000, 'b'));
    const auto r = read_reply(c);
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
    CHECK(c.peer_closed(milliseconds(5000)));
  }
  {
    // A small body is tolerated.
    TextClient c("127.0.0.1", s.port());
    c.send(request("GET", "/hello", "Content-Length: 10\r\n") + std::string(10, 'b'));
    const auto r = read_reply(c);
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
  for (const std::string& garbage :
       {std::string("GARBAGE\r\n\r\n"),
        std::string("GET /hello HTTP/1.1\r\nContent-Length: ten\r\n\r\n"),
        std::string("GET /hello HTTP/1.1\r\nbad header line\r\n\r\n"),
        std::string("GET http://example.com/hello HTTP/1.1\r\nHost: x\r\n\r\n")}) {
    INFO(garbage);
    TextClient c("127.0.0.1", s.port());
    c.send(garbage);
    const auto r = read_reply(c);
    REQUIRE(r.has_value());
    CHECK(r->status == 400);
    CHECK(c.peer_closed(milliseconds(5000)));
  }
  CHECK(s.calls() == 1);
}

TEST_CASE("admin server: a connection without a complete request is closed after request_timeout",
          "[admin]") {
  config::AdminConfig config = plain_config();
  config.request_timeout = milliseconds(300);
  Server s(config);
  const auto start = std::chrono::steady_clock::now();
  TextClient idle("127.0.0.1", s.port());
  CHECK(idle.peer_closed(milliseconds(5000)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(4));

  TextClient partial("127.0.0.1", s.port());
  partial.send("GET /hello HTTP/1.1\r\nHost: x\r\n");
  CHECK(partial.peer_closed(milliseconds(5000)));

  // Between keep-alive requests too.
  TextClient kept("127.0.0.1", s.port());
  CHECK(exchange(kept, "GET", "/hello").status == 200);
  CHECK(kept.peer_closed(milliseconds(5000)));
  CHECK(s.calls() == 1);
}

TEST_CASE("admin server: connections past max_connections are closed at accept", "[admin]") {
  config::AdminConfig config = plain_config();
  config.max_connections = 2;
  config.request_timeout = milliseconds(10000);
  Server s(config);
  auto first = std::make_unique<TextClient>("127.0.0.1", s.port());
  TextClient second("127.0.0.1", s.port());
  // Answered: both are open on the server's side.
  CHECK(exchange(*first, "GET", "/hello").status == 200);
  CHECK(exchange(second, "GET", "/hello").status == 200);

  TextClient third("127.0.0.1", s.port());
  third.send(request("GET", "/hello"));
  CHECK(third.peer_closed(milliseconds(5000)));

  // Once one leaves, a new connection is served again.
  first.reset();
  bool served = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!served && std::chrono::steady_clock::now() < deadline) {
    TextClient next("127.0.0.1", s.port());
    next.send(request("GET", "/hello"));
    const auto r = read_reply(next);
    served = r && r->status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(50));
  }
  CHECK(served);
  CHECK(exchange(second, "GET", "/hello").status == 200);
}

TEST_CASE("admin server: keep-alive serves several requests on one connection", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  CHECK(exchange(c, "GET", "/hello").status == 200);
  CHECK(exchange(c, "GET", "/echo?n=2").body == "[n]=[2]\n");
  // Pipelined: both answered, in order.
  c.send(request("GET", "/teapot") + request("GET", "/hello"));
  const auto a = read_reply(c);
  const auto b = read_reply(c);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->status == 418);
  CHECK(b->status == 200);
  // Connection: close is honoured.
  const Reply last = exchange(c, "GET", "/hello", "Connection: close\r\n");
  CHECK(last.status == 200);
  CHECK(last.header("connection") == "close");
  CHECK(c.peer_closed(milliseconds(5000)));
  CHECK(s.calls() == 5);

  // HTTP/1.0 closes unless asked to keep alive.
  TextClient old("127.0.0.1", s.port());
  old.send("GET /hello HTTP/1.0\r\n\r\n");
  const auto r = read_reply(old);
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(old.peer_closed(milliseconds(5000)));

  // curl reuses its connection for two URLs.
  const CurlResult two = curl({"-v", s.url("/hello"), s.url("/teapot")});
  CHECK(two.exit_code == 0);
  CHECK_THAT(two.body, Contains("Re-using existing connection"));
}

TEST_CASE("admin server: a handler exception becomes a 500 with its message", "[admin]") {
  Server s(plain_config());
  TextClient c("127.0.0.1", s.port());
  const Reply r = exchange(c, "GET", "/throw");
  CHECK(r.status == 500);
  CHECK_THAT(r.body, Contains("boom at the handler"));
  const Reply bad = exchange(c, "GET", "/bad-status");
  CHECK(bad.status == 500);
  CHECK_THAT(bad.body, Contains("invalid status 42"));
  // The same connection, and the server, go on.
  CHECK(exchange(c, "GET", "/hello").status == 200);
}

TEST_CASE("admin server: TLS with a certificate, and plain HTTP on the TLS port", "[admin][tls]") {
  const auto& m = tls_material();
  Server s(tls_config());
  const CurlResult ok = curl({"--cacert", m.ca.cert, s.url("/hello", "https")});
  CHECK(ok.exit_code == 0);
  CHECK(ok.status == 200);
  CHECK(ok.body == "hello\n");

  testing::TlsClientOptions options;
  options.ca_file = m.ca.cert;
  options.server_name = "localhost";
  {
    TextClient c("127.0.0.1", s.port(), options);
    CHECK(exchange(c, "GET", "/hello").status == 200);
    CHECK(exchange(c, "GET", "/echo?a=%20b").body == "[a]=[ b]\n");
    const Reply last = exchange(c, "GET", "/hello", "Connection: close\r\n");
    CHECK(last.status == 200);
    CHECK(c.peer_closed(milliseconds(5000)));
  }

  // Plain HTTP is told to use TLS, at once.
  const auto start = std::chrono::steady_clock::now();
  const CurlResult plain = curl({s.url("/hello")});
  CHECK(plain.status == 400);
  CHECK_THAT(plain.body, Contains("requires TLS"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(4));
  // Neither bytes that are not HTTP nor a broken handshake hang or hurt the server.
  {
    TextClient junk("127.0.0.1", s.port());
    junk.send(std::string("\x16\x03\x01\x00\x05hello", 10));
    CHECK(junk.peer_closed(milliseconds(8000)));
  }
  {
    TextClient junk("127.0.0.1", s.port());
    junk.send(std::string(200, '\0'));
    CHECK(junk.peer_closed(milliseconds(8000)));
  }
  const CurlResult wrong_ca = curl({"--cacert", m.rogue_ca.cert, s.url("/hello", "https")});
  CHECK(wrong_ca.exit_code != 0);
  CHECK(curl({"--cacert", m.ca.cert, s.url("/hello", "https")}).status == 200);
  CHECK(s.calls() == 5);
}

TEST_CASE("admin server: TLS mode optional serves plain HTTP too", "[admin][tls]") {
  Server s(tls_config(config::TlsMode::kOptional));
  CHECK(curl({s.url("/hello")}).status == 200);
  CHECK(curl({"--cacert", tls_material().ca.cert, s.url("/hello", "https")}).status == 200);
}

TEST_CASE("admin server: TLS client certificates when client_auth is required", "[admin][tls]") {
  const auto& m = tls_material();
  config::AdminConfig config = tls_config();
  config.tls->client_auth = config::TlsClientAuth::kRequired;
  config.tls->client_ca = m.ca.cert;
  Server s(config);
  CHECK(curl({"--cacert", m.ca.cert, s.url("/hello", "https")}).status != 200);
  CHECK(curl({"--cacert", m.ca.cert, "--cert", m.rogue.cert, "--key", m.rogue.key,
              s.url("/hello", "https")})
            .status != 200);
  const CurlResult alice = curl({"--cacert", m.ca.cert, "--cert", m.alice.cert, "--key",
                                 m.alice.key, s.url("/hello", "https")});
  CHECK(alice.status == 200);
  CHECK(alice.body == "hello\n");
  CHECK(s.calls() == 1);
}

TEST_CASE("admin server: a TLS handshake that never comes is dropped after request_timeout",
          "[admin][tls]") {
  config::AdminConfig config = tls_config();
  config.request_timeout = milliseconds(300);
  Server s(config);
  TextClient silent("127.0.0.1", s.port());
  CHECK(silent.peer_closed(milliseconds(5000)));
  TextClient half("127.0.0.1", s.port());
  half.send(std::string("\x16\x03\x01", 3));
  CHECK(half.peer_closed(milliseconds(5000)));
}

TEST_CASE("admin server: reload_tls picks up a new certificate for new connections",
          "[admin][tls]") {
  const auto& m = tls_material();
  const testing::TempDir dir;
  const std::string cert = dir.path() + "/admin.pem";
  const std::string key = dir.path() + "/admin.key";
  std::filesystem::copy_file(m.server.cert, cert);
  std::filesystem::copy_file(m.server.key, key);
  config::AdminConfig config = tls_config();
  config.tls->cert = cert;
  config.tls->key = key;
  Server s(config);
  CHECK(s.server().reload_tls(true));  // nothing changed

  // Only server2's certificate names second.localhost.
  const std::string second = "https://second.localhost:" + std::to_string(s.port()) + "/hello";
  const std::vector<std::string> to_second{
      "--cacert", m.ca.cert, "--resolve",
      "second.localhost:" + std::to_string(s.port()) + ":127.0.0.1", second};
  CHECK(curl(to_second).exit_code != 0);

  const auto options = std::filesystem::copy_options::overwrite_existing;
  std::filesystem::copy_file(m.server2.cert, cert, options);
  std::filesystem::copy_file(m.server2.key, key, options);
  CHECK(s.server().reload_tls(true));
  CHECK(curl(to_second).status == 200);

  // A broken file keeps the previous certificate.
  dir.write_file("admin.key", "not a key\n");
  CHECK_FALSE(s.server().reload_tls(false));
  CHECK(curl(to_second).status == 200);
}

TEST_CASE("admin server: start fails on a port in use, and stop is idempotent", "[admin]") {
  Server s(plain_config());
  config::AdminConfig taken = plain_config();
  taken.port = s.port();
  AdminServer clash(taken, [](const AdminRequest&) { return AdminResponse{}; });
  std::string error;
  CHECK_FALSE(clash.start(error));
  CHECK_THAT(error, Contains("cannot listen on 127.0.0.1:" + std::to_string(s.port())));
  clash.stop();
  // Starting twice fails and leaves the running endpoint alone.
  CHECK_FALSE(s.server().start(error));
  CHECK_THAT(error, Contains("started before"));

  // A connection open at stop() is closed; afterwards nothing listens.
  TextClient open("127.0.0.1", s.port());
  CHECK(exchange(open, "GET", "/hello").status == 200);
  std::thread other([&] { s.server().stop(); });
  s.server().stop();
  other.join();
  s.server().stop();
  CHECK(open.peer_closed(milliseconds(5000)));
  CHECK(testing::connect_tcp("127.0.0.1", s.port()) < 0);
}

}  // namespace
}  // namespace cachegate::proxy
