#pragma once

// A raw RESP client for integration tests: requests are encoded here, replies are returned as
// the exact bytes the peer sent (one complete reply, RESP2 or RESP3, nested elements included),
// so tests can compare cachegate's bytes with redis-server's own. Header-only so it needs no
// change to the test support library's build.

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/text_client.h"

namespace cachegate::testing {

// The multibulk encoding of one request.
inline std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args)
    out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Reply builders, for writing expected bytes readably.
inline std::string resp_bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
inline std::string resp_int(long long n) {
  return ":" + std::to_string(n) + "\r\n";
}
inline std::string resp_simple(std::string_view s) {
  return "+" + std::string(s) + "\r\n";
}
inline std::string resp_array_of_bulks(const std::vector<std::string>& items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& i : items)
    out += resp_bulk(i);
  return out;
}

// Reads one complete reply from `c` and appends its bytes to `out`; false on timeout, close or
// malformed input. Attributes ('|') are kept with the value they annotate, as a client sees them.
inline bool read_resp_into(TextClient& c, std::string& out, int depth = 0) {
  if (depth > 64) return false;
  auto line = c.read_line();
  if (!line || line->empty()) return false;
  out += *line;
  out += "\r\n";
  const char type = (*line)[0];
  const long long n = std::atoll(line->c_str() + 1);
  switch (type) {
    case '+':
    case '-':
    case ':':
    case '_':
    case ',':
    case '#':
    case '(':
      return true;
    case '$':
    case '!':
    case '=': {
      if (n < 0) return true;
      auto body = c.read_exact(static_cast<size_t>(n) + 2);
      if (!body) return false;
      out += *body;
      return true;
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      const long long elements = type == '%' ? 2 * n : n;
      for (long long i = 0; i < elements; ++i)
        if (!read_resp_into(c, out, depth + 1)) return false;
      return true;
    }
    case '|': {
      for (long long i = 0; i < 2 * n; ++i)
        if (!read_resp_into(c, out, depth + 1)) return false;
      return read_resp_into(c, out, depth + 1);
    }
    default:
      return false;
  }
}

inline std::optional<std::string> read_resp(TextClient& c) {
  std::string out;
  if (!read_resp_into(c, out)) return std::nullopt;
  return out;
}

// What RespClient returns when no complete reply came: not valid RESP, so never a real reply.
inline constexpr std::string_view kNoReply = "<no reply>";

// One connection speaking RESP, to cachegate or straight to a redis-server.
class RespClient {
 public:
  RespClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000))
      : client_(std::make_unique<TextClient>("127.0.0.1", port, timeout)) {}
  // Over TLS; throws std::runtime_error when the handshake fails (see TextClient).
  RespClient(uint16_t port, const TlsClientOptions& tls,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(5000))
      : client_(std::make_unique<TextClient>("127.0.0.1", port, tls, timeout)) {}

  // Sends one request and returns its reply's bytes, or kNoReply on timeout or close (a string,
  // not an optional, so that a failed comparison prints both sides).
  std::string call(const std::vector<std::string>& args) {
    send(args);
    return read();
  }
  void send(const std::vector<std::string>& args) { client_->send(resp_command(args)); }
  void send_raw(std::string_view bytes) { client_->send(bytes); }
  std::string read() { return read_resp(*client_).value_or(std::string(kNoReply)); }

  // Sends `bytes` from a second thread while this one reads `replies` replies: a pipeline
  // larger than the socket buffers cannot deadlock a client that writes everything before
  // reading, whatever the peer's backpressure. Replies are returned in order; a missing one
  // ends the list early.
  std::vector<std::string> pipeline(const std::string& bytes, size_t replies) {
    std::thread writer([&] {
      try {
        client_->send(bytes);
      } catch (const std::exception&) {
        // The reader sees the missing replies; that is the failure the test reports.
      }
    });
    std::vector<std::string> out;
    out.reserve(replies);
    for (size_t i = 0; i < replies; ++i) {
      auto r = read_resp(*client_);
      if (!r) break;
      out.push_back(std::move(*r));
    }
    // A writer still blocked on a peer that stopped reading is released by closing.
    if (out.size() < replies) client_->shutdown_write();
    writer.join();
    return out;
  }

  TextClient& text() { return *client_; }
  bool peer_closed(std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
    return client_->peer_closed(wait);
  }

 private:
  std::unique_ptr<TextClient> client_;
};

// Replies with CR and LF made visible, for failure messages.
inline std::string printable(std::string_view bytes, size_t limit = 400) {
  std::string out;
  for (char c : bytes.substr(0, limit)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  if (bytes.size() > limit) out += "…(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

}  // namespace cachegate::testing
