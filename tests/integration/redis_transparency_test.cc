// A single-shard pool is transparent: for every data command of strings, hashes, lists, sets,
// sorted sets, bitmaps, HyperLogLog, expiry and the key space, a client gets from cachegate the
// bytes the redis-server behind it would have sent, errors included. The same script runs against
// cachegate (in front of one redis-server) and against a second, separate redis-server of the
// same version, and every reply is compared byte for byte: in RESP2, in RESP3 after HELLO 3, and
// pipelined in one write.
//
// The script avoids what two servers cannot agree on even without a proxy: random picks from
// several members, TTLs counting down, idle times. Where only the order differs (members of
// hashtable-encoded sets, KEYS and SCAN over a dict whose hash seed is per process), the elements
// are compared as sorted lists. Commands cachegate answers itself (HELLO, PING, CLIENT …), admin
// commands, and what it refuses by design (blocking, pub/sub, transactions, SELECT/MOVE/SWAPDB)
// are not part of the script.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/redis_cluster.h"

namespace cachegate {
namespace {

using testing::printable;
using testing::RedisCluster;
using testing::RedisClusterOptions;
using testing::RedisServer;
using testing::resp_command;
using testing::RespClient;

// How two replies to a step are compared.
enum class Order {
  kExact,         // byte for byte
  kAnyOrder,      // an array or set whose elements may come in any order
  kScanAnyOrder,  // a SCAN-family reply: cursor exact, its elements in any order
};

struct Step {
  // `line` is split at spaces; arguments with spaces or binary bytes use the vector form.
  Step(const char* line, Order order = Order::kExact) : order(order) {
    std::string_view rest(line);
    while (!rest.empty()) {
      const size_t space = rest.find(' ');
      args.emplace_back(rest.substr(0, space));
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
  }
  Step(std::vector<std::string> a, Order order = Order::kExact)
      : args(std::move(a)), order(order) {}

  std::vector<std::string> args;
  Order order = Order::kExact;
  // When set, the bulk string this step returns is kept under this name; an argument
  // "<payload:NAME>" of a later step is replaced by it (DUMP then RESTORE on the same side).
  std::string capture;
};

Step any_order(const char* line) {
  return Step(line, Order::kAnyOrder);
}
Step scan_any_order(const char* line) {
  return Step(line, Order::kScanAnyOrder);
}
Step capture(const char* line, std::string name) {
  Step s(line);
  s.capture = std::move(name);
  return s;
}

// Runs first on each side, one request at a time: an empty and a one-key database (RANDOMKEY is
// deterministic only there), then values whose DUMP payloads the script restores. Absolute expiry
// times in the script are 4102444800 (2100-01-01), so that EXPIRETIME reads back fixed values.
std::vector<Step> prelude() {
  return {
      "DBSIZE",
      "RANDOMKEY",
      "KEYS *",
      "SET only:key v",
      "RANDOMKEY",
      "DBSIZE",
      "DEL only:key",
      "RANDOMKEY",
      {{"SET", "src:str", "hello world"}},
      "RPUSH src:list a b c 1 2 3",
      "HSET src:hash f1 v1 f2 2",
      "ZADD src:zset 1 a 2.5 b -3 c",
      "SADD src:iset 5 3 1",
      capture("DUMP src:str", "str"),
      capture("DUMP src:list", "list"),
      capture("DUMP src:hash", "hash"),
      capture("DUMP src:zset", "zset"),
      capture("DUMP src:iset", "iset"),
  };
}

std::vector<Step> strings() {
  return {
      "GET s:missing",
      "SET s:a hello",
      "GET s:a",
      "SET s:a world XX GET",
      "SET s:a x NX",
      "SET s:a x NX GET",
      "GET s:a",
      "SET s:new v XX",
      "SET s:new v XX GET",
      "EXISTS s:new",
      "SET s:b v EX 100000",
      "SET s:b v2 KEEPTTL",
      "GET s:b",
      "SET s:c v PX 100000000",
      "SET s:d v EXAT 4102444800",
      "EXPIRETIME s:d",
      "SET s:d v3 KEEPTTL GET",
      "EXPIRETIME s:d",
      "SET s:d v4",
      "EXPIRETIME s:d",
      "SET s:e v PXAT 4102444800123",
      "PEXPIRETIME s:e",
      "SET s:a v EX 0",
      "SET s:a v EX -5",
      "SET s:a v PX 0",
      "SET s:a v EX abc",
      "SET s:a v EX",
      "SET s:a v NX XX",
      "SET s:a v EX 10 PX 100",
      "SET s:a v KEEPTTL EX 10",
      "SET s:a v BADOPT",
      "SET s:a v EX 9223372036854775807",
      "SET s:a",
      "set s:lower v",
      "GeT s:lower",
      {{"SET", "s:empty-value", ""}},
      "GET s:empty-value",
      "STRLEN s:empty-value",
      "GETSET s:a new",
      "GETSET s:missing2 new",
      "GETDEL s:a",
      "GETDEL s:a",
      "EXISTS s:a",
      "SET s:g val",
      "GETEX s:g",
      "GETEX s:g EXAT 4102444800",
      "EXPIRETIME s:g",
      "GETEX s:g PERSIST",
      "EXPIRETIME s:g",
      "GETEX s:g EX 0",
      "GETEX s:g EX 10 PX 10",
      "GETEX s:g FOO",
      "GETEX s:missing EX 10",
      {{"SET", "s:r", "Hello World"}},
      "GETRANGE s:r 0 4",
      "GETRANGE s:r -5 -1",
      "GETRANGE s:r 100 200",
      "GETRANGE s:r 5 1",
      "GETRANGE s:r a 1",
      "GETRANGE s:missing 0 10",
      "SUBSTR s:r 0 2",
      "SETRANGE s:r 6 Redis",
      "GET s:r",
      "SETRANGE s:r 20 tail",
      "GET s:r",
      "STRLEN s:r",
      "SETRANGE s:r -1 x",
      "SETRANGE s:r 536870912 x",
      {{"SETRANGE", "s:nothing", "0", ""}},
      "EXISTS s:nothing",
      "APPEND s:app abc",
      "APPEND s:app def",
      "GET s:app",
      "STRLEN s:missing",
      "SET s:n 10",
      "INCR s:n",
      "INCRBY s:n 5",
      "INCRBY s:n -20",
      "DECR s:n",
      "DECRBY s:n 3",
      "GET s:n",
      "INCRBY s:n 1.5",
      "INCRBY s:n abc",
      "INCR s:r",
      {{"SET", "s:spaced", " 12"}},
      "INCR s:spaced",
      "SET s:max 9223372036854775807",
      "INCR s:max",
      "DECRBY s:n -9223372036854775808",
      "DECRBY s:n 9223372036854775807",
      "INCR s:fresh",
      "DECR s:fresh2",
      "SET s:f 10.5",
      "INCRBYFLOAT s:f 0.1",
      "INCRBYFLOAT s:f -5.0e3",
      "INCRBYFLOAT s:f 3",
      "INCRBYFLOAT s:f 1e400",
      "INCRBYFLOAT s:f nan",
      "INCRBYFLOAT s:f inf",
      "INCRBYFLOAT s:f abc",
      "INCRBYFLOAT s:r 1",
      "INCRBYFLOAT s:newf 2.5e-3",
      "GET s:f",
      "MSET s:m1 a s:m2 b s:m3 c",
      "MGET s:m1 s:m2 s:missing s:m3 s:m1",
      "MSET s:m1 x s:m1 y",
      "GET s:m1",
      "MSET s:m1",
      "MSET s:m1 a s:m2",
      "MSETNX s:m1 q s:m9 q",
      "MSETNX s:m8 q s:m9 q",
      "MGET s:m8 s:m9",
      "MSETNX s:m7",
      "MSETNX s:m7 a s:m6",
      "MGET",
      "SETNX s:nx 1",
      "SETNX s:nx 2",
      "GET s:nx",
      "SETEX s:ex 100000 v",
      "SETEX s:ex 0 v",
      "SETEX s:ex abc v",
      "SETEX s:ex 10",
      "GET s:ex",
      "PSETEX s:px 100000000 v",
      "PSETEX s:px -1 v",
      "GET s:px",
      "SET s:l1 ohmytext",
      "SET s:l2 mynewtext",
      "LCS s:l1 s:l2",
      "LCS s:l1 s:l2 LEN",
      "LCS s:l1 s:l2 IDX",
      "LCS s:l1 s:l2 IDX MINMATCHLEN 4 WITHMATCHLEN",
      "LCS s:l1 s:l2 LEN IDX",
      "LCS s:l1 s:l2 FOO",
      "LCS s:l1 s:missing",
      {{"SET", "s:bin", std::string("\0\x01\r\n\xff", 5)}},
      "GET s:bin",
      "STRLEN s:bin",
      "APPEND s:bin tail",
      "GETRANGE s:bin 1 4",
      "OBJECT ENCODING s:n",
      "OBJECT ENCODING s:r",
      "OBJECT ENCODING s:lower",
      "OBJECT ENCODING s:missing",
  };
}

std::vector<Step> hashes() {
  return {
      "HSET h:1 f1 v1 f2 v2 f3 3",
      "HSET h:1 f1 v1b",
      "HSET h:1 f4",
      "HSET h:1 f4 v4 f5",
      "HGET h:1 f1",
      "HGET h:1 nope",
      "HGET h:missing f",
      "HMGET h:1 f1 nope f2",
      "HMGET h:missing a b",
      "HMSET h:1 f6 v6",
      "HMSET h:1 f6",
      "HGETALL h:1",
      "HGETALL h:missing",
      "HKEYS h:1",
      "HVALS h:1",
      "HLEN h:1",
      "HLEN h:missing",
      "HEXISTS h:1 f2",
      "HEXISTS h:1 nope",
      "HSTRLEN h:1 f1",
      "HSTRLEN h:1 nope",
      "HSETNX h:1 f1 x",
      "HSETNX h:1 f7 x",
      "HINCRBY h:1 f3 10",
      "HINCRBY h:1 f1 1",
      "HINCRBY h:1 f3 x",
      "HINCRBY h:1 new 5",
      "HINCRBY h:1 f3 9223372036854775807",
      "HINCRBYFLOAT h:1 f3 1.5",
      "HINCRBYFLOAT h:1 f3 nan",
      "HINCRBYFLOAT h:1 f3 inf",
      "HINCRBYFLOAT h:1 f1 1",
      "HINCRBYFLOAT h:1 newf 0.1",
      "HDEL h:1 f2 nope",
      "HDEL h:1",
      "HGETALL h:1",
      "HRANDFIELD h:missing",
      "HRANDFIELD h:missing 5",
      "HRANDFIELD h:1 100",
      "HRANDFIELD h:1 100 WITHVALUES",
      "HRANDFIELD h:1 0",
      "HRANDFIELD h:1 x",
      "HRANDFIELD h:1 1 WITHSCORES",
      "HSET h:one only 1",
      "HRANDFIELD h:one",
      "HRANDFIELD h:one -3",
      "HRANDFIELD h:one -2 WITHVALUES",
      "HSCAN h:1 0",
      "HSCAN h:1 0 MATCH f* COUNT 100",
      "HSCAN h:1 0 COUNT 0",
      "HSCAN h:1 abc",
      "HSCAN h:1 0 FOO bar",
      "HSCAN h:missing 0",
      "GET h:1",
      "HGET s:n f",
      "HSET s:n f v",
      "OBJECT ENCODING h:1",
      "DUMP h:1",
  };
}

std::vector<Step> lists() {
  return {
      "RPUSH l:1 a b c d e c f",
      "LPUSH l:1 z",
      "LRANGE l:1 0 -1",
      "LRANGE l:1 -100 100",
      "LRANGE l:1 5 2",
      "LRANGE l:1 a 1",
      "LRANGE l:missing 0 -1",
      "LLEN l:1",
      "LLEN l:missing",
      "LINDEX l:1 0",
      "LINDEX l:1 -1",
      "LINDEX l:1 100",
      "LINDEX l:1 x",
      "LPOS l:1 c",
      "LPOS l:1 c RANK 2",
      "LPOS l:1 c RANK -1",
      "LPOS l:1 c COUNT 0",
      "LPOS l:1 c COUNT 1 MAXLEN 3",
      "LPOS l:1 nope",
      "LPOS l:1 nope COUNT 2",
      "LPOS l:missing a",
      "LPOS l:1 c RANK 0",
      "LPOS l:1 c COUNT -1",
      "LPOS l:1 c MAXLEN -1",
      "LPOS l:1 c BOGUS 1",
      "LSET l:1 0 A",
      "LSET l:1 100 A",
      "LSET l:missing 0 A",
      "LINSERT l:1 BEFORE c X",
      "LINSERT l:1 AFTER f Y",
      "LINSERT l:1 AFTER nope X",
      "LINSERT l:missing BEFORE a X",
      "LINSERT l:1 MIDDLE a X",
      "LRANGE l:1 0 -1",
      "LREM l:1 1 c",
      "LREM l:1 0 nope",
      "LREM l:1 x c",
      "LPOP l:1",
      "RPOP l:1 2",
      "LPOP l:1 0",
      "LPOP l:1 -1",
      "LPOP l:missing",
      "LPOP l:missing 2",
      "RPOP l:missing",
      "LTRIM l:1 1 -2",
      "LRANGE l:1 0 -1",
      "LTRIM l:1 a 1",
      "RPUSH l:2 1 2 3",
      "RPOPLPUSH l:1 l:2",
      "RPOPLPUSH l:missing l:2",
      "LMOVE l:2 l:1 LEFT RIGHT",
      "LMOVE l:2 l:2 RIGHT LEFT",
      "LMOVE l:2 l:1 UP DOWN",
      "LMOVE l:missing l:1 LEFT LEFT",
      "LRANGE l:1 0 -1",
      "LRANGE l:2 0 -1",
      "LMPOP 2 l:missing l:2 LEFT",
      "LMPOP 2 l:1 l:2 RIGHT COUNT 2",
      "LMPOP 1 l:missing LEFT",
      "LMPOP 0 l:1 LEFT",
      "LMPOP 3 l:1 l:2 LEFT",
      "LMPOP 1 l:1 LEFT COUNT 0",
      "LMPOP 1 l:1 SIDEWAYS",
      "LMPOP x l:1 LEFT",
      "LPUSHX l:missing a",
      "RPUSHX l:2 z",
      "LPUSH s:n x",
      "LRANGE h:1 0 -1",
      "LRANGE l:1 0 -1",
      "LRANGE l:2 0 -1",
      "OBJECT ENCODING l:2",
      "SORT l:2",
      "RPUSH l:num 3 1 2 10 -4.5",
      "SORT l:num",
      "SORT l:num DESC",
      "SORT l:num LIMIT 1 2",
      "SORT l:num ALPHA",
      "SORT l:num ALPHA DESC LIMIT 0 3",
      "SORT l:num STORE l:sorted",
      "LRANGE l:sorted 0 -1",
      "SORT_RO l:num DESC",
      "SORT l:num LIMIT 1",
      "SORT l:missing",
      "DUMP l:num",
  };
}

std::vector<Step> sets() {
  return {
      "SADD t:a a b c d",
      "SADD t:a a",
      "SADD t:b c d e",
      "SADD t:i 3 1 2 -7",
      "SMEMBERS t:i",
      any_order("SMEMBERS t:a"),
      "SMEMBERS t:missing",
      "SCARD t:a",
      "SCARD t:missing",
      "SISMEMBER t:a a",
      "SISMEMBER t:a z",
      "SMISMEMBER t:a a z b",
      "SMISMEMBER t:missing a",
      any_order("SINTER t:a t:b"),
      any_order("SUNION t:a t:b"),
      any_order("SDIFF t:a t:b"),
      "SINTER t:a t:missing",
      any_order("SDIFF t:a t:missing"),
      "SINTERSTORE t:is t:a t:b",
      "SUNIONSTORE t:us t:a t:b",
      "SDIFFSTORE t:ds t:a t:b",
      any_order("SMEMBERS t:is"),
      any_order("SMEMBERS t:us"),
      any_order("SMEMBERS t:ds"),
      "SINTERSTORE t:is t:a t:missing",
      "EXISTS t:is",
      "SINTERCARD 2 t:a t:b",
      "SINTERCARD 2 t:a t:b LIMIT 1",
      "SINTERCARD 1 t:missing",
      "SINTERCARD 0 t:a",
      "SINTERCARD 3 t:a t:b",
      "SINTERCARD 1 t:a LIMIT -1",
      "SINTERCARD x t:a",
      "SMOVE t:a t:b a",
      "SMOVE t:a t:b nope",
      "SMOVE t:missing t:b a",
      "SMOVE t:a s:n b",
      "SREM t:b a e nope",
      "SREM t:missing a",
      "SRANDMEMBER t:i 10",
      "SRANDMEMBER t:i 0",
      "SRANDMEMBER t:i x",
      "SADD t:one m",
      "SRANDMEMBER t:one",
      "SRANDMEMBER t:one -3",
      "SRANDMEMBER t:missing",
      "SRANDMEMBER t:missing 3",
      "SPOP t:one",
      "SPOP t:one",
      "EXISTS t:one",
      "SADD t:p x y z",
      "SPOP t:p 0",
      any_order("SPOP t:p 5"),
      "EXISTS t:p",
      "SPOP t:p -1",
      "SPOP t:missing 2",
      scan_any_order("SSCAN t:a 0 COUNT 1000"),
      "SSCAN t:i 0",
      scan_any_order("SSCAN t:b 0 MATCH c* COUNT 1000"),
      "SSCAN t:a abc",
      "SSCAN t:missing 0",
      "SADD h:1 x",
      "SINTER t:a h:1",
      "SUNIONSTORE t:x t:a s:n",
      "OBJECT ENCODING t:i",
      "OBJECT ENCODING t:a",
      "SORT t:i",
      "SORT t:i DESC LIMIT 0 2",
      "SORT t:a ALPHA",
      "SORT t:a",
      "DUMP t:i",
  };
}

std::vector<Step> sorted_sets() {
  return {
      "ZADD z:1 1 a 2 b 3 c",
      "ZADD z:1 NX 10 a 4 d",
      "ZADD z:1 XX 10 a 5 e",
      "ZADD z:1 XX CH 1.5 a",
      "ZADD z:1 GT 1 b",
      "ZADD z:1 GT CH 5 b",
      "ZADD z:1 LT CH 100 c",
      "ZADD z:1 INCR 2.5 a",
      "ZADD z:1 NX INCR 1 a",
      "ZADD z:1 XX NX 1 a",
      "ZADD z:1 GT LT 1 a",
      "ZADD z:1 GT NX 1 a",
      "ZADD z:1 INCR 1 a 2 b",
      "ZADD z:1 nan a",
      "ZADD z:1 abc a",
      "ZADD z:1 1",
      "ZADD z:1 1 a 2",
      "ZADD z:inf +inf x -inf y 0 z",
      "ZRANGE z:inf 0 -1 WITHSCORES",
      "ZSCORE z:inf x",
      "ZINCRBY z:inf -inf x",
      "ZINCRBY z:1 0.5 b",
      "ZINCRBY z:1 x b",
      "ZINCRBY z:1 1 newm",
      "ZINCRBY z:1 1e-3 newm",
      "ZSCORE z:1 a",
      "ZSCORE z:1 newm",
      "ZSCORE z:1 nope",
      "ZSCORE z:missing a",
      "ZMSCORE z:1 a nope b",
      "ZMSCORE z:missing a",
      "ZCARD z:1",
      "ZCARD z:missing",
      "ZRANGE z:1 0 -1",
      "ZRANGE z:1 0 -1 WITHSCORES",
      "ZRANGE z:1 0 -1 REV WITHSCORES",
      "ZRANGE z:1 2 4 BYSCORE",
      "ZRANGE z:1 (2 +inf BYSCORE LIMIT 1 2 WITHSCORES",
      "ZRANGE z:1 +inf -inf BYSCORE REV",
      "ZRANGE z:1 0 1 LIMIT 0 1",
      "ZRANGE z:1 a b BYSCORE",
      "ZRANGE z:1 0 -1 BYSCORE BYLEX",
      "ZRANGE z:missing 0 -1",
      "ZADD z:lex 0 a 0 b 0 c 0 d 0 e",
      "ZRANGE z:lex [b (e BYLEX",
      "ZRANGE z:lex (e - BYLEX REV LIMIT 0 2",
      "ZRANGE z:lex b e BYLEX",
      "ZRANGEBYSCORE z:1 -inf +inf WITHSCORES",
      "ZRANGEBYSCORE z:1 (1 5 LIMIT 0 1",
      "ZRANGEBYSCORE z:1 nan 5",
      "ZREVRANGEBYSCORE z:1 +inf -inf",
      "ZRANGEBYLEX z:lex - +",
      "ZREVRANGEBYLEX z:lex + - LIMIT 1 2",
      "ZREVRANGE z:1 0 1 WITHSCORES",
      "ZLEXCOUNT z:lex [b [d",
      "ZLEXCOUNT z:lex - +",
      "ZLEXCOUNT z:lex a b",
      "ZCOUNT z:1 -inf +inf",
      "ZCOUNT z:1 (1 3",
      "ZCOUNT z:1 x 3",
      "ZRANK z:1 b",
      "ZRANK z:1 nope",
      "ZREVRANK z:1 b",
      "ZRANK z:missing a",
      "ZRANGESTORE z:dst z:1 0 1",
      "ZRANGESTORE z:dst z:1 1 +inf BYSCORE LIMIT 0 2",
      "ZRANGE z:dst 0 -1 WITHSCORES",
      "ZRANGESTORE z:dst z:missing 0 -1",
      "EXISTS z:dst",
      "ZADD z:2 1 b 2 c 3 x",
      "ZUNION 2 z:1 z:2",
      "ZUNION 2 z:1 z:2 WITHSCORES",
      "ZUNION 2 z:1 z:2 WEIGHTS 2 0.5 AGGREGATE MAX WITHSCORES",
      "ZINTER 2 z:1 z:2 WITHSCORES",
      "ZINTER 2 z:1 z:2 AGGREGATE MIN WITHSCORES",
      "ZDIFF 2 z:1 z:2 WITHSCORES",
      "ZDIFF 2 z:1 z:missing",
      "ZUNION 2 z:1 t:i WITHSCORES",
      "ZINTER 2 t:a z:1 WITHSCORES",
      "ZINTERCARD 2 z:1 z:2",
      "ZINTERCARD 2 z:1 z:2 LIMIT 1",
      "ZINTERCARD 0 z:1",
      "ZUNIONSTORE z:u 2 z:1 z:2",
      "ZINTERSTORE z:i 2 z:1 z:2 WEIGHTS 1 2",
      "ZDIFFSTORE z:d 2 z:1 z:2",
      "ZRANGE z:u 0 -1 WITHSCORES",
      "ZRANGE z:i 0 -1 WITHSCORES",
      "ZRANGE z:d 0 -1 WITHSCORES",
      "ZUNION 0 z:1",
      "ZUNION 3 z:1 z:2",
      "ZUNION -1 z:1",
      "ZUNION x z:1",
      "ZUNIONSTORE z:u 0",
      "ZUNIONSTORE z:u 0 z:1",
      "ZUNION 2 z:1 z:2 WEIGHTS 1 nan",
      "ZUNION 2 z:1 z:2 WEIGHTS 1",
      "ZUNION 2 z:1 z:2 AGGREGATE AVG",
      "ZUNION 2 z:1 s:n",
      "ZMPOP 1 z:1 MIN",
      "ZMPOP 2 z:missing z:1 MAX COUNT 2",
      "ZMPOP 1 z:missing MIN",
      "ZMPOP 0 z:1 MIN",
      "ZMPOP 1 z:1 MIDDLE",
      "ZMPOP 1 z:1 MIN COUNT 0",
      "ZPOPMIN z:1",
      "ZPOPMAX z:1 2",
      "ZPOPMIN z:missing",
      "ZPOPMAX z:missing 3",
      "ZPOPMIN z:1 -1",
      "ZRANDMEMBER z:2 10 WITHSCORES",
      "ZRANDMEMBER z:2 10",
      "ZRANDMEMBER z:missing",
      "ZRANDMEMBER z:missing 2",
      "ZADD z:one 5 only",
      "ZRANDMEMBER z:one",
      "ZRANDMEMBER z:one -2 WITHSCORES",
      "ZREM z:2 x nope",
      "ZREM z:missing x",
      "ZREMRANGEBYSCORE z:u -inf 1",
      "ZREMRANGEBYRANK z:u 0 0",
      "ZREMRANGEBYRANK z:u x 0",
      "ZREMRANGEBYLEX z:lex [a [b",
      "ZRANGE z:u 0 -1 WITHSCORES",
      "ZRANGE z:lex 0 -1",
      "ZSCAN z:2 0",
      "ZSCAN z:2 0 MATCH b*",
      "ZSCAN z:missing 0",
      "ZADD s:n 1 a",
      "ZSCORE t:a a",
      "ZRANGE h:1 0 -1",
      "OBJECT ENCODING z:2",
      "DUMP z:2",
  };
}

std::vector<Step> bitmaps() {
  return {
      "SETBIT b:1 7 1",
      "SETBIT b:1 7 0",
      "SETBIT b:1 100 1",
      "SETBIT b:1 3 1",
      "SETBIT b:1 -1 1",
      "SETBIT b:1 4294967296 1",
      "SETBIT b:1 1 2",
      "SETBIT b:1 x 1",
      "GETBIT b:1 100",
      "GETBIT b:1 3",
      "GETBIT b:1 99999",
      "GETBIT b:missing 0",
      "GETBIT b:1 -1",
      "GET b:1",
      "STRLEN b:1",
      "BITCOUNT b:1",
      "BITCOUNT b:1 0 0",
      "BITCOUNT b:1 0 -1 BIT",
      "BITCOUNT b:1 5 30 BIT",
      "BITCOUNT b:1 0",
      "BITCOUNT b:1 0 1 WORD",
      "BITCOUNT b:missing",
      "SET b:s foobar",
      "BITCOUNT b:s 1 1",
      "BITCOUNT b:s -2 -1",
      "BITPOS b:s 1",
      "BITPOS b:s 0",
      "BITPOS b:s 1 2",
      "BITPOS b:s 1 2 -1 BYTE",
      "BITPOS b:s 1 7 15 BIT",
      "BITPOS b:missing 0",
      "BITPOS b:missing 1",
      "BITPOS b:s 2",
      "BITPOS b:s 1 x",
      "SET b:t abc",
      "BITOP AND b:and b:s b:t",
      "BITOP OR b:or b:s b:t",
      "BITOP XOR b:xor b:s b:t",
      "BITOP NOT b:not b:s",
      "GET b:and",
      "GET b:or",
      "GET b:xor",
      "GET b:not",
      "BITOP NOT b:not b:s b:t",
      "BITOP NAND b:x b:s",
      "BITOP AND b:x b:s h:1",
      "BITOP AND b:empty b:missing",
      "EXISTS b:empty",
      "BITFIELD b:f SET u8 0 255 GET u8 0 INCRBY u8 0 10",
      "BITFIELD b:f OVERFLOW SAT INCRBY u8 0 1000 OVERFLOW FAIL INCRBY i8 8 200 "
      "OVERFLOW WRAP INCRBY u4 #2 20",
      "BITFIELD b:f GET i16 0 GET u64 0",
      "BITFIELD b:f GET u8 -1",
      "BITFIELD b:f OVERFLOW BAD",
      "BITFIELD b:f INCRBY u8 0",
      "BITFIELD b:f",
      "GET b:f",
      "BITFIELD_RO b:f GET u8 0 GET i4 4",
      "BITFIELD_RO b:f SET u8 0 1",
      "BITFIELD_RO b:missing GET u8 0",
      "BITFIELD h:1 GET u8 0",
      "SETBIT h:1 0 1",
      "GETBIT l:num 0",
  };
}

std::vector<Step> hyperloglog() {
  return {
      "PFADD p:1 a b c d",   "PFADD p:1 a",       "PFADD p:1",
      "PFADD p:new",         "PFCOUNT p:1",       "PFCOUNT p:new",
      "PFADD p:2 c d e f g", "PFCOUNT p:1 p:2",   "PFMERGE p:m p:1 p:2",
      "PFCOUNT p:m",         "PFCOUNT p:missing", "PFMERGE p:m2",
      "EXISTS p:m2",         "GET p:1",           "DUMP p:1",
      "PFADD s:r x",         "PFCOUNT s:r",       "PFCOUNT h:1",
      "PFMERGE p:m s:r",     "PFCOUNT",           "TYPE p:1",
  };
}

std::vector<Step> expiry() {
  return {
      "SET e:1 v",
      "TTL e:1",
      "PTTL e:1",
      "TTL e:missing",
      "PTTL e:missing",
      "EXPIRETIME e:1",
      "EXPIRETIME e:missing",
      "PEXPIRETIME e:missing",
      "EXPIRE e:1 100000 XX",
      "EXPIRE e:1 100000 NX",
      "EXPIRE e:1 200000 NX",
      "EXPIRE e:1 200000 GT",
      "EXPIRE e:1 50 GT",
      "EXPIRE e:1 50000 LT",
      "EXPIRE e:1 10 NX XX",
      "EXPIRE e:1 10 GT LT",
      "EXPIRE e:1 10 NX GT",
      "EXPIRE e:1 10 FOO",
      "EXPIRE e:1 abc",
      "EXPIRE e:1 9223372036854775807",
      "PEXPIRE e:1 9223372036854775807",
      "EXPIRE e:missing 100",
      "PERSIST e:1",
      "PERSIST e:1",
      "TTL e:1",
      "EXPIRE e:1 100 GT",
      "EXPIRE e:1 100000 LT",
      "PERSIST e:1",
      "EXPIREAT e:1 4102444800",
      "EXPIRETIME e:1",
      "PEXPIRETIME e:1",
      "EXPIREAT e:1 4102444801 LT",
      "EXPIREAT e:1 4102444801 GT",
      "EXPIRETIME e:1",
      "PEXPIREAT e:1 4102444801500",
      "PEXPIRETIME e:1",
      "EXPIRETIME e:1",
      "PEXPIRE e:1 100000000 LT",
      "PEXPIRE e:1 abc",
      "PEXPIREAT e:1 x",
      "PERSIST e:1",
      "PTTL e:1",
      "SET e:2 v",
      "EXPIRE e:2 -1",
      "EXISTS e:2",
      "TTL e:2",
      "SET e:3 v",
      "PEXPIREAT e:3 1",
      "GET e:3",
      "SET e:4 v",
      "EXPIREAT e:4 0",
      "EXISTS e:4",
      "EXPIREAT e:missing 4102444800",
      "PERSIST e:missing",
      "HSET e:h f v",
      "EXPIREAT e:h 4102444800",
      "EXPIRETIME e:h",
      "TYPE e:h",
      "EXPIRE",
      "TTL",
      "TTL e:1 e:2",
      "PERSIST",
  };
}

std::vector<Step> key_space() {
  return {
      "SET k:a 1",
      "SET k:b 2",
      "RPUSH k:l x y",
      "TYPE k:a",
      "TYPE k:l",
      "TYPE h:1",
      "TYPE t:a",
      "TYPE z:2",
      "TYPE p:1",
      "TYPE k:missing",
      "EXISTS k:a k:b k:missing k:a",
      "EXISTS k:missing",
      "TOUCH k:a k:missing k:a",
      "TOUCH k:missing",
      "DEL k:missing",
      "RENAME k:a k:c",
      "RENAME k:missing k:x",
      "RENAME k:c k:c",
      "RENAME k:c",
      "RENAMENX k:c k:b",
      "RENAMENX k:c k:d",
      "RENAMENX k:missing k:y",
      "GET k:d",
      "EXISTS k:c",
      "COPY k:d k:e",
      "COPY k:d k:e",
      "COPY k:d k:e REPLACE",
      "COPY k:missing k:f",
      "COPY k:d k:e FOO",
      "COPY k:l k:l2",
      "LRANGE k:l2 0 -1",
      "COPY h:1 k:h",
      "HGETALL k:h",
      "DUMP k:d",
      "DUMP k:l",
      "DUMP k:missing",
      "RESTORE k:r1 0 <payload:str>",
      "GET k:r1",
      "RESTORE k:r1 0 <payload:str>",
      "RESTORE k:r1 0 <payload:list> REPLACE",
      "LRANGE k:r1 0 -1",
      "TYPE k:r1",
      "RESTORE k:r2 4102444800000 <payload:hash> ABSTTL",
      "PEXPIRETIME k:r2",
      "HGETALL k:r2",
      "RESTORE k:r3 0 <payload:zset> IDLETIME 100",
      "ZRANGE k:r3 0 -1 WITHSCORES",
      "RESTORE k:r4 0 <payload:iset>",
      "SMEMBERS k:r4",
      "OBJECT ENCODING k:r4",
      "RESTORE k:r5 -1 <payload:str>",
      "RESTORE k:r5 0 garbage",
      {{"RESTORE", "k:r5", "0", ""}},
      "RESTORE k:r5 x <payload:str>",
      "RESTORE k:r5 0 <payload:str> FREQ 5",
      "RESTORE k:r5 0 <payload:str> IDLETIME -1",
      "RESTORE k:r5 0 <payload:str> BADOPT",
      "RESTORE k:r5 0",
      "EXISTS k:r5",
      "OBJECT ENCODING k:missing",
      "OBJECT NOPE k:d",
      "OBJECT ENCODING",
      "OBJECT",
      "UNLINK k:d k:e k:missing k:d",
      "DEL k:b k:b",
      "DEL k:l k:l2 k:h",
      "DEL",
      "UNLINK",
      "EXISTS",
      "TYPE",
      any_order("KEYS k:*"),
      "KEYS nomatch*",
      any_order("KEYS *"),
      "KEYS",
      scan_any_order("SCAN 0 COUNT 1000 MATCH k:*"),
      scan_any_order("SCAN 0 COUNT 1000 TYPE list"),
      scan_any_order("SCAN 0 COUNT 1000 TYPE zset MATCH z:*"),
      "SCAN 0 MATCH zz* COUNT 1000",
      "SCAN abc",
      "SCAN 0 COUNT 0",
      "SCAN 0 COUNT x",
      "SCAN 0 FOO",
      "DBSIZE",
      "SORT s:n",
      "SORT h:1",
      "SORT z:2 ALPHA",
      "SORT z:2 BADOPT",
  };
}

// Keys cachegate hashes to pick a server: with one server, none of their shapes may matter.
std::vector<Step> key_shapes() {
  const std::string binary("k\0\r\n\xff", 5);
  return {
      {{"SET", "", "empty key"}},
      {{"GET", ""}},
      {{"EXISTS", "", "missing"}},
      {{"SET", binary, "binary key"}},
      {{"GET", binary}},
      {{"MGET", binary, "", "missing"}},
      {{"SET", "key with spaces", "v"}},
      {{"APPEND", "key with spaces", "w"}},
      {{"GET", "key with spaces"}},
      "SET {tag}:a 1",
      "SET {other}:b 2",
      "SET {}:c 3",
      "SET }{:d 4",
      "MGET {tag}:a {other}:b {}:c }{:d",
      "RENAME {tag}:a {other}:a",
      "SINTERSTORE {tag}:s {other}:none",
      "MSETNX {tag}:x 1 {other}:y 2",
      "object encoding {other}:a",
      "Object Encoding {other}:b",
      {{"DEL", "", binary, "key with spaces", "{other}:a", "{other}:b", "{}:c", "}{:d", "{tag}:x",
        "{other}:y"}},
  };
}

// Requests every redis-server rejects before looking at any key.
std::vector<Step> unknown_and_arity() {
  return {
      "NOSUCHCMD",
      "NOSUCHCMD a b",
      "nosuchcmd with some arguments",
      "GET",
      "GET a b",
      "SET a",
      "HGET h",
      "LPUSH l",
      "SADD t",
      "ZADD z 1",
      "ZRANGE z 0",
      "GETBIT b",
      "PFMERGE",
      "OBJECT ENCODING a b",
      "OBJECT HELPME a",
      "get",
  };
}

// The whole script: every family, then the requests rejected early.
std::vector<Step> script() {
  std::vector<Step> all;
  for (auto part : {strings(), hashes(), lists(), sets(), sorted_sets(), bitmaps(), hyperloglog(),
                    expiry(), key_space(), key_shapes(), unknown_and_arity()})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

// The end of the RESP value that starts at `pos` in `s`, or npos when it is not one.
size_t value_end(std::string_view s, size_t pos, int depth = 0) {
  if (depth > 32 || pos >= s.size()) return std::string_view::npos;
  const size_t eol = s.find("\r\n", pos);
  if (eol == std::string_view::npos) return eol;
  const char type = s[pos];
  const long long n = std::atoll(std::string(s.substr(pos + 1, eol - pos - 1)).c_str());
  size_t next = eol + 2;
  switch (type) {
    case '+':
    case '-':
    case ':':
    case '_':
    case ',':
    case '#':
    case '(':
      return next;
    case '$':
    case '!':
    case '=':
      if (n < 0) return next;
      next += static_cast<size_t>(n) + 2;
      return next <= s.size() ? next : std::string_view::npos;
    case '*':
    case '~':
    case '>':
    case '%': {
      if (n < 0) return next;
      const long long count = type == '%' ? 2 * n : n;
      for (long long i = 0; i < count && next != std::string_view::npos; ++i)
        next = value_end(s, next, depth + 1);
      return next;
    }
    default:
      return std::string_view::npos;
  }
}

// An array or set with its elements in sorted order (unchanged if it is anything else).
std::string sorted_elements(std::string_view value) {
  if (value.empty() || (value[0] != '*' && value[0] != '~')) return std::string(value);
  const size_t header_end = value.find("\r\n");
  if (header_end == std::string_view::npos) return std::string(value);
  std::vector<std::string> elements;
  size_t pos = header_end + 2;
  while (pos < value.size()) {
    const size_t end = value_end(value, pos);
    if (end == std::string_view::npos) return std::string(value);
    elements.emplace_back(value.substr(pos, end - pos));
    pos = end;
  }
  std::sort(elements.begin(), elements.end());
  std::string out(value.substr(0, header_end + 2));
  for (const auto& e : elements)
    out += e;
  return out;
}

// A reply in the form it is compared in.
std::string comparable(const std::string& reply, Order order) {
  switch (order) {
    case Order::kExact:
      return reply;
    case Order::kAnyOrder:
      return sorted_elements(reply);
    case Order::kScanAnyOrder: {
      // [cursor, [elements…]]
      if (reply.rfind("*2\r\n", 0) != 0) return reply;
      const size_t elements = value_end(reply, 4);
      if (elements == std::string::npos) return reply;
      return reply.substr(0, elements) + sorted_elements(std::string_view(reply).substr(elements));
    }
  }
  return reply;
}

std::string describe(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args)
    out += (out.empty() ? "" : " ") + a;
  return printable(out, 200);
}

using Payloads = std::map<std::string, std::string>;

// `args` with every "<payload:NAME>" replaced by that side's captured payload.
std::vector<std::string> with_payloads(std::vector<std::string> args, const Payloads& payloads) {
  for (auto& a : args) {
    if (a.rfind("<payload:", 0) != 0 || a.back() != '>') continue;
    auto it = payloads.find(a.substr(9, a.size() - 10));
    if (it != payloads.end()) a = it->second;
  }
  return args;
}

// The body of a bulk string reply, for DUMP payloads.
std::string bulk_body(const std::string& reply) {
  const size_t header_end = reply.find("\r\n");
  if (reply.empty() || reply[0] != '$' || header_end == std::string::npos) return {};
  return reply.substr(header_end + 2, reply.size() - header_end - 4);
}

// Both sides of the comparison: cachegate in front of one redis-server, and a reference
// redis-server nothing else talks to.
struct Sides {
  explicit Sides(RedisCluster& cluster, RedisServer& reference)
      : proxy(cluster.port()), reference(reference.port()) {}
  RespClient proxy;
  RespClient reference;
  Payloads proxy_payloads;
  Payloads reference_payloads;
};

// Sends each step to both sides, one request at a time, and compares the replies.
void run_one_by_one(Sides& sides, const std::vector<Step>& steps, const std::string& label) {
  for (const auto& step : steps) {
    const std::string want =
        sides.reference.call(with_payloads(step.args, sides.reference_payloads));
    const std::string got = sides.proxy.call(with_payloads(step.args, sides.proxy_payloads));
    INFO(label << ": " << describe(step.args));
    if (!step.capture.empty()) {
      // RESTORE steps would only compare two "payload is wrong" errors without a real payload.
      sides.reference_payloads[step.capture] = bulk_body(want);
      sides.proxy_payloads[step.capture] = bulk_body(got);
      REQUIRE_FALSE(sides.reference_payloads[step.capture].empty());
      CHECK_FALSE(sides.proxy_payloads[step.capture].empty());
    }
    CHECK(printable(comparable(got, step.order), 2000) ==
          printable(comparable(want, step.order), 2000));
  }
}

RedisClusterOptions one_shard() {
  RedisClusterOptions options;
  options.servers = 1;
  return options;
}

TEST_CASE(
    "a single-shard pool answers every data command with redis-server's bytes in RESP2 "
    "and RESP3",
    "[redis][transparency]") {
  RedisCluster cluster(one_shard());
  RedisServer reference;
  Sides sides(cluster, reference);
  const std::vector<Step> steps = script();
  // A few hundred requests, so that a script cut short by accident is noticed.
  REQUIRE(steps.size() > 500);

  run_one_by_one(sides, prelude(), "RESP2");
  run_one_by_one(sides, steps, "RESP2");

  REQUIRE(sides.proxy.call({"FLUSHALL"}) == "+OK\r\n");
  REQUIRE(sides.reference.call({"FLUSHALL"}) == "+OK\r\n");
  REQUIRE(sides.proxy.call({"DBSIZE"}) == ":0\r\n");

  REQUIRE(sides.proxy.call({"HELLO", "3"}).rfind("%7\r\n", 0) == 0);
  REQUIRE(sides.reference.call({"HELLO", "3"}).rfind("%7\r\n", 0) == 0);
  run_one_by_one(sides, prelude(), "RESP3");
  run_one_by_one(sides, steps, "RESP3");
}

TEST_CASE(
    "a single-shard pool answers a pipelined data script with redis-server's bytes, in "
    "order",
    "[redis][transparency][pipeline]") {
  RedisCluster cluster(one_shard());
  RedisServer reference;
  Sides sides(cluster, reference);
  // The payloads RESTORE needs come from each side's own DUMP, taken before the pipeline.
  run_one_by_one(sides, prelude(), "prelude");

  const std::vector<Step> steps = script();
  std::string to_proxy;
  std::string to_reference;
  for (const auto& step : steps) {
    to_proxy += resp_command(with_payloads(step.args, sides.proxy_payloads));
    to_reference += resp_command(with_payloads(step.args, sides.reference_payloads));
  }
  const auto want = sides.reference.pipeline(to_reference, steps.size());
  const auto got = sides.proxy.pipeline(to_proxy, steps.size());
  REQUIRE(want.size() == steps.size());
  CHECK(got.size() == steps.size());
  for (size_t i = 0; i < steps.size() && i < got.size(); ++i) {
    INFO("reply " << i << ": " << describe(steps[i].args));
    CHECK(printable(comparable(got[i], steps[i].order), 2000) ==
          printable(comparable(want[i], steps[i].order), 2000));
  }
}

}  // namespace
}  // namespace cachegate
