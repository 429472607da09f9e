#include "proxy/app.h"

#include <csignal>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "backends/log.h"
#include "cachegate/version.h"
#include "proxy/auth.h"
#include "proxy/log.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

namespace cachegate::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::chrono::seconds kTlsWatchInterval{2};

// Resolves host:port once at start-up (hostnames allowed); the first address wins.
bool resolve(asio::io_context& io, const std::string& host, uint16_t port, tcp::endpoint& out,
             std::string& error) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    out = tcp::endpoint(address, port);
    return true;
  }
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    error = "cannot resolve '" + host + "': " + (ec ? ec.message() : "no addresses");
    return false;
  }
  out = results.begin()->endpoint();
  return true;
}

// SO_REUSEPORT lets any process of the same user bind a port that is already in use, so a second
// cachegate (a stale instance, a repeated port) would silently share the listener, each taking
// part of the connections. A plain bind first proves nobody listens there; it is released before
// the workers bind, a window in which only a process binding the same port at the same moment
// could slip in.
bool port_is_free(asio::io_context& io, const tcp::endpoint& endpoint,
                  boost::system::error_code& ec) {
  if (endpoint.port() == 0) return true;
  tcp::acceptor probe(io);
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) probe.bind(endpoint, ec);
  return !ec;
}

std::string describe(const tcp::endpoint& e) {
  if (e.address().is_v6()) return "[" + e.address().to_string() + "]:" + std::to_string(e.port());
  return e.address().to_string() + ":" + std::to_string(e.port());
}

}  // namespace

int run_proxy(const config::Config& config) {
  set_log_json(config.log_format == config::LogFormat::kJson);
  backends::set_warning_sink(
      [](std::string_view message) { write_log(LogLevel::kWarning, message); });
  asio::io_context main_io(1);

  std::vector<std::vector<tcp::endpoint>> server_endpoints(config.pools.size());
  for (size_t p = 0; p < config.pools.size(); ++p) {
    for (const auto& server : config.pools[p].servers) {
      tcp::endpoint endpoint;
      std::string error;
      if (!resolve(main_io, server.host, server.port, endpoint, error)) {
        log(LogLevel::kError, "pool '", config.pools[p].name, "' server '", server.spec,
            "': ", error);
        return 1;
      }
      server_endpoints[p].push_back(endpoint);
    }
  }

  // TLS contexts, shared by the workers and reloaded here.
  std::vector<std::unique_ptr<ListenerTls>> listener_tls;
  std::vector<ListenerTls*> tls_of_listener;
  for (const auto& listener : config.listeners) {
    if (!listener.tls) {
      tls_of_listener.push_back(nullptr);
      continue;
    }
    listener_tls.push_back(std::make_unique<ListenerTls>(*listener.tls));
    std::string error;
    if (!listener_tls.back()->load(error)) {
      log(LogLevel::kError, "listener '", listener.name, "': TLS: ", error);
      return 1;
    }
    tls_of_listener.push_back(listener_tls.back().get());
  }
  auto reload_tls = [&](bool only_changed) {
    for (size_t l = 0; l < config.listeners.size(); ++l) {
      ListenerTls* tls = tls_of_listener[l];
      if (tls == nullptr || (only_changed && !tls->files_changed())) continue;
      std::string error;
      if (tls->load(error)) {
        log(LogLevel::kInfo, "listener '", config.listeners[l].name,
            "': TLS certificate and key reloaded");
      } else {
        log(LogLevel::kError, "listener '", config.listeners[l].name,
            "': TLS reload failed, keeping the previous certificate: ", error);
      }
    }
  };

  Authenticator authenticator(config);
  std::deque<std::atomic<uint32_t>> open_connections(config.listeners.size());
  std::vector<ListenerContext> contexts;
  for (size_t l = 0; l < config.listeners.size(); ++l)
    contexts.push_back(
        ListenerContext{&config.listeners[l], tls_of_listener[l], &open_connections[l]});
  Registry registry;
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < config.workers; ++i) {
    try {
      workers.push_back(
          std::make_unique<Worker>(i, config, server_endpoints, registry, contexts, authenticator));
    } catch (const std::exception& e) {
      log(LogLevel::kError, e.what());
      return 1;
    }
    registry.add(workers.back().get());
  }

  for (size_t l = 0; l < config.listeners.size(); ++l) {
    const auto& listener = config.listeners[l];
    tcp::endpoint endpoint;
    std::string error;
    if (!resolve(main_io, listener.host, listener.port, endpoint, error)) {
      log(LogLevel::kError, "listener '", listener.name, "': ", error);
      return 1;
    }
    boost::system::error_code probe_error;
    if (!port_is_free(main_io, endpoint, probe_error)) {
      log(LogLevel::kError, "listener '", listener.name, "' on ", describe(endpoint), ": ",
          probe_error.message());
      return 1;
    }
    try {
      // The first worker binds what was asked (port 0 picks a free port); the others bind the
      // port it got, so they all share one.
      endpoint = workers[0]->open_listener(l, endpoint);
      for (size_t w = 1; w < workers.size(); ++w)
        workers[w]->open_listener(l, endpoint);
    } catch (const boost::system::system_error& e) {
      log(LogLevel::kError, "listener '", listener.name, "' on ", describe(endpoint), ": ",
          e.code().message());
      return 1;
    }
    log(LogLevel::kInfo, "listener '", listener.name, "' on ", describe(endpoint), " (",
        config::to_string(listener.protocol), ") -> ",
        listener.route.empty() ? "pool '" + listener.pool + "'" : "route '" + listener.route + "'");
  }

  // Writes to a closed peer must come back as EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(main_io, SIGINT, SIGTERM, SIGHUP);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          if (listener_tls.empty()) {
            log(LogLevel::kInfo,
                "SIGHUP: nothing to reload (configuration reload is not "
                "available in this version)");
          } else {
            log(LogLevel::kInfo, "SIGHUP: reloading TLS certificates and keys");
            reload_tls(false);
          }
          signals.async_wait(on_signal);
          return;
        }
        log(LogLevel::kInfo, "signal ", signal, ": stopping");
        stopping = true;
      };
  signals.async_wait(on_signal);
  // Certificates are also reloaded when their files change (a renewed certificate, a Kubernetes
  // Secret update), checked every few seconds.
  asio::steady_timer tls_watch(main_io);
  std::function<void(const boost::system::error_code&)> on_tls_watch =
      [&](const boost::system::error_code& ec) {
        if (ec) return;
        reload_tls(true);
        tls_watch.expires_after(kTlsWatchInterval);
        tls_watch.async_wait(on_tls_watch);
      };
  if (!listener_tls.empty()) {
    tls_watch.expires_after(kTlsWatchInterval);
    tls_watch.async_wait(on_tls_watch);
  }

  for (auto& worker : workers)
    worker->start();
  log(LogLevel::kInfo, "cachegate ", kVersion, " running with ", config.workers, " worker",
      config.workers == 1 ? "" : "s");

  while (!stopping)
    main_io.run_one();
  tls_watch.cancel();
  for (auto& worker : workers)
    worker->stop();
  for (auto& worker : workers)
    worker->join();
  authenticator.stop();
  workers.clear();
  log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace cachegate::proxy
