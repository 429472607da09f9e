#include "proxy/app.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "backends/log.h"
#include "backends/tls_stream.h"
#include "cachegate/version.h"
#include "config/load.h"
#include "config/redact.h"
#include "proxy/admin_api.h"
#include "proxy/admin_server.h"
#include "proxy/auth.h"
#include "proxy/generation.h"
#include "proxy/log.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

namespace cachegate::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// How often the configuration file and the listeners' certificate files are looked at.
constexpr std::chrono::seconds kWatchInterval{2};

// Resolves host:port (hostnames allowed); the first address wins.
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

bool read_file(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot read the file";
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  text = buffer.str();
  return true;
}

struct FileStamp {
  ino_t inode = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const std::string& path) {
  FileStamp stamp;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    stamp.inode = st.st_ino;
    stamp.size = st.st_size;
    stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }
  return stamp;
}

bool same_admin(const std::optional<config::AdminConfig>& a,
                const std::optional<config::AdminConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  const auto& x = a->tls;
  const auto& y = b->tls;
  const bool same_tls =
      x.has_value() == y.has_value() &&
      (!x || (x->cert == y->cert && x->key == y->key && x->client_ca == y->client_ca &&
              x->client_auth == y->client_auth && x->min_version == y->min_version &&
              x->ciphers == y->ciphers && x->ciphersuites == y->ciphersuites &&
              x->mode == y->mode && x->handshake_timeout == y->handshake_timeout));
  return a->host == b->host && a->port == b->port && a->token == b->token &&
         a->max_connections == b->max_connections && a->request_timeout == b->request_timeout &&
         same_tls;
}

// Every client and every backend connection holds a descriptor, and the usual soft limit (1024)
// would refuse clients long before memory or CPU run short. As redis-server and memcached do,
// the soft limit is raised to the hard one; running with less than the configuration may need is
// worth a warning, not a refusal to start (accept() then fails and is retried).
void raise_open_files_limit(const config::Config& config) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    // An unlimited hard limit is not a value the soft one may take: the kernel caps descriptors
    // at fs.nr_open.
    if (raised.rlim_cur == RLIM_INFINITY) {
      std::ifstream nr_open("/proc/sys/fs/nr_open");
      rlim_t cap = 0;
      raised.rlim_cur = nr_open >> cap && cap > limit.rlim_cur ? cap : limit.rlim_cur;
    }
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised;
    } else {
      log(LogLevel::kWarning, "cannot raise the open files limit from ", limit.rlim_cur, " to ",
          raised.rlim_cur, ": ", std::strerror(errno));
    }
  }
  // Backend connections: each worker's own to each server, and for Redis those a client may
  // take alone; plus the admin endpoint, every worker's acceptors, and a few of the process's
  // own (epoll, eventfds, the log, files read at reload).
  uint64_t reserved = 32;
  for (const auto& pool : config.pools) {
    uint64_t per_server = pool.server_connections;
    if (pool.protocol == config::Protocol::kRedis) per_server += pool.dedicated_connections;
    reserved += per_server * pool.servers.size() * config.workers;
  }
  reserved += config.listeners.size() * config.workers;
  if (config.admin) reserved += config.admin->max_connections + 1;
  uint64_t clients = 0;
  bool bounded = true;
  for (const auto& listener : config.listeners) {
    clients += listener.max_connections;
    bounded = bounded && listener.max_connections != 0;
  }
  const uint64_t needed = reserved + (bounded ? clients : 0);
  if (limit.rlim_cur < needed) {
    log(LogLevel::kWarning, "the open files limit is ", limit.rlim_cur, " but this configuration ",
        "may need ", needed, bounded ? " (listeners' max_connections and " : " (",
        "backend connections); raise the hard limit (ulimit -Hn, LimitNOFILE=)");
  } else if (limit.rlim_cur != RLIM_INFINITY) {
    log(LogLevel::kInfo, "open files limit ", limit.rlim_cur, ": room for about ",
        limit.rlim_cur - reserved, " client connections");
  }
}

// The process: workers, listeners, reloads, drain, the admin endpoint.
class App {
 public:
  explicit App(std::string path) : path_(std::move(path)) {}
  int run();

 private:
  // Reads, parses and validates the file and prepares what every worker shares (addresses, TLS
  // contexts). Nothing running changes. Errors are in `error`, one per line.
  // `invalid`: the file itself is wrong (unreadable, or not a valid configuration).
  std::shared_ptr<LoadedConfig> prepare(std::string& error, bool& invalid);
  // Binds the listeners of `loaded` that are new or have moved; on failure releases what it
  // bound. `opened[w]` gets worker w's acceptors; `closed` the names of listeners to close.
  bool rebind(const LoadedConfig& loaded, std::vector<std::vector<Worker::ListenerChange>>& opened,
              std::vector<std::string>& closed, std::map<std::string, tcp::endpoint>& bound,
              std::string& error);
  void reload(const char* why);
  void watch();
  void begin_drain();
  void finish();
  AdminResponse admin(const AdminRequest& request);
  AdminState admin_state();

  std::string path_;
  asio::io_context main_io_{1};
  std::shared_ptr<const LoadedConfig> loaded_;
  FileStamp config_stamp_;
  // Listener name → its connection count, kept across reloads.
  std::map<std::string, std::shared_ptr<std::atomic<uint32_t>>> open_connections_;
  // Listener name → the address it is bound to, and how it was asked for.
  struct Bound {
    std::string host;
    uint16_t port = 0;
    uint32_t backlog = 0;
    tcp::endpoint endpoint;
  };
  std::map<std::string, Bound> bound_;
  std::unique_ptr<Authenticator> authenticator_;
  Registry registry_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_server_;

  // Read by the admin thread.
  std::mutex state_mutex_;
  std::shared_ptr<const LoadedConfig> published_;  // loaded_, for the admin thread
  std::string last_reload_error_;
  std::atomic<bool> running_{false};
  std::atomic<bool> draining_{false};

  bool stopping_ = false;
  unsigned drained_workers_ = 0;
  asio::steady_timer drain_timer_{main_io_};
  asio::steady_timer watch_timer_{main_io_};
};

std::shared_ptr<LoadedConfig> App::prepare(std::string& error, bool& invalid) {
  auto loaded = std::make_shared<LoadedConfig>();
  invalid = true;
  if (!read_file(path_, loaded->text, error)) return nullptr;
  auto result = config::load_config_string(loaded->text, path_);
  if (!result.ok()) {
    error = config::format_errors(result);
    while (!error.empty() && error.back() == '\n')
      error.pop_back();
    return nullptr;
  }
  invalid = false;
  auto config = std::make_shared<config::Config>(std::move(result.config));
  loaded->hash = config_hash_hex(loaded->text);
  loaded->loaded_at = std::chrono::system_clock::now();
  loaded->number = loaded_ ? loaded_->number + 1 : 1;
  if (loaded_) {
    // What only a restart can change.
    const auto& running = *loaded_->config;
    if (config->workers != running.workers) {
      error = "workers: changing it needs a restart (running " + std::to_string(running.workers) +
              ", file says " + std::to_string(config->workers) + ")";
      return nullptr;
    }
    if (!same_admin(config->admin, running.admin)) {
      error = "admin: changing the admin endpoint needs a restart";
      return nullptr;
    }
  }
  loaded->server_endpoints.resize(config->pools.size());
  loaded->pool_tls.resize(config->pools.size());
  for (size_t p = 0; p < config->pools.size(); ++p) {
    const auto& pool = config->pools[p];
    for (const auto& server : pool.servers) {
      tcp::endpoint endpoint;
      std::string why;
      if (!resolve(main_io_, server.host, server.port, endpoint, why)) {
        error = "pool '" + pool.name + "' server '" + server.spec + "': " + why;
        return nullptr;
      }
      loaded->server_endpoints[p].push_back(endpoint);
    }
    if (pool.tls) {
      std::string why;
      ssl_ctx_st* context = backends::make_client_context(*pool.tls, why);
      if (context == nullptr) {
        error = "pool '" + pool.name + "': TLS: " + why;
        return nullptr;
      }
      loaded->pool_tls[p].reset(context, TlsContextFree());
    }
  }
  for (const auto& listener : config->listeners) {
    std::shared_ptr<ListenerTls> tls;
    if (listener.tls) {
      tls = std::make_shared<ListenerTls>(*listener.tls);
      std::string why;
      if (!tls->load(why)) {
        error = "listener '" + listener.name + "': TLS: " + why;
        return nullptr;
      }
    }
    loaded->listener_tls.push_back(std::move(tls));
    auto& count = open_connections_[listener.name];
    if (!count) count = std::make_shared<std::atomic<uint32_t>>(0);
    loaded->open_connections.push_back(count);
  }
  loaded->config = std::move(config);
  return loaded;
}

bool App::rebind(const LoadedConfig& loaded,
                 std::vector<std::vector<Worker::ListenerChange>>& opened,
                 std::vector<std::string>& closed, std::map<std::string, tcp::endpoint>& bound,
                 std::string& error) {
  opened.clear();
  opened.resize(workers_.size());
  const auto& listeners = loaded.config->listeners;
  for (const auto& [name, was] : bound_) {
    bool kept = false;
    for (const auto& listener : listeners)
      kept = kept || (listener.name == name && listener.host == was.host &&
                      listener.port == was.port && listener.backlog == was.backlog);
    if (!kept) closed.push_back(name);
  }
  for (const auto& listener : listeners) {
    auto it = bound_.find(listener.name);
    if (it != bound_.end() && listener.host == it->second.host &&
        listener.port == it->second.port && listener.backlog == it->second.backlog)
      continue;
    tcp::endpoint endpoint;
    if (!resolve(main_io_, listener.host, listener.port, endpoint, error)) {
      error = "listener '" + listener.name + "': " + error;
      return false;
    }
    // A port a listener closed by this reload holds (a listener renamed, or moved onto the
    // port another leaves) is not free to a plain bind, and needs no proof that nobody else
    // holds it. Any other port this process holds fails the probe, as at start-up.
    bool ours = false;
    for (const auto& name : closed) {
      auto held = bound_.find(name);
      ours = ours || (held != bound_.end() && held->second.endpoint == endpoint);
    }
    boost::system::error_code probe_error;
    if (!ours && !port_is_free(main_io_, endpoint, probe_error)) {
      error = "listener '" + listener.name + "' on " + describe(endpoint) + ": " +
              probe_error.message();
      return false;
    }
    for (size_t w = 0; w < workers_.size(); ++w) {
      std::string why;
      auto acceptor = workers_[w]->bind_listener(endpoint, listener.backlog, why);
      if (!acceptor) {
        error = "listener '" + listener.name + "' on " + describe(endpoint) + ": " + why;
        return false;
      }
      // The first worker binds what was asked (port 0 picks a free port); the others bind the
      // port it got, so they all share one.
      if (w == 0) endpoint = acceptor->local_endpoint();
      opened[w].push_back(Worker::ListenerChange{listener.name, std::move(acceptor)});
    }
    bound[listener.name] = endpoint;
  }
  return true;
}

void App::reload(const char* why) {
  log(LogLevel::kInfo, why, ": reloading the configuration from ", path_);
  config_stamp_ = stamp_of(path_);
  std::string error;
  bool invalid = false;
  auto loaded = prepare(error, invalid);
  std::vector<std::vector<Worker::ListenerChange>> opened;
  std::vector<std::string> closed;
  std::map<std::string, tcp::endpoint> bound;
  if (loaded && !rebind(*loaded, opened, closed, bound, error)) loaded = nullptr;
  if (!loaded) {
    // Acceptors bound for it close as `opened` goes.
    log(LogLevel::kError, "configuration reload failed, the running configuration stays:\n", error);
    std::lock_guard<std::mutex> lock(state_mutex_);
    ++registry_.reloads_failed;
    last_reload_error_ = error;
    return;
  }
  authenticator_->reload(loaded->config);
  // The admin endpoint's certificate is read again too, as the listeners' are.
  if (admin_server_) admin_server_->reload_tls(false);
  set_log_json(loaded->config->log_format == config::LogFormat::kJson);
  // Every worker swaps on its own thread; wait for all of them before reporting.
  std::mutex mutex;
  std::condition_variable all_done;
  size_t remaining = workers_.size();
  for (size_t w = 0; w < workers_.size(); ++w) {
    workers_[w]->apply(loaded, closed, std::move(opened[w]), [&] {
      std::lock_guard<std::mutex> lock(mutex);
      if (--remaining == 0) all_done.notify_one();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    all_done.wait(lock, [&] { return remaining == 0; });
  }
  for (const auto& name : closed) {
    if (!bound.count(name)) log(LogLevel::kInfo, "listener '", name, "' closed");
    bound_.erase(name);
  }
  for (const auto& listener : loaded->config->listeners) {
    auto it = bound.find(listener.name);
    if (it == bound.end()) continue;
    bound_[listener.name] = Bound{listener.host, listener.port, listener.backlog, it->second};
    log(LogLevel::kInfo, "listener '", listener.name, "' on ", describe(it->second), " (",
        config::to_string(listener.protocol), ")");
  }
  loaded_ = loaded;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    published_ = loaded;
    ++registry_.reloads_ok;
    registry_.config_generation = loaded->number;
    last_reload_error_.clear();
  }
  log(LogLevel::kInfo, "configuration ", loaded->number, " (sha256 ", loaded->hash.substr(0, 12),
      ") is running");
}

void App::watch() {
  watch_timer_.expires_after(kWatchInterval);
  watch_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    if (!draining_) {
      if (stamp_of(path_) != config_stamp_) {
        reload("the configuration file changed");
      } else {
        // Certificates renewed in place (a Kubernetes Secret update) without a config change.
        for (size_t l = 0; l < loaded_->listener_tls.size(); ++l) {
          ListenerTls* tls = loaded_->listener_tls[l].get();
          if (tls == nullptr || !tls->files_changed()) continue;
          std::string error;
          const auto& name = loaded_->config->listeners[l].name;
          if (tls->load(error)) {
            log(LogLevel::kInfo, "listener '", name, "': TLS certificate and key reloaded");
          } else {
            log(LogLevel::kError, "listener '", name,
                "': TLS reload failed, keeping the previous certificate: ", error);
          }
        }
        if (admin_server_) admin_server_->reload_tls(true);
      }
    }
    watch();
  });
}

void App::begin_drain() {
  draining_ = true;
  const auto timeout = loaded_->config->drain_timeout;
  log(LogLevel::kInfo, "draining: listeners closed, waiting up to ",
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(),
      " ms for requests in flight");
  drained_workers_ = 0;
  for (auto& worker : workers_) {
    worker->drain([this] {
      asio::post(main_io_, [this] {
        if (++drained_workers_ == workers_.size() && !stopping_) {
          log(LogLevel::kInfo, "drained: every client connection finished");
          stopping_ = true;
        }
      });
    });
  }
  drain_timer_.expires_after(timeout);
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    log(LogLevel::kWarning, "drain_timeout passed with requests still in flight; stopping");
    stopping_ = true;
  });
}

AdminState App::admin_state() {
  AdminState state;
  std::lock_guard<std::mutex> lock(state_mutex_);
  state.loaded = published_;
  state.last_reload_error = last_reload_error_;
  state.running = running_;
  state.draining = draining_;
  return state;
}

AdminResponse App::admin(const AdminRequest& request) {
  return handle_admin_request(request, admin_state(), registry_);
}

int App::run() {
  std::string error;
  bool invalid = false;
  auto loaded = prepare(error, invalid);
  if (!loaded && invalid) {
    // As --check-config prints them: one problem per line, with its line:column.
    std::cerr << error << "\n";
    return 2;
  }
  if (!loaded) {
    log(LogLevel::kError, error);
    return 1;
  }
  config_stamp_ = stamp_of(path_);
  const config::Config& config = *loaded->config;
  set_log_json(config.log_format == config::LogFormat::kJson);
  raise_open_files_limit(config);
  backends::set_warning_sink(
      [](std::string_view message) { write_log(LogLevel::kWarning, message); });
  loaded_ = loaded;
  published_ = loaded;
  authenticator_ = std::make_unique<Authenticator>(loaded->config);
  for (unsigned i = 0; i < config.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, loaded, registry_, *authenticator_));
    registry_.add(workers_.back().get());
  }
  std::vector<std::vector<Worker::ListenerChange>> opened;
  std::vector<std::string> closed;
  std::map<std::string, tcp::endpoint> bound;
  if (!rebind(*loaded, opened, closed, bound, error)) {
    log(LogLevel::kError, error);
    return 1;
  }
  for (size_t w = 0; w < workers_.size(); ++w)
    for (auto& change : opened[w])
      workers_[w]->add_listener(change.name, std::move(change.acceptor));
  for (const auto& listener : config.listeners) {
    const auto& endpoint = bound.at(listener.name);
    bound_[listener.name] = Bound{listener.host, listener.port, listener.backlog, endpoint};
    log(LogLevel::kInfo, "listener '", listener.name, "' on ", describe(endpoint), " (",
        config::to_string(listener.protocol), ") -> ",
        listener.route.empty() ? "pool '" + listener.pool + "'" : "route '" + listener.route + "'");
  }
  if (config.admin) {
    admin_server_ = std::make_unique<AdminServer>(
        *config.admin, [this](const AdminRequest& request) { return admin(request); });
    if (!admin_server_->start(error)) return 1;  // start() has logged why
  }

  // Writes to a closed peer must come back as EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(main_io_, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          if (!draining_) reload("SIGHUP");
        } else if (draining_) {
          log(LogLevel::kInfo, "signal ", signal, " while draining: stopping now");
          stopping_ = true;
        } else {
          log(LogLevel::kInfo, "signal ", signal, ": draining");
          begin_drain();
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  watch();

  for (auto& worker : workers_)
    worker->start();
  running_ = true;
  log(LogLevel::kInfo, "cachegate ", kVersion, " running with ", config.workers, " worker",
      config.workers == 1 ? "" : "s", "; configuration sha256 ", loaded->hash.substr(0, 12));

  while (!stopping_)
    main_io_.run_one();
  running_ = false;
  watch_timer_.cancel();
  drain_timer_.cancel();
  if (admin_server_) admin_server_->stop();
  for (auto& worker : workers_)
    worker->stop();
  for (auto& worker : workers_)
    worker->join();
  authenticator_->stop();
  workers_.clear();
  log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace

int run_proxy(const std::string& config_path) {
  App app(config_path);
  return app.run();
}

}  // namespace cachegate::proxy
