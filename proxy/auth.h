#pragma once

// Who a client is: password logins (Redis AUTH / HELLO … AUTH, memcached's ASCII `set` login)
// and client-certificate identities, mapped to the configured users; and the slowing down and
// blocking of addresses that keep failing.
//
// Password hashes are deliberately slow (hundreds of milliseconds), so they are never verified on
// a worker's event loop: a verifier thread does it and posts the outcome back to the worker.
// Clients that reconnect often (connection pools) would queue behind it, so once a password has
// been verified for a user, an HMAC of it under a key that lives only in this process is
// remembered, and later logins with the same password are checked against that on the worker
// itself in a microsecond. Nothing here is on the request path: it runs only for logins.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "config/password.h"

namespace cachegate::proxy {

class Authenticator {
 public:
  using Clock = std::chrono::steady_clock;
  // The user, or nullptr for a refused login. The pointer is into the configuration the check
  // ran against and is valid only during the call: look the user up by name in your own.
  using Done = std::function<void(const config::UserConfig*)>;

  explicit Authenticator(std::shared_ptr<const config::Config> config);
  // A reloaded configuration's users (thread-safe). Remembered logins are forgotten: a changed
  // password must not keep working.
  void reload(std::shared_ptr<const config::Config> config);
  ~Authenticator();
  // Stops the verifier thread and drops logins still queued: call once the workers have stopped
  // and before their io_contexts go, since outcomes are posted to them.
  void stop();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // The name of the user one of a verified client certificate's identities names, or empty.
  std::string user_for_identities(const std::vector<std::string>& identities) const;

  // Checks `name`/`password`; `done` runs on `io` (never before this returns). An unknown user
  // costs as much as a wrong password, so replies do not reveal which names exist.
  void check_password(std::string_view name, std::string password, boost::asio::io_context& io,
                      Done done);

  // Failed logins per client address (IPv4/IPv6 text). Thread-safe.
  enum class Standing : uint8_t { kOk, kSlow, kBlocked };
  Standing standing(const std::string& address);
  void record_failure(const std::string& address);
  void record_success(const std::string& address);

  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  uint64_t blocked() const { return blocked_.load(std::memory_order_relaxed); }

 private:
  // The users of one configuration, with their parsed hashes (same index; the last one is the
  // decoy an unknown name is checked against).
  struct Users {
    std::shared_ptr<const config::Config> config;
    std::vector<config::ParsedHash> hashes;
  };
  static std::shared_ptr<const Users> make_users(std::shared_ptr<const config::Config> config);
  std::shared_ptr<const Users> users() const;

  struct Job {
    std::shared_ptr<const Users> users;
    const config::UserConfig* user;  // nullptr: unknown name, verified against a decoy
    size_t hash_index;
    std::string password;
    boost::asio::io_context* io;
    Done done;
  };
  struct AddressRecord {
    uint32_t failures = 0;
    Clock::time_point window_start{};
    Clock::time_point blocked_until{};
  };

  void run();
  std::string remembered_digest(const config::UserConfig& user, std::string_view password) const;

  unsigned char hmac_key_[32];

  mutable std::mutex mutex_;  // guards everything below
  std::shared_ptr<const Users> users_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::unordered_map<const config::UserConfig*, std::string> verified_;
  std::unordered_map<std::string, AddressRecord> addresses_;
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> blocked_{0};
  std::thread thread_;
};

}  // namespace cachegate::proxy
