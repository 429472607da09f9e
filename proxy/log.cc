#include "proxy/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace cachegate::proxy {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};
std::mutex g_mutex;
thread_local std::string t_name = "main";

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", u);
      out.append(escaped);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

std::string format_log_line(bool json, std::string_view time, LogLevel level,
                            std::string_view thread, std::string_view message) {
  std::string out;
  out.reserve(message.size() + 80);
  if (!json) {
    out.append(time);
    out.push_back(' ');
    out.append(level_name(level));
    out.append(" [");
    out.append(thread);
    out.append("] ");
    out.append(message);
  } else {
    out.append("{\"time\":");
    append_json_string(out, time);
    out.append(",\"level\":");
    append_json_string(out, level_name(level));
    out.append(",\"thread\":");
    append_json_string(out, thread);
    out.append(",\"message\":");
    append_json_string(out, message);
    out.push_back('}');
  }
  out.push_back('\n');
  return out;
}

void set_log_json(bool json) {
  g_json.store(json);
}

void set_log_level(LogLevel level) {
  g_level.store(static_cast<int>(level));
}
bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load();
}
void set_thread_log_name(std::string name) {
  t_name = std::move(name);
}

void write_log(LogLevel level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  const std::string line = format_log_line(g_json.load(), stamp, level, t_name, message);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace cachegate::proxy
