// Replies that name keys, with a user's namespace taken off: what a tenant reads back must be its
// own key names, never the prefix and never another tenant's keys.

#include "protocol/key_namespace.h"

#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "protocol/base64.h"

namespace cachegate::protocol {
namespace {

std::string b64(std::string_view in) {
  std::string out;
  base64_encode(in, out);
  return out;
}

std::string values(std::string_view reply, std::string_view prefix) {
  std::string out;
  memcache::strip_value_keys(reply, prefix, out);
  return out;
}

std::string meta(std::string_view reply, std::string_view prefix) {
  std::string out;
  memcache::strip_meta_keys(reply, prefix, out);
  return out;
}

// The rewritten reply, or "(unchanged)" when strip_reply_keys leaves it to go as it is.
std::string redis(std::string_view reply, resp::KeyReply kind, std::string_view prefix) {
  std::string out;
  if (!resp::strip_reply_keys(reply, kind, prefix, out)) return "(unchanged)";
  return out;
}

TEST_CASE("key namespace: glob escaping", "[key-namespace]") {
  std::string out;
  append_glob_escaped("plain:", out);
  CHECK(out == "plain:");
  out.clear();
  append_glob_escaped("a*b?c[d]e\\f", out);
  CHECK(out == "a\\*b\\?c\\[d\\]e\\\\f");
}

TEST_CASE("key namespace: memcached VALUE lines", "[key-namespace]") {
  CHECK(values("END\r\n", "t:") == "END\r\n");
  CHECK(values("VALUE t:a 0 1\r\nx\r\nEND\r\n", "t:") == "VALUE a 0 1\r\nx\r\nEND\r\n");
  // gets: the cas stays; a value that looks like a VALUE line is data, not touched.
  CHECK(values("VALUE t:a 5 16 77\r\nVALUE t:b 0 1\r\nx\r\nVALUE t:bb 0 0\r\n\r\nEND\r\n", "t:") ==
        "VALUE a 5 16 77\r\nVALUE t:b 0 1\r\nx\r\nVALUE bb 0 0\r\n\r\nEND\r\n");
}

TEST_CASE("key namespace: meta replies", "[key-namespace]") {
  CHECK(meta("EN\r\n", "t:") == "EN\r\n");
  CHECK(meta("EN kt:a\r\n", "t:") == "EN ka\r\n");  // memcached echoes k on a miss too
  CHECK(meta("HD\r\n", "t:") == "HD\r\n");
  CHECK(meta("HD kt:a c5 Oop\r\n", "t:") == "HD ka c5 Oop\r\n");
  CHECK(meta("NF kt:a\r\n", "t:") == "NF ka\r\n");
  CHECK(meta("NS kt:a\r\n", "t:") == "NS ka\r\n");
  CHECK(meta("EX kt:a c9\r\n", "t:") == "EX ka c9\r\n");
  // VA: the size is not a flag, and the data block is copied as it is, even when it reads like
  // a reply line.
  CHECK(meta("VA 11 kt:a f3\r\nHD kt:b ktt\r\n\r\n", "t:") == "VA 11 ka f3\r\nHD kt:b ktt\r\n\r\n");
  CHECK(meta("VA 2 s2 kt:key\r\nhi\r\n", "t:") == "VA 2 s2 kkey\r\nhi\r\n");
  CHECK(meta("ME t:a exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n", "t:") ==
        "ME a exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n");
  // A quiet request's reply and the MN behind it.
  CHECK(meta("HD kt:a\r\nMN\r\n", "t:") == "HD ka\r\nMN\r\n");
  CHECK(meta("MN\r\n", "t:") == "MN\r\n");
  // Errors name no key.
  CHECK(meta("CLIENT_ERROR bad data chunk\r\n", "t:") == "CLIENT_ERROR bad data chunk\r\n");
  CHECK(meta("SERVER_ERROR kt:a\r\n", "t:") == "SERVER_ERROR kt:a\r\n");
  // base64: memcached echoes a binary key in base64 and says so with b; it is decoded, stripped
  // and encoded again. A key that is not binary comes back plain whatever the request used.
  CHECK(meta("VA 1 kt:bar\r\nz\r\n", "t:") == "VA 1 kbar\r\nz\r\n");
  CHECK(meta("ME t:bar exp=-1\r\n", "t:") == "ME bar exp=-1\r\n");
  CHECK(meta("HD k" + b64("t:\x01\x02") + " b\r\n", "t:") == "HD k" + b64("\x01\x02") + " b\r\n");
  CHECK(meta("VA 1 b k" + b64("t:xyz") + "\r\nv\r\n", "t:") ==
        "VA 1 b k" + b64("xyz") + "\r\nv\r\n");
  CHECK(meta("ME " + b64("t:q") + " exp=-1\r\n", "t:") == "ME " + b64("q") + " exp=-1\r\n");
}

TEST_CASE("key namespace: Redis KEYS keeps only the namespace's keys", "[key-namespace]") {
  using resp::KeyReply;
  CHECK(redis("*3\r\n$3\r\nt:a\r\n$4\r\nu:bb\r\n$4\r\nt:cc\r\n", KeyReply::kKeyList, "t:") ==
        "*2\r\n$1\r\na\r\n$2\r\ncc\r\n");
  CHECK(redis("*0\r\n", KeyReply::kKeyList, "t:") == "*0\r\n");
  CHECK(redis("-ERR nope\r\n", KeyReply::kKeyList, "t:") == "(unchanged)");
  CHECK(redis("*-1\r\n", KeyReply::kKeyList, "t:") == "(unchanged)");
}

TEST_CASE("key namespace: Redis SCAN", "[key-namespace]") {
  using resp::KeyReply;
  CHECK(redis("*2\r\n$2\r\n17\r\n*2\r\n$3\r\nt:a\r\n$3\r\nx:b\r\n", KeyReply::kScan, "t:") ==
        "*2\r\n$2\r\n17\r\n*1\r\n$1\r\na\r\n");
  CHECK(redis("*2\r\n$1\r\n0\r\n*0\r\n", KeyReply::kScan, "t:") == "*2\r\n$1\r\n0\r\n*0\r\n");
  CHECK(redis("*1\r\n$1\r\n0\r\n", KeyReply::kScan, "t:") == "(unchanged)");
}

TEST_CASE("key namespace: Redis LMPOP/ZMPOP and XREAD", "[key-namespace]") {
  using resp::KeyReply;
  CHECK(redis("*2\r\n$3\r\nt:l\r\n*1\r\n$1\r\nv\r\n", KeyReply::kKeyFirst, "t:") ==
        "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nv\r\n");
  CHECK(redis("*-1\r\n", KeyReply::kKeyFirst, "t:") == "(unchanged)");
  CHECK(redis("_\r\n", KeyReply::kKeyFirst, "t:") == "(unchanged)");
  const std::string entries = "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
  // RESP2: [[key, entries], …]
  CHECK(redis("*2\r\n*2\r\n$3\r\nt:s\r\n" + entries + "*2\r\n$4\r\nt:s2\r\n" + entries,
              KeyReply::kStreams,
              "t:") == "*2\r\n*2\r\n$1\r\ns\r\n" + entries + "*2\r\n$2\r\ns2\r\n" + entries);
  // RESP3: a map of key → entries.
  CHECK(redis("%1\r\n$3\r\nt:s\r\n" + entries, KeyReply::kStreams, "t:") ==
        "%1\r\n$1\r\ns\r\n" + entries);
  CHECK(redis("*-1\r\n", KeyReply::kStreams, "t:") == "(unchanged)");
  // BLPOP, BZPOPMIN: [key, element…] of any length.
  CHECK(redis("*3\r\n$3\r\nt:z\r\n$1\r\nm\r\n$1\r\n1\r\n", KeyReply::kKeyFirst, "t:") ==
        "*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n");
}

TEST_CASE("key namespace: a reply of an unexpected type goes as it is", "[key-namespace]") {
  // A server's odd answer (a map where an array belongs) is not rebuilt under another header,
  // which would leave the client's stream out of step (found by fuzzing).
  using resp::KeyReply;
  const std::string map = "%1\r\n$3\r\nt:k\r\n*1\r\n$3\r\nt:a\r\n";
  for (KeyReply kind : {KeyReply::kKeyList, KeyReply::kScan, KeyReply::kKeyFirst}) {
    INFO(static_cast<int>(kind));
    CHECK(redis(map, kind, "t:") == "(unchanged)");
  }
  CHECK(redis(">2\r\n$3\r\nt:k\r\n$1\r\nv\r\n", KeyReply::kKeyFirst, "t:") == "(unchanged)");
  // A malformed reply the framer accepts but reads differently (a bare CR inside a line): what
  // a rewrite would make of it does not frame as one reply, so it goes as it came.
  const std::string bare_cr = "*2\r\n*2\r\n_\r\n:\r\n%2\r\n(2\r\n(1\r\n(%\r\n(*1\r!2\r\n";
  CHECK(redis(bare_cr, KeyReply::kStreams, "t:") == "(unchanged)");
  // Sets of keys are lists too.
  CHECK(redis("~2\r\n$3\r\nt:a\r\n$1\r\nb\r\n", KeyReply::kKeyList, "t:") == "~1\r\n$1\r\na\r\n");
}

}  // namespace
}  // namespace cachegate::protocol
