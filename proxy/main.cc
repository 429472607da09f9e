// cachegate: a caching reverse proxy for memcached (and Redis) fleets.

#include <cstring>
#include <iostream>
#include <string>

#include "cachegate/version.h"
#include "config/load.h"
#include "proxy/app.h"
#include "proxy/log.h"

namespace {

constexpr const char kUsage[] =
    "usage: cachegate -c FILE            run the proxy with the configuration in FILE\n"
    "       cachegate --check-config FILE  validate FILE; exit 0 if valid, else print every\n"
    "                                      problem with its line:column and exit 2\n"
    "       cachegate --version            print the version\n"
    "       cachegate --help               print this help\n"
    "options:\n"
    "  -v, --verbose                       log debug messages too\n"
    "  -q, --quiet                         log warnings and errors only\n";

int usage_error(const std::string& message) {
  std::cerr << "cachegate: " << message << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cachegate;
  std::string config_path;
  std::string check_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version" || arg == "-V") {
      std::cout << "cachegate " << kVersion << "\n";
      return 0;
    }
    if (arg == "-v" || arg == "--verbose") {
      proxy::set_log_level(proxy::LogLevel::kDebug);
    } else if (arg == "-q" || arg == "--quiet") {
      proxy::set_log_level(proxy::LogLevel::kWarning);
    } else if (arg == "-c" || arg == "--config") {
      if (++i >= argc) return usage_error(arg + " needs a file");
      config_path = argv[i];
    } else if (arg == "--check-config" || arg == "-t") {
      if (++i >= argc) return usage_error(arg + " needs a file");
      check_path = argv[i];
    } else {
      return usage_error("unknown argument '" + arg + "'");
    }
  }

  if (!check_path.empty()) {
    auto result = config::load_config_file(check_path);
    if (!result.ok()) {
      std::cerr << config::format_errors(result);
      return 2;
    }
    std::cout << check_path << ": configuration is valid\n";
    return 0;
  }
  if (config_path.empty()) return usage_error("no configuration file (-c FILE)");

  auto result = config::load_config_file(config_path);
  if (!result.ok()) {
    std::cerr << config::format_errors(result);
    return 2;
  }
  return proxy::run_proxy(result.config);
}
