#pragma once

// Per-user key namespaces: the replies that name keys, with the namespace taken off again.
//
// A user with `namespace: "tenant-a:"` has every key it sends stored as "tenant-a:<key>"; the
// proxy sessions put the prefix in front of the keys of each request (they know where the keys
// are). What comes back naming keys is rewritten here, so a tenant sees only its own key names:
// memcached VALUE lines, meta replies with the k flag (base64 or not) and ME lines; Redis KEYS
// and SCAN results (keys without the prefix are dropped: a tenant never learns another's key
// names), and the key a LMPOP/ZMPOP or XREAD reply names.

#include <cstdint>
#include <string>
#include <string_view>

namespace cachegate::protocol {

// `literal` with Redis glob's special characters (*, ?, [, ], \) escaped, so that a pattern
// starting with it matches exactly the keys starting with it.
void append_glob_escaped(std::string_view literal, std::string& out);

namespace memcache {

// A complete retrieval reply (VALUE items, END) with `prefix` taken off every key (and
// `replacement` put in its place: a route rule's rewrite undone).
void strip_value_keys(std::string_view reply, std::string_view prefix, std::string& out,
                      std::string_view replacement = {});

// A complete meta reply (one reply, or a quiet request's reply and the MN after it) with `prefix`
// taken off the key it echoes: the k flag's value and the key of an ME line. A key memcached
// echoes in base64 (a binary key: the reply line has the b flag; ME lines are not marked) is
// decoded, stripped and encoded again.
void strip_meta_keys(std::string_view reply, std::string_view prefix, std::string& out,
                     std::string_view replacement = {});

}  // namespace memcache

namespace resp {

// Which part of a reply names keys.
enum class KeyReply : uint8_t {
  kNone,
  kKeyList,   // KEYS: an array of keys
  kScan,      // SCAN: [cursor, array of keys]
  kKeyFirst,  // LMPOP, ZMPOP, BLPOP, BZPOPMIN …: [key, elements…] or null
  kStreams,   // XREAD, XREADGROUP: [[key, entries], …] (RESP3: a map key → entries) or null
};

// Writes `reply` with `prefix` taken off the keys it names and returns true; returns false, and
// leaves out alone, when the reply is not of that shape (an error, a null): it names no keys
// and goes to the client unchanged.
bool strip_reply_keys(std::string_view reply, KeyReply kind, std::string_view prefix,
                      std::string& out, std::string_view replacement = {});

}  // namespace resp

}  // namespace cachegate::protocol
