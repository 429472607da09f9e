// The Redis command table and what is built on it. Every expected value here was checked against
// redis-server 7.0.15 itself: key positions against COMMAND GETKEYS, error texts and COMMAND
// INFO/DOCS bytes against what the server sent for the same request. A table regenerated from
// another server version will (and should) fail the pinned counts and bytes first.

#include "protocol/redis_commands.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace cachegate::protocol::redis {
namespace {

using Args = std::vector<std::string_view>;
using Keys = std::vector<std::string_view>;

// The keys key_positions() finds in a request, by value, or nullopt when it reports that they
// cannot be determined.
std::optional<Keys> keys(Args args) {
  const CommandInfo* cmd = find_command(args.at(0));
  REQUIRE(cmd != nullptr);
  std::vector<uint32_t> positions{99};  // must be cleared
  if (!key_positions(*cmd, args.data(), args.size(), positions)) {
    CHECK(positions.empty());
    return std::nullopt;
  }
  Keys out;
  for (const uint32_t p : positions) {
    REQUIRE(p < args.size());
    out.push_back(args[p]);
  }
  return out;
}

std::string error_for(Args args) {
  return dispatch_error(resolve(args.data(), args.size()), args.data(), args.size());
}

TEST_CASE("redis command table: the commands redis-server 7.0.15 reports", "[redis]") {
  CHECK(table_redis_version() == "7.0.15");
  CHECK(command_count() == 240);
  const auto all = all_commands();
  REQUIRE(all.size() == 240);
  CHECK(std::is_sorted(all.begin(), all.end(),
                       [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; }));

  size_t subcommands = 0;
  for (const CommandInfo& cmd : all) {
    INFO(cmd.name);
    CHECK(cmd.arity != 0);
    CHECK(cmd.info_resp2.starts_with("*10\r\n"));
    CHECK(cmd.info_resp3.starts_with("*10\r\n"));
    CHECK(cmd.docs_resp2.starts_with("$" + std::to_string(cmd.name.size()) + "\r\n" +
                                     std::string(cmd.name) + "\r\n"));
    CHECK(find_command(cmd.name) == &cmd);
    for (const CommandInfo& sub : cmd.subs()) {
      INFO(sub.name);
      ++subcommands;
      CHECK(sub.name.starts_with(std::string(cmd.name) + "|"));
      CHECK(find_command_by_full_name(sub.name) == &sub);
      // A container's COMMAND INFO / DOCS nest its subcommands' own elements.
      CHECK(cmd.info_resp2.find(sub.info_resp2) != std::string_view::npos);
      CHECK(cmd.docs_resp3.find(sub.docs_resp3) != std::string_view::npos);
    }
  }
  CHECK(subcommands == 126);
}

TEST_CASE("redis command table: lookups are case-insensitive and exact", "[redis]") {
  const CommandInfo* get = find_command("GeT");
  REQUIRE(get != nullptr);
  CHECK(get->name == "get");
  CHECK(find_command("get") == get);
  CHECK(find_command("GET") == get);
  CHECK(find_command("georadiusbymember_ro") != nullptr);  // the longest name
  CHECK(find_command("georadiusbymember_ro_") == nullptr);
  CHECK(find_command("ge") == nullptr);
  CHECK(find_command("gets") == nullptr);
  CHECK(find_command("") == nullptr);
  CHECK(find_command(std::string_view("get\0", 4)) == nullptr);
  CHECK(find_command(std::string(1000, 'g')) == nullptr);
  // Redis has no command called "config|get": the bar only works in COMMAND INFO / DOCS.
  CHECK(find_command("config|get") == nullptr);

  const CommandInfo* config = find_command("CONFIG");
  REQUIRE(config != nullptr);
  CHECK(config->is_container());
  CHECK(config->arity == -2);
  CHECK(config->subcommand_count == 5);
  const CommandInfo* config_get = find_subcommand(*config, "Get");
  REQUIRE(config_get != nullptr);
  CHECK(config_get->name == "config|get");
  CHECK(config_get->arity == -3);
  CHECK(config_get->has(CommandFlag::kAdmin));
  CHECK(find_subcommand(*config, "config|get") == nullptr);
  CHECK(find_subcommand(*config, "nosuch") == nullptr);
  CHECK(find_subcommand(*config, "") == nullptr);
  CHECK(find_subcommand(*get, "get") == nullptr);

  CHECK(find_command_by_full_name("CONFIG|GET") == config_get);
  CHECK(find_command_by_full_name("config") == config);
  CHECK(find_command_by_full_name("config|") == nullptr);
  CHECK(find_command_by_full_name("config|get|x") == nullptr);
  CHECK(find_command_by_full_name("get|x") == nullptr);
  CHECK(find_command_by_full_name("|get") == nullptr);

  for (const auto& [container, sub] : std::initializer_list<std::pair<const char*, const char*>>{
           {"client", "setname"},
           {"client", "no-evict"},
           {"script", "load"},
           {"xinfo", "stream"},
           {"cluster", "count-failure-reports"},  // the longest full name
           {"object", "encoding"},
           {"memory", "usage"},
           {"function", "load"},
           {"acl", "setuser"}}) {
    INFO(container << " " << sub);
    const CommandInfo* c = find_command(container);
    REQUIRE(c != nullptr);
    const CommandInfo* s = find_subcommand(*c, sub);
    REQUIRE(s != nullptr);
    CHECK(s->name == std::string(container) + "|" + sub);
  }
}

TEST_CASE("redis command table: flags, ACL categories, tips and key specs", "[redis]") {
  const CommandInfo& get = *find_command("get");
  CHECK(get.flags == (CommandFlag::kReadonly | CommandFlag::kFast));
  CHECK(get.acl_categories == (AclCategory::kRead | AclCategory::kString | AclCategory::kFast));
  CHECK(get.group == "string");
  CHECK((get.first_key == 1 && get.last_key == 1 && get.key_step == 1));
  REQUIRE(get.key_spec_count == 1);
  CHECK(get.key_specs[0].flags == (KeySpecFlag::kRO | KeySpecFlag::kAccess));
  CHECK(get.key_specs[0].begin_search == BeginSearch::kIndex);
  CHECK(get.key_specs[0].index == 1);
  CHECK(get.key_specs[0].find_keys == FindKeys::kRange);
  CHECK((get.key_specs[0].lastkey == 0 && get.key_specs[0].keystep == 1));

  const CommandInfo& set = *find_command("set");
  CHECK(set.has(CommandFlag::kWrite));
  CHECK(set.has(CommandFlag::kDenyoom));
  CHECK(!set.has(CommandFlag::kReadonly));
  CHECK((set.key_specs[0].flags & KeySpecFlag::kVariableFlags) != 0);

  const CommandInfo& del = *find_command("del");
  CHECK(del.last_key == -1);
  CHECK(del.key_specs[0].flags == (KeySpecFlag::kRM | KeySpecFlag::kDelete));
  CHECK(del.tips == (CommandTip::kRequestPolicyMultiShard | CommandTip::kResponsePolicyAggSum));

  CHECK(find_command("dbsize")->tips ==
        (CommandTip::kRequestPolicyAllShards | CommandTip::kResponsePolicyAggSum));
  CHECK(find_command("flushall")->in_category(AclCategory::kDangerous));
  CHECK(find_command("blpop")->has(CommandFlag::kBlocking));
  CHECK(find_command("subscribe")->has(CommandFlag::kPubsub));
  CHECK(find_command("auth")->has(CommandFlag::kNoAuth));
  CHECK(find_command("eval")->has(CommandFlag::kNoMandatoryKeys));
  CHECK(find_command("eval")->has(CommandFlag::kMovablekeys));
  CHECK(find_command("eval")->in_category(AclCategory::kScripting));
  CHECK(find_command("multi")->in_category(AclCategory::kTransaction));
  CHECK(find_command("pfadd")->in_category(AclCategory::kHyperloglog));
  CHECK(find_command("geoadd")->in_category(AclCategory::kGeo));
  CHECK(find_command("setbit")->in_category(AclCategory::kBitmap));

  const CommandInfo& xread = *find_command("xread");
  REQUIRE(xread.key_spec_count == 1);
  CHECK(xread.key_specs[0].begin_search == BeginSearch::kKeyword);
  CHECK(xread.key_specs[0].keyword == "STREAMS");
  CHECK(xread.key_specs[0].startfrom == 1);
  CHECK((xread.key_specs[0].lastkey == -1 && xread.key_specs[0].limit == 2));

  const CommandInfo& eval = *find_command("eval");
  REQUIRE(eval.key_spec_count == 1);
  CHECK(eval.key_specs[0].find_keys == FindKeys::kKeynum);
  CHECK((eval.key_specs[0].index == 2 && eval.key_specs[0].keynumidx == 0 &&
         eval.key_specs[0].firstkey == 1));
  CHECK(eval.key_specs[0].notes.starts_with("We cannot tell how the keys will be used"));

  const CommandInfo& sort = *find_command("sort");
  REQUIRE(sort.key_spec_count == 3);
  CHECK(sort.key_specs[2].begin_search == BeginSearch::kUnknown);
  CHECK((find_command("migrate")->key_specs[1].flags & KeySpecFlag::kIncomplete) != 0);
  CHECK(find_command("spublish")->key_specs[0].flags == KeySpecFlag::kNotKey);

  CHECK(acl_category_from_name("@read") == AclCategory::kRead);
  CHECK(acl_category_from_name("SortedSet") == AclCategory::kSortedset);
  CHECK(acl_category_from_name("@nosuch") == 0);
  CHECK(acl_category_from_name("") == 0);
}

TEST_CASE("redis command table: arity", "[redis]") {
  const CommandInfo& get = *find_command("get");
  CHECK(!arity_ok(get, 1));
  CHECK(arity_ok(get, 2));
  CHECK(!arity_ok(get, 3));
  const CommandInfo& mset = *find_command("mset");
  CHECK(mset.arity == -3);
  CHECK(!arity_ok(mset, 2));
  CHECK(arity_ok(mset, 3));
  CHECK(arity_ok(mset, 1000));  // an odd count is MSET's own error, not an arity error
  const CommandInfo& ping = *find_command("ping");
  CHECK(arity_ok(ping, 1));
  CHECK(arity_ok(ping, 2));
  const CommandInfo& config_get = *find_command_by_full_name("config|get");
  CHECK(!arity_ok(config_get, 2));
  CHECK(arity_ok(config_get, 3));
  CHECK(arity_ok(config_get, 4));
}

TEST_CASE("redis command table: dispatch the way redis-server does", "[redis]") {
  Args a{"get", "k"};
  Resolved r = resolve(a.data(), a.size());
  CHECK(r.status == Dispatch::kOk);
  CHECK(r.command == find_command("get"));

  a = {"CONFIG", "get", "maxmemory"};
  r = resolve(a.data(), a.size());
  CHECK(r.status == Dispatch::kOk);
  CHECK(r.command->name == "config|get");

  a = {"config"};
  r = resolve(a.data(), a.size());
  CHECK(r.status == Dispatch::kWrongArity);
  CHECK(r.command->name == "config");

  a = {"config", "nosuch"};
  CHECK(resolve(a.data(), a.size()).status == Dispatch::kUnknownSubcommand);
  a = {"nosuch"};
  CHECK(resolve(a.data(), a.size()).status == Dispatch::kUnknownCommand);
  CHECK(resolve(nullptr, 0).status == Dispatch::kUnknownCommand);
  a = {"get", "k"};
  CHECK(error_for(a).empty());
}

TEST_CASE("redis command table: error texts are redis-server's", "[redis]") {
  CHECK(error_for({"get"}) == "ERR wrong number of arguments for 'get' command");
  CHECK(error_for({"GeT", "a", "b"}) == "ERR wrong number of arguments for 'get' command");
  CHECK(error_for({"config"}) == "ERR wrong number of arguments for 'config' command");
  CHECK(error_for({"CONFIG", "GET"}) == "ERR wrong number of arguments for 'config|get' command");
  CHECK(error_for({"xinfo", "stream"}) ==
        "ERR wrong number of arguments for 'xinfo|stream' command");
  CHECK(error_for({"Exec", "x"}) ==
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command");

  CHECK(error_for({"Config", "NoSuch"}) == "ERR unknown subcommand 'NoSuch'. Try CONFIG HELP.");
  CHECK(error_for({"object", "Help2"}) == "ERR unknown subcommand 'Help2'. Try OBJECT HELP.");
  CHECK(error_for({"config", "a\r\nb"}) == "ERR unknown subcommand 'a  b'. Try CONFIG HELP.");
  CHECK(error_for({"config", std::string_view("get\0x", 5), "maxmemory"}) ==
        "ERR unknown subcommand 'get'. Try CONFIG HELP.");
  const std::string long_sub(200, 'n');
  CHECK(error_for({"config", long_sub}) ==
        "ERR unknown subcommand '" + std::string(128, 'n') + "'. Try CONFIG HELP.");

  CHECK(error_for({"nosuch"}) == "ERR unknown command 'nosuch', with args beginning with: ");
  CHECK(error_for({"nosuch", "a", "b"}) ==
        "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' ");
  CHECK(error_for({""}) == "ERR unknown command '', with args beginning with: ");
  CHECK(error_for({"NoSuch", std::string_view("x\0y", 3), "a\r\nb", ""}) ==
        "ERR unknown command 'NoSuch', with args beginning with: 'x' 'a  b' '' ");
  CHECK(error_for({std::string_view("GET\0", 4), "x"}) ==
        "ERR unknown command 'GET', with args beginning with: 'x' ");
  CHECK(error_for({"config|get", "x"}) ==
        "ERR unknown command 'config|get', with args beginning with: 'x' ");

  // The name is cut to 128 bytes; the argument list stops once it reaches 128 bytes, the argument
  // that crosses the line cut to what was left.
  const std::string x(200, 'x'), y(200, 'y'), a100(100, 'a'), b50(50, 'b');
  CHECK(error_for({x, y}) == "ERR unknown command '" + std::string(128, 'x') +
                                 "', with args beginning with: '" + std::string(128, 'y') + "' ");
  CHECK(error_for({"nosuch", a100, b50, "c"}) ==
        "ERR unknown command 'nosuch', with args beginning with: '" + a100 + "' '" +
            std::string(25, 'b') + "' ");
  const std::string a125(125, 'a');
  CHECK(error_for({"nosuch", a125, "bbbb", "c"}) ==
        "ERR unknown command 'nosuch', with args beginning with: '" + a125 + "' ");
  std::vector<std::string> many{"nosuch"};
  for (int i = 0; i < 60; ++i) {
    many.push_back("a" + std::to_string(i));
  }
  Args many_args(many.begin(), many.end());
  CHECK(error_for(many_args) ==
        "ERR unknown command 'nosuch', with args beginning with: 'a0' 'a1' 'a2' 'a3' 'a4' 'a5' "
        "'a6' 'a7' 'a8' 'a9' 'a10' 'a11' 'a12' 'a13' 'a14' 'a15' 'a16' 'a17' 'a18' 'a19' 'a20' "
        "'a21' 'a22' ");
}

TEST_CASE("redis command table: key positions", "[redis]") {
  using std::nullopt;
  // Fixed positions.
  CHECK(keys({"GET", "a"}) == Keys{"a"});
  CHECK(keys({"get"}) == nullopt);  // wrong arity
  CHECK(keys({"SET", "a", "v", "GET"}) == Keys{"a"});
  CHECK(keys({"MSET", "a", "1", "b", "2"}) == Keys{"a", "b"});
  CHECK(keys({"mset", "a", "1", "b"}) == Keys{"a", "b"});  // MSET itself rejects the odd count
  CHECK(keys({"DEL", "a", "b", "c"}) == Keys{"a", "b", "c"});
  CHECK(keys({"BITOP", "AND", "dst", "a", "b"}) == Keys{"dst", "a", "b"});
  CHECK(keys({"LMOVE", "src", "dst", "LEFT", "RIGHT"}) == Keys{"src", "dst"});
  CHECK(keys({"RENAME", "a", "b"}) == Keys{"a", "b"});
  CHECK(keys({"BLPOP", "a", "b", "0"}) == Keys{"a", "b"});
  CHECK(keys({"PFMERGE", "d", "a", "b"}) == Keys{"d", "a", "b"});

  // Subcommands: the container's entry resolves them from args[1].
  CHECK(keys({"OBJECT", "ENCODING", "k"}) == Keys{"k"});
  CHECK(keys({"MEMORY", "USAGE", "k", "SAMPLES", "5"}) == Keys{"k"});
  CHECK(keys({"XINFO", "STREAM", "s", "FULL"}) == Keys{"s"});
  CHECK(keys({"OBJECT", "NOSUCH", "k"}) == nullopt);
  CHECK(keys({"OBJECT", "ENCODING"}) == nullopt);
  std::vector<uint32_t> out;
  const Args usage{"memory", "usage", "k"};
  REQUIRE(
      key_positions(*find_command_by_full_name("memory|usage"), usage.data(), usage.size(), out));
  CHECK(out == std::vector<uint32_t>{2});

  // No keys at all.
  CHECK(keys({"CLIENT", "KILL", "1.2.3.4:5"}) == Keys{});
  CHECK(keys({"CLIENT", "KILL", "ID", "5"}) == Keys{});
  CHECK(keys({"PUBLISH", "channel", "message"}) == Keys{});   // a channel is not a key
  CHECK(keys({"SPUBLISH", "channel", "message"}) == Keys{});  // not_key spec
  CHECK(keys({"PING"}) == Keys{});

  // numkeys.
  CHECK(keys({"EVAL", "return 1", "2", "a", "b", "argv"}) == Keys{"a", "b"});
  CHECK(keys({"EVAL", "return 1", "0"}) == Keys{});  // keyless script
  CHECK(keys({"EVAL", "return 1", "0", "argv"}) == Keys{});
  CHECK(keys({"EVAL", "return 1", "3", "a"}) == nullopt);   // more keys than arguments
  CHECK(keys({"EVAL", "return 1", "-1"}) == nullopt);       // negative
  CHECK(keys({"EVAL", "return 1", "x"}) == nullopt);        // not a number
  CHECK(keys({"EVAL", "return 1", "01", "a"}) == nullopt);  // EVAL rejects it too
  CHECK(keys({"EVALSHA_RO", "sha", "1", "a", "b"}) == Keys{"a"});
  CHECK(keys({"FCALL", "f", "2", "a", "b"}) == Keys{"a", "b"});
  CHECK(keys({"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"}) == Keys{"d", "a", "b"});
  CHECK(keys({"ZINTERSTORE", "d", "3", "a", "b", "c", "AGGREGATE", "MAX"}) ==
        Keys{"d", "a", "b", "c"});
  CHECK(keys({"ZUNIONSTORE", "d", "0", "a"}) == nullopt);  // needs at least one input key
  CHECK(keys({"ZDIFF", "2", "a", "b", "WITHSCORES"}) == Keys{"a", "b"});
  CHECK(keys({"SINTERCARD", "2", "a", "b", "LIMIT", "1"}) == Keys{"a", "b"});
  CHECK(keys({"BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "1"}) == Keys{"a", "b"});
  CHECK(keys({"LMPOP", "3", "a", "b", "c", "LEFT"}) == Keys{"a", "b", "c"});
  CHECK(keys({"BZMPOP", "1", "2", "a", "b", "MIN"}) == Keys{"a", "b"});

  // STREAMS keyword: keys are the first half of what follows it.
  CHECK(keys({"XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s1", "s2", "0", "0"}) ==
        Keys{"s1", "s2"});
  CHECK(keys({"xread", "streams", "s1", "$"}) == Keys{"s1"});
  CHECK(keys({"XREAD", "STREAMS", "streams", "s1", "0", "0"}) == Keys{"streams", "s1"});
  CHECK(keys({"XREAD", "COUNT", "1", "STREAMS", "s1"}) == nullopt);  // no ID
  CHECK(keys({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", "s2", ">", ">"}) ==
        Keys{"s1", "s2"});
  // A group called "streams" is skipped: the search starts after GROUP g c.
  CHECK(keys({"XREADGROUP", "GROUP", "streams", "c", "COUNT", "1", "STREAMS", "s1", ">"}) ==
        Keys{"s1"});

  // SORT: the STORE key wherever it is; the last STORE wins; BY/GET patterns are not keys here.
  CHECK(keys({"SORT", "k", "BY", "w_*", "LIMIT", "0", "10", "GET", "#", "GET", "o_*", "STORE",
              "dst"}) == Keys{"k", "dst"});
  CHECK(keys({"SORT", "k", "STORE", "a", "STORE", "b"}) == Keys{"k", "b"});
  CHECK(keys({"SORT", "k", "ALPHA", "DESC"}) == Keys{"k"});
  CHECK(keys({"SORT", "k", "store"}) == Keys{"k"});
  CHECK(keys({"SORT", "k", "GET", "store", "ASC"}) == Keys{"k"});  // a pattern named "store"
  CHECK(keys({"SORT_RO", "k", "BY", "x", "GET", "y"}) == Keys{"k"});

  // GEORADIUS STORE / STOREDIST.
  CHECK(keys({"GEORADIUS", "k", "1", "2", "3", "m", "STORE", "dst"}) == Keys{"k", "dst"});
  CHECK(keys({"GEORADIUS", "k", "1", "2", "3", "m", "STOREDIST", "dst", "COUNT", "5"}) ==
        Keys{"k", "dst"});
  CHECK(keys({"GEORADIUS", "k", "1", "2", "3", "m", "STORE", "a", "STOREDIST", "b"}) ==
        Keys{"k", "a", "b"});
  CHECK(keys({"GEORADIUS", "k", "1", "2", "3", "m", "WITHDIST"}) == Keys{"k"});
  // A repeated STORE: GEORADIUS writes the last, Redis's key spec names the first; all are keys.
  CHECK(keys({"GEORADIUS", "k", "1", "2", "3", "m", "STORE", "a", "STORE", "b"}) ==
        Keys{"k", "a", "b"});
  CHECK(keys({"GEORADIUSBYMEMBER", "k", "m", "3", "km", "STOREDIST", "a", "STOREDIST", "b",
              "STOREDIST", "c"}) == Keys{"k", "a", "b", "c"});
  CHECK(keys({"GEORADIUS", "k", "1", "2", "3", "m", "STORE", "STORE"}) == Keys{"k", "STORE"});
  CHECK(keys({"GEORADIUSBYMEMBER", "k", "member", "3", "m", "STORE", "dst"}) == Keys{"k", "dst"});

  // MIGRATE: one key, or the keys after KEYS when the key is "".
  CHECK(keys({"MIGRATE", "h", "6379", "k", "0", "5000"}) == Keys{"k"});
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "COPY", "REPLACE", "AUTH", "pw", "KEYS", "a",
              "b", "c"}) == Keys{"a", "b", "c"});
  // "keys" as AUTH2's password is skipped over.
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "keys", "KEYS", "a", "b"}) ==
        Keys{"a", "b"});
  CHECK(keys({"MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "a", "b"}) == nullopt);
}

TEST_CASE("redis command table: COMMAND INFO and DOCS bytes are the server's", "[redis]") {
  const CommandInfo& get = *find_command("get");
  CHECK(get.info_resp2 ==
        "*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n"
        "+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\n"
        "begin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n"
        ":1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\n"
        "lastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n");
  CHECK(get.info_resp3 ==
        "*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n"
        "+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n$12\r\n"
        "begin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n"
        ":1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\n"
        "lastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n");
  CHECK(get.docs_resp2 ==
        "$3\r\nget\r\n*10\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n$5\r\nsince\r\n"
        "$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\n"
        "arguments\r\n*1\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\n"
        "key_spec_index\r\n:0\r\n");
  CHECK(get.docs_resp3 ==
        "$3\r\nget\r\n%5\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n$5\r\nsince\r\n"
        "$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\n"
        "arguments\r\n*1\r\n%3\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\n"
        "key_spec_index\r\n:0\r\n");

  CHECK(find_command("ping")->docs_resp3 ==
        "$4\r\nping\r\n%5\r\n$7\r\nsummary\r\n$15\r\nPing the server\r\n$5\r\nsince\r\n$5\r\n"
        "1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\n"
        "arguments\r\n*1\r\n%3\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n"
        "$5\r\nflags\r\n~1\r\n+optional\r\n");

  CHECK(find_command_by_full_name("config|get")->info_resp2 ==
        "*10\r\n$10\r\nconfig|get\r\n:-3\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n"
        ":0\r\n:0\r\n:0\r\n*3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n*0\r\n*0\r\n*0\r\n");
  CHECK(find_command_by_full_name("object|encoding")->info_resp2 ==
        "*10\r\n$15\r\nobject|encoding\r\n:3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n*3\r\n"
        "+@keyspace\r\n+@read\r\n+@slow\r\n*1\r\n$23\r\nnondeterministic_output\r\n*1\r\n*6\r\n"
        "$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n"
        "$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\n"
        "range\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
        ":0\r\n*0\r\n");

  // A container nests its subcommands' elements in name order (Redis's own order changes with
  // every server start).
  const CommandInfo& config = *find_command("config");
  CHECK(config.info_resp2.starts_with(
      "*10\r\n$6\r\nconfig\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*1\r\n+@slow\r\n*0\r\n*0\r\n*5\r\n"
      "*10\r\n$10\r\nconfig|get\r\n"));
  size_t at = 0;
  for (const CommandInfo& sub : config.subs()) {
    const size_t found = config.info_resp2.find(sub.info_resp2);
    REQUIRE(found != std::string_view::npos);
    CHECK(found >= at);
    at = found + sub.info_resp2.size();
  }
  CHECK(at == config.info_resp2.size());
}

}  // namespace
}  // namespace cachegate::protocol::redis
