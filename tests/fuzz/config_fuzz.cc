// libFuzzer target: the configuration loader on arbitrary YAML text. Whatever the text, loading
// returns a configuration or errors, each with its position; it never crashes or hangs.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return 0;  // configurations are small; large inputs only slow the search
  const auto result = cachegate::config::load_config_string(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  for (const auto& error : result.errors)
    if (error.message.empty()) std::abort();
  return 0;
}
