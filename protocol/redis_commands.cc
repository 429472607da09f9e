#include "protocol/redis_commands.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "protocol/ascii.h"

namespace cachegate::protocol::redis {
namespace {

#include "protocol/redis_command_table.inc"

constexpr bool by_name(const CommandInfo& a, const CommandInfo& b) {
  return a.name < b.name;
}

// The lookups binary-search by name, so the generator's sort order is an invariant of the table,
// and each container's subcommands must be named "container|sub" for find_subcommand().
constexpr bool table_is_well_formed() {
  if (!std::is_sorted(std::begin(kCommands), std::end(kCommands), by_name)) return false;
  for (const CommandInfo& cmd : kCommands) {
    if (cmd.name.size() > kLongestCommandName) return false;
    if (cmd.name.find('|') != std::string_view::npos) return false;
    const std::span<const CommandInfo> subs = cmd.subs();
    if (!std::is_sorted(subs.begin(), subs.end(), by_name)) return false;
    for (const CommandInfo& sub : subs) {
      if (sub.name.size() <= cmd.name.size() + 1 || sub.name.size() > kLongestSubcommandName ||
          !sub.name.starts_with(cmd.name) || sub.name[cmd.name.size()] != '|' ||
          sub.is_container()) {
        return false;
      }
    }
  }
  return true;
}
static_assert(std::size(kCommands) == kTableCommandCount);
static_assert(table_is_well_formed());

// Lower-cases `name` into `buf` (command names are ASCII; Redis compares them with strcasecmp).
// Returns false when it cannot be any name in the table, being longer than the longest.
template <size_t N>
bool lower_into(std::string_view name, std::array<char, N>& buf, std::string_view& out) {
  if (name.size() > N) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    buf[i] = ascii_lower(name[i]);
  }
  out = std::string_view(buf.data(), name.size());
  return true;
}

const CommandInfo* find_in(std::span<const CommandInfo> table, size_t prefix,
                           std::string_view lowered) {
  const auto it = std::lower_bound(
      table.begin(), table.end(), lowered,
      [prefix](const CommandInfo& c, std::string_view key) { return c.name.substr(prefix) < key; });
  if (it == table.end() || it->name.substr(prefix) != lowered) return nullptr;
  return &*it;
}

// printf's "%.*s": at most `max` bytes, and nothing from the first NUL on. Redis formats the
// client's arguments into its error texts that way.
std::string_view c_string_prefix(std::string_view s, size_t max) {
  s = s.substr(0, std::min(s.size(), max));
  const size_t nul = s.find('\0');
  return nul == std::string_view::npos ? s : s.substr(0, nul);
}

// Redis replaces CR and LF in error texts built from client arguments, so that the error stays
// a single protocol line (server.c, commandCheckExistence).
void map_crlf_to_spaces(std::string& s) {
  std::replace(s.begin(), s.end(), '\r', ' ');
  std::replace(s.begin(), s.end(), '\n', ' ');
}

// Redis's string2ll for a key count: "0", or a digit 1-9 followed by digits, nothing else (no
// sign, no leading zeros or spaces). A negative count is as invalid as garbage here.
bool parse_count(std::string_view s, int64_t& out) {
  if (s == "0") {
    out = 0;
    return true;
  }
  if (s.empty() || s.size() > 19 || s[0] < '1' || s[0] > '9') return false;
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

enum class SpecResult : uint8_t {
  kOk,         // keys (possibly none: an absent keyword) appended
  kNoKeys,     // numkeys is 0
  kInvalid,    // cannot be evaluated for these arguments
  kIncomplete  // keys appended, but the spec may have missed some
};

// One key spec over the request, as Redis evaluates it (db.c, getKeysUsingKeySpecs).
SpecResult apply_spec(const KeySpec& spec, const std::string_view* args, int64_t argc,
                      std::vector<uint32_t>& out) {
  int64_t first = 0;
  switch (spec.begin_search) {
    case BeginSearch::kIndex:
      first = spec.index;
      break;
    case BeginSearch::kKeyword: {
      // Forwards from startfrom up to the second-to-last argument, or backwards from
      // argc+startfrom down to index 2; a keyword in the last place has no key after it.
      if (spec.startfrom > 0) {
        for (int64_t i = spec.startfrom; i < argc - 1; ++i) {
          if (iequals(args[i], spec.keyword)) {
            first = i + 1;
            break;
          }
        }
      } else {
        for (int64_t i = argc + spec.startfrom; i > 1 && i < argc; --i) {
          if (iequals(args[i], spec.keyword)) {
            first = i + 1;
            break;
          }
        }
      }
      // An absent keyword is an option not given: no keys, and not a failure, even for an
      // incomplete spec (Redis checks that only once the keyword is found).
      if (first == 0) return SpecResult::kOk;
      // A keyword naming one key may be given again ("STORE a STORE b"): Redis's key specs
      // report the first, but commands such as GEORADIUS write to the last. Every one is
      // reported, so that permissions and namespaces cover the key actually written.
      if (spec.find_keys == FindKeys::kRange && spec.lastkey == 0 && first < argc) {
        out.push_back(static_cast<uint32_t>(first));
        const int64_t direction = spec.startfrom > 0 ? 1 : -1;
        const int64_t keyword_at = first - 1;
        for (int64_t i = direction > 0 ? first + 1 : keyword_at - 1;
             direction > 0 ? i < argc - 1 : (i > 1 && i < argc); i += direction) {
          if (!iequals(args[i], spec.keyword)) continue;
          out.push_back(static_cast<uint32_t>(i + 1));
          if (direction > 0) ++i;  // the key after it is not a keyword
        }
        return (spec.flags & KeySpecFlag::kIncomplete) ? SpecResult::kIncomplete : SpecResult::kOk;
      }
      break;
    }
    case BeginSearch::kUnknown:
      return SpecResult::kInvalid;
  }

  int64_t last = 0;
  const int64_t step = spec.keystep;
  switch (spec.find_keys) {
    case FindKeys::kRange:
      if (spec.lastkey >= 0) {
        last = first + spec.lastkey;
      } else if (spec.limit == 0) {
        last = argc + spec.lastkey;
      } else {
        last = first + ((argc - first) / spec.limit + spec.lastkey);
      }
      break;
    case FindKeys::kKeynum: {
      const int64_t at = first + spec.keynumidx;
      int64_t count = 0;
      if (at >= argc || !parse_count(args[at], count) || count > argc) {
        return SpecResult::kInvalid;
      }
      if (count == 0) return SpecResult::kNoKeys;
      first += spec.firstkey;
      last = first + count - 1;
      break;
    }
    case FindKeys::kUnknown:
      return SpecResult::kInvalid;
  }
  if (first >= argc || last >= argc || last < first || step <= 0) return SpecResult::kInvalid;
  for (int64_t i = first; i <= last; i += step) {
    out.push_back(static_cast<uint32_t>(i));
  }
  return (spec.flags & KeySpecFlag::kIncomplete) ? SpecResult::kIncomplete : SpecResult::kOk;
}

// SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE dest]:
// the STORE key can be anywhere among the options, so the spec says "unknown". Options are
// skipped with their arguments as SORT itself parses them; the last STORE wins, as in SORT.
// (Redis's sortGetKeys does not step over the STORE key itself, so for "STORE by …" it differs
// from what SORT writes; this follows SORT.)
void sort_keys(const std::string_view* args, int64_t argc, bool read_only,
               std::vector<uint32_t>& out) {
  out.push_back(1);
  if (read_only) return;
  int64_t store = 0;
  for (int64_t i = 2; i < argc; ++i) {
    if (iequals(args[i], "limit")) {
      i += 2;
    } else if (iequals(args[i], "get") || iequals(args[i], "by")) {
      i += 1;
    } else if (iequals(args[i], "store") && i + 1 < argc) {
      store = i + 1;
      i += 1;
    }
  }
  if (store != 0) out.push_back(static_cast<uint32_t>(store));
}

// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw]
// [KEYS key …] (cluster.c, migrateGetKeys): one key at 3, or, when it is empty, the keys after
// KEYS. Both at once is a syntax error.
bool migrate_keys(const std::string_view* args, int64_t argc, std::vector<uint32_t>& out) {
  int64_t first = 3;
  int64_t count = 1;
  for (int64_t i = 6; i < argc; ++i) {
    if (iequals(args[i], "keys")) {
      if (!args[3].empty()) return false;
      first = i + 1;
      count = argc - first;
      break;
    }
    if (iequals(args[i], "auth")) {
      i += 1;
    } else if (iequals(args[i], "auth2")) {
      i += 2;
    }
  }
  for (int64_t i = 0; i < count; ++i) {
    out.push_back(static_cast<uint32_t>(first + i));
  }
  return true;
}

}  // namespace

std::string_view table_redis_version() {
  return kTableRedisVersion;
}

const CommandInfo* find_command(std::string_view name) {
  std::array<char, kLongestCommandName> buf;
  std::string_view lowered;
  if (!lower_into(name, buf, lowered)) return nullptr;
  return find_in(kCommands, 0, lowered);
}

const CommandInfo* find_subcommand(const CommandInfo& container, std::string_view sub) {
  if (!container.is_container()) return nullptr;
  std::array<char, kLongestSubcommandName> buf;
  std::string_view lowered;
  if (!lower_into(sub, buf, lowered)) return nullptr;
  return find_in(container.subs(), container.name.size() + 1, lowered);
}

const CommandInfo* find_command_by_full_name(std::string_view full_name) {
  const size_t bar = full_name.find('|');
  const CommandInfo* cmd = find_command(full_name.substr(0, bar));
  if (cmd == nullptr || bar == std::string_view::npos) return cmd;
  return find_subcommand(*cmd, full_name.substr(bar + 1));
}

Resolved resolve(const std::string_view* args, size_t argc) {
  if (argc == 0) return {};
  const CommandInfo* cmd = find_command(args[0]);
  if (cmd == nullptr) return {};
  if (argc >= 2 && cmd->is_container()) {
    const CommandInfo* sub = find_subcommand(*cmd, args[1]);
    if (sub == nullptr) return {Dispatch::kUnknownSubcommand, cmd};
    cmd = sub;
  }
  if (!arity_ok(*cmd, argc)) return {Dispatch::kWrongArity, cmd};
  return {Dispatch::kOk, cmd};
}

std::string dispatch_error(const Resolved& resolved, const std::string_view* args, size_t argc) {
  switch (resolved.status) {
    case Dispatch::kOk:
      return {};
    case Dispatch::kUnknownCommand:
      return unknown_command_error(args, argc);
    case Dispatch::kUnknownSubcommand:
      return unknown_subcommand_error(*resolved.command, argc >= 2 ? args[1] : "");
    case Dispatch::kWrongArity:
      return wrong_arity_error(*resolved.command);
  }
  return {};
}

size_t command_count() {
  return kTableCommandCount;
}

std::span<const CommandInfo> all_commands() {
  return kCommands;
}

bool key_positions(const CommandInfo& command, const std::string_view* args, size_t argc,
                   std::vector<uint32_t>& out) {
  out.clear();
  const CommandInfo* cmd = &command;
  if (cmd->is_container() && argc >= 2) {
    cmd = find_subcommand(*cmd, args[1]);
    if (cmd == nullptr) return false;
  }
  // Bounds the arguments against the int arithmetic below as well.
  if (!arity_ok(*cmd, argc) || argc > (uint64_t{1} << 31)) return false;
  const auto n = static_cast<int64_t>(argc);

  // Like Redis (db.c, getKeysFromCommandWithSpecs): the key specs first; when one of them cannot
  // be evaluated, the command's own key finder, which for every command but SORT, SORT_RO and
  // MIGRATE finds no keys in a request its specs reject (the command then fails with a syntax
  // error). COMMAND GETKEYS answers the same, except that it accepts what atoi() reads as a
  // numkeys ("01") where the command itself (string2ll) rejects it.
  bool valid = true;
  for (const KeySpec& spec : cmd->specs()) {
    if (spec.flags & KeySpecFlag::kNotKey) continue;
    const SpecResult result = apply_spec(spec, args, n, out);
    if (result == SpecResult::kOk) continue;
    // A numkeys of 0 is a keyless call of a command that allows one (EVAL "…" 0); the others
    // (ZUNIONSTORE, LMPOP, …) require at least one key.
    if (result == SpecResult::kNoKeys && cmd->has(CommandFlag::kNoMandatoryKeys)) continue;
    valid = false;
    break;
  }
  if (valid) return true;
  out.clear();
  if (cmd->name == "sort" || cmd->name == "sort_ro") {
    sort_keys(args, n, cmd->name == "sort_ro", out);
    return true;
  }
  if (cmd->name == "migrate" && migrate_keys(args, n, out)) return true;
  out.clear();
  return false;
}

std::string unknown_command_error(const std::string_view* args, size_t argc) {
  // server.c, commandCheckExistence: "'%.128s'" for the name, then "'%.*s' " per argument with
  // the precision 128 minus what the list already holds, while the list is under 128 bytes.
  constexpr size_t kBudget = 128;
  std::string listed;
  for (size_t i = 1; i < argc && listed.size() < kBudget; ++i) {
    const size_t room = kBudget - listed.size();
    listed += '\'';
    listed += c_string_prefix(args[i], room);
    listed += "' ";
  }
  std::string out = "ERR unknown command '";
  out += c_string_prefix(argc != 0 ? args[0] : std::string_view(), kBudget);
  out += "', with args beginning with: ";
  out += listed;
  map_crlf_to_spaces(out);
  return out;
}

std::string unknown_subcommand_error(const CommandInfo& container, std::string_view sub) {
  std::string out = "ERR unknown subcommand '";
  out += c_string_prefix(sub, 128);
  out += "'. Try ";
  for (const char c : container.name) {
    out += ascii_upper(c);
  }
  out += " HELP.";
  map_crlf_to_spaces(out);
  return out;
}

std::string wrong_arity_error(const CommandInfo& cmd) {
  // A rejected EXEC also aborts the transaction, and Redis says so instead of "ERR" (server.c,
  // rejectCommand -> multi.c, execCommandAbort).
  std::string out = cmd.name == "exec" ? "EXECABORT Transaction discarded because of: " : "ERR ";
  out += "wrong number of arguments for '";
  out += cmd.name;
  out += "' command";
  return out;
}

uint64_t acl_category_from_name(std::string_view name) {
  static constexpr std::pair<std::string_view, uint64_t> kNames[] = {
      {"keyspace", AclCategory::kKeyspace},
      {"read", AclCategory::kRead},
      {"write", AclCategory::kWrite},
      {"set", AclCategory::kSet},
      {"sortedset", AclCategory::kSortedset},
      {"list", AclCategory::kList},
      {"hash", AclCategory::kHash},
      {"string", AclCategory::kString},
      {"bitmap", AclCategory::kBitmap},
      {"hyperloglog", AclCategory::kHyperloglog},
      {"geo", AclCategory::kGeo},
      {"stream", AclCategory::kStream},
      {"pubsub", AclCategory::kPubsub},
      {"admin", AclCategory::kAdmin},
      {"fast", AclCategory::kFast},
      {"slow", AclCategory::kSlow},
      {"blocking", AclCategory::kBlocking},
      {"dangerous", AclCategory::kDangerous},
      {"connection", AclCategory::kConnection},
      {"transaction", AclCategory::kTransaction},
      {"scripting", AclCategory::kScripting},
  };
  if (name.starts_with('@')) name.remove_prefix(1);
  for (const auto& [known, bit] : kNames) {
    if (iequals(name, known)) return bit;
  }
  return 0;
}

}  // namespace cachegate::protocol::redis
