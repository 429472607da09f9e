#include "proxy/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>

namespace cachegate::proxy {

namespace asio = boost::asio;
using backends::openssl_errors;

namespace {

// Distinguishes this process's sessions for resumption with client certificates (OpenSSL
// refuses to resume a verified session without one).
constexpr unsigned char kSessionContext[] = "cachegate";

}  // namespace

// --- ListenerTls -------------------------------------------------------------------------------

ListenerTls::~ListenerTls() {
  if (context_ != nullptr) SSL_CTX_free(context_);
}

std::vector<ListenerTls::FileStamp> ListenerTls::stamp_files() const {
  std::vector<FileStamp> out;
  for (const std::string* path : {&config_.cert, &config_.key, &config_.client_ca}) {
    FileStamp stamp;
    struct stat st;
    if (!path->empty() && ::stat(path->c_str(), &st) == 0) {
      stamp.inode = st.st_ino;
      stamp.size = st.st_size;
      stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    out.push_back(stamp);
  }
  return out;
}

bool ListenerTls::files_changed() const {
  const auto now = stamp_files();
  std::lock_guard<std::mutex> lock(mutex_);
  return now != stamps_;
}

bool ListenerTls::load(std::string& error) {
  // Stamped before reading, so a change made while loading is seen next time.
  auto stamps = stamp_files();
  ERR_clear_error();
  ssl_ctx_st* built = nullptr;
  try {
    asio::ssl::context context(asio::ssl::context::tls_server);
    context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    context.use_certificate_chain_file(config_.cert);
    context.use_private_key_file(config_.key, asio::ssl::context::pem);
    if (config_.client_auth != config::TlsClientAuth::kNone) {
      context.load_verify_file(config_.client_ca);
      auto mode = asio::ssl::verify_peer;
      if (config_.client_auth == config::TlsClientAuth::kRequired)
        mode |= asio::ssl::verify_fail_if_no_peer_cert;
      context.set_verify_mode(mode);
    }
    SSL_CTX* ctx = context.native_handle();
    if (SSL_CTX_check_private_key(ctx) != 1)
      throw std::runtime_error("the private key does not match the certificate");
    if (config_.client_auth != config::TlsClientAuth::kNone) {
      // Tell clients which CAs are accepted, so they pick the right certificate.
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config_.client_ca.c_str()))
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    const int min_version =
        config_.min_version == config::TlsVersion::k1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1)
      throw std::runtime_error("cannot set the minimum TLS version");
    if (!config_.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, config_.ciphers.c_str()) != 1)
      throw std::runtime_error("no usable cipher in 'ciphers'");
    if (!config_.ciphersuites.empty() &&
        SSL_CTX_set_ciphersuites(ctx, config_.ciphersuites.c_str()) != 1)
      throw std::runtime_error("no usable suite in 'ciphersuites'");
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
    // Read records with as few system calls as possible: a header and body in one recv.
    SSL_CTX_set_read_ahead(ctx, 1);
    // A client that closes its socket without close_notify has simply left (as on plain TCP).
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Replies are written from a buffer that may move and grow between retries.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    // Keep the OpenSSL context beyond the Asio wrapper, which frees its own reference.
    SSL_CTX_up_ref(ctx);
    built = ctx;
  } catch (const std::exception& e) {
    error = e.what();
    const std::string details = openssl_errors();
    if (!details.empty()) error += " (" + details + ")";
    std::lock_guard<std::mutex> lock(mutex_);
    stamps_ = std::move(stamps);
    reload_failures_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (context_ != nullptr) SSL_CTX_free(context_);
  context_ = built;
  stamps_ = std::move(stamps);
  reloads_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

ssl_st* ListenerTls::new_connection(int fd) {
  SSL* ssl;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (context_ == nullptr) return nullptr;
    ssl = SSL_new(context_);
  }
  if (ssl == nullptr) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

}  // namespace cachegate::proxy
