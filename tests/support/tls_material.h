#pragma once

// Certificates for TLS tests, made fresh for every run with the `openssl` command-line tool in a
// temporary directory that is removed with the object: nothing secret is checked in, nothing
// expires between runs. Every key is EC P-256, every certificate valid for one day.
//
//   ca            the CA that signs everything below except `rogue`
//   server        CN=localhost, SAN DNS:localhost, IP:127.0.0.1
//   server2       CN=localhost, SAN DNS:localhost, IP:127.0.0.1, DNS:second.localhost — the
//                 extra name tells it apart from `server` (a client that checks the name
//                 "second.localhost" accepts only this one), for reload tests
//   alice, bob    client certificates, CN=alice and CN=bob
//   rogue_ca      a second CA nobody trusts; `rogue` is a client certificate (CN=alice) it signed
//
// Header-only so it needs no change to the test support library's build.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace cachegate::testing {

class TlsMaterial {
 public:
  struct Pair {
    std::string cert, key;
  };

  TlsMaterial() {
    // A configuration of our own, so the system's openssl.cnf (its default extensions, its
    // policies) plays no part.
    config_ = dir_.write_file("openssl.cnf",
                              "[req]\n"
                              "distinguished_name = dn\n"
                              "prompt = no\n"
                              "[dn]\n"
                              "CN = unused\n");
    const std::string ca_ext = dir_.write_file("ca.ext",
                                               "basicConstraints = critical, CA:TRUE\n"
                                               "keyUsage = critical, keyCertSign, cRLSign\n"
                                               "subjectKeyIdentifier = hash\n");
    ca = make_self_signed("ca", "/CN=cachegate test CA", ca_ext, 1);
    rogue_ca = make_self_signed("rogue-ca", "/CN=untrusted test CA", ca_ext, 2);

    const std::string server_ext =
        dir_.write_file("server.ext",
                        "basicConstraints = critical, CA:FALSE\n"
                        "keyUsage = critical, digitalSignature\n"
                        "extendedKeyUsage = serverAuth\n"
                        "subjectKeyIdentifier = hash\n"
                        "authorityKeyIdentifier = keyid\n"
                        "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
    const std::string server2_ext =
        dir_.write_file("server2.ext",
                        "basicConstraints = critical, CA:FALSE\n"
                        "keyUsage = critical, digitalSignature\n"
                        "extendedKeyUsage = serverAuth\n"
                        "subjectKeyIdentifier = hash\n"
                        "authorityKeyIdentifier = keyid\n"
                        "subjectAltName = DNS:localhost, IP:127.0.0.1, DNS:second.localhost\n");
    const std::string client_ext = dir_.write_file("client.ext",
                                                   "basicConstraints = critical, CA:FALSE\n"
                                                   "keyUsage = critical, digitalSignature\n"
                                                   "extendedKeyUsage = clientAuth\n"
                                                   "subjectKeyIdentifier = hash\n"
                                                   "authorityKeyIdentifier = keyid\n");

    server = make_signed("server", "/CN=localhost", server_ext, ca, 101);
    server2 = make_signed("server2", "/CN=localhost", server2_ext, ca, 102);
    alice = make_signed("alice", "/CN=alice", client_ext, ca, 201);
    bob = make_signed("bob", "/CN=bob", client_ext, ca, 202);
    rogue = make_signed("rogue", "/CN=alice", client_ext, rogue_ca, 301);
  }
  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;

  const std::string& dir() const { return dir_.path(); }

  Pair ca, server, server2, alice, bob, rogue_ca, rogue;

 private:
  static void run(const std::vector<std::string>& argv) {
    std::string output;
    if (run_command(argv, &output) != 0) {
      std::string line;
      for (const auto& a : argv)
        line += a + " ";
      throw std::runtime_error("certificate generation failed: " + line + "\n" + output);
    }
  }

  std::string new_key(const std::string& name) {
    const std::string key = dir_.path() + "/" + name + ".key";
    run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-pkeyopt", "ec_param_enc:named_curve", "-out", key});
    return key;
  }

  std::string new_request(const std::string& name, const std::string& key,
                          const std::string& subject) {
    const std::string csr = dir_.path() + "/" + name + ".csr";
    run({"openssl", "req", "-config", config_, "-new", "-key", key, "-subj", subject, "-out", csr});
    return csr;
  }

  Pair make_self_signed(const std::string& name, const std::string& subject,
                        const std::string& extensions, uint64_t serial) {
    Pair out;
    out.key = new_key(name);
    const std::string csr = new_request(name, out.key, subject);
    out.cert = dir_.path() + "/" + name + ".pem";
    run({"openssl", "x509", "-req", "-in", csr, "-signkey", out.key, "-days", "1", "-sha256",
         "-set_serial", std::to_string(serial), "-extfile", extensions, "-out", out.cert});
    return out;
  }

  Pair make_signed(const std::string& name, const std::string& subject,
                   const std::string& extensions, const Pair& issuer, uint64_t serial) {
    Pair out;
    out.key = new_key(name);
    const std::string csr = new_request(name, out.key, subject);
    out.cert = dir_.path() + "/" + name + ".pem";
    run({"openssl", "x509", "-req", "-in", csr, "-CA", issuer.cert, "-CAkey", issuer.key, "-days",
         "1", "-sha256", "-set_serial", std::to_string(serial), "-extfile", extensions, "-out",
         out.cert});
    return out;
  }

  TempDir dir_;
  std::string config_;
};

}  // namespace cachegate::testing
