#pragma once

// Loading and validating YAML configuration.
//
// The only module where exceptions are normal: yaml-cpp throws, and so may the code behind these
// functions, but nothing escapes them — every problem becomes a ConfigError naming the YAML path
// and line:column, and all problems of one file are reported together.

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace cachegate::config {

struct ConfigError {
  std::string path;  // YAML path, e.g. "pools.cache.servers[1]"
  SourceLocation where;
  std::string message;
};

struct LoadResult {
  Config config;                    // meaningful only when errors is empty
  std::vector<ConfigError> errors;  // every problem found, in document order
  bool ok() const { return errors.empty(); }
};

// Parses and validates the YAML text. `source_name` is used in messages (usually the path).
LoadResult load_config_string(std::string_view yaml, std::string_view source_name);

// Reads the file and calls load_config_string; an unreadable file is one error at 0:0.
LoadResult load_config_file(const std::string& path);

// "file:line:column: path: message", one per line.
std::string format_errors(const LoadResult& result);

// Parses one twemproxy server line, "host:port:weight [name]" (IPv6 as "[::1]:port:weight").
// Returns an empty string on success, or what is wrong with it.
std::string parse_server_spec(std::string_view spec, ServerConfig& out);

}  // namespace cachegate::config
