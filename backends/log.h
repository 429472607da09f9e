#pragma once

// Warnings from the backend layer (a server refusing the handshake, …). The process decides where
// they go (proxy/ installs its logger); without a sink they go to stderr. Never pass secrets.

#include <sstream>
#include <string_view>

namespace cachegate::backends {

using WarningSink = void (*)(std::string_view message);
void set_warning_sink(WarningSink sink);
void warn(std::string_view message);

template <class... Args>
void log_warning(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  warn(out.str());
}

}  // namespace cachegate::backends
