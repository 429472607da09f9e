#pragma once

// memcached text and meta protocol: request framing.
//
// The parser looks at the bytes already received, in place, and either returns one complete
// request (as offsets into those bytes), asks for more, or describes exactly what to answer and
// how many bytes to skip. It never copies the request and never allocates per request (the key
// list of a multi-get lives in a vector the parser reuses).
//
// Everything cachegate forwards to a memcached server is validated here the way memcached itself
// parses it, so that a server never frames a request differently from us (a server that reads a
// data block as a command line would corrupt the connection for every client on it).
// Reference: memcached's doc/protocol.txt (zcat /usr/share/doc/memcached/protocol.txt.gz).

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace cachegate::protocol::memcache {

enum class ParseStatus : uint8_t {
  kOk,        // a complete request; see Request
  kNeedMore,  // the request is not complete yet; call again with more bytes
  kInvalid,   // bad input; see ParseError for what to answer and what to skip
};

enum class Command : uint8_t {
  // Retrieval: any number of keys, reply is VALUE items then END.
  kGet,
  kGets,
  kGat,
  kGats,
  // Storage: one key and a data block.
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  // One key, one-line reply.
  kDelete,
  kIncr,
  kDecr,
  kTouch,
  // Meta commands: one key (mn: none).
  kMetaGet,
  kMetaSet,
  kMetaDelete,
  kMetaArithmetic,
  kMetaDebug,
  kMetaNoop,
  // Answered or fanned out by cachegate.
  kFlushAll,
  kVersion,
  kVerbosity,
  kStats,
  kQuit,
};

inline bool is_retrieval(Command c) {
  return c <= Command::kGats;
}
inline bool is_storage(Command c) {
  return c >= Command::kSet && c <= Command::kCas;
}
inline bool is_meta(Command c) {
  return c >= Command::kMetaGet && c <= Command::kMetaNoop;
}
std::string_view command_name(Command c);

// A byte range relative to the start of the request.
struct Span {
  uint32_t offset = 0;
  uint32_t length = 0;
  std::string_view in(const char* request) const { return {request + offset, length}; }
};

struct Request {
  Command command = Command::kGet;
  // Classic "noreply", or the meta "q" flag (quiet: memcached suppresses the common reply).
  bool noreply = false;
  // Meta "b" flag: the key is base64; decoded_key holds the bytes that are hashed.
  bool base64_key = false;
  uint32_t line_length = 0;   // the command line including its line ending
  uint32_t frame_length = 0;  // line + data block + CRLF (== line_length without a data block)
  // Offset of the command name: spaces before it are not forwarded (memcached treats a long get
  // line as a multi-get only when it starts with "get " after at most 100 spaces).
  uint32_t start = 0;
  // The key (the first key for retrieval commands; all keys are in RequestParser::keys()).
  Span key;
  // For classic commands with noreply: the " noreply" token including the whitespace before
  // it, so a forwarder can drop it. Empty otherwise.
  Span noreply_token;
  // gat/gats: the exptime token, needed to build per-server sub-requests.
  Span exptime;
  // flush_all: the optional delay token; verbosity: the level; stats: the arguments.
  Span argument;
  uint64_t data_length = 0;  // storage and ms: bytes in the data block (without CRLF)
};

struct ParseError {
  // What to send to the client, with CRLF; static storage.
  std::string_view reply;
  // Bytes of input the error covers (the bad line, or line + data block when it is present).
  uint32_t consumed = 0;
  // Further bytes to discard after `consumed` that may not have arrived yet: the data block of a
  // storage command whose line was rejected (memcached's "swallow").
  uint64_t swallow = 0;
  // Framing is lost (a line without end past the limit): reply, then close the connection.
  bool close = false;
  // The rejected command asked for noreply: memcached sends no error line for such a request
  // (its out_string() drops it), and a client that pipelines noreply requests would otherwise
  // read the error as the reply to its next request. The error is only counted.
  bool suppress = false;
};

struct ParserLimits {
  uint32_t request_line_max = 64 * 1024;
  uint64_t item_size_max = 1024 * 1024;
};

inline constexpr size_t kMaxKeyLength = 250;  // memcached's KEY_MAX_LENGTH
// memcached refuses meta commands with more tokens than this (ms without reading its length, so
// the data block would then be read as a command): refused here instead, and the block skipped.
inline constexpr size_t kMaxMetaTokens = 19;
// memcached closes a connection holding more than 2048 bytes of a line without its LF, unless the
// line is a get/gets (try_read_command_ascii). A longer line forwarded on a shared backend
// connection could therefore take down every request in flight on it, depending only on where a
// read happens to end: such lines are refused (and gat/gats are split into shorter requests).
inline constexpr size_t kMaxServerLine = 2048;

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Parses the request at the start of [data, data + size).
  ParseStatus parse(const char* data, size_t size, Request& out);

  // The keys of the last kOk retrieval request, in the client's order (duplicates kept).
  const std::vector<Span>& keys() const { return keys_; }
  // The last kInvalid's details.
  const ParseError& error() const { return error_; }
  // After kNeedMore: the total size the request will have, when known (its line is complete),
  // else 0. Lets a reader wait for a large value without re-parsing on every read.
  uint64_t needed() const { return needed_; }
  // The decoded key of the last kOk meta request with the b flag.
  std::string_view decoded_key() const { return {decoded_key_, decoded_length_}; }

 private:
  ParseStatus fail(std::string_view reply, uint32_t consumed, uint64_t swallow = 0,
                   bool close = false);
  ParseStatus parse_line(const char* data, size_t size, uint32_t line_length, uint32_t text_end,
                         Request& out);
  ParseStatus parse_storage(const char* data, size_t size, Request& out);
  ParseStatus parse_meta(const char* data, size_t size, Request& out);
  bool noreply_ = false;  // the current line ends in "noreply" (classic commands)

  ParserLimits limits_;
  std::vector<Span> keys_;
  std::vector<Span> tokens_;
  ParseError error_;
  uint64_t needed_ = 0;
  char decoded_key_[kMaxKeyLength];
  size_t decoded_length_ = 0;
};

// Canned replies (with CRLF).
namespace reply {
inline constexpr std::string_view kError = "ERROR\r\n";
inline constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
inline constexpr std::string_view kKeyTooLong = "CLIENT_ERROR key longer than 250 bytes\r\n";
inline constexpr std::string_view kBadKey = "CLIENT_ERROR key contains control characters\r\n";
inline constexpr std::string_view kBadDataChunk = "CLIENT_ERROR bad data chunk\r\n";
inline constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
inline constexpr std::string_view kLineTooLong = "CLIENT_ERROR line too long\r\n";
inline constexpr std::string_view kBadDelta = "CLIENT_ERROR invalid numeric delta argument\r\n";
inline constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument\r\n";
inline constexpr std::string_view kBadBase64 = "CLIENT_ERROR error decoding key\r\n";
inline constexpr std::string_view kTooManyTokens = "CLIENT_ERROR options flags too long\r\n";
inline constexpr std::string_view kDeleteUsage =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
inline constexpr std::string_view kUnsupported =
    "CLIENT_ERROR command not supported by cachegate\r\n";
inline constexpr std::string_view kBinaryProtocol =
    "CLIENT_ERROR the binary protocol is not supported; use the text or meta protocol\r\n";
}  // namespace reply

}  // namespace cachegate::protocol::memcache
