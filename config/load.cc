#include "config/load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/password.h"

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
// A password file holds one line. A PEM file holds a certificate chain or a CA bundle (a
// system-wide bundle is a few hundred kilobytes).
constexpr off_t kMaxSecretFileSize = 64 * kKiB;
constexpr off_t kMaxPemFileSize = 4 * kMiB;

// Failed logins counted per client address; past a million the counters would only measure
// how long an attack has been going on.
constexpr int64_t kMaxAuthFailures = 1000000;
constexpr int64_t kMaxListenerConnections = 10000000;
// The admin endpoint runs on one thread; more open connections than this is a runaway script.
constexpr int64_t kMaxAdminConnections = 10000;
// The namespace is part of every key cachegate forwards, and memcached keys are at most 250
// bytes: a longer prefix would leave no room for the client's key.
constexpr size_t kMaxNamespace = 249;
// A certificate's subject CN is at most 64 characters and a DNS name 253; URIs and e-mail
// addresses in SANs can be longer, but not this long.
constexpr size_t kMaxTlsIdentity = 1024;
// memcached reads an expiration time above 30 days as an absolute Unix time, so a longer TTL
// would not mean what it says.
constexpr int64_t kMaxTtlSeconds = int64_t{30} * 24 * 3600;
// Users from password_file are hashed at every load; this hash never leaves the process, so it
// needs no more cost than this (see UserConfig::password_hash).
constexpr uint32_t kPasswordFileIterations = 10000;

constexpr std::array kProtocols{Protocol::kMemcached, Protocol::kRedis};
constexpr std::array kDistributions{Distribution::kKetama, Distribution::kModula,
                                    Distribution::kRandom};
constexpr std::array kHashes{
    HashFunction::kOneAtATime, HashFunction::kMd5,     HashFunction::kCrc16,
    HashFunction::kCrc32,      HashFunction::kCrc32a,  HashFunction::kFnv1_64,
    HashFunction::kFnv1a_64,   HashFunction::kFnv1_32, HashFunction::kFnv1a_32,
    HashFunction::kHsieh,      HashFunction::kMurmur,  HashFunction::kJenkins,
};

constexpr std::array kClientAuths{TlsClientAuth::kNone, TlsClientAuth::kOptional,
                                  TlsClientAuth::kRequired};
constexpr std::array kTlsModes{TlsMode::kRequired, TlsMode::kOptional};
constexpr std::array kListenerAuths{ListenerAuth::kNone, ListenerAuth::kRequired};
constexpr std::array kOpClasses{OpClass::kRead, OpClass::kWrite, OpClass::kAdmin};
constexpr std::array kRouteOps{RouteOp::kRead, RouteOp::kWrite, RouteOp::kDelete,
                               RouteOp::kArithmetic, RouteOp::kAdmin};
constexpr std::array kReplicateModes{ReplicateMode::kAllSync, ReplicateMode::kQuorum,
                                     ReplicateMode::kAllAsync};
constexpr std::array kReadPolicies{ReadPolicy::kFirst, ReadPolicy::kRandom, ReadPolicy::kRoundRobin,
                                   ReadPolicy::kLeastLatency};

constexpr std::array<std::string_view, 11> kRootKeys{
    "workers", "listeners",  "pools",         "limits",   "auth_limits", "users",
    "routes",  "log_format", "drain_timeout", "slow_log", "admin"};
constexpr std::array kLogFormats{LogFormat::kText, LogFormat::kJson};
constexpr std::array<std::string_view, 9> kListenerKeys{
    "name", "listen", "protocol", "pool", "route", "backlog", "tls", "auth", "max_connections"};
constexpr std::array<std::string_view, 9> kListenerTlsKeys{
    "cert",    "key",          "client_ca", "client_auth",      "min_version",
    "ciphers", "ciphersuites", "mode",      "handshake_timeout"};
constexpr std::array<std::string_view, 5> kPoolTlsKeys{"ca", "cert", "key", "verify",
                                                       "server_name"};
constexpr std::array<std::string_view, 5> kAdminKeys{"listen", "token_file", "tls",
                                                     "max_connections", "request_timeout"};
constexpr std::array<std::string_view, 1> kSlowLogKeys{"threshold"};
constexpr std::array<std::string_view, 3> kPoolAuthKeys{"username", "password", "password_file"};
constexpr std::array<std::string_view, 6> kUserKeys{
    "name", "password_hash", "password_file", "tls_identity", "allow", "namespace"};
constexpr std::array<std::string_view, 2> kAllowKeys{"ops", "keys"};
constexpr std::array<std::string_view, 4> kAuthLimitKeys{"failures_slow", "failures_block",
                                                         "block_time", "timeout"};
constexpr std::array<std::string_view, 7> kLimitKeys{
    "item_size_max",          "request_line_max", "client_pipeline_max", "client_output_max",
    "client_output_hard_max", "reply_size_max",   "request_size_max"};
// The keys of a route rule that say where its requests go; a rule has exactly one.
constexpr std::array<std::string_view, 4> kRouteKinds{"pool", "replicate", "failover", "warmup"};
constexpr std::array<std::string_view, 10> kRuleKeys{
    "match",  "pool",   "replicate", "failover", "failover_ttl",
    "warmup", "shadow", "rewrite",   "ttl",      "timeout"};
constexpr std::array<std::string_view, 5> kMatchKeys{"prefix", "glob", "ops", "listener", "user"};
constexpr std::array<std::string_view, 4> kReplicateKeys{"pools", "mode", "read", "miss_failover"};
constexpr std::array<std::string_view, 2> kWarmupKeys{"cold", "warm"};
constexpr std::array<std::string_view, 2> kShadowKeys{"pool", "fraction"};
constexpr std::array<std::string_view, 2> kRewriteKeys{"strip_prefix", "add_prefix"};
constexpr std::array<std::string_view, 1> kTtlKeys{"max"};
constexpr std::array<std::string_view, 24> kPoolKeys{
    "protocol",
    "redis",
    "distribution",
    "hash",
    "hash_tag",
    "timeout",
    "connect_timeout",
    "server_connections",
    "dedicated_connections",
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
    "tls",
    "auth",
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
// Files named in the configuration: secrets and TLS material.

// Reads a whole regular file of at most `max` bytes into `out`. Returns "" or why it could not,
// to follow "cannot read 'path': ".
std::string read_whole_file(const std::string& path, off_t max, std::string& out) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  std::string problem;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    problem = std::strerror(errno);
  } else if (S_ISDIR(st.st_mode)) {
    problem = "is a directory";
  } else {
    char buf[16 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > static_cast<size_t>(max)) {
          problem = "larger than " + size_text(static_cast<uint64_t>(max));
          break;
        }
      } else if (n == 0) {
        break;
      } else if (errno != EINTR) {
        problem = std::strerror(errno);
        break;
      }
    }
  }
  ::close(fd);
  if (!problem.empty()) wipe_secret(out);
  return problem;
}

// A password kept in a file: the file's content without its trailing line end ("\n" or
// "\r\n", as editors and `echo` leave them). Returns "" or why it could not be read.
std::string read_password_file(const std::string& path, std::string& out) {
  std::string problem = read_whole_file(path, kMaxSecretFileSize, out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return problem;
}

struct OpenSslFree {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
using BioPtr = std::unique_ptr<BIO, OpenSslFree>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslFree>;

// Without a callback OpenSSL asks for a passphrase on the terminal; a configuration check must
// never stop to wait for one.
int refuse_passphrase(char*, int, int, void*) {
  return -1;
}

BioPtr memory_bio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

size_t count_of(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// The certificates of a PEM file, in file order. Returns "" or what is wrong, to follow the
// quoted path.
std::string pem_certificates(const std::string& pem, std::vector<X509Ptr>& out) {
  const size_t blocks = count_of(pem, "-----BEGIN CERTIFICATE-----");
  if (blocks == 0) return "contains no PEM certificate";
  const BioPtr bio = memory_bio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, refuse_passphrase, nullptr))
    out.emplace_back(x);
  ERR_clear_error();
  if (out.size() < blocks)
    return "has a certificate that cannot be parsed (number " + std::to_string(out.size() + 1) +
           " in the file)";
  return "";
}

// The private key of a PEM file. Returns "" or what is wrong, to follow the quoted path.
std::string pem_private_key(const std::string& pem, PkeyPtr& out) {
  if (pem.find("ENCRYPTED") != std::string::npos)
    return "is an encrypted private key; give it unencrypted (cachegate asks for no passphrase)";
  if (pem.find("-----BEGIN") == std::string::npos ||
      pem.find("PRIVATE KEY-----") == std::string::npos)
    return "contains no PEM private key";
  const BioPtr bio = memory_bio(pem);
  out.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
  ERR_clear_error();
  if (!out) return "has a private key that cannot be parsed";
  return "";
}

// A key pattern as Redis's ACLs and glob-style matching take it: '*', '?', '[...]' (with '^'
// negation and ranges) and backslash escapes. Returns "" or what is wrong.
std::string check_glob(std::string_view p) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      if (++i == p.size()) return "ends with a lone backslash";
    } else if (p[i] == '[') {
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      while (j < p.size() && p[j] != ']') {
        if (p[j] == '\\') ++j;
        ++j;
      }
      if (j >= p.size()) return "has a '[' without its ']'";
      i = j;
    }
  }
  return "";
}

bool is_ip_literal(std::string_view text) {
  std::string literal(text);
  if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']')
    literal = literal.substr(1, literal.size() - 2);
  in_addr a4;
  in6_addr a6;
  return inet_pton(AF_INET, literal.c_str(), &a4) == 1 ||
         inet_pton(AF_INET6, literal.c_str(), &a6) == 1;
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
  // `route:` and an explicit `protocol:` as written, checked once the route tables are loaded.
  std::optional<Value> route_value;
  std::optional<Value> protocol_value;
};

// A route table with what listeners need to check against it: its protocol, unknown when none
// of its pools could be read.
struct RouteInfo {
  std::string name;
  std::optional<Protocol> protocol;
};

// A pool a route table names, and where: a table's pools must share one protocol.
struct PoolUse {
  const PoolInfo* pool = nullptr;
  SourceLocation where;
  std::string path;
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
  std::optional<std::string> read_path(const Value& v);
  std::optional<std::string> read_secret(const Value& v);
  std::optional<std::string> read_password_file_value(const Value& v, std::string* path = nullptr);
  bool read_certificate_file(const Value& v, std::string& path, std::vector<X509Ptr>& out);
  bool read_private_key_file(const Value& v, std::string& path, PkeyPtr& out);
  SSL_CTX* scratch_tls_context();

  void load_pools(const Value* v, const YAML::Node& root, std::vector<PoolConfig>& out);
  PoolConfig load_pool(const std::string& name, const Value& v);
  void load_servers(const Value* v, const Value& pool, std::vector<ServerConfig>& out);
  void load_listeners(const Value* v);
  void load_listener(const Value& v);
  std::optional<ListenerTlsConfig> load_listener_tls(const Value& v, bool& client_auth_known);
  PoolTlsConfig load_pool_tls(const Value& v);
  void load_pool_auth(const Value& v, PoolConfig& pool);
  void load_limits(const Value* v, Limits& out);
  void load_auth_limits(const Value* v, Config& config);
  void load_admin(const Value* v, Config& config);
  void load_slow_log(const Value* v, Config& config);
  void load_users(const Value* v, std::vector<UserConfig>& out);
  void load_user(const Value& v, std::vector<UserConfig>& out);
  const std::vector<PoolConfig>* loaded_pools_ = nullptr;  // loaded before the users
  void load_allow(const Value& v, UserConfig& user);
  void check_listeners(const Value* listeners, const YAML::Node& root);
  std::vector<Value> string_or_list(const Value& v, std::string_view what);
  const PoolInfo* find_pool(const Value& v, const std::string& name);
  const ListenerDraft* find_listener(std::string_view name) const;
  std::vector<Entry> read_references(const Value& v, std::string_view what,
                                     const std::vector<std::string_view>& known);
  std::optional<double> read_fraction(const Value& v);
  void load_routes(const Value* v, std::vector<RouteTableConfig>& out);
  RouteTableConfig load_route_table(const std::string& name, const Value& v);
  bool load_rule(const Value& v, const std::string& table, RouteRule& rule,
                 std::vector<PoolUse>& uses);
  void load_match(const Value& v, const std::string& table, RouteMatch& match);
  void load_route_ops(const Value& v, uint8_t& ops);
  std::optional<std::string> read_route_pool(const Value& v, std::vector<PoolUse>& uses);
  std::vector<std::string> read_route_pools(const Value& v, std::vector<PoolUse>& uses);
  void load_replicate(const Value& v, RouteRule& rule, std::vector<PoolUse>& uses);
  void load_warmup(const Value& v, RouteRule& rule, std::vector<PoolUse>& uses);
  void load_shadow(const Value& v, RouteRule& rule, std::vector<PoolUse>& uses);
  void load_rewrite(const Value& v, RouteRule& rule);
  void check_listener_routes();

  std::vector<ConfigError>& errors_;
  // Every pool, even one with errors, so that listeners naming it do not produce a second,
  // misleading "no such pool" error.
  std::vector<PoolInfo> pools_;
  std::vector<ListenerDraft> explicit_listeners_;
  std::vector<ListenerDraft> pool_listeners_;
  // Every route table, even one with errors, for the same reason as pools_.
  std::vector<RouteInfo> routes_;
  // Whether any listener was attempted: "no listeners" is reported only when none was.
  bool listener_attempted_ = false;
  // Whether some user was given a password, or a certificate identity, for `auth: required`.
  // A user whose password has an error still counts, so that one mistake is reported once.
  bool any_password_user_ = false;
  bool any_identity_user_ = false;
  // Where each user name and each tls_identity was first given, for duplicates.
  struct Seen {
    std::string text;
    std::string user;
    SourceLocation where;
  };
  std::vector<Seen> user_names_;
  std::vector<Seen> namespaces_;  // text: the namespace; user: whose
  std::vector<Seen> user_identities_;
  // A TLS context that only checks cipher lists; made on first use.
  SslCtxPtr scratch_tls_;
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

std::optional<std::string> Loader::read_path(const Value& v) {
  auto s = read_string(v);
  if (!s) return std::nullopt;
  if (s->empty()) {
    error(v, "must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Loader::read_secret(const Value& v) {
  // Never echo the value: it is a password or a password hash.
  if (!v.node.IsScalar()) {
    error(v, "expected a string, got " + (v.node.IsNull() ? "nothing" : describe(v.node)));
    return std::nullopt;
  }
  if (v.node.Scalar().empty()) {
    error(v, "must not be empty");
    return std::nullopt;
  }
  return v.node.Scalar();
}

std::optional<std::string> Loader::read_password_file_value(const Value& v, std::string* path) {
  const auto file = read_path(v);
  if (!file) return std::nullopt;
  if (path) *path = *file;
  std::string password;
  if (std::string problem = read_password_file(*file, password); !problem.empty()) {
    error(v, "cannot read " + quoted(*file) + ": " + problem);
    return std::nullopt;
  }
  if (password.empty()) {
    error(v, quoted(*file) + " is empty");
    return std::nullopt;
  }
  return password;
}

bool Loader::read_certificate_file(const Value& v, std::string& path, std::vector<X509Ptr>& out) {
  const auto file = read_path(v);
  if (!file) return false;
  path = *file;
  std::string pem;
  if (std::string problem = read_whole_file(path, kMaxPemFileSize, pem); !problem.empty()) {
    error(v, "cannot read " + quoted(path) + ": " + problem);
    return false;
  }
  // The file may hold the key too (a combined PEM): wipe it like a key file.
  std::string problem = pem_certificates(pem, out);
  wipe_secret(pem);
  if (!problem.empty()) {
    error(v, quoted(path) + " " + problem);
    return false;
  }
  return true;
}

bool Loader::read_private_key_file(const Value& v, std::string& path, PkeyPtr& out) {
  const auto file = read_path(v);
  if (!file) return false;
  path = *file;
  std::string pem;
  std::string problem = read_whole_file(path, kMaxPemFileSize, pem);
  if (!problem.empty()) {
    error(v, "cannot read " + quoted(path) + ": " + problem);
    return false;
  }
  problem = pem_private_key(pem, out);
  wipe_secret(pem);
  if (!problem.empty()) {
    error(v, quoted(path) + " " + problem);
    return false;
  }
  return true;
}

SSL_CTX* Loader::scratch_tls_context() {
  if (!scratch_tls_) scratch_tls_.reset(SSL_CTX_new(TLS_method()));
  return scratch_tls_.get();
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
  if (const Value* v = f.get("log_format")) {
    if (const auto format = read_enum(*v, kLogFormats, "log_format")) config.log_format = *format;
  }
  if (config.workers == 0) {
    // hardware_concurrency() may return 0 when it cannot tell.
    config.workers = std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, kMaxWorkers);
  }

  load_pools(f.get("pools"), root, config.pools);
  // Users before listeners: `auth: required` on a listener needs someone who can log in.
  loaded_pools_ = &config.pools;
  load_users(f.get("users"), config.users);
  load_auth_limits(f.get("auth_limits"), config);
  load_listeners(f.get("listeners"));
  check_listeners(f.get("listeners"), root);
  // Route rules match on listener and user names, so the tables come after both; a listener's
  // `route:` is checked once the tables are known.
  load_routes(f.get("routes"), config.routes);
  check_listener_routes();
  // After the listeners: the admin address must not be one of theirs.
  load_admin(f.get("admin"), config);
  for (auto* drafts : {&explicit_listeners_, &pool_listeners_})
    for (auto& d : *drafts)
      config.listeners.push_back(std::move(d.config));
  load_limits(f.get("limits"), config.limits);
  if (const Value* v = f.get("drain_timeout")) {
    if (auto ms = read_millis(*v)) config.drain_timeout = *ms;
  }
  load_slow_log(f.get("slow_log"), config);
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
  if (const Value* x = f.get("dedicated_connections")) {
    if (auto n = read_int(*x, 0, kMaxServerConnections))
      pool.dedicated_connections = static_cast<uint32_t>(*n);
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
    if (auto password = read_secret(*auth)) pool.server_password = std::move(*password);
  }
  if (auth_file) {
    if (auto password = read_password_file_value(*auth_file))
      pool.server_password = std::move(*password);
  }
  if (db) {
    if (auto n = read_int(*db, 0, std::numeric_limits<int32_t>::max()))
      pool.redis_db = static_cast<uint32_t>(*n);
  }
  // `auth:` is the general form of redis_auth (a username too, and memcached pools).
  if (const Value* x = f.get("auth")) {
    for (const Value* old : {auth, auth_file}) {
      if (old != nullptr) {
        error(*x, "give auth or " + std::string(old == auth ? "redis_auth" : "redis_auth_file") +
                      ", not both");
      }
    }
    load_pool_auth(*x, pool);
  }
  if (const Value* x = f.get("tls")) pool.tls = load_pool_tls(*x);

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
  for (std::string_view required : {"name", "listen"}) {
    if (!f.get(required)) error(v, "missing required key " + quoted(required));
  }
  const Value* pool_value = f.get("pool");
  const Value* route_value = f.get("route");
  if (!pool_value && !route_value) error(v, "missing required key 'pool' (or 'route')");
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
  if (const Value* x = f.get("max_connections")) {
    if (auto n = read_int(*x, 0, kMaxListenerConnections))
      d.config.max_connections = static_cast<uint32_t>(*n);
  }
  // Whether the listener's client_auth is known; when `tls` has an error there it is not, and
  // the check of `auth` below would only guess.
  bool client_auth_known = true;
  if (const Value* x = f.get("tls")) d.config.tls = load_listener_tls(*x, client_auth_known);
  if (const Value* x = f.get("auth")) {
    if (auto a = read_enum(*x, kListenerAuths, "auth")) {
      d.config.auth = *a;
      const bool by_certificate =
          any_identity_user_ && d.config.tls && d.config.tls->client_auth != TlsClientAuth::kNone;
      if (*a == ListenerAuth::kRequired && client_auth_known && !any_password_user_ &&
          !by_certificate) {
        error(*x,
              "no user can log in on this listener: auth: required needs a user with "
              "password_hash or password_file, or one with tls_identity and this listener's "
              "tls.client_auth optional or required");
      }
    }
  }
  const PoolInfo* pool = nullptr;
  if (pool_value) {
    if (auto name = read_string(*pool_value)) {
      d.config.pool = *name;
      pool = find_pool(*pool_value, *name);
    }
  }
  if (route_value) {
    if (pool_value) error(*route_value, "give pool or route, not both");
    if (auto name = read_string(*route_value)) {
      d.config.route = *name;
      d.route_value = *route_value;
    }
  }
  if (const Value* x = f.get("protocol")) {
    if (auto protocol = read_enum(*x, kProtocols, "protocol")) {
      d.config.protocol = *protocol;
      d.protocol_value = *x;
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

std::optional<ListenerTlsConfig> Loader::load_listener_tls(const Value& v,
                                                           bool& client_auth_known) {
  client_auth_known = false;
  if (!expect_map(v)) return std::nullopt;
  const Fields f = fields(v, kListenerTlsKeys);
  ListenerTlsConfig tls;
  tls.where = location_of(v.key);
  for (std::string_view required : {"cert", "key"}) {
    if (!f.get(required))
      error(location_of(v.key), v.path, "missing required key " + quoted(required));
  }
  std::vector<X509Ptr> chain;
  PkeyPtr key;
  if (const Value* x = f.get("cert")) read_certificate_file(*x, tls.cert, chain);
  const Value* key_value = f.get("key");
  if (key_value) read_private_key_file(*key_value, tls.key, key);
  if (!chain.empty() && key && X509_check_private_key(chain.front().get(), key.get()) != 1) {
    error(*key_value,
          quoted(tls.key) + " does not match the (first) certificate in " + quoted(tls.cert));
  }
  ERR_clear_error();

  const Value* ca = f.get("client_ca");
  if (ca) {
    std::vector<X509Ptr> certificates;
    read_certificate_file(*ca, tls.client_ca, certificates);
  }
  if (const Value* x = f.get("client_auth")) {
    if (auto a = read_enum(*x, kClientAuths, "client_auth")) {
      tls.client_auth = *a;
      client_auth_known = true;
      if (*a != TlsClientAuth::kNone && ca == nullptr) {
        error(*x, "client_auth: " + std::string(to_string(*a)) +
                      " needs client_ca, the CA certificates client certificates are checked "
                      "against");
      }
    }
  } else {
    client_auth_known = true;
  }
  if (const Value* x = f.get("min_version")) {
    // Unquoted, 1.2 is a YAML float; its text is what counts.
    if (auto s = read_string(*x)) {
      if (*s == "1.2") {
        tls.min_version = TlsVersion::k1_2;
      } else if (*s == "1.3") {
        tls.min_version = TlsVersion::k1_3;
      } else if (*s == "1" || *s == "1.0" || *s == "1.1") {
        error(*x, "TLS " + *s + " is not supported (expected 1.2 or 1.3)");
      } else {
        error(*x, "unknown TLS version " + quoted(*s) + " (expected 1.2 or 1.3)");
      }
    }
  }
  // OpenSSL ignores the names in a list it does not know and fails only when nothing is left;
  // checking here turns that start-up failure into a configuration error.
  if (const Value* x = f.get("ciphers")) {
    if (auto s = read_string(*x)) {
      SSL_CTX* ctx = scratch_tls_context();
      if (s->empty()) {
        error(*x, "must not be empty (leave ciphers out for OpenSSL's default)");
      } else if (ctx != nullptr && SSL_CTX_set_cipher_list(ctx, s->c_str()) != 1) {
        error(*x, "OpenSSL knows none of the TLS 1.2 ciphers in " + quoted(*s) +
                      (s->rfind("TLS_", 0) == 0 ? " (TLS 1.3 suites go in ciphersuites)" : ""));
      }
      ERR_clear_error();
      tls.ciphers = *s;
    }
  }
  if (const Value* x = f.get("ciphersuites")) {
    if (auto s = read_string(*x)) {
      SSL_CTX* ctx = scratch_tls_context();
      if (s->empty()) {
        error(*x, "must not be empty (leave ciphersuites out for OpenSSL's default)");
      } else if (ctx != nullptr && SSL_CTX_set_ciphersuites(ctx, s->c_str()) != 1) {
        error(*x, "OpenSSL knows none of the TLS 1.3 cipher suites in " + quoted(*s));
      }
      ERR_clear_error();
      tls.ciphersuites = *s;
    }
  }
  if (const Value* x = f.get("mode")) {
    if (auto m = read_enum(*x, kTlsModes, "mode")) tls.mode = *m;
  }
  if (const Value* x = f.get("handshake_timeout")) {
    if (auto ms = read_millis(*x)) tls.handshake_timeout = *ms;
  }
  return tls;
}

PoolTlsConfig Loader::load_pool_tls(const Value& v) {
  PoolTlsConfig tls;
  tls.where = location_of(v.key);
  if (v.node.IsNull()) {
    error(v, "expected a map, got nothing (write tls: {} for TLS with every default)");
    return tls;
  }
  if (!expect_map(v)) return tls;
  const Fields f = fields(v, kPoolTlsKeys);
  if (const Value* x = f.get("ca")) {
    std::vector<X509Ptr> certificates;
    read_certificate_file(*x, tls.ca, certificates);
  }
  const Value* cert = f.get("cert");
  const Value* key = f.get("key");
  if (cert && !key) error(*cert, "given without key (a client certificate needs its private key)");
  if (key && !cert) error(*key, "given without cert (a private key needs its certificate)");
  std::vector<X509Ptr> chain;
  PkeyPtr pkey;
  if (cert) read_certificate_file(*cert, tls.cert, chain);
  if (key) read_private_key_file(*key, tls.key, pkey);
  if (!chain.empty() && pkey && X509_check_private_key(chain.front().get(), pkey.get()) != 1)
    error(*key, quoted(tls.key) + " does not match the (first) certificate in " + quoted(tls.cert));
  ERR_clear_error();
  if (const Value* x = f.get("verify")) {
    if (auto b = read_bool(*x)) tls.verify = *b;
  }
  if (const Value* x = f.get("server_name")) {
    if (auto name = read_string(*x)) {
      Host host;
      if (name->empty()) {
        error(*x, "must not be empty (leave server_name out to use each server's host)");
      } else if (is_ip_literal(*name)) {
        // SNI carries host names only (RFC 6066, section 3).
        error(*x, quoted(*name) +
                      " is an IP address; server_name is a host name (leave it out to check each "
                      "server's own address)");
      } else if (!check_host(*name, false, host).empty()) {
        error(*x, quoted(*name) + " is not a valid host name");
      } else {
        tls.server_name = *name;
      }
    }
  }
  return tls;
}

void Loader::load_pool_auth(const Value& v, PoolConfig& pool) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kPoolAuthKeys);
  const Value* username = f.get("username");
  const Value* password = f.get("password");
  const Value* file = f.get("password_file");
  if (!password && !file)
    error(location_of(v.key), v.path, "missing required key 'password' (or 'password_file')");
  // memcached's ASCII authentication (-Y) sends "username password" as one value.
  if (!username && pool.protocol == Protocol::kMemcached) {
    error(location_of(v.key), v.path,
          "missing required key 'username' (memcached's authentication needs a username and a "
          "password)");
  }
  if (password && file) error(*file, "give password or password_file, not both");
  if (username) {
    if (auto name = read_name(*username)) pool.server_username = *name;
  }
  if (password) {
    if (auto s = read_secret(*password)) pool.server_password = std::move(*s);
  }
  if (file) {
    if (auto s = read_password_file_value(*file)) pool.server_password = std::move(*s);
  }
}

void Loader::load_auth_limits(const Value* v, Config& config) {
  if (v == nullptr || v->node.IsNull() || !expect_map(*v)) return;
  const Fields f = fields(*v, kAuthLimitKeys);
  if (const Value* x = f.get("failures_slow")) {
    if (auto n = read_int(*x, 1, kMaxAuthFailures))
      config.auth_failures_slow = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.get("failures_block")) {
    if (auto n = read_int(*x, 1, kMaxAuthFailures)) {
      config.auth_failures_block = static_cast<uint32_t>(*n);
      if (config.auth_failures_block < config.auth_failures_slow) {
        error(*x, "must not be smaller than failures_slow (" +
                      std::to_string(config.auth_failures_slow) + "), got " + std::to_string(*n));
      }
    }
  } else {
    // Unless given, blocking starts no earlier than slowing down.
    config.auth_failures_block = std::max(config.auth_failures_block, config.auth_failures_slow);
  }
  if (const Value* x = f.get("block_time")) {
    if (auto ms = read_millis(*x)) config.auth_block_time = *ms;
  }
  if (const Value* x = f.get("timeout")) {
    if (auto ms = read_millis(*x)) config.auth_timeout = *ms;
  }
}

void Loader::load_admin(const Value* v, Config& config) {
  // An empty `admin:` (everything commented out) is the same as none: no admin endpoint.
  if (v == nullptr || v->node.IsNull() || !expect_map(*v)) return;
  const Fields f = fields(*v, kAdminKeys);
  AdminConfig admin;
  admin.where = location_of(v->key);
  const Value* listen = f.get("listen");
  if (!listen) error(location_of(v->key), v->path, "missing required key 'listen'");
  if (listen) {
    if (auto address = read_listen(*listen)) {
      admin.host = address->host.host;
      admin.port = address->port;
      // Listeners bind with SO_REUSEPORT and the admin endpoint without it, so sharing an
      // address would fail at start-up (or, in the other order, split the listener's clients).
      for (const auto* drafts : {&explicit_listeners_, &pool_listeners_}) {
        for (const auto& d : *drafts) {
          if (address->port == 0 || !d.address_ok || d.address_key != address->key()) continue;
          error(*listen, "address " + quoted(address->key()) + " is already used by listener " +
                             quoted(d.config.name) + " (defined at " + at(d.address_where) + ")");
          break;
        }
      }
    }
  }
  if (const Value* x = f.get("token_file")) {
    if (auto token = read_password_file_value(*x, &admin.token_file))
      admin.token = std::move(*token);
  }
  if (const Value* x = f.get("tls")) {
    bool client_auth_known = true;
    admin.tls = load_listener_tls(*x, client_auth_known);
  }
  if (const Value* x = f.get("max_connections")) {
    if (auto n = read_int(*x, 1, kMaxAdminConnections))
      admin.max_connections = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.get("request_timeout")) {
    if (auto ms = read_millis(*x)) admin.request_timeout = *ms;
  }
  config.admin = std::move(admin);
}

void Loader::load_slow_log(const Value* v, Config& config) {
  if (v == nullptr || v->node.IsNull() || !expect_map(*v)) return;
  const Fields f = fields(*v, kSlowLogKeys);
  const Value* x = f.get("threshold");
  if (!x) {
    error(location_of(v->key), v->path, "missing required key 'threshold'");
    return;
  }
  if (auto ms = read_millis(*x)) config.slow_log_threshold = *ms;
}

void Loader::load_users(const Value* v, std::vector<UserConfig>& out) {
  if (v == nullptr || v->node.IsNull()) return;
  if (!v->node.IsSequence()) {
    error(*v, "expected a list of users, got " + describe(v->node));
    return;
  }
  for (size_t i = 0; i < v->node.size(); ++i) {
    const YAML::Node item = v->node[i];
    load_user({item, item, v->path + "[" + std::to_string(i) + "]"}, out);
  }
}

void Loader::load_user(const Value& v, std::vector<UserConfig>& out) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kUserKeys);
  UserConfig user;
  user.where = v.where();
  if (const Value* x = f.get("name")) {
    if (auto name = read_name(*x)) {
      user.name = *name;
      const auto first = std::find_if(user_names_.begin(), user_names_.end(),
                                      [&](const Seen& s) { return s.text == *name; });
      if (first != user_names_.end()) {
        error(*x, "duplicate user name " + quoted(*name) + " (first defined at " +
                      at(first->where) + ")");
      } else {
        user_names_.push_back({*name, *name, x->where()});
      }
    }
  } else {
    error(v, "missing required key 'name'");
  }

  const Value* hash = f.get("password_hash");
  const Value* file = f.get("password_file");
  if (hash || file) any_password_user_ = true;
  if (hash && file) error(*file, "give password_hash or password_file, not both");
  if (hash) {
    if (auto phc = read_secret(*hash)) {
      ParsedHash parsed;
      std::string why;
      if (parse_password_hash(*phc, parsed, &why)) {
        user.password_hash = std::move(*phc);
      } else {
        error(*hash, "invalid password hash: " + why);
      }
    }
  }
  if (file) {
    if (auto password = read_password_file_value(*file, &user.password_file)) {
      try {
        user.password_hash = hash_password(*password, PasswordScheme::kPbkdf2Sha256,
                                           PasswordCost{kPasswordFileIterations});
      } catch (const std::exception& e) {
        error(*file, std::string("cannot hash the password: ") + e.what());
      }
      wipe_secret(*password);
    }
  }

  if (const Value* x = f.get("tls_identity")) {
    any_identity_user_ = true;
    for (const Value& item : string_or_list(*x, "identity")) {
      const auto id = read_string(item);
      if (!id) continue;
      if (id->empty()) {
        error(item, "must not be empty");
      } else if (id->size() > kMaxTlsIdentity) {
        error(item, "is longer than " + std::to_string(kMaxTlsIdentity) + " bytes");
      } else if (std::any_of(id->begin(), id->end(), [](char c) {
                   return static_cast<unsigned char>(c) < ' ' || c == 0x7f;
                 })) {
        error(item, quoted(*id) + " contains control characters");
      } else {
        // One certificate must name one user.
        const auto first = std::find_if(user_identities_.begin(), user_identities_.end(),
                                        [&](const Seen& s) { return s.text == *id; });
        if (first == user_identities_.end()) {
          user_identities_.push_back({*id, user.name, item.where()});
          user.tls_identities.push_back(*id);
        } else if (first->user == user.name) {
          error(item,
                "duplicate identity " + quoted(*id) + " (first given at " + at(first->where) + ")");
        } else {
          error(item, "identity " + quoted(*id) + " already belongs to user " +
                          quoted(first->user) + " (at " + at(first->where) + ")");
        }
      }
    }
  }

  if (const Value* x = f.get("allow")) {
    // An empty `allow:` (everything commented out) is the same as none: everything allowed.
    if (!x->node.IsNull() && expect_map(*x)) load_allow(*x, user);
  }

  if (const Value* x = f.get("namespace")) {
    if (auto ns = read_string(*x)) {
      if (ns->empty()) {
        error(*x, "must not be empty (leave namespace out for none)");
      } else if (ns->size() > kMaxNamespace) {
        error(*x, "is longer than " + std::to_string(kMaxNamespace) + " bytes");
      } else if (has_space_or_control(*ns)) {
        error(*x, quoted(*ns) + " contains whitespace or control characters");
      } else {
        // A hash tag character in the namespace would be found before the key's own tag and
        // decide the server of all the user's keys.
        const PoolConfig* tagged = nullptr;
        for (const auto& pool : *loaded_pools_)
          if (!pool.hash_tag.empty() && ns->find_first_of(pool.hash_tag) != std::string::npos)
            tagged = &pool;
        if (tagged != nullptr) {
          error(*x, quoted(*ns) + " contains a character of pool '" + tagged->name +
                        "''s hash_tag " + quoted(tagged->hash_tag));
        } else {
          // A namespace that starts with another user's would put its keys inside that user's
          // namespace, where that user reads, lists and overwrites them. (Users may share one.)
          for (const auto& other : namespaces_) {
            if (other.text == *ns) continue;
            const bool inside = ns->compare(0, other.text.size(), other.text) == 0;
            const bool around = other.text.compare(0, ns->size(), *ns) == 0;
            if (!inside && !around) continue;
            error(*x, quoted(*ns) + (inside ? " starts with " : " is the start of ") + "user " +
                          quoted(other.user) + "'s namespace " + quoted(other.text) + " (at " +
                          at(other.where) + "); one user would see the other's keys");
          }
          namespaces_.push_back(Seen{*ns, user.name, x->where()});
          user.key_namespace = *ns;
        }
      }
    }
  }
  out.push_back(std::move(user));
}

void Loader::load_allow(const Value& v, UserConfig& user) {
  const Fields f = fields(v, kAllowKeys);
  if (const Value* x = f.get("ops")) {
    if (!x->node.IsSequence()) {
      error(*x,
            "expected a list of operation classes (read, write, admin), got " + describe(x->node));
    } else if (x->node.size() == 0) {
      error(*x, "must list at least one of read, write, admin (leave ops out to allow all three)");
    } else {
      user.may_read = user.may_write = user.may_admin = false;
      std::vector<std::pair<OpClass, SourceLocation>> seen;
      for (size_t i = 0; i < x->node.size(); ++i) {
        const YAML::Node item = x->node[i];
        const Value iv{item, item, x->path + "[" + std::to_string(i) + "]"};
        const auto op = read_enum(iv, kOpClasses, "operation class");
        if (!op) continue;
        const auto first =
            std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == *op; });
        if (first != seen.end()) {
          error(iv, "duplicate operation class " + quoted(to_string(*op)) + " (first given at " +
                        at(first->second) + ")");
          continue;
        }
        seen.emplace_back(*op, iv.where());
        (*op == OpClass::kRead    ? user.may_read
         : *op == OpClass::kWrite ? user.may_write
                                  : user.may_admin) = true;
      }
    }
  }
  if (const Value* x = f.get("keys")) {
    if (!x->node.IsSequence()) {
      error(*x, "expected a list of key patterns, got " + describe(x->node));
    } else if (x->node.size() == 0) {
      error(*x, "must list at least one pattern (leave keys out to allow every key)");
    } else {
      for (size_t i = 0; i < x->node.size(); ++i) {
        const YAML::Node item = x->node[i];
        const Value iv{item, item, x->path + "[" + std::to_string(i) + "]"};
        const auto pattern = read_string(iv);
        if (!pattern) continue;
        if (pattern->empty()) {
          error(iv, "must not be empty");
        } else if (std::string problem = check_glob(*pattern); !problem.empty()) {
          error(iv, "key pattern " + quoted(*pattern) + " " + problem);
        } else {
          user.key_patterns.push_back(*pattern);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// References by name, shared by listeners, users and route rules.

// A string, or a non-empty list of strings: the items, each with its own path. Anything else is
// reported and gives no items.
std::vector<Value> Loader::string_or_list(const Value& v, std::string_view what) {
  std::vector<Value> items;
  if (v.node.IsSequence()) {
    if (v.node.size() == 0) error(v, "must list at least one " + std::string(what));
    for (size_t i = 0; i < v.node.size(); ++i) {
      const YAML::Node item = v.node[i];
      items.push_back({item, item, v.path + "[" + std::to_string(i) + "]"});
    }
  } else if (v.node.IsScalar()) {
    items.push_back(v);
  } else {
    error(v, "expected a string or a list of strings, got " + describe(v.node));
  }
  return items;
}

// The pool `name`, written at `v`; null, with an error there, when there is none.
const PoolInfo* Loader::find_pool(const Value& v, const std::string& name) {
  const auto it =
      std::find_if(pools_.begin(), pools_.end(), [&](const PoolInfo& p) { return p.name == name; });
  if (it != pools_.end()) return &*it;
  std::vector<std::string_view> known;
  for (const auto& p : pools_)
    known.push_back(p.name);
  error(v, "no pool named " + quoted(name) + suggestion(name, known));
  return nullptr;
}

const ListenerDraft* Loader::find_listener(std::string_view name) const {
  for (const auto* drafts : {&explicit_listeners_, &pool_listeners_})
    for (const auto& d : *drafts)
      if (d.name_ok && d.config.name == name) return &d;
  return nullptr;
}

// A name or a non-empty list of names, each one of `known` and none twice. Every name read is
// returned with where it was written, known or not.
std::vector<Entry> Loader::read_references(const Value& v, std::string_view what,
                                           const std::vector<std::string_view>& known) {
  std::vector<Entry> out;
  for (const Value& item : string_or_list(v, what)) {
    const auto name = read_string(item);
    if (!name) continue;
    const auto first =
        std::find_if(out.begin(), out.end(), [&](const Entry& e) { return e.name == *name; });
    if (first != out.end()) {
      error(item, "duplicate " + std::string(what) + " " + quoted(*name) + " (first given at " +
                      at(first->value.where()) + ")");
      continue;
    }
    if (std::find(known.begin(), known.end(), *name) == known.end()) {
      error(item, "no " + std::string(what) + " named " + quoted(*name) +
                      (known.empty() ? " (none is defined)" : suggestion(*name, known)));
    }
    out.push_back({*name, item});
  }
  return out;
}

// A plain YAML number from 0 to 1 (0, 1, 0.25, 1e-3); quoted strings, .inf and .nan are not.
std::optional<double> Loader::read_fraction(const Value& v) {
  const std::string_view s = v.node.IsScalar() ? std::string_view(v.node.Scalar()) : "";
  const bool plain = v.node.IsScalar() && (is_plain_or_tagged(v.node, "tag:yaml.org,2002:float") ||
                                           is_plain_or_tagged(v.node, "tag:yaml.org,2002:int"));
  const std::string_view digits = !s.empty() && s.front() == '+' ? s.substr(1) : s;
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value,
                                         std::chars_format::general);
  if (!plain || digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      !std::isfinite(value)) {
    error(v, "expected a number from 0.0 to 1.0, got " + describe(v.node));
    return std::nullopt;
  }
  if (value < 0 || value > 1) {
    error(v, "must be between 0.0 and 1.0, got " + std::string(s));
    return std::nullopt;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// routes
//
// How a request finds its rule (the runtime does this; loading only makes sure it always
// succeeds and that every rule can be chosen): among the rules whose conditions all hold, the
// one with the longest `prefix` wins, a rule without a prefix counting as length 0; among
// equally long ones, the first in the list. So a rule after one with the same prefix (or, like
// it, none or an empty one) and no other condition can never be chosen, and a table without a
// catch-all would leave some requests with nowhere to go.

void Loader::load_routes(const Value* v, std::vector<RouteTableConfig>& out) {
  // An empty `routes:` (every table commented out) is the same as none.
  if (v == nullptr || v->node.IsNull()) return;
  if (!v->node.IsMap()) {
    error(*v, "expected a map of route table names to lists of rules, got " + describe(v->node));
    return;
  }
  for (const auto& e : entries(*v, "route table")) {
    // A table with a bad name is still checked, so its other errors are reported too.
    read_name({e.value.key, e.value.key, e.value.path});
    out.push_back(load_route_table(e.name, e.value));
  }
}

RouteTableConfig Loader::load_route_table(const std::string& name, const Value& v) {
  RouteInfo& info = routes_.emplace_back(RouteInfo{name, std::nullopt});
  RouteTableConfig table;
  table.name = name;
  table.where = location_of(v.key);
  if (v.node.IsNull() || (v.node.IsSequence() && v.node.size() == 0)) {
    error(v, "must list at least one rule");
    return table;
  }
  if (!v.node.IsSequence()) {
    error(v, "expected a list of rules, got " + describe(v.node));
    return table;
  }
  std::vector<PoolUse> uses;
  // Per rule: whether its conditions were read without errors. A condition that could not be
  // read is left out, which would make the rule look broader than written.
  std::vector<bool> known;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    RouteRule rule;
    known.push_back(
        load_rule({item, item, v.path + "[" + std::to_string(i) + "]"}, name, rule, uses));
    table.rules.push_back(std::move(rule));
  }

  // An empty prefix matches every key, as no prefix does, and has the same length: the two
  // compare equal here.
  for (size_t j = 0; j < table.rules.size(); ++j) {
    if (!known[j]) continue;
    const std::optional<std::string>& later = table.rules[j].match.prefix;
    for (size_t i = 0; i < j; ++i) {
      const std::optional<std::string>& prefix = table.rules[i].match.prefix;
      // The earlier rule with its prefix taken away: a catch-all when it has no other condition.
      RouteMatch others = table.rules[i].match;
      others.prefix.reset();
      if (!known[i] || prefix.value_or("") != later.value_or("") || !others.catch_all()) continue;
      std::string how;
      if (prefix && later) {
        how = "with the same prefix " + quoted(*later);
      } else if (!prefix && !later) {
        how = "without a prefix either";
      } else if (prefix) {
        how = "with an empty prefix, which matches every key as none does,";
      } else {
        how = "without a prefix, which matches every key as an empty one does,";
      }
      error(table.rules[j].where, v.path + "[" + std::to_string(j) + "]",
            "is never chosen: " + v.path + "[" + std::to_string(i) + "] (line " +
                std::to_string(table.rules[i].where.line) + ") comes first " + how +
                " and no other condition, so it takes every request this rule could");
      break;
    }
  }

  const bool has_catch_all = std::any_of(table.rules.begin(), table.rules.end(),
                                         [](const RouteRule& r) { return r.match.catch_all(); });
  const bool all_known = std::all_of(known.begin(), known.end(), [](bool k) { return k; });
  if (!has_catch_all && all_known) {
    error(location_of(v.key), v.path,
          "has no catch-all rule (a rule with match: {}), so some requests would have nowhere "
          "to go");
  }

  // The table's protocol is that of the pool named first; one named later with another protocol
  // is the mistake.
  std::stable_sort(uses.begin(), uses.end(), [](const PoolUse& a, const PoolUse& b) {
    return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
  });
  if (!uses.empty()) {
    const PoolUse& first = uses.front();
    for (const PoolUse& use : uses) {
      if (use.pool->protocol == first.pool->protocol) continue;
      error(use.where, use.path,
            "pool " + quoted(use.pool->name) + " is a " +
                std::string(to_string(use.pool->protocol)) + " pool, but pool " +
                quoted(first.pool->name) + " (at " + at(first.where) + ") is " +
                std::string(to_string(first.pool->protocol)) +
                "; the pools of a route table must all have the same protocol");
    }
    table.protocol = first.pool->protocol;
    info.protocol = table.protocol;
  }
  return table;
}

// Returns whether the rule's conditions are known: false when the rule or its match had errors.
bool Loader::load_rule(const Value& v, const std::string& table, RouteRule& rule,
                       std::vector<PoolUse>& uses) {
  rule.where = v.where();
  if (!expect_map(v)) return false;
  const Fields f = fields(v, kRuleKeys);

  bool match_known = true;
  if (const Value* x = f.get("match")) {
    const size_t errors_before = errors_.size();
    // An empty `match:` (every condition commented out) is the same as none: a catch-all.
    if (!x->node.IsNull() && expect_map(*x)) load_match(*x, table, rule.match);
    match_known = errors_.size() == errors_before;
  }

  std::vector<const Value*> kinds;
  for (std::string_view k : kRouteKinds)
    if (const Value* x = f.get(k)) kinds.push_back(x);
  std::stable_sort(kinds.begin(), kinds.end(), [](const Value* a, const Value* b) {
    const SourceLocation wa = location_of(a->key), wb = location_of(b->key);
    return std::pair(wa.line, wa.column) < std::pair(wb.line, wb.column);
  });
  if (kinds.empty()) {
    error(v, "needs one of pool, replicate, failover or warmup: where its requests go");
  } else if (kinds.size() > 1) {
    std::string found;
    for (size_t i = 0; i < kinds.size(); ++i) {
      found += (i == 0 ? "" : i + 1 == kinds.size() ? " and " : ", ") + kinds[i]->key.Scalar();
    }
    error(
        location_of(kinds[1]->key), kinds[1]->path,
        "a rule takes exactly one of pool, replicate, failover and warmup; this one has " + found);
  }
  // Each one given is read, so that its own errors are reported too; read from the last to the
  // first, so that the one written first decides the rule.
  for (auto it = kinds.rbegin(); it != kinds.rend(); ++it) {
    const Value& x = **it;
    const std::string& kind = x.key.Scalar();
    rule.pools.clear();
    if (kind == "pool") {
      rule.kind = RouteKind::kPool;
      if (auto name = read_route_pool(x, uses)) rule.pools.push_back(*name);
    } else if (kind == "replicate") {
      rule.kind = RouteKind::kReplicate;
      load_replicate(x, rule, uses);
    } else if (kind == "failover") {
      rule.kind = RouteKind::kFailover;
      rule.pools = read_route_pools(x, uses);
    } else {
      rule.kind = RouteKind::kWarmup;
      load_warmup(x, rule, uses);
    }
  }
  if (const Value* x = f.get("failover_ttl")) {
    if (!f.get("failover")) error(*x, "applies only to a rule with failover");
    if (auto n = read_int(*x, 1, kMaxTtlSeconds)) rule.failover_ttl = static_cast<uint32_t>(*n);
  }

  if (const Value* x = f.get("shadow")) load_shadow(*x, rule, uses);
  if (const Value* x = f.get("rewrite")) load_rewrite(*x, rule);
  if (const Value* x = f.get("ttl")) {
    if (expect_map(*x)) {
      const Fields t = fields(*x, kTtlKeys);
      if (const Value* max = t.get("max")) {
        if (auto n = read_int(*max, 1, kMaxTtlSeconds)) rule.ttl_max = static_cast<uint32_t>(*n);
      } else {
        error(location_of(x->key), x->path, "missing required key 'max'");
      }
    }
  }
  if (const Value* x = f.get("timeout")) {
    if (auto ms = read_millis(*x)) rule.timeout = *ms;
  }
  return match_known;
}

void Loader::load_match(const Value& v, const std::string& table, RouteMatch& match) {
  const Fields f = fields(v, kMatchKeys);
  if (const Value* x = f.get("prefix")) {
    if (auto s = read_string(*x)) match.prefix = *s;
  }
  if (const Value* x = f.get("glob")) {
    if (auto pattern = read_string(*x)) {
      if (pattern->empty()) {
        error(*x, "must not be empty (leave glob out to match every key)");
      } else if (std::string problem = check_glob(*pattern); !problem.empty()) {
        error(*x, "key pattern " + quoted(*pattern) + " " + problem);
      } else {
        match.glob = *pattern;
      }
    }
  }
  if (const Value* x = f.get("ops")) load_route_ops(*x, match.ops);
  if (const Value* x = f.get("listener")) {
    std::vector<std::string_view> known;
    for (const auto* drafts : {&explicit_listeners_, &pool_listeners_})
      for (const auto& d : *drafts)
        if (d.name_ok) known.push_back(d.config.name);
    for (const Entry& e : read_references(*x, "listener", known)) {
      match.listeners.push_back(e.name);
      // A listener that serves a pool, or another table, never brings a request here.
      const ListenerDraft* d = find_listener(e.name);
      if (d == nullptr || d->config.route == table) continue;
      if (!d->config.route.empty()) {
        error(e.value, "listener " + quoted(e.name) + " uses route table " +
                           quoted(d->config.route) + ", so this rule never sees its requests");
      } else if (!d->config.pool.empty()) {
        error(e.value, "listener " + quoted(e.name) + " serves pool " + quoted(d->config.pool) +
                           " directly, so this rule never sees its requests");
      }
    }
  }
  if (const Value* x = f.get("user")) {
    std::vector<std::string_view> known;
    for (const auto& u : user_names_)
      known.push_back(u.text);
    for (const Entry& e : read_references(*x, "user", known))
      match.users.push_back(e.name);
  }
}

void Loader::load_route_ops(const Value& v, uint8_t& ops) {
  if (!v.node.IsSequence()) {
    error(v, "expected a list of operations (read, write, delete, arithmetic, admin), got " +
                 describe(v.node));
    return;
  }
  if (v.node.size() == 0) {
    error(v,
          "must list at least one of read, write, delete, arithmetic, admin (leave ops out to "
          "match every operation)");
    return;
  }
  ops = 0;
  std::vector<std::pair<RouteOp, SourceLocation>> seen;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    const Value iv{item, item, v.path + "[" + std::to_string(i) + "]"};
    const auto op = read_enum(iv, kRouteOps, "operation");
    if (!op) continue;
    const auto first =
        std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == *op; });
    if (first != seen.end()) {
      error(iv, "duplicate operation " + quoted(to_string(*op)) + " (first given at " +
                    at(first->second) + ")");
      continue;
    }
    seen.emplace_back(*op, iv.where());
    ops |= route_op_bit(*op);
  }
}

// One pool named by a rule: its name when it is a string, recorded in `uses` when it exists.
std::optional<std::string> Loader::read_route_pool(const Value& v, std::vector<PoolUse>& uses) {
  auto name = read_string(v);
  if (!name) return std::nullopt;
  if (const PoolInfo* pool = find_pool(v, *name)) uses.push_back({pool, v.where(), v.path});
  return name;
}

// replicate.pools and failover: at least two different pools, in order.
std::vector<std::string> Loader::read_route_pools(const Value& v, std::vector<PoolUse>& uses) {
  std::vector<std::string> out;
  if (!v.node.IsSequence()) {
    error(v, "expected a list of pool names, got " + describe(v.node));
    return out;
  }
  if (v.node.size() < 2) {
    error(v, std::string("must list at least two pools") +
                 (v.node.size() == 1 ? " (for one pool, write pool: instead)" : ""));
  }
  std::vector<SourceLocation> where;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    const Value iv{item, item, v.path + "[" + std::to_string(i) + "]"};
    const auto name = read_string(iv);
    if (!name) continue;
    const auto first = std::find(out.begin(), out.end(), *name);
    if (first != out.end()) {
      error(iv, "duplicate pool " + quoted(*name) + " (first given at " +
                    at(where[static_cast<size_t>(first - out.begin())]) + ")");
      continue;
    }
    if (const PoolInfo* pool = find_pool(iv, *name)) uses.push_back({pool, iv.where(), iv.path});
    out.push_back(*name);
    where.push_back(iv.where());
  }
  return out;
}

void Loader::load_replicate(const Value& v, RouteRule& rule, std::vector<PoolUse>& uses) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kReplicateKeys);
  if (const Value* x = f.get("pools")) {
    rule.pools = read_route_pools(*x, uses);
  } else {
    error(location_of(v.key), v.path, "missing required key 'pools'");
  }
  if (const Value* x = f.get("mode")) {
    if (auto m = read_enum(*x, kReplicateModes, "mode")) rule.mode = *m;
  }
  if (const Value* x = f.get("read")) {
    if (auto r = read_enum(*x, kReadPolicies, "read policy")) rule.read = *r;
  }
  if (const Value* x = f.get("miss_failover")) {
    if (auto b = read_bool(*x)) rule.miss_failover = *b;
  }
}

void Loader::load_warmup(const Value& v, RouteRule& rule, std::vector<PoolUse>& uses) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kWarmupKeys);
  std::optional<std::string> cold, warm;
  for (std::string_view key : kWarmupKeys) {
    const Value* x = f.get(key);
    if (x == nullptr) {
      error(location_of(v.key), v.path, "missing required key " + quoted(key));
      continue;
    }
    (key == "cold" ? cold : warm) = read_route_pool(*x, uses);
  }
  if (cold && warm && *cold == *warm)
    error(*f.get("warm"), "cold and warm must be different pools, both are " + quoted(*cold));
  rule.pools = {cold.value_or(""), warm.value_or("")};
}

void Loader::load_shadow(const Value& v, RouteRule& rule, std::vector<PoolUse>& uses) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kShadowKeys);
  if (const Value* x = f.get("pool")) {
    if (auto name = read_route_pool(*x, uses)) {
      rule.shadow_pool = *name;
      // Copies sent to a pool the rule already writes to would be applied twice.
      if (std::find(rule.pools.begin(), rule.pools.end(), *name) != rule.pools.end())
        error(*x,
              quoted(*name) + " is one of this rule's own pools; a shadow must be another pool");
    }
  } else {
    error(location_of(v.key), v.path, "missing required key 'pool'");
  }
  if (const Value* x = f.get("fraction")) {
    if (auto fraction = read_fraction(*x)) rule.shadow_fraction = *fraction;
  }
}

void Loader::load_rewrite(const Value& v, RouteRule& rule) {
  if (!expect_map(v)) return;
  const Fields f = fields(v, kRewriteKeys);
  // Whether something will be rewritten, or an error already says why not.
  bool rewrites = false;
  for (auto [key, field] :
       {std::pair{"strip_prefix", &rule.strip_prefix}, std::pair{"add_prefix", &rule.add_prefix}}) {
    const Value* x = f.get(key);
    if (x == nullptr) continue;
    const auto s = read_string(*x);
    if (!s) {
      rewrites = true;
      continue;
    }
    if (!s->empty()) rewrites = true;
    // The same limits as a user's namespace, for the same reasons.
    if (s->size() > kMaxNamespace) {
      error(*x, "is longer than " + std::to_string(kMaxNamespace) + " bytes");
    } else if (has_space_or_control(*s)) {
      error(*x, quoted(*s) + " contains whitespace or control characters");
    } else {
      *field = *s;
    }
  }
  if (!rewrites) {
    error(location_of(v.key), v.path,
          "needs a non-empty strip_prefix or add_prefix (leave rewrite out to keep keys as they "
          "are)");
    return;
  }
  const Value* add = f.get("add_prefix");
  if (add == nullptr || rule.add_prefix.empty()) return;
  if (rule.add_prefix == rule.strip_prefix) {
    error(*add, "is the same as strip_prefix, so no key would change");
    return;
  }
  // A hash tag character in the added prefix would be found before the key's own tag and decide
  // the server of every key of the rule.
  std::vector<std::string> names = rule.pools;
  if (!rule.shadow_pool.empty()) names.push_back(rule.shadow_pool);
  for (const auto& name : names) {
    const auto pool = std::find_if(loaded_pools_->begin(), loaded_pools_->end(),
                                   [&](const PoolConfig& p) { return p.name == name; });
    if (pool == loaded_pools_->end() || pool->hash_tag.empty() ||
        rule.add_prefix.find_first_of(pool->hash_tag) == std::string::npos)
      continue;
    error(*add, quoted(rule.add_prefix) + " contains a character of pool '" + pool->name +
                    "''s hash_tag " + quoted(pool->hash_tag));
    return;
  }
}

void Loader::check_listener_routes() {
  std::vector<std::string_view> known;
  for (const auto& r : routes_)
    known.push_back(r.name);
  for (auto& d : explicit_listeners_) {
    if (!d.route_value) continue;
    const auto table = std::find_if(routes_.begin(), routes_.end(),
                                    [&](const RouteInfo& r) { return r.name == d.config.route; });
    if (table == routes_.end()) {
      error(*d.route_value,
            "no route table named " + quoted(d.config.route) + suggestion(d.config.route, known));
      continue;
    }
    if (!table->protocol) continue;
    if (!d.protocol_value) {
      d.config.protocol = *table->protocol;
    } else if (d.config.protocol != *table->protocol) {
      error(*d.protocol_value, "protocol " + std::string(to_string(d.config.protocol)) +
                                   " does not match route table " + quoted(table->name) +
                                   "'s protocol " + std::string(to_string(*table->protocol)));
    }
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
