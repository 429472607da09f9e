#pragma once

// Route explain: which rule a request takes and which servers its key reaches, worked out from
// the configuration alone (every server taken as live), without starting anything — what
// `cachegate route` prints, like mcrouter's route(op, key).

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace cachegate::routing {

// An operation by class name (read, write, delete, arithmetic, admin) or by command name in the
// listener's protocol: memcached's (get, set, delete, incr, mg, ms, flush_all …) or Redis's
// (GET, SET, DEL, INCRBY, FLUSHALL …, any case; by the command table's flags).
std::optional<config::RouteOp> parse_route_op(std::string_view name, config::Protocol protocol);

// The explanation as text, or nullopt with `error` set (no such listener, unknown operation).
// `user` is empty for an anonymous client.
std::optional<std::string> explain_route(const config::Config& config, std::string_view listener,
                                         std::string_view op, std::string_view key,
                                         std::string_view user, std::string& error);

}  // namespace cachegate::routing
