#pragma once

// What the admin endpoint answers (served by AdminServer on its own thread): health, readiness,
// Prometheus metrics, the running configuration, route explanations and backend servers.
//
//   /healthz   200 "ok" while the process runs
//   /readyz    200 "ready", or 503 with the reasons: not started yet, draining, or a pool with no
//              live server
//   /metrics   Prometheus text format 0.0.4
//   /config    the running configuration file, secrets redacted, with its SHA-256 and load time
//   /routes    ?listener=&op=&key=[&user=]: the rule and servers a request takes
//   /servers   every backend server of every pool, as JSON

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/admin_server.h"
#include "proxy/generation.h"
#include "proxy/stats.h"

namespace cachegate::proxy {

// The process's state as the admin endpoint sees it at one moment.
struct AdminState {
  std::shared_ptr<const LoadedConfig> loaded;
  std::string last_reload_error;
  bool running = false;
  bool draining = false;
};

AdminResponse handle_admin_request(const AdminRequest& request, const AdminState& state,
                                   const Registry& registry);

// The /metrics body: counters summed over the workers.
std::string render_metrics(const AdminState& state, const Registry& registry);

// Why the process is not ready; empty when it is.
std::string readiness_problems(const AdminState& state, const Registry& registry);

}  // namespace cachegate::proxy
