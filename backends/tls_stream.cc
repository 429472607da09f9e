#include "backends/tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>

namespace cachegate::backends {

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

namespace {

ssize_t as_socket_result(TlsStream::Io io, size_t done, bool eof_is_error) {
  switch (io) {
    case TlsStream::Io::kOk:
      return static_cast<ssize_t>(done);
    case TlsStream::Io::kWantRead:
    case TlsStream::Io::kWantWrite:
      errno = EAGAIN;
      return -1;
    case TlsStream::Io::kEof:
      if (!eof_is_error) return 0;
      break;
    case TlsStream::Io::kError:
      break;
  }
  errno = ECONNRESET;
  return -1;
}

}  // namespace

ssize_t TlsStream::receive(char* data, size_t size) {
  size_t done = 0;
  const Io io = read(data, size, done);
  return as_socket_result(io, done, false);
}

ssize_t TlsStream::transmit(const char* data, size_t size) {
  size_t done = 0;
  const Io io = write(data, size, done);
  return as_socket_result(io, done, true);
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

ssl_ctx_st* make_client_context(const config::PoolTlsConfig& config, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  auto fail = [&](const std::string& what) -> ssl_ctx_st* {
    error = what;
    const std::string details = openssl_errors();
    if (!details.empty()) error += " (" + details + ")";
    if (ctx != nullptr) SSL_CTX_free(ctx);
    return nullptr;
  };
  if (ctx == nullptr) return fail("cannot create a TLS context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_read_ahead(ctx, 1);  // a record's header and body in one recv
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (config.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int loaded = config.ca.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, config.ca.c_str(), nullptr);
    if (loaded != 1) return fail("cannot load the CA certificates");
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!config.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, config.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, config.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
      return fail("cannot load the client certificate and key");
  }
  return ctx;
}

void free_client_context(ssl_ctx_st* context) {
  if (context != nullptr) SSL_CTX_free(context);
}

ssl_st* new_client_connection(ssl_ctx_st* context, int fd, const config::PoolTlsConfig& config,
                              const std::string& host) {
  SSL* ssl = SSL_new(context);
  if (ssl == nullptr) return nullptr;
  const std::string& name = config.server_name.empty() ? host : config.server_name;
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
  const bool is_ip = ip != nullptr;
  ASN1_OCTET_STRING_free(ip);
  bool ok = SSL_set_fd(ssl, fd) == 1;
  // SNI carries host names only.
  if (ok && !is_ip) ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
  if (ok && config.verify)
    ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
               : SSL_set1_host(ssl, name.c_str()) == 1;
  if (!ok) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

}  // namespace cachegate::backends
