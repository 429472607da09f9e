#pragma once

// Leveled logging to stderr, one line per call, never from the request path's happy case.
// Never pass secrets or cached values here.

#include <sstream>
#include <string>
#include <string_view>

namespace cachegate::proxy {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void set_thread_log_name(std::string name);
void write_log(LogLevel level, std::string_view message);

template <class... Args>
void log(LogLevel level, const Args&... args) {
  if (!log_enabled(level)) return;
  std::ostringstream out;
  (out << ... << args);
  write_log(level, out.str());
}

}  // namespace cachegate::proxy
