#pragma once

// The process: resolve addresses, open listeners, start the workers, wait for a signal.

#include <string>

namespace cachegate::proxy {

// Runs the proxy with the configuration file at `config_path` until SIGTERM or SIGINT (which
// drain first), reloading it on SIGHUP and when the file changes. Returns the process exit code:
// 0 after a stop, 2 when the file is invalid, 1 when start-up fails (the reason is logged).
int run_proxy(const std::string& config_path);

}  // namespace cachegate::proxy
