#include "proxy/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <boost/asio/post.hpp>
#include <stdexcept>

namespace cachegate::proxy {

namespace {

// Logins waiting for the verifier beyond this are refused at once rather than queued for
// minutes.
constexpr size_t kMaxQueuedLogins = 1024;
// Failures are counted over this window.
constexpr std::chrono::seconds kFailureWindow{60};

}  // namespace

Authenticator::Authenticator(const config::Config& config) : config_(config) {
  if (RAND_bytes(hmac_key_, sizeof hmac_key_) != 1)
    throw std::runtime_error("cannot draw random bytes for the login cache key");
  for (const auto& user : config.users) {
    config::ParsedHash parsed;
    if (!user.password_hash.empty()) config::parse_password_hash(user.password_hash, parsed);
    hashes_.push_back(std::move(parsed));
  }
  // The decoy an unknown name is checked against: as costly as the first user's hash, so a
  // refusal takes as long whether or not the name exists.
  config::ParsedHash decoy;
  for (const auto& h : hashes_) {
    if (h.hash.empty()) continue;
    config::PasswordCost cost;
    cost.pbkdf2_iterations =
        h.scheme == config::PasswordScheme::kPbkdf2Sha256 ? h.iterations : cost.pbkdf2_iterations;
    cost.scrypt_ln = h.ln != 0 ? h.ln : cost.scrypt_ln;
    cost.scrypt_r = h.r != 0 ? h.r : cost.scrypt_r;
    cost.scrypt_p = h.p != 0 ? h.p : cost.scrypt_p;
    config::parse_password_hash(config::hash_password("cachegate decoy", h.scheme, cost), decoy);
    break;
  }
  hashes_.push_back(std::move(decoy));
  thread_ = std::thread([this] { run(); });
}

Authenticator::~Authenticator() {
  stop();
}

void Authenticator::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(jobs_);
  }
  for (auto& job : dropped)
    config::wipe_secret(job.password);
}

const config::UserConfig* Authenticator::user_for_identities(
    const std::vector<std::string>& identities) const {
  for (const auto& user : config_.users)
    for (const auto& wanted : user.tls_identities)
      for (const auto& presented : identities)
        if (presented == wanted) return &user;
  return nullptr;
}

std::string Authenticator::remembered_digest(const config::UserConfig& user,
                                             std::string_view password) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  std::string message = user.name;
  message.push_back('\0');
  message.append(password);
  HMAC(EVP_sha256(), hmac_key_, sizeof hmac_key_,
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  OPENSSL_cleanse(message.data(), message.size());
  return std::string(reinterpret_cast<const char*>(digest), length);
}

void Authenticator::check_password(std::string_view name, std::string password,
                                   boost::asio::io_context& io, Done done) {
  const config::UserConfig* user = config_.find_user(name);
  size_t index = hashes_.size() - 1;  // the decoy
  if (user != nullptr && !user->password_hash.empty())
    index = static_cast<size_t>(user - config_.users.data());
  if (index != hashes_.size() - 1) {
    const std::string digest = remembered_digest(*user, password);
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = verified_.find(user);
    if (it != verified_.end() && it->second.size() == digest.size() &&
        CRYPTO_memcmp(it->second.data(), digest.data(), digest.size()) == 0) {
      lock.unlock();
      config::wipe_secret(password);
      boost::asio::post(io, [done = std::move(done), user] { done(user); });
      return;
    }
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (jobs_.size() >= kMaxQueuedLogins) {
    lock.unlock();
    config::wipe_secret(password);
    boost::asio::post(io, [done = std::move(done)] { done(nullptr); });
    return;
  }
  jobs_.push_back(Job{index == hashes_.size() - 1 ? nullptr : user, index, std::move(password), &io,
                      std::move(done)});
  lock.unlock();
  wake_.notify_one();
}

void Authenticator::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    const auto& expected = hashes_[job.hash_index];
    const bool match = !expected.hash.empty() && config::verify_password(expected, job.password);
    const config::UserConfig* user = match ? job.user : nullptr;
    if (user != nullptr) {
      std::string digest = remembered_digest(*user, job.password);
      std::lock_guard<std::mutex> lock(mutex_);
      verified_[user] = std::move(digest);
    }
    config::wipe_secret(job.password);
    boost::asio::post(*job.io, [done = std::move(job.done), user] { done(user); });
  }
}

Authenticator::Standing Authenticator::standing(const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = addresses_.find(address);
  if (it == addresses_.end()) return Standing::kOk;
  const auto now = Clock::now();
  if (now < it->second.blocked_until) return Standing::kBlocked;
  if (now - it->second.window_start > kFailureWindow) {
    addresses_.erase(it);
    return Standing::kOk;
  }
  return it->second.failures >= config_.auth_failures_slow ? Standing::kSlow : Standing::kOk;
}

void Authenticator::record_failure(const std::string& address) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  // Bounded: past this many tracked addresses the stalest records go first.
  if (addresses_.size() >= 100000) {
    for (auto it = addresses_.begin(); it != addresses_.end();) {
      it = now - it->second.window_start > kFailureWindow && now >= it->second.blocked_until
               ? addresses_.erase(it)
               : std::next(it);
    }
    if (addresses_.size() >= 100000) addresses_.erase(addresses_.begin());
  }
  AddressRecord& record = addresses_[address];
  if (now - record.window_start > kFailureWindow) {
    record.window_start = now;
    record.failures = 0;
  }
  if (++record.failures >= config_.auth_failures_block && now >= record.blocked_until) {
    record.blocked_until = now + config_.auth_block_time;
    record.failures = 0;
    record.window_start = now;
    blocked_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Authenticator::record_success(const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = addresses_.find(address);
  if (it != addresses_.end() && Clock::now() >= it->second.blocked_until) addresses_.erase(it);
}

}  // namespace cachegate::proxy
