#pragma once

// The process: resolve addresses, open listeners, start the workers, wait for a signal.

#include "config/config.h"

namespace cachegate::proxy {

// Runs the proxy for `config` until SIGINT or SIGTERM. Returns the process exit code: 0 after a
// clean stop, 1 when start-up fails (the reason is logged).
int run_proxy(const config::Config& config);

}  // namespace cachegate::proxy
