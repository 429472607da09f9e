#pragma once

// The Redis command table: every command and subcommand of the redis-server the table was
// generated from (tools/gen_redis_commands.py, output in redis_command_table.inc), with its arity,
// flags, ACL categories, key positions, and the exact bytes that server sends for COMMAND INFO and
// COMMAND DOCS about it.
//
// The table comes from a live server, not from hand-written lists, so that cachegate agrees with
// Redis about which arguments are keys (a key routed by the wrong argument lands on a server that
// does not hold it), which commands write, and which requests are malformed; and so that a client
// asking cachegate COMMAND INFO/DOCS/COUNT gets the bytes the server itself would have sent.
// References: https://redis.io/docs/reference/command-tips/,
// https://redis.io/docs/reference/key-specs/, redis/src/db.c (getKeysUsingKeySpecs).
//
// Everything here is immutable data with static storage duration, and every function is
// thread-safe. The lookups and arity_ok() do not allocate; key_positions() only grows the
// caller's vector; the error-text builders allocate (they run only for rejected requests).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cachegate::protocol::redis {

// Bits of CommandInfo::flags, one per flag COMMAND INFO can report (spelled there in lower case:
// kSkipMonitor is "skip_monitor"). may_replicate, sentinel and only_sentinel exist in Redis but
// 7.0's COMMAND hides them, so a table generated from 7.0 never sets those three bits.
struct CommandFlag {
  static constexpr uint64_t kWrite = uint64_t{1} << 0;
  static constexpr uint64_t kReadonly = uint64_t{1} << 1;
  static constexpr uint64_t kDenyoom = uint64_t{1} << 2;
  static constexpr uint64_t kModule = uint64_t{1} << 3;
  static constexpr uint64_t kAdmin = uint64_t{1} << 4;
  static constexpr uint64_t kPubsub = uint64_t{1} << 5;
  static constexpr uint64_t kNoscript = uint64_t{1} << 6;
  static constexpr uint64_t kBlocking = uint64_t{1} << 7;
  static constexpr uint64_t kLoading = uint64_t{1} << 8;
  static constexpr uint64_t kStale = uint64_t{1} << 9;
  static constexpr uint64_t kSkipMonitor = uint64_t{1} << 10;
  static constexpr uint64_t kSkipSlowlog = uint64_t{1} << 11;
  static constexpr uint64_t kAsking = uint64_t{1} << 12;
  static constexpr uint64_t kFast = uint64_t{1} << 13;
  static constexpr uint64_t kNoAuth = uint64_t{1} << 14;
  static constexpr uint64_t kMayReplicate = uint64_t{1} << 15;
  static constexpr uint64_t kSentinel = uint64_t{1} << 16;
  static constexpr uint64_t kOnlySentinel = uint64_t{1} << 17;
  static constexpr uint64_t kNoMandatoryKeys = uint64_t{1} << 18;
  static constexpr uint64_t kNoAsyncLoading = uint64_t{1} << 19;
  static constexpr uint64_t kNoMulti = uint64_t{1} << 20;
  static constexpr uint64_t kMovablekeys = uint64_t{1} << 21;
  static constexpr uint64_t kAllowBusy = uint64_t{1} << 22;
};

// Bits of CommandInfo::acl_categories: kSortedset is "@sortedset".
struct AclCategory {
  static constexpr uint64_t kKeyspace = uint64_t{1} << 0;
  static constexpr uint64_t kRead = uint64_t{1} << 1;
  static constexpr uint64_t kWrite = uint64_t{1} << 2;
  static constexpr uint64_t kSet = uint64_t{1} << 3;
  static constexpr uint64_t kSortedset = uint64_t{1} << 4;
  static constexpr uint64_t kList = uint64_t{1} << 5;
  static constexpr uint64_t kHash = uint64_t{1} << 6;
  static constexpr uint64_t kString = uint64_t{1} << 7;
  static constexpr uint64_t kBitmap = uint64_t{1} << 8;
  static constexpr uint64_t kHyperloglog = uint64_t{1} << 9;
  static constexpr uint64_t kGeo = uint64_t{1} << 10;
  static constexpr uint64_t kStream = uint64_t{1} << 11;
  static constexpr uint64_t kPubsub = uint64_t{1} << 12;
  static constexpr uint64_t kAdmin = uint64_t{1} << 13;
  static constexpr uint64_t kFast = uint64_t{1} << 14;
  static constexpr uint64_t kSlow = uint64_t{1} << 15;
  static constexpr uint64_t kBlocking = uint64_t{1} << 16;
  static constexpr uint64_t kDangerous = uint64_t{1} << 17;
  static constexpr uint64_t kConnection = uint64_t{1} << 18;
  static constexpr uint64_t kTransaction = uint64_t{1} << 19;
  static constexpr uint64_t kScripting = uint64_t{1} << 20;
};

// Bits of CommandInfo::tips. The request and response policies say how a cluster-aware client
// (and so a sharding proxy) spreads a keyless command and combines the replies: DBSIZE is
// kRequestPolicyAllShards | kResponsePolicyAggSum.
struct CommandTip {
  static constexpr uint32_t kNondeterministicOutput = uint32_t{1} << 0;
  static constexpr uint32_t kNondeterministicOutputOrder = uint32_t{1} << 1;
  static constexpr uint32_t kRequestPolicyAllNodes = uint32_t{1} << 2;
  static constexpr uint32_t kRequestPolicyAllShards = uint32_t{1} << 3;
  static constexpr uint32_t kRequestPolicyMultiShard = uint32_t{1} << 4;
  static constexpr uint32_t kRequestPolicySpecial = uint32_t{1} << 5;
  static constexpr uint32_t kResponsePolicyOneSucceeded = uint32_t{1} << 6;
  static constexpr uint32_t kResponsePolicyAllSucceeded = uint32_t{1} << 7;
  static constexpr uint32_t kResponsePolicyAggLogicalAnd = uint32_t{1} << 8;
  static constexpr uint32_t kResponsePolicyAggLogicalOr = uint32_t{1} << 9;
  static constexpr uint32_t kResponsePolicyAggMin = uint32_t{1} << 10;
  static constexpr uint32_t kResponsePolicyAggMax = uint32_t{1} << 11;
  static constexpr uint32_t kResponsePolicyAggSum = uint32_t{1} << 12;
  static constexpr uint32_t kResponsePolicySpecial = uint32_t{1} << 13;
};

// Bits of KeySpec::flags. kRO/kRW/kOW/kRM say what happens to the key's value (read only, read
// and write, overwrite, remove); kAccess/kUpdate/kInsert/kDelete refine it. kNotKey marks an
// argument that is routed like a key but is not one (the channel of SPUBLISH); kIncomplete means
// the spec may miss keys, so the command's own parser must be used; kVariableFlags means the
// flags depend on the arguments (SET … GET reads, SET without it does not).
struct KeySpecFlag {
  static constexpr uint32_t kRO = uint32_t{1} << 0;
  static constexpr uint32_t kRW = uint32_t{1} << 1;
  static constexpr uint32_t kOW = uint32_t{1} << 2;
  static constexpr uint32_t kRM = uint32_t{1} << 3;
  static constexpr uint32_t kAccess = uint32_t{1} << 4;
  static constexpr uint32_t kUpdate = uint32_t{1} << 5;
  static constexpr uint32_t kInsert = uint32_t{1} << 6;
  static constexpr uint32_t kDelete = uint32_t{1} << 7;
  static constexpr uint32_t kNotKey = uint32_t{1} << 8;
  static constexpr uint32_t kIncomplete = uint32_t{1} << 9;
  static constexpr uint32_t kVariableFlags = uint32_t{1} << 10;
};

// Where a key spec's first key is: at a fixed argument index, or just after a keyword found by
// scanning the arguments; kUnknown when only the command's own parser knows (SORT … STORE).
enum class BeginSearch : uint8_t { kUnknown, kIndex, kKeyword };
// How many keys follow the first: a range, or a count read from an argument (EVAL's numkeys).
enum class FindKeys : uint8_t { kUnknown, kRange, kKeynum };

// One key spec, as COMMAND INFO reports it. Argument indexes count the command name as 0.
struct KeySpec {
  uint32_t flags = 0;  // KeySpecFlag bits
  BeginSearch begin_search = BeginSearch::kUnknown;
  int index = 0;               // kIndex: the first key's argument index
  std::string_view keyword{};  // kKeyword: the keyword (matched case-insensitively) …
  int startfrom = 0;           // … searched from this index; negative: from argc+startfrom down
  FindKeys find_keys = FindKeys::kUnknown;
  // kRange: the last key is first+lastkey when lastkey >= 0, else argc+lastkey, except that
  // with a limit L (lastkey == -1) the keys are the first (argc-first)/L arguments (XREAD:
  // keys then as many IDs).
  int lastkey = 0;
  int limit = 0;
  // kKeynum: the key count is at first+keynumidx, the keys start at first+firstkey.
  int keynumidx = 0;
  int firstkey = 0;
  int keystep = 0;           // kRange and kKeynum: distance between keys (MSET: 2)
  std::string_view notes{};  // Redis's remark on the spec, if any
};

struct CommandInfo {
  std::string_view name{};  // lower case; a subcommand is "container|sub" ("config|get")
  // Redis's arity: positive = exactly that many arguments, negative = at least -arity; the count
  // includes the command name (and, for a subcommand, the subcommand name).
  int arity = 0;
  uint64_t flags = 0;           // CommandFlag bits
  uint64_t acl_categories = 0;  // AclCategory bits
  // The legacy key positions COMMAND INFO still reports (first, last (negative: from the end),
  // step). 0, 0, 0 for commands whose keys move (see key_specs); use key_positions().
  int first_key = 0;
  int last_key = 0;
  int key_step = 0;
  const KeySpec* key_specs = nullptr;  // in Redis's order
  size_t key_spec_count = 0;
  uint32_t tips = 0;         // CommandTip bits
  std::string_view group{};  // COMMAND DOCS group: "string", "server", "generic", …

  // The element COMMAND INFO returns for this command, byte for byte: RESP2 and, after HELLO 3,
  // RESP3 (which sends the flag lists as sets). A reply is "*<n>\r\n" followed by the elements,
  // "$-1\r\n" (RESP2) or "_\r\n" (RESP3) for a name the server does not know; COMMAND (no
  // arguments) and COMMAND INFO (no names) list every top-level command.
  std::string_view info_resp2{};
  std::string_view info_resp3{};
  // This command's entry in a COMMAND DOCS reply: its name as a bulk string followed by its docs.
  // The reply is "*<2n>\r\n" + entries (RESP2) or "%<n>\r\n" + entries (RESP3); unknown names are
  // left out and do not count.
  std::string_view docs_resp2{};
  std::string_view docs_resp3{};

  // A container (CONFIG, CLIENT, OBJECT, …) has subcommands, sorted by name; its own entry only
  // stands for the bare container (arity -2, so "CONFIG" alone is a wrong-arity error).
  const CommandInfo* subcommands = nullptr;
  size_t subcommand_count = 0;

  constexpr bool has(uint64_t command_flag) const { return (flags & command_flag) != 0; }
  constexpr bool in_category(uint64_t acl_category) const {
    return (acl_categories & acl_category) != 0;
  }
  constexpr bool is_container() const { return subcommand_count != 0; }
  constexpr std::span<const KeySpec> specs() const { return {key_specs, key_spec_count}; }
  constexpr std::span<const CommandInfo> subs() const { return {subcommands, subcommand_count}; }
};

// The redis-server version the table was generated from ("7.0.15").
std::string_view table_redis_version();

// The top-level command called `name` (case-insensitive, as Redis matches it), or nullptr. A name
// with "|" is never a command here, as in Redis ("CONFIG|GET x" is an unknown command).
const CommandInfo* find_command(std::string_view name);
// The subcommand `sub` (case-insensitive, without the "container|" prefix) of `container`, or
// nullptr (also when `container` has no subcommands).
const CommandInfo* find_subcommand(const CommandInfo& container, std::string_view sub);
// A command by the name COMMAND INFO / DOCS accept: "get" or "config|get" (case-insensitive).
const CommandInfo* find_command_by_full_name(std::string_view full_name);

// How Redis dispatches a request, checked before anything else runs (server.c, processCommand).
enum class Dispatch : uint8_t {
  kOk,                 // `command` runs it
  kUnknownCommand,     // args[0] is not a command (or argc is 0)
  kUnknownSubcommand,  // args[0] is the container `command`, args[1] none of its subcommands
  kWrongArity,         // `command` does not take argc arguments
};
struct Resolved {
  Dispatch status = Dispatch::kUnknownCommand;
  const CommandInfo* command = nullptr;  // see Dispatch; nullptr for kUnknownCommand
};
// What the request args[0..argc) runs: args[0]'s command, or, when that is a container and there
// is an args[1], that subcommand (a bare container is its own command, of arity -2). Does not
// allocate.
Resolved resolve(const std::string_view* args, size_t argc);
// The error Redis answers for a request resolve() did not accept (empty for kOk).
std::string dispatch_error(const Resolved& resolved, const std::string_view* args, size_t argc);

// What COMMAND COUNT returns: the number of top-level commands.
size_t command_count();
// Every top-level command, sorted by name. (Redis lists them in an order that changes with every
// server start, so no client can depend on one; this is the order cachegate answers COMMAND in.)
std::span<const CommandInfo> all_commands();

// Whether a request of argc arguments (command name included) fits the command's arity. For a
// subcommand, pass the subcommand's info: the arity counts the subcommand name too.
inline bool arity_ok(const CommandInfo& cmd, size_t argc) {
  return cmd.arity >= 0 ? argc == static_cast<size_t>(cmd.arity)
                        : argc >= static_cast<size_t>(-static_cast<int64_t>(cmd.arity));
}

// The keys of the request args[0..argc) (args[0] is the command name): appends to `out` (cleared
// first) the argument index of each key, in Redis's order (key spec by key spec, as COMMAND
// GETKEYS lists them). `cmd` may be the container: the subcommand is then looked up in args[1].
//
// Follows Redis (db.c, getKeysFromCommandWithSpecs): the key specs first, so index, keyword and
// numkeys specs all work (EVAL/FCALL/ZUNIONSTORE/LMPOP/BLMPOP numkeys, XREAD/XREADGROUP STREAMS,
// GEORADIUS STORE and STOREDIST, both when both are given); specs marked not_key (the shard
// channel of SPUBLISH) give no keys. When a spec cannot be evaluated, Redis falls back to the
// command's own key finder; of those, only SORT's (the sort key and the STORE key), SORT_RO's and
// MIGRATE's (KEYS …) find keys where the specs failed, and they are reproduced here.
//
// Returns false, with `out` empty, when the request's keys cannot be determined, and Redis
// would reply with an error: wrong arity, unknown subcommand, a numkeys that is not an integer
// ("01" too: the commands parse it strictly), negative, or larger than the arguments that follow,
// a numkeys of 0 for a command that needs keys (ZUNIONSTORE; EVAL and FCALL, flagged
// no_mandatory_keys, accept 0 and get no keys), a range that runs past the end (XREAD … STREAMS
// with a key and no ID), MIGRATE with both a key and KEYS.
//
// Not determinable from the request at all, and so never reported: the keys SORT's BY and GET
// patterns read (their names come from the sorted values), and keys a script or function
// touches without declaring them.
bool key_positions(const CommandInfo& cmd, const std::string_view* args, size_t argc,
                   std::vector<uint32_t>& out);

// Redis's error texts, without the leading '-' and the trailing CRLF, byte-exact with the server
// the table was generated from. Like Redis, each argument is cut at its first NUL byte (Redis
// formats it with %s) and CR and LF become spaces, so the reply stays one line.
//
// "ERR unknown command '<args[0]>', with args beginning with: '<a1>' '<a2>' … ": the name is cut
// to 128 bytes; arguments are quoted one by one, each cut to what is left of a 128-byte budget,
// until the text of the quoted arguments (quotes and spaces included) reaches 128 bytes.
std::string unknown_command_error(const std::string_view* args, size_t argc);
// "ERR unknown subcommand '<sub>'. Try <CONTAINER> HELP.": `sub` cut to 128 bytes, the container
// name in upper case.
std::string unknown_subcommand_error(const CommandInfo& container, std::string_view sub);
// "ERR wrong number of arguments for '<name>' command", with the full name ("config|get"); for
// EXEC "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command".
// (Redis also marks an open MULTI as failed when it rejects any command; that is session state
// and up to the caller.)
std::string wrong_arity_error(const CommandInfo& cmd);

// The AclCategory bit for a category name, with or without the '@' ("@read", "read"), matched
// case-insensitively; 0 for an unknown name.
uint64_t acl_category_from_name(std::string_view name);

}  // namespace cachegate::protocol::redis
