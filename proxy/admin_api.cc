#include "proxy/admin_api.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <map>

#include "cachegate/version.h"
#include "config/redact.h"
#include "proxy/counters.h"
#include "proxy/worker.h"
#include "routing/explain.h"

namespace cachegate::proxy {

namespace {

// A metric family read from one field of a figures struct: its name, type, help and field.
template <class Field>
struct Family {
  const char* name;
  const char* type;
  const char* help;
  Field field;
};

using backends::LatencyHistogram;

std::string_view failure_name(size_t kind) {
  return routing::failure_name(static_cast<routing::Failure>(kind));
}
std::string op_name(size_t op) {
  return std::string(config::to_string(static_cast<config::RouteOp>(op)));
}

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string label_value(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string json_string(std::string_view value) {
  std::string out = "\"";
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

std::string seconds_text(double seconds) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", seconds);
  return text;
}

// Writes metric families: each family's HELP and TYPE, then its samples, contiguous.
class Metrics {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels`: pairs of name and value.
  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
              const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i) out_ += ',';
        out_ += labels[i].first + "=\"" + label_value(labels[i].second) + '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
              uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  // A histogram's samples from LatencyHistogram slots.
  void histogram(std::string_view name, std::vector<std::pair<std::string, std::string>> labels,
                 const std::array<uint64_t, LatencyHistogram::kSlots>& counts, uint64_t sum_us) {
    uint64_t cumulative = 0;
    const std::string bucket = std::string(name) + "_bucket";
    for (size_t b = 0; b < LatencyHistogram::kSlots; ++b) {
      cumulative += counts[b];
      auto with_le = labels;
      with_le.emplace_back("le", b < LatencyHistogram::kBoundsUs.size()
                                     ? seconds_text(LatencyHistogram::kBoundsUs[b] / 1e6)
                                     : "+Inf");
      sample(bucket, with_le, cumulative);
    }
    sample(std::string(name) + "_sum", labels, seconds_text(sum_us / 1e6));
    sample(std::string(name) + "_count", labels, cumulative);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string iso_time(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string query_value(const AdminRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.query)
    if (key == name) return value;
  return {};
}

bool has_query(const AdminRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.query)
    if (key == name) return true;
  return false;
}

std::string servers_json(const Registry& registry) {
  std::string out = "{\"servers\":[";
  bool first = true;
  for (const ServerFigures& f : server_figures(registry)) {
    if (!first) out += ',';
    first = false;
    const char* state = f.ejected_in_workers == f.workers   ? "ejected"
                        : f.failing_in_workers == f.workers ? "failing"
                        : f.connections > 0                 ? "connected"
                                                            : "idle";
    uint64_t count = 0;
    for (uint64_t c : f.latency_counts)
      count += c;
    out += "{\"pool\":" + json_string(f.pool) + ",\"server\":" + json_string(f.server) +
           ",\"host\":" + json_string(f.host) + ",\"port\":" + std::to_string(f.port) +
           ",\"state\":\"" + state + "\",\"workers\":" + std::to_string(f.workers) +
           ",\"ejected_in_workers\":" + std::to_string(f.ejected_in_workers) +
           ",\"failing_in_workers\":" + std::to_string(f.failing_in_workers) +
           ",\"connections\":" + std::to_string(f.connections) +
           ",\"in_flight\":" + std::to_string(f.in_flight) +
           ",\"requests\":" + std::to_string(f.requests) +
           ",\"replies\":" + std::to_string(f.replies) +
           ",\"error_replies\":" + std::to_string(f.error_replies) +
           ",\"failures\":" + std::to_string(f.failures) + ",\"failures_by_kind\":{";
    for (size_t k = 0; k < routing::kFailureKinds; ++k)
      out += std::string(k ? "," : "") + "\"" + std::string(failure_name(k)) +
             "\":" + std::to_string(f.failures_by_kind[k]);
    out += "},\"ejections\":" + std::to_string(f.ejections) +
           ",\"connects\":" + std::to_string(f.connects) +
           ",\"connect_failures\":" + std::to_string(f.connect_failures) +
           ",\"dedicated_connections\":" + std::to_string(f.dedicated_open) +
           ",\"latency_mean_seconds\":" +
           seconds_text(count == 0 ? 0.0 : f.latency_sum_us / 1e6 / static_cast<double>(count)) +
           "}";
  }
  out += "]}\n";
  return out;
}

AdminResponse text(unsigned status, std::string body) {
  AdminResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

}  // namespace

std::string readiness_problems(const AdminState& state, const Registry& registry) {
  if (!state.running) return "not started\n";
  if (state.draining) return "draining\n";
  std::string problems;
  const auto figures = server_figures(registry);
  for (const auto& pool : state.loaded->config->pools) {
    bool live = false;
    for (const ServerFigures& f : figures)
      live = live || (f.pool == pool.name && f.ejected_in_workers < f.workers &&
                      f.failing_in_workers < f.workers);
    if (!live) problems += "pool '" + pool.name + "' has no live server\n";
  }
  return problems;
}

std::string render_metrics(const AdminState& state, const Registry& registry) {
  Metrics m;
  const auto& loaded = *state.loaded;
  using Labels = std::vector<std::pair<std::string, std::string>>;

  m.family("cachegate_build_info", "gauge", "The running version of cachegate.");
  m.sample("cachegate_build_info", {{"version", kVersion}}, 1);
  m.family("cachegate_workers", "gauge", "Worker threads.");
  m.sample("cachegate_workers", {}, registry.workers().size());
  m.family("cachegate_uptime_seconds", "gauge", "Seconds since the process started.");
  m.sample("cachegate_uptime_seconds", {},
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - registry.started())
                              .count()));
  m.family("cachegate_ready", "gauge", "1 when /readyz answers 200.");
  m.sample("cachegate_ready", {}, readiness_problems(state, registry).empty() ? 1 : 0);
  m.family("cachegate_draining", "gauge", "1 after SIGTERM, while requests in flight finish.");
  m.sample("cachegate_draining", {}, state.draining ? 1 : 0);

  m.family("cachegate_config_reloads_total", "counter",
           "Configuration reloads (SIGHUP or a changed file), by result.");
  m.sample("cachegate_config_reloads_total", {{"result", "ok"}}, registry.reloads_ok.load());
  m.sample("cachegate_config_reloads_total", {{"result", "failed"}},
           registry.reloads_failed.load());
  m.family("cachegate_config_info", "gauge", "The running configuration's SHA-256.");
  m.sample("cachegate_config_info", {{"sha256", loaded.hash}}, 1);
  m.family("cachegate_config_generation", "gauge",
           "1 for the configuration loaded at start, one more per successful reload.");
  m.sample("cachegate_config_generation", {}, loaded.number);
  m.family("cachegate_config_loaded_timestamp_seconds", "gauge",
           "When the running configuration was loaded (Unix time).");
  m.sample("cachegate_config_loaded_timestamp_seconds", {},
           std::to_string(
               std::chrono::duration_cast<std::chrono::seconds>(loaded.loaded_at.time_since_epoch())
                   .count()));
  m.family("cachegate_config_age_seconds", "gauge",
           "Seconds since the running configuration was loaded.");
  m.sample("cachegate_config_age_seconds", {},
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now() - loaded.loaded_at)
                              .count()));

  // Listeners.
  const auto listeners = listener_figures(registry);
  const Family<uint64_t ListenerFigures::*> listener_families[] = {
      {"cachegate_listener_connections", "gauge", "Open client connections.",
       &ListenerFigures::open},
      {"cachegate_listener_connections_accepted_total", "counter", "Client connections accepted.",
       &ListenerFigures::accepted},
      {"cachegate_listener_connections_rejected_total", "counter",
       "Client connections closed at accept: max_connections was reached.",
       &ListenerFigures::rejected},
      {"cachegate_listener_tls_handshakes_total", "counter", "Completed TLS handshakes.",
       &ListenerFigures::handshakes},
      {"cachegate_listener_tls_handshake_failures_total", "counter",
       "TLS handshakes refused, broken or timed out.", &ListenerFigures::handshake_failures},
      {"cachegate_listener_auth_failures_total", "counter", "Refused password logins.",
       &ListenerFigures::auth_failures},
      {"cachegate_listener_requests_total", "counter",
       "Requests answered through a reply slot (forwarded to servers, or queued behind them).",
       &ListenerFigures::requests},
      {"cachegate_listener_slow_requests_total", "counter",
       "Requests slower than slow_log.threshold.", &ListenerFigures::slow},
  };
  for (const auto& family : listener_families) {
    m.family(family.name, family.type, family.help);
    for (const auto& [name, t] : listeners)
      m.sample(family.name, {{"listener", name}}, t.*family.field);
  }
  m.family("cachegate_listener_request_duration_seconds", "histogram",
           "From reading a request to queueing its reply for the client.");
  for (const auto& [name, t] : listeners)
    m.histogram("cachegate_listener_request_duration_seconds", {{"listener", name}}, t.latency,
                t.latency_sum_us);

  // Pools.
  const auto pool_ops = pool_figures(registry);
  m.family("cachegate_pool_requests_total", "counter",
           "Keys routed to the pool (a multi-key request counts each key; a rule with several "
           "pools counts on its first), by operation.");
  for (const auto& [name, ops] : pool_ops)
    for (size_t op = 0; op < ops.size(); ++op)
      m.sample("cachegate_pool_requests_total", {{"pool", name}, {"op", op_name(op)}}, ops[op]);
  const auto servers = server_figures(registry);
  std::map<std::string, std::pair<std::array<uint64_t, LatencyHistogram::kSlots>, uint64_t>>
      pool_latency;
  for (const auto& f : servers) {
    auto& [counts, sum] = pool_latency[f.pool];
    for (size_t b = 0; b < counts.size(); ++b)
      counts[b] += f.latency_counts[b];
    sum += f.latency_sum_us;
  }
  m.family("cachegate_pool_request_duration_seconds", "histogram",
           "From sending a request to a server of the pool to reading its reply.");
  for (const auto& [name, latency] : pool_latency)
    m.histogram("cachegate_pool_request_duration_seconds", {{"pool", name}}, latency.first,
                latency.second);

  // Servers.
  // `server` is the name people know it by; `address` keeps two servers apart when a name
  // happens to be another server's address.
  auto server_labels = [](const ServerFigures& f) {
    return Labels{
        {"pool", f.pool}, {"server", f.server}, {"address", f.host + ":" + std::to_string(f.port)}};
  };
  const Family<uint64_t ServerFigures::*> server_families[] = {
      {"cachegate_server_requests_total", "counter", "Requests sent to the server.",
       &ServerFigures::requests},
      {"cachegate_server_replies_total", "counter", "Replies read from the server.",
       &ServerFigures::replies},
      {"cachegate_server_error_replies_total", "counter",
       "Replies that are errors (SERVER_ERROR, -ERR …).", &ServerFigures::error_replies},
      {"cachegate_server_timeouts_total", "counter", "Requests that timed out.",
       &ServerFigures::timeouts},
      {"cachegate_server_ejections_total", "counter",
       "Times the server was taken out of its pool (auto_eject_hosts).", &ServerFigures::ejections},
      {"cachegate_server_connects_total", "counter", "Connections opened.",
       &ServerFigures::connects},
      {"cachegate_server_connect_failures_total", "counter", "Connections that failed to open.",
       &ServerFigures::connect_failures},
      {"cachegate_server_connections", "gauge", "Open connections.", &ServerFigures::connections},
      {"cachegate_server_in_flight", "gauge", "Requests waiting for a reply.",
       &ServerFigures::in_flight},
      {"cachegate_server_dedicated_connections", "gauge",
       "Connections for one client alone (Redis transactions, blocking commands, WAIT, "
       "subscriptions), in use or kept for reuse.",
       &ServerFigures::dedicated_open},
      {"cachegate_server_dedicated_refused_total", "counter",
       "Requests refused a connection of their own: the pool's dedicated_connections were all "
       "taken.",
       &ServerFigures::dedicated_refused},
  };
  for (const auto& family : server_families) {
    m.family(family.name, family.type, family.help);
    for (const auto& f : servers)
      m.sample(family.name, server_labels(f), f.*family.field);
  }
  m.family("cachegate_server_failures_total", "counter",
           "Requests that got no reply, by kind (timeout, connect, closed, unavailable, "
           "no_server, protocol).");
  for (const auto& f : servers)
    for (size_t k = 0; k < routing::kFailureKinds; ++k) {
      auto labels = server_labels(f);
      labels.emplace_back("kind", failure_name(k));
      m.sample("cachegate_server_failures_total", labels, f.failures_by_kind[k]);
    }
  m.family("cachegate_server_ejected", "gauge", "Workers whose pool has the server ejected now.");
  for (const auto& f : servers)
    m.sample("cachegate_server_ejected", server_labels(f), f.ejected_in_workers);

  // Routes.
  using routing::RouteCounters;
  const Family<std::atomic<uint64_t> RouteCounters::*> route_families[] = {
      {"cachegate_route_requests_total", "counter",
       "Requests through a rule that is not a plain pool.", &RouteCounters::routed},
      {"cachegate_route_replica_failures_total", "counter",
       "Replicated writes that failed on one pool.", &RouteCounters::replica_failures},
      {"cachegate_route_failovers_total", "counter", "Attempts moved to the next pool.",
       &RouteCounters::failovers},
      {"cachegate_route_async_pending", "gauge", "all-async writes still out.",
       &RouteCounters::async_pending},
      {"cachegate_route_async_dropped_total", "counter",
       "all-async writes not sent: too many were out.", &RouteCounters::async_dropped},
      {"cachegate_route_shadow_sent_total", "counter", "Shadow copies sent.",
       &RouteCounters::shadow_sent},
      {"cachegate_route_shadow_failures_total", "counter",
       "Shadow copies that failed or got an error reply.", &RouteCounters::shadow_failures},
      {"cachegate_route_shadow_dropped_total", "counter",
       "Shadow copies not sent: too many out, or the server is down.",
       &RouteCounters::shadow_dropped},
      {"cachegate_route_warmup_fills_total", "counter", "Items copied from a warm to a cold pool.",
       &RouteCounters::warmup_fills},
  };
  std::map<std::string, std::vector<uint64_t>> routes;
  for (Worker* w : registry.workers())
    w->read_route_counters([&](const std::string& name, const RouteCounters& c) {
      auto& values = routes[name];
      values.resize(std::size(route_families));
      for (size_t i = 0; i < std::size(route_families); ++i)
        values[i] += (c.*route_families[i].field).load(std::memory_order_relaxed);
    });
  for (size_t i = 0; i < std::size(route_families); ++i) {
    m.family(route_families[i].name, route_families[i].type, route_families[i].help);
    for (const auto& [name, values] : routes)
      m.sample(route_families[i].name, {{"route", name}}, values[i]);
  }
  return m.take();
}

AdminResponse handle_admin_request(const AdminRequest& request, const AdminState& state,
                                   const Registry& registry) {
  if (request.path == "/healthz") return text(200, "ok\n");
  if (request.path == "/readyz") {
    std::string problems = readiness_problems(state, registry);
    if (problems.empty()) return text(200, "ready\n");
    return text(503, std::move(problems));
  }
  if (request.path == "/metrics") {
    AdminResponse response = text(200, render_metrics(state, registry));
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return response;
  }
  if (request.path == "/config") {
    const auto& loaded = *state.loaded;
    AdminResponse response =
        text(200, "# sha256: " + loaded.hash + "\n# loaded: " + iso_time(loaded.loaded_at) +
                      "\n# generation: " + std::to_string(loaded.number) + "\n" +
                      config::redacted_config_yaml(loaded.text));
    if (!response.body.empty() && response.body.back() != '\n') response.body.push_back('\n');
    response.content_type = "application/yaml; charset=utf-8";
    return response;
  }
  if (request.path == "/routes") {
    if (!has_query(request, "listener") || !has_query(request, "op") || !has_query(request, "key"))
      return text(400, "usage: /routes?listener=NAME&op=OP&key=KEY[&user=NAME]\n");
    std::string error;
    auto explanation = routing::explain_route(
        *state.loaded->config, query_value(request, "listener"), query_value(request, "op"),
        query_value(request, "key"), query_value(request, "user"), error);
    if (!explanation) return text(400, error + "\n");
    return text(200, std::move(*explanation));
  }
  if (request.path == "/servers") {
    AdminResponse response = text(200, servers_json(registry));
    response.content_type = "application/json";
    return response;
  }
  return text(404, "not found; try /healthz /readyz /metrics /config /routes /servers\n");
}

}  // namespace cachegate::proxy
