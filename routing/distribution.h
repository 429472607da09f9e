#pragma once

// Key → server placement for one pool, as twemproxy 0.5 computes it.
//
// A Distribution is an immutable snapshot built from the pool's server list and the set of
// servers currently live; it is rebuilt (cheaply, off the request path's hot loop) when a server
// is ejected or comes back. Lookup is a binary search over the ketama continuum, a modulo over
// the weighted server list, or a random pick — never an allocation.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "routing/hash.h"

namespace cachegate::routing {

struct RingServer {
  // See config::ServerConfig::identity. Identities within a pool must be distinct (twemproxy
  // rejects duplicate names); equal ones would share ketama points.
  std::string identity;
  uint32_t weight = 1;
};

class Distribution {
 public:
  static constexpr uint32_t kNoServer = UINT32_MAX;

  // `live[i]` says whether servers[i] takes part; `live` may be empty, meaning all are live.
  // Server indexes returned by server_for() are indexes into `servers`.
  Distribution(config::Distribution kind, config::HashFunction hash, std::string hash_tag,
               const std::vector<RingServer>& servers, const std::vector<bool>& live = {});

  // The server for `key`, or kNoServer when no server is live. Applies the hash tag, twemproxy's
  // one-server shortcut (a pool configured with one server never hashes) and the distribution.
  uint32_t server_for(std::string_view key) const;

  // The part of `key` that is hashed: the text between the hash tag's two characters when that
  // text is non-empty, else the whole key (twemproxy's rule).
  std::string_view hashed_part(std::string_view key) const;

  // The hash value used to place `key` (after hash-tag extraction; 0 for an empty key).
  uint32_t hash_of(std::string_view key) const;

  size_t live_servers() const { return live_count_; }
  size_t configured_servers() const { return configured_count_; }

  struct Point {
    uint32_t value;
    uint32_t server;
  };
  // The continuum (ketama: sorted points; modula: one entry per unit of weight; random: one
  // entry per live server). Exposed for tests and the route explainer. Like twemproxy, modula
  // and random list servers ordered by identity (shorter first, then bytewise), not in config
  // order: twemproxy sorts a pool's servers while validating its config and keeps that order.
  const std::vector<Point>& points() const { return points_; }

 private:
  config::Distribution kind_;
  HashFn hash_;
  std::string hash_tag_;
  size_t configured_count_ = 0;
  size_t live_count_ = 0;
  std::vector<Point> points_;
};

}  // namespace cachegate::routing
