#include "backends/log.h"

#include <atomic>
#include <cstdio>

namespace cachegate::backends {

namespace {
std::atomic<WarningSink> g_sink{nullptr};
}

void set_warning_sink(WarningSink sink) {
  g_sink.store(sink);
}

void warn(std::string_view message) {
  if (WarningSink sink = g_sink.load()) {
    sink(message);
  } else {
    std::fprintf(stderr, "warning: %.*s\n", static_cast<int>(message.size()), message.data());
  }
}

}  // namespace cachegate::backends
