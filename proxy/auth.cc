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

Authenticator::Authenticator(std::shared_ptr<const config::Config> config)
    : users_(make_users(std::move(config))) {
  if (RAND_bytes(hmac_key_, sizeof hmac_key_) != 1)
    throw std::runtime_error("cannot draw random bytes for the login cache key");
  thread_ = std::thread([this] { run(); });
}

std::shared_ptr<const Authenticator::Users> Authenticator::make_users(
    std::shared_ptr<const config::Config> config) {
  auto users = std::make_shared<Users>();
  for (const auto& user : config->users) {
    config::ParsedHash parsed;
    if (!user.password_hash.empty()) config::parse_password_hash(user.password_hash, parsed);
    users->hashes.push_back(std::move(parsed));
  }
  // The decoy an unknown name is checked against: as costly as the first user's hash, so a
  // refusal takes as long whether or not the name exists.
  config::ParsedHash decoy;
  for (const auto& h : users->hashes) {
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
  users->hashes.push_back(std::move(decoy));
  users->config = std::move(config);
  return users;
}

void Authenticator::reload(std::shared_ptr<const config::Config> config) {
  auto users = make_users(std::move(config));
  std::lock_guard<std::mutex> lock(mutex_);
  users_ = std::move(users);
  verified_.clear();
}

std::shared_ptr<const Authenticator::Users> Authenticator::users() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return users_;
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

std::string Authenticator::user_for_identities(const std::vector<std::string>& identities) const {
  const auto snapshot = users();
  for (const auto& user : snapshot->config->users)
    for (const auto& wanted : user.tls_identities)
      for (const auto& presented : identities)
        if (presented == wanted) return user.name;
  return {};
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
  auto snapshot = users();
  const config::Config& config = *snapshot->config;
  const size_t decoy = snapshot->hashes.size() - 1;
  const config::UserConfig* user = config.find_user(name);
  size_t index = decoy;
  if (user != nullptr && !user->password_hash.empty())
    index = static_cast<size_t>(user - config.users.data());
  if (index != decoy) {
    const std::string digest = remembered_digest(*user, password);
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = verified_.find(user);
    if (snapshot == users_ && it != verified_.end() && it->second.size() == digest.size() &&
        CRYPTO_memcmp(it->second.data(), digest.data(), digest.size()) == 0) {
      lock.unlock();
      config::wipe_secret(password);
      boost::asio::post(io, [done = std::move(done), user, snapshot] { done(user); });
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
  jobs_.push_back(Job{snapshot, index == decoy ? nullptr : user, index, std::move(password), &io,
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
    const auto& expected = job.users->hashes[job.hash_index];
    const bool match = !expected.hash.empty() && config::verify_password(expected, job.password);
    const config::UserConfig* user = match ? job.user : nullptr;
    if (user != nullptr) {
      std::string digest = remembered_digest(*user, job.password);
      std::lock_guard<std::mutex> lock(mutex_);
      // Remembered only for the configuration still running.
      if (job.users == users_) verified_[user] = std::move(digest);
    }
    config::wipe_secret(job.password);
    boost::asio::post(*job.io,
                      [done = std::move(job.done), user, users = job.users] { done(user); });
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
  return it->second.failures >= users_->config->auth_failures_slow ? Standing::kSlow
                                                                   : Standing::kOk;
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
  const config::Config& config = *users_->config;
  if (++record.failures >= config.auth_failures_block && now >= record.blocked_until) {
    record.blocked_until = now + config.auth_block_time;
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
