#include "config/load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cachegate::config {
namespace {

// ---------------------------------------------------------------------------------------------
// Bounds. Each exists so that a typo (an extra zero, a missing suffix) is caught here rather
// than turning into an allocation or a deadline the process cannot honour.

constexpr int64_t kMaxWorkers = 256;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
// Below 1 KiB a request line cannot hold a storage command with a maximal (250-byte) memcached
// key; above 1 GiB is past memcached's own ceiling for -I, so no backend could store it anyway.
constexpr uint64_t kMinSize = kKiB;
constexpr uint64_t kMaxSize = kGiB;

constexpr int64_t kMaxPipeline = 1 << 20;

// One day: far beyond any useful timeout, so anything larger is a typo (and deadline arithmetic
// stays far from overflow).
constexpr int64_t kMaxMillis = int64_t{24} * 3600 * 1000;

constexpr int64_t kMaxServerConnections = 1024;
constexpr int64_t kMaxFailureLimit = std::numeric_limits<int32_t>::max();
// Linux silently caps listen()'s backlog at net.core.somaxconn, itself at most 65535.
constexpr int64_t kMaxBacklog = 65535;
// twemproxy stores weights in an int; anything it accepted is accepted here.
constexpr uint64_t kMaxWeight = std::numeric_limits<int32_t>::max();

// twemproxy up to 0.4.1 formats ketama's "<name>-<index>" with snprintf into an 86-byte buffer
// (KETAMA_MAX_HOSTLEN) and then hashes as many bytes as snprintf wanted to write: a longer name
// overflows it, hashing bytes past the end of the buffer, so where such a server's keys went
// cannot be reproduced. 0.5.0 raised the buffer to 273 bytes. Up to 80 bytes (plus '-', four
// index digits and the terminator: 86) every twemproxy version and cachegate agree.
constexpr size_t kMaxServerName = 80;

// Pool and listener names end up in log lines and metric labels.
constexpr size_t kMaxName = 255;

// A configuration file is a few kilobytes; anything this large is the wrong file.
constexpr off_t kMaxFileSize = 16 * kMiB;

constexpr std::array kProtocols{Protocol::kMemcached, Protocol::kRedis};
constexpr std::array kDistributions{Distribution::kKetama, Distribution::kModula,
                                    Distribution::kRandom};
constexpr std::array kHashes{
    HashFunction::kOneAtATime, HashFunction::kMd5,     HashFunction::kCrc16,
    HashFunction::kCrc32,      HashFunction::kCrc32a,  HashFunction::kFnv1_64,
    HashFunction::kFnv1a_64,   HashFunction::kFnv1_32, HashFunction::kFnv1a_32,
    HashFunction::kHsieh,      HashFunction::kMurmur,  HashFunction::kJenkins,
};

constexpr std::array<std::string_view, 4> kRootKeys{"workers", "listeners", "pools", "limits"};
constexpr std::array<std::string_view, 5> kListenerKeys{"name", "listen", "protocol", "pool",
                                                        "backlog"};
constexpr std::array<std::string_view, 7> kLimitKeys{
    "item_size_max",          "request_line_max", "client_pipeline_max", "client_output_max",
    "client_output_hard_max", "reply_size_max",   "request_size_max"};
constexpr std::array<std::string_view, 21> kPoolKeys{
    "protocol",
    "redis",
    "distribution",
    "hash",
    "hash_tag",
    "timeout",
    "connect_timeout",
    "server_connections",
    "preconnect",
    "tcpkeepalive",
    "auto_eject_hosts",
    "server_retry_timeout",
    "server_failure_limit",
    "allow_flush",
    "listen",
    "backlog",
    "client_connections",
    "redis_auth",
    "redis_auth_file",
    "redis_db",
    "servers",
};

// ---------------------------------------------------------------------------------------------
// Text.

// Values are echoed in messages so the reader sees what was parsed; long ones are shortened so a
// pasted blob does not drown the message.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 60;
  if (s.size() > kMax) return "'" + std::string(s.substr(0, kMax)) + "...'";
  return "'" + std::string(s) + "'";
}

std::string at(SourceLocation w) {
  return std::to_string(w.line) + ":" + std::to_string(w.column);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n])
    ++n;
  return n;
}

// " (did you mean 'x'?)" for the closest candidate within two edits, else "". Ties go to the
// longer common prefix: "fnv1a64" is one edit from both fnv1_64 and fnv1a_64, and the 'a' typed
// says which was meant.
template <typename Range>
std::string suggestion(std::string_view word, const Range& candidates) {
  constexpr size_t kMaxDistance = 2;
  std::string_view best;
  size_t best_distance = kMaxDistance + 1;
  for (std::string_view c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance ||
        (d == best_distance && common_prefix(word, c) > common_prefix(word, best))) {
      best = c;
      best_distance = d;
    }
  }
  if (best_distance > kMaxDistance) return "";
  return " (did you mean '" + std::string(best) + "'?)";
}

std::string size_text(uint64_t bytes) {
  if (bytes != 0 && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "g";
  if (bytes != 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "m";
  if (bytes != 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "k";
  return std::to_string(bytes);
}

// A non-empty run of ASCII digits. Values past 64 bits saturate, so that callers report them as
// out of range rather than as not being numbers.
std::optional<uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  return value;
}

bool has_space_or_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= ' ' || u == 0x7f;
  });
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// ---------------------------------------------------------------------------------------------
// Addresses.

struct Host {
  std::string host;        // as stored in the config: no brackets
  std::string normalized;  // for duplicate detection: canonical IP text, or lower-case name
};

// Checks a host as written before ":port". Returns "" or a phrase that follows "has".
// Names are only checked for shape; resolution happens when connecting, not here.
std::string check_host(std::string_view text, bool allow_bare_ipv6, Host& out) {
  if (text.empty()) return "an empty host";
  const bool bracketed = text.front() == '[';
  if (bracketed || text.find(':') != std::string_view::npos) {
    if (bracketed && (text.size() < 2 || text.back() != ']'))
      return "an unterminated IPv6 address " + quoted(text);
    if (!bracketed && !allow_bare_ipv6)
      return "an IPv6 address without brackets (write it as [" + std::string(text) + "]:port)";
    const std::string literal(bracketed ? text.substr(1, text.size() - 2) : text);
    in6_addr a6;
    if (inet_pton(AF_INET6, literal.c_str(), &a6) != 1)
      return "an invalid IPv6 address " + quoted(text);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    out.host = literal;
    out.normalized = std::string("[") + buf + "]";
    return "";
  }
  const bool numeric = std::all_of(text.begin(), text.end(),
                                   [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (numeric) {
    in_addr a4;
    const std::string literal(text);
    if (inet_pton(AF_INET, literal.c_str(), &a4) != 1)
      return "an invalid IPv4 address " + quoted(text);
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a4, buf, sizeof buf);
    out.host = literal;
    out.normalized = buf;
    return "";
  }
  // DNS names: at most 253 characters, labels of letters, digits, '-' and '_' (the latter is
  // common in internal names), one optional trailing dot.
  std::string_view name = text;
  if (name.back() == '.') name.remove_suffix(1);
  bool valid = !name.empty() && name.size() <= 253 && name.front() != '.';
  for (size_t i = 0; valid && i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || (c == '.' && name[i - 1] != '.');
    valid = ok;
  }
  if (!valid) return "an invalid host name " + quoted(text);
  out.host = std::string(text);
  out.normalized.clear();
  for (char c : name)
    out.normalized += ascii_lower(c);
  return "";
}

struct Address {
  Host host;
  uint16_t port = 0;
  std::string key() const { return host.normalized + ":" + std::to_string(port); }
};

// "host:port" or "[v6]:port" for a listener. Port 0 asks the kernel for any free port.
// Returns "" or a phrase that follows the quoted text.
std::string parse_listen(std::string_view text, Address& out) {
  if (!text.empty() && text.front() == '/')
    return "is a unix socket path; unix sockets are not supported";
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return "has an unterminated IPv6 address";
    colon = close + 1;
    if (colon >= text.size() || text[colon] != ':') return "is not in the form host:port";
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return "is not in the form host:port";
  }
  const std::string_view port_text = text.substr(colon + 1);
  const auto port = parse_digits(port_text);
  if (!port || *port > 65535)
    return "has an invalid port " + quoted(port_text) + " (must be 0 to 65535)";
  if (std::string problem = check_host(text.substr(0, colon), false, out.host); !problem.empty())
    return "has " + problem;
  out.port = static_cast<uint16_t>(*port);
  return "";
}

// ---------------------------------------------------------------------------------------------
// Walking the YAML tree.

SourceLocation location_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

// A YAML value and its path. For map values `key` is the key node, for list items the item: an
// empty value (`timeout:`) is marked by yaml-cpp at the next token, often on a later line, so
// problems with empty values are reported at their key instead.
struct Value {
  YAML::Node node;
  YAML::Node key;
  std::string path;

  SourceLocation where() const { return location_of(node.IsNull() ? key : node); }
};

struct Entry {
  std::string name;
  Value value;
};

class Fields {
 public:
  const Value* get(std::string_view name) const {
    for (const auto& e : entries)
      if (e.name == name) return &e.value;
    return nullptr;
  }
  std::vector<Entry> entries;
};

std::string join(const std::string& path, std::string_view key) {
  if (key.empty()) return path;
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return n.Tag() == "!" ? "the quoted string " + quoted(n.Scalar()) : quoted(n.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "an undefined value";
}

// A YAML 1.2 core-schema scalar resolves to an int or bool only when plain (unquoted), or when
// tagged explicitly; "400" in quotes is a string.
bool is_plain_or_tagged(const YAML::Node& n, std::string_view tag) {
  return n.Tag() == "?" || n.Tag() == tag;
}

struct PoolInfo {
  std::string name;
  Protocol protocol = Protocol::kMemcached;
};

// A listener with what the cross-checks need: where its name and address were written, and
// whether they were valid.
struct ListenerDraft {
  ListenerConfig config;
  bool name_ok = false;
  bool address_ok = false;
  std::string address_key;
  SourceLocation name_where;
  SourceLocation address_where;
  std::string name_path;
  std::string address_path;
};

class Loader {
 public:
  explicit Loader(std::vector<ConfigError>& errors) : errors_(errors) {}

  void load(const YAML::Node& root, Config& config);

 private:
  void error(SourceLocation where, std::string path, std::string message) {
    errors_.push_back({std::move(path), where, std::move(message)});
  }
  void error(const Value& v, std::string message) { error(v.where(), v.path, std::move(message)); }

  std::vector<Entry> entries(const Value& map, std::string_view what);
  template <typename Keys>
  Fields fields(const Value& map, const Keys& known);

  bool expect_map(const Value& v);
  std::optional<std::string> read_string(const Value& v);
  std::optional<std::string> read_name(const Value& v);
  std::optional<int64_t> read_int(const Value& v, int64_t min, int64_t max);
  std::optional<bool> read_bool(const Value& v);
  std::optional<uint64_t> read_size(const Value& v);
  std::optional<std::chrono::milliseconds> read_millis(const Value& v);
  template <typename Enum, size_t N>
  std::optional<Enum> read_enum(const Value& v, const std::array<Enum, N>& all,
                                std::string_view what);
  std::optional<Address> read_listen(const Value& v);

  void load_pools(const Value* v, const YAML::Node& root, std::vector<PoolConfig>& out);
  PoolConfig load_pool(const std::string& name, const Value& v);
  void load_servers(const Value* v, const Value& pool, std::vector<ServerConfig>& out);
  void load_listeners(const Value* v);
  void load_listener(const Value& v);
  void load_limits(const Value* v, Limits& out);
  void check_listeners(const Value* listeners, const YAML::Node& root);

  std::vector<ConfigError>& errors_;
  // Every pool, even one with errors, so that listeners naming it do not produce a second,
  // misleading "no such pool" error.
  std::vector<PoolInfo> pools_;
  std::vector<ListenerDraft> explicit_listeners_;
  std::vector<ListenerDraft> pool_listeners_;
  // Whether any listener was attempted: "no listeners" is reported only when none was.
  bool listener_attempted_ = false;
};

std::vector<Entry> Loader::entries(const Value& map, std::string_view what) {
  std::vector<Entry> out;
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(location_of(key), map.path, "keys must be strings, got " + describe(key));
      continue;
    }
    const std::string name = key.Scalar();
    // yaml-cpp keeps every duplicate key of a map (and operator[] returns the first), so
    // duplicates are found only by walking the pairs.
    const auto first =
        std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.name == name; });
    if (first != out.end()) {
      error(location_of(key), join(map.path, name),
            "duplicate " + std::string(what) + " " + quoted(name) + " (first defined at " +
                at(location_of(first->value.key)) + ")");
      continue;
    }
    out.push_back({name, {it->second, key, join(map.path, name)}});
  }
  return out;
}

template <typename Keys>
Fields Loader::fields(const Value& map, const Keys& known) {
  Fields f;
  for (auto& e : entries(map, "key")) {
    if (std::find(known.begin(), known.end(), e.name) == known.end()) {
      error(location_of(e.value.key), e.value.path,
            "unknown key " + quoted(e.name) + suggestion(e.name, known));
      continue;
    }
    f.entries.push_back(std::move(e));
  }
  return f;
}

bool Loader::expect_map(const Value& v) {
  if (v.node.IsMap()) return true;
  error(v, "expected a map, got " + describe(v.node));
  return false;
}

std::optional<std::string> Loader::read_string(const Value& v) {
  if (!v.node.IsScalar()) {
    error(v, "expected a string, got " + describe(v.node));
    return std::nullopt;
  }
  return v.node.Scalar();
}

std::optional<std::string> Loader::read_name(const Value& v) {
  auto s = read_string(v);
  if (!s) return std::nullopt;
  if (s->empty()) {
    error(v, "must not be empty");
    return std::nullopt;
  }
  if (s->size() > kMaxName) {
    error(v, "is longer than " + std::to_string(kMaxName) + " bytes");
    return std::nullopt;
  }
  if (has_space_or_control(*s)) {
    error(v, quoted(*s) + " contains whitespace or control characters");
    return std::nullopt;
  }
  return s;
}

std::optional<int64_t> Loader::read_int(const Value& v, int64_t min, int64_t max) {
  const std::string_view s = v.node.IsScalar() ? std::string_view(v.node.Scalar()) : "";
  const bool negative = !s.empty() && s.front() == '-';
  const auto magnitude = parse_digits(negative ? s.substr(1) : s);
  if (!v.node.IsScalar() || !is_plain_or_tagged(v.node, "tag:yaml.org,2002:int") || !magnitude) {
    error(v, "expected an integer, got " + describe(v.node));
    return std::nullopt;
  }
  // Every bound is well inside int64, so a magnitude past it is simply out of range.
  const bool huge = *magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const int64_t value = huge ? 0 : static_cast<int64_t>(*magnitude) * (negative ? -1 : 1);
  if ((huge && !negative) || value > max) {
    error(v, "must be at most " + std::to_string(max) + ", got " + std::string(s));
    return std::nullopt;
  }
  if (huge || value < min) {
    error(v, (min == 0 ? std::string("must not be negative")
                       : "must be at least " + std::to_string(min)) +
                 ", got " + std::string(s));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Loader::read_bool(const Value& v) {
  // YAML 1.2 booleans only: yes/no/on/off/y/n are YAML 1.1 and read as strings elsewhere, so
  // accepting them here would make the same file mean different things to different tools.
  if (v.node.IsScalar() && is_plain_or_tagged(v.node, "tag:yaml.org,2002:bool")) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  error(v, "expected true or false, got " + describe(v.node));
  return std::nullopt;
}

std::optional<uint64_t> Loader::read_size(const Value& v) {
  const std::string_view s = v.node.IsScalar() ? std::string_view(v.node.Scalar()) : "";
  std::string_view digits = s;
  uint64_t unit = 1;
  if (!s.empty()) {
    switch (ascii_lower(s.back())) {
      case 'k':
        unit = kKiB;
        break;
      case 'm':
        unit = kMiB;
        break;
      case 'g':
        unit = kGiB;
        break;
      default:
        break;
    }
    if (unit != 1) digits.remove_suffix(1);
  }
  const auto count = parse_digits(digits);
  if (!v.node.IsScalar() || !count) {
    error(v,
          "expected a size in bytes, optionally with a k, m or g suffix, got " + describe(v.node));
    return std::nullopt;
  }
  const bool overflow = *count > std::numeric_limits<uint64_t>::max() / unit;
  const uint64_t bytes = overflow ? 0 : *count * unit;
  if (overflow || bytes < kMinSize || bytes > kMaxSize) {
    error(v, "must be between " + size_text(kMinSize) + " and " + size_text(kMaxSize) + ", got " +
                 std::string(s));
    return std::nullopt;
  }
  return bytes;
}

std::optional<std::chrono::milliseconds> Loader::read_millis(const Value& v) {
  const auto ms = read_int(v, 1, kMaxMillis);
  if (!ms) return std::nullopt;
  return std::chrono::milliseconds(*ms);
}

template <typename Enum, size_t N>
std::optional<Enum> Loader::read_enum(const Value& v, const std::array<Enum, N>& all,
                                      std::string_view what) {
  const auto s = read_string(v);
  if (!s) return std::nullopt;
  std::array<std::string_view, N> names;
  for (size_t i = 0; i < N; ++i) {
    names[i] = to_string(all[i]);
    if (names[i] == *s) return all[i];
  }
  std::string hint = suggestion(*s, names);
  if (hint.empty()) {
    hint = " (expected one of:";
    for (size_t i = 0; i < N; ++i)
      hint += (i == 0 ? " " : ", ") + std::string(names[i]);
    hint += ")";
  }
  error(v, "unknown " + std::string(what) + " " + quoted(*s) + hint);
  return std::nullopt;
}

std::optional<Address> Loader::read_listen(const Value& v) {
  const auto s = read_string(v);
  if (!s) return std::nullopt;
  Address address;
  if (std::string problem = parse_listen(*s, address); !problem.empty()) {
    error(v, quoted(*s) + " " + problem);
    return std::nullopt;
  }
  return address;
}

// ---------------------------------------------------------------------------------------------

void Loader::load(const YAML::Node& root, Config& config) {
  const Value top{root, root, ""};
  if (!root.IsMap()) {
    error(top, "expected a map of workers, listeners, pools and limits at the top level, got " +
                   describe(root));
    return;
  }
  const Fields f = fields(top, kRootKeys);

  if (const Value* v = f.get("workers")) {
    if (const auto n = read_int(*v, 0, kMaxWorkers)) config.workers = static_cast<unsigned>(*n);
  }
  if (config.workers == 0) {
    // hardware_concurrency() may return 0 when it cannot tell.
    config.workers = std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, kMaxWorkers);
  }

  load_pools(f.get("pools"), root, config.pools);
  load_listeners(f.get("listeners"));
  check_listeners(f.get("listeners"), root);
  for (auto* drafts : {&explicit_listeners_, &pool_listeners_})
    for (auto& d : *drafts)
      config.listeners.push_back(std::move(d.config));
  load_limits(f.get("limits"), config.limits);
}

void Loader::load_pools(const Value* v, const YAML::Node& root, std::vector<PoolConfig>& out) {
  if (v == nullptr || v->node.IsNull() || (v->node.IsMap() && v->node.size() == 0)) {
    error(v ? v->where() : location_of(root), "pools", "no pools defined");
    return;
  }
  if (!v->node.IsMap()) {
    error(*v, "expected a map of pool names to pools, got " + describe(v->node));
    return;
  }
  for (const auto& e : entries(*v, "pool")) {
    // A pool with a bad name is still checked, so its other errors are reported too.
    read_name({e.value.key, e.value.key, e.value.path});
    out.push_back(load_pool(e.name, e.value));
  }
}

PoolConfig Loader::load_pool(const std::string& name, const Value& v) {
  PoolInfo& info = pools_.emplace_back(PoolInfo{name});
  PoolConfig pool;
  pool.name = name;
  pool.where = location_of(v.key);
  if (!expect_map(v)) return pool;
  const Fields f = fields(v, kPoolKeys);

  // `protocol` is ours; `redis: true|false` is twemproxy's spelling of the same choice.
  const Value* protocol_value = f.get("protocol");
  const Value* redis_value = f.get("redis");
  std::optional<Protocol> protocol;
  if (protocol_value) protocol = read_enum(*protocol_value, kProtocols, "protocol");
  std::optional<bool> redis;
  if (redis_value) redis = read_bool(*redis_value);
  if (protocol) {
    pool.protocol = *protocol;
  } else if (redis) {
    pool.protocol = *redis ? Protocol::kRedis : Protocol::kMemcached;
  }
  info.protocol = pool.protocol;
  if (protocol && redis && *redis != (*protocol == Protocol::kRedis)) {
    const SourceLocation r = location_of(redis_value->key);
    const SourceLocation p = location_of(protocol_value->key);
    const bool redis_later = std::pair(r.line, r.column) > std::pair(p.line, p.column);
    const Value& later = redis_later ? *redis_value : *protocol_value;
    error(later, std::string("protocol: ") + std::string(to_string(pool.protocol)) +
                     " contradicts redis: " + (*redis ? "true" : "false"));
  }

  if (const Value* x = f.get("distribution")) {
    if (auto d = read_enum(*x, kDistributions, "distribution")) pool.distribution = *d;
  }
  if (const Value* x = f.get("hash")) {
    if (auto h = read_enum(*x, kHashes, "hash")) pool.hash = *h;
  }
  if (const Value* x = f.get("hash_tag")) {
    if (auto tag = read_string(*x)) {
      // twemproxy's rule: the tag is two bytes, an opening and a closing delimiter.
      if (tag->size() == 2) {
        pool.hash_tag = *tag;
      } else {
        error(*x, "must be exactly two characters, such as \"{}\", got " + quoted(*tag));
      }
    }
  }
  if (const Value* x = f.get("timeout")) {
    if (auto ms = read_millis(*x)) pool.timeout = *ms;
  }
  if (const Value* x = f.get("connect_timeout")) {
    if (auto ms = read_millis(*x)) pool.connect_timeout = *ms;
  }
  if (const Value* x = f.get("server_connections")) {
    if (auto n = read_int(*x, 1, kMaxServerConnections))
      pool.server_connections = static_cast<uint32_t>(*n);
  }
  for (auto [key, field] :
       {std::pair{"preconnect", &pool.preconnect}, std::pair{"tcpkeepalive", &pool.tcpkeepalive},
        std::pair{"auto_eject_hosts", &pool.auto_eject_hosts},
        std::pair{"allow_flush", &pool.allow_flush}}) {
    if (const Value* x = f.get(key)) {
      if (auto b = read_bool(*x)) *field = *b;
    }
  }
  if (const Value* x = f.get("server_retry_timeout")) {
    if (auto ms = read_millis(*x)) pool.server_retry_timeout = *ms;
  }
  if (const Value* x = f.get("server_failure_limit")) {
    if (auto n = read_int(*x, 1, kMaxFailureLimit))
      pool.server_failure_limit = static_cast<uint32_t>(*n);
  }
  // twemproxy keys kept so that its pools can be pasted in unchanged.
  if (const Value* x = f.get("client_connections")) {
    // twemproxy's per-pool client cap; accepted and ignored (see config/README.md).
    read_int(*x, 0, std::numeric_limits<int32_t>::max());
  }
  // twemproxy's redis_auth (the password cachegate sends with AUTH on every new server
  // connection) and redis_db (the database its connections SELECT); redis_auth_file is the same
  // password read from a file, so that it need not sit in the configuration.
  const Value* auth = f.get("redis_auth");
  const Value* auth_file = f.get("redis_auth_file");
  const Value* db = f.get("redis_db");
  for (const Value* x : {auth, auth_file, db}) {
    if (x != nullptr && pool.protocol != Protocol::kRedis)
      error(*x, "only for redis pools (this pool's protocol is memcached)");
  }
  if (auth && auth_file) error(*auth_file, "give redis_auth or redis_auth_file, not both");
  if (auth) {
    // Never echo the value: it is a password.
    if (!auth->node.IsScalar()) {
      error(*auth, "expected a string, got " +
                       std::string(auth->node.IsNull() ? "nothing" : describe(auth->node)));
    } else {
      pool.server_password = auth->node.Scalar();
      if (pool.server_password.empty()) error(*auth, "must not be empty");
    }
  }
  if (auth_file) {
    if (auto path = read_string(*auth_file)) {
      std::ifstream in(*path, std::ios::binary);
      std::stringstream content;
      content << in.rdbuf();
      if (!in) {
        error(*auth_file, "cannot read " + quoted(*path));
      } else {
        pool.server_password = content.str();
        // A trailing newline is the file's, not the password's.
        while (!pool.server_password.empty() &&
               (pool.server_password.back() == '\n' || pool.server_password.back() == '\r'))
          pool.server_password.pop_back();
        if (pool.server_password.empty()) error(*auth_file, quoted(*path) + " is empty");
      }
    }
  }
  if (db) {
    if (auto n = read_int(*db, 0, std::numeric_limits<int32_t>::max()))
      pool.redis_db = static_cast<uint32_t>(*n);
  }

  const Value* listen = f.get("listen");
  const Value* backlog = f.get("backlog");
  std::optional<int64_t> backlog_value;
  if (backlog) backlog_value = read_int(*backlog, 1, kMaxBacklog);
  if (listen) {
    listener_attempted_ = true;
    // twemproxy's one-listener-per-pool: a listener named after the pool.
    ListenerDraft d;
    d.config.name = name;
    d.config.protocol = pool.protocol;
    d.config.pool = name;
    d.config.where = listen->where();
    if (backlog_value) d.config.backlog = static_cast<uint32_t>(*backlog_value);
    d.name_ok = true;
    d.name_where = d.address_where = listen->where();
    d.name_path = d.address_path = listen->path;
    if (auto address = read_listen(*listen)) {
      d.config.host = address->host.host;
      d.config.port = address->port;
      d.address_ok = true;
      d.address_key = address->key();
    }
    pool_listeners_.push_back(std::move(d));
  } else if (backlog) {
    error(*backlog, "applies only to a pool-level listen; set backlog on the listener instead");
  }

  load_servers(f.get("servers"), v, pool.servers);
  return pool;
}

void Loader::load_servers(const Value* v, const Value& pool, std::vector<ServerConfig>& out) {
  if (v == nullptr) {
    error(location_of(pool.key), pool.path, "missing required key 'servers'");
    return;
  }
  if (v->node.IsNull() || (v->node.IsSequence() && v->node.size() == 0)) {
    error(*v, "must list at least one server");
    return;
  }
  if (!v->node.IsSequence()) {
    error(*v, "expected a list of \"host:port:weight [name]\" strings, got " + describe(v->node));
    return;
  }
  struct Seen {
    std::string address;
    size_t index;
  };
  std::vector<Seen> addresses;
  std::vector<std::pair<std::string, size_t>> names;
  std::vector<std::pair<std::string, size_t>> identities;
  for (size_t i = 0; i < v->node.size(); ++i) {
    const YAML::Node item = v->node[i];
    const Value sv{item, item, v->path + "[" + std::to_string(i) + "]"};
    const auto spec = read_string(sv);
    if (!spec) continue;
    ServerConfig server;
    if (std::string problem = parse_server_spec(*spec, server); !problem.empty()) {
      error(sv, "server " + quoted(*spec) + " " + problem);
      continue;
    }
    server.where = sv.where();
    Host host;
    check_host(server.host, true, host);  // already valid: parse_server_spec checked it
    const std::string address = host.normalized + ":" + std::to_string(server.port);
    const auto same_address = std::find_if(addresses.begin(), addresses.end(),
                                           [&](const Seen& s) { return s.address == address; });
    const auto same_name = std::find_if(names.begin(), names.end(),
                                        [&](const auto& n) { return n.first == server.name; });
    const auto same_identity =
        std::find_if(identities.begin(), identities.end(),
                     [&](const auto& n) { return n.first == server.identity; });
    if (same_address != addresses.end()) {
      error(sv, "duplicate server " + quoted(address) + " (same address as servers[" +
                    std::to_string(same_address->index) + "])");
    } else if (!server.name.empty() && same_name != names.end()) {
      error(sv, "duplicate server name " + quoted(server.name) + " (same as servers[" +
                    std::to_string(same_name->second) + "])");
    } else if (same_identity != identities.end()) {
      // Two servers with one identity get the same points on the ketama ring.
      error(sv, "server identity " + quoted(server.identity) + " is the same as servers[" +
                    std::to_string(same_identity->second) + "]'s; give the servers names");
    }
    addresses.push_back({address, i});
    if (!server.name.empty()) names.emplace_back(server.name, i);
    identities.emplace_back(server.identity, i);
    out.push_back(std::move(server));
  }
}

void Loader::load_listeners(const Value* v) {
  if (v == nullptr || v->node.IsNull()) return;
  if (!v->node.IsSequence()) {
    listener_attempted_ = true;
    error(*v, "expected a list of listeners, got " + describe(v->node));
    return;
  }
  for (size_t i = 0; i < v->node.size(); ++i) {
    listener_attempted_ = true;
    const YAML::Node item = v->node[i];
    load_listener({item, item, v->path + "[" + std::to_string(i) + "]"});
  }
}

void Loader::load_listener(const Value& v) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kListenerKeys);
  ListenerDraft d;
  d.config.where = v.where();
  for (std::string_view required : {"name", "listen", "pool"}) {
    if (!f.get(required)) error(v, "missing required key " + quoted(required));
  }
  if (const Value* x = f.get("name")) {
    if (auto name = read_name(*x)) {
      d.config.name = *name;
      d.name_ok = true;
      d.name_where = x->where();
      d.name_path = x->path;
    }
  }
  if (const Value* x = f.get("listen")) {
    if (auto address = read_listen(*x)) {
      d.config.host = address->host.host;
      d.config.port = address->port;
      d.address_ok = true;
      d.address_key = address->key();
      d.address_where = x->where();
      d.address_path = x->path;
    }
  }
  if (const Value* x = f.get("backlog")) {
    if (auto n = read_int(*x, 1, kMaxBacklog)) d.config.backlog = static_cast<uint32_t>(*n);
  }
  const PoolInfo* pool = nullptr;
  if (const Value* x = f.get("pool")) {
    if (auto name = read_string(*x)) {
      d.config.pool = *name;
      const auto it = std::find_if(pools_.begin(), pools_.end(),
                                   [&](const PoolInfo& p) { return p.name == *name; });
      if (it != pools_.end()) {
        pool = &*it;
      } else {
        std::vector<std::string_view> known;
        for (const auto& p : pools_)
          known.push_back(p.name);
        error(*x, "no pool named " + quoted(*name) + suggestion(*name, known));
      }
    }
  }
  if (const Value* x = f.get("protocol")) {
    if (auto protocol = read_enum(*x, kProtocols, "protocol")) {
      d.config.protocol = *protocol;
      if (pool && pool->protocol != *protocol) {
        error(*x, "protocol " + std::string(to_string(*protocol)) + " does not match pool " +
                      quoted(pool->name) + "'s protocol " + std::string(to_string(pool->protocol)));
      }
    }
  } else if (pool) {
    d.config.protocol = pool->protocol;
  }
  explicit_listeners_.push_back(std::move(d));
}

void Loader::check_listeners(const Value* listeners, const YAML::Node& root) {
  if (!listener_attempted_) {
    error(listeners ? listeners->where() : location_of(root), "listeners",
          "no listeners defined (add a listeners list, or a listen key to a pool)");
    return;
  }
  std::vector<const ListenerDraft*> all;
  for (const auto* drafts : {&explicit_listeners_, &pool_listeners_})
    for (const auto& d : *drafts)
      all.push_back(&d);
  auto earlier = [](SourceLocation a, SourceLocation b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  };

  // The later of two clashing listeners is the one reported, wherever each was written.
  std::stable_sort(all.begin(), all.end(),
                   [&](auto* a, auto* b) { return earlier(a->name_where, b->name_where); });
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i]->name_ok) continue;
    for (size_t j = 0; j < i; ++j) {
      if (all[j]->name_ok && all[j]->config.name == all[i]->config.name) {
        error(all[i]->name_where, all[i]->name_path,
              "duplicate listener name " + quoted(all[i]->config.name) + " (first defined at " +
                  at(all[j]->name_where) + ")");
        break;
      }
    }
  }

  std::stable_sort(all.begin(), all.end(),
                   [&](auto* a, auto* b) { return earlier(a->address_where, b->address_where); });
  for (size_t i = 0; i < all.size(); ++i) {
    // Port 0 means "any free port": two of those never clash.
    if (!all[i]->address_ok || all[i]->config.port == 0) continue;
    for (size_t j = 0; j < i; ++j) {
      if (all[j]->address_ok && all[j]->address_key == all[i]->address_key) {
        // With SO_REUSEPORT both binds would succeed and the kernel would spread connections
        // over two unrelated listeners, so this must be caught here.
        error(all[i]->address_where, all[i]->address_path,
              "listener " + quoted(all[i]->config.name) + " uses address " +
                  quoted(all[i]->address_key) + " already used by listener " +
                  quoted(all[j]->config.name) + " (defined at " + at(all[j]->address_where) + ")");
        break;
      }
    }
  }
}

void Loader::load_limits(const Value* v, Limits& out) {
  // An empty `limits:` (every entry commented out) is the same as none.
  if (v == nullptr || v->node.IsNull() || !expect_map(*v)) return;
  const Fields f = fields(*v, kLimitKeys);
  if (const Value* x = f.get("item_size_max")) {
    if (auto n = read_size(*x)) out.item_size_max = *n;
  }
  if (const Value* x = f.get("request_line_max")) {
    if (auto n = read_size(*x)) out.request_line_max = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.get("client_pipeline_max")) {
    if (auto n = read_int(*x, 1, kMaxPipeline)) out.client_pipeline_max = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.get("client_output_max")) {
    if (auto n = read_size(*x)) out.client_output_max = *n;
  }
  if (const Value* x = f.get("client_output_hard_max")) {
    if (auto n = read_size(*x)) out.client_output_hard_max = *n;
  }
  if (const Value* x = f.get("reply_size_max")) {
    if (auto n = read_size(*x)) out.reply_size_max = *n;
  }
  if (const Value* x = f.get("request_size_max")) {
    if (auto n = read_size(*x)) out.request_size_max = *n;
  }
  // The hard cap must leave room for the largest single reply and for the soft limit, or a
  // client could be cut off for one legitimate request. Unless given, it grows with them.
  const uint64_t hard_floor = std::max(out.reply_size_max, out.client_output_max);
  if (const Value* x = f.get("client_output_hard_max")) {
    if (out.client_output_hard_max < hard_floor) {
      error(*x, "client_output_hard_max (" + size_text(out.client_output_hard_max) +
                    ") must not be smaller than reply_size_max (" + size_text(out.reply_size_max) +
                    ") or client_output_max (" + size_text(out.client_output_max) + ")");
    }
  } else {
    out.client_output_hard_max = std::max(out.client_output_hard_max, hard_floor);
  }
  // A reply carries a whole item plus its header line; with a smaller cap, an item a client was
  // allowed to store could never be read back.
  if (out.reply_size_max < out.item_size_max) {
    const Value* x = f.get("reply_size_max") ? f.get("reply_size_max") : f.get("item_size_max");
    error(*x, "reply_size_max (" + size_text(out.reply_size_max) +
                  ") must not be smaller than item_size_max (" + size_text(out.item_size_max) +
                  ")");
  }
}

// Records where each document starts and ignores the rest.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// A second document is an error. This parses at most three documents rather than calling
// YAML::LoadAll(), which in yaml-cpp 0.7 never returns on a stray ',' where a document should
// start: the parser reports an empty document without consuming the token, again and again,
// allocating a node each time (jbeder/yaml-cpp#1040). That case shows up here as a document
// starting where the previous one did, and is reported as the syntax error it is.
std::optional<ConfigError> check_documents(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  for (int i = 0; i < 3 && parser.HandleNextDocument(starts); ++i) {
  }
  const auto& marks = starts.marks;
  for (size_t i = 1; i < marks.size(); ++i) {
    if (marks[i].pos != marks[i - 1].pos) continue;
    const auto pos = static_cast<size_t>(marks[i].pos);
    return ConfigError{"",
                       {marks[i].line + 1, marks[i].column + 1},
                       pos < text.size() ? "unexpected " + quoted(text.substr(pos, 1))
                                         : std::string("invalid YAML")};
  }
  if (marks.size() < 2) return std::nullopt;
  return ConfigError{
      "", {marks[1].line + 1, marks[1].column + 1}, "only one YAML document is allowed"};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string parse_server_spec(std::string_view spec, ServerConfig& out) {
  // twemproxy 0.5 (conf_add_server) parses from the end: the name after the last space, then
  // the weight after the last ':', then the port after the one before; the rest is the host.
  if (spec.empty()) return "is empty";
  if (spec.front() == '/') return "is a unix socket path; unix sockets are not supported";
  std::string_view rest = spec;
  std::string_view name;
  if (const size_t space = spec.rfind(' '); space != std::string_view::npos) {
    name = spec.substr(space + 1);
    rest = spec.substr(0, space);
    if (name.empty()) return "has an empty name after the space";
    if (name.size() > kMaxServerName)
      return "has a name longer than " + std::to_string(kMaxServerName) + " bytes";
    if (has_space_or_control(name)) return "has a name with whitespace or control characters";
  }
  const size_t weight_colon = rest.rfind(':');
  if (weight_colon == std::string_view::npos || weight_colon == 0)
    return "is not in the form host:port:weight [name]";
  const size_t port_colon = rest.rfind(':', weight_colon - 1);
  if (port_colon == std::string_view::npos) return "is not in the form host:port:weight [name]";

  const std::string_view weight_text = rest.substr(weight_colon + 1);
  const auto weight = parse_digits(weight_text);
  if (!weight) return "has an invalid weight " + quoted(weight_text);
  if (*weight == 0) return "has a zero weight";
  if (*weight > kMaxWeight) return "has a weight above " + std::to_string(kMaxWeight);

  const std::string_view port_text = rest.substr(port_colon + 1, weight_colon - port_colon - 1);
  const auto port = parse_digits(port_text);
  if (!port || *port == 0 || *port > 65535)
    return "has an invalid port " + quoted(port_text) + " (must be 1 to 65535)";

  const std::string_view host_text = rest.substr(0, port_colon);
  Host host;
  // Bare IPv6 ("::1:11212:1") is unambiguous when parsing from the end, and twemproxy accepts it.
  if (std::string problem = check_host(host_text, true, host); !problem.empty())
    return "has " + problem;

  out.spec = std::string(spec);
  out.host = host.host;
  out.port = static_cast<uint16_t>(*port);
  out.weight = static_cast<uint32_t>(*weight);
  out.name = std::string(name);
  // twemproxy hashes the text exactly as written; 11211 is dropped for libmemcached
  // compatibility (CONF_DEFAULT_KETAMA_PORT).
  if (!name.empty()) {
    out.identity = std::string(name);
  } else if (*port == 11211) {
    out.identity = std::string(host_text);
  } else {
    out.identity = std::string(rest.substr(0, weight_colon));
  }
  return "";
}

LoadResult load_config_string(std::string_view yaml, std::string_view source_name) {
  LoadResult result;
  auto& errors = result.errors;
  try {
    const std::string text(yaml);
    if (std::optional<ConfigError> e = check_documents(text)) {
      errors.push_back(std::move(*e));
    } else {
      const YAML::Node root = YAML::Load(text);  // the first document only
      if (root.IsNull()) {
        errors.push_back({"", {1, 1}, "empty configuration"});
      } else {
        Loader(errors).load(root, result.config);
      }
    }
  } catch (const YAML::Exception& e) {
    // A syntax error: yaml-cpp stops at the first one.
    const SourceLocation where =
        e.mark.is_null() ? SourceLocation{} : SourceLocation{e.mark.line + 1, e.mark.column + 1};
    errors.push_back({"", where, e.msg});
  } catch (const std::exception& e) {
    errors.push_back({"", {}, std::string("cannot load configuration: ") + e.what()});
  }
  // Checks that span several nodes run after the walk; ordering by position puts every error
  // where a reader of the file meets it. Errors at one position keep the order they were found.
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
  });
  if (!errors.empty()) result.config = Config{};
  result.config.source = std::string(source_name);
  return result;
}

LoadResult load_config_file(const std::string& path) {
  auto fail = [&](std::string message) {
    LoadResult r;
    r.config.source = path;
    r.errors.push_back({"", {}, std::move(message)});
    return r;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot open: ") + std::strerror(errno));
  std::string text;
  struct stat st;
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot read: ") + std::strerror(errno);
  } else if (S_ISDIR(st.st_mode)) {
    problem = "cannot read: is a directory";
  } else if (st.st_size > kMaxFileSize) {
    problem = "cannot read: larger than " + size_text(kMaxFileSize) + ", not a configuration file";
  } else {
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > static_cast<size_t>(kMaxFileSize)) {
          problem = "cannot read: larger than " + size_text(kMaxFileSize);
          break;
        }
      } else if (n == 0) {
        break;
      } else if (errno != EINTR) {
        problem = std::string("cannot read: ") + std::strerror(errno);
        break;
      }
    }
  }
  ::close(fd);
  if (!problem.empty()) return fail(problem);
  return load_config_string(text, path);
}

std::string format_errors(const LoadResult& result) {
  std::string out;
  for (const auto& e : result.errors) {
    out += result.config.source + ":" + at(e.where) + ": ";
    if (!e.path.empty()) out += e.path + ": ";
    out += e.message + "\n";
  }
  return out;
}

}  // namespace cachegate::config
