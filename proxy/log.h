#pragma once

// Leveled logging to stderr, one line per call, never from the request path's happy case.
// Never pass secrets or cached values here.

#include <sstream>
#include <string>
#include <string_view>

namespace cachegate::proxy {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void set_log_level(LogLevel level);
// Text lines (the default) or one JSON object per line.
void set_log_json(bool json);
// One log line, with its newline, as write_log() prints it: "<time> <level> [<thread>] <message>"
// or {"time":"…","level":"…","thread":"…","message":"…"} with the strings JSON-escaped (control
// characters as \u00XX, so a line is always one line).
std::string format_log_line(bool json, std::string_view time, LogLevel level,
                            std::string_view thread, std::string_view message);
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
