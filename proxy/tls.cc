#include "proxy/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>

namespace cachegate::proxy {

namespace asio = boost::asio;

namespace {

// Distinguishes this process's sessions for resumption with client certificates (OpenSSL
// refuses to resume a verified session without one).
constexpr unsigned char kSessionContext[] = "cachegate";

std::string openssl_errors() {
  std::string out;
  char buffer[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buffer, sizeof buffer);
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out;
}

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

// --- TlsStream ---------------------------------------------------------------------------------

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

TlsStream::Io TlsStream::result(int ret) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_NONE:
      return Io::kOk;
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kEof;
    case SSL_ERROR_SYSCALL:
      // A socket error, or (ret 0, empty queue) the peer closed without close_notify.
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::kWantRead;
      return ERR_peek_error() == 0 && errno == 0 ? Io::kEof : Io::kError;
    default:
      return Io::kError;
  }
}

TlsStream::Io TlsStream::handshake() {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_);
  return ret == 1 ? Io::kOk : result(ret);
}

TlsStream::Io TlsStream::read(char* data, size_t size, size_t& done) {
  ERR_clear_error();
  errno = 0;
  done = 0;
  const int ret = SSL_read_ex(ssl_, data, size, &done) == 1 ? 1 : 0;
  return ret == 1 ? Io::kOk : result(ret);
}

TlsStream::Io TlsStream::write(const char* data, size_t size, size_t& done) {
  ERR_clear_error();
  errno = 0;
  done = 0;
  const int ret = SSL_write_ex(ssl_, data, size, &done) == 1 ? 1 : 0;
  return ret == 1 ? Io::kOk : result(ret);
}

void TlsStream::shutdown() {
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsStream::last_error() {
  std::string text = openssl_errors();
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    if (!text.empty()) text += "; ";
    text += "certificate: ";
    text += X509_verify_cert_error_string(verify);
  }
  return text.empty() ? "connection closed during the handshake" : text;
}

std::vector<std::string> TlsStream::peer_identities() const {
  std::vector<std::string> out;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return out;
  X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length >= 0) out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
    OPENSSL_free(utf8);
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      const ASN1_IA5STRING* text = nullptr;
      if (name->type == GEN_DNS) text = name->d.dNSName;
      if (name->type == GEN_EMAIL) text = name->d.rfc822Name;
      if (name->type == GEN_URI) text = name->d.uniformResourceIdentifier;
      if (text != nullptr) {
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                         static_cast<size_t>(ASN1_STRING_length(text)));
      }
    }
    GENERAL_NAMES_free(names);
  }
  return out;
}

}  // namespace cachegate::proxy
