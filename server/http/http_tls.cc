// MakeTlsServerContext: loads and checks the TLS files, naming the flag and
// file in every error, so a bad deployment fails at start, not at the first
// handshake.
#include "server/http/http_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/status/status.h"

namespace fox {
namespace ssl = boost::asio::ssl;

namespace {

// "cannot open" with the system's reason, before OpenSSL's vaguer errors.
absl::Status CheckReadable(const char* flag, const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(std::string(flag) + " " + path +
                                      ": cannot open: " + std::strerror(errno));
  }
  return absl::OkStatus();
}

absl::Status LoadError(const char* flag, const std::string& path, const char* what,
                       const boost::system::error_code& ec) {
  return absl::InvalidArgumentError(std::string(flag) + " " + path + ": " + what + ": " +
                                    ec.message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<ssl::context>> MakeTlsServerContext(const TlsOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--ssl-keyfile and --ssl-certfile must be given together (" +
        std::string(options.cert_file.empty() ? "--ssl-certfile" : "--ssl-keyfile") +
        " is missing)");
  }
  if (options.cert_reqs < 0 || options.cert_reqs > 2) {
    return absl::InvalidArgumentError(
        "--ssl-cert-reqs must be 0 (none), 1 (optional) or 2 (required), got " +
        std::to_string(options.cert_reqs));
  }
  if (options.cert_reqs != 0 && options.ca_certs_file.empty()) {
    return absl::InvalidArgumentError(
        "--ssl-cert-reqs " + std::to_string(options.cert_reqs) +
        " asks for client certificates: --ssl-ca-certs must name the CAs that sign them");
  }
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  boost::system::error_code ec;
  // The key first: loading a key that does not match the loaded certificate
  // fails with OpenSSL's vague "key values mismatch", while a certificate
  // loaded after a mismatching key drops the key, which the check below
  // reports naming both files.
  if (absl::Status s = CheckReadable("--ssl-keyfile", options.key_file); !s.ok()) return s;
  if (context->use_private_key_file(options.key_file, ssl::context::pem, ec)) {
    return LoadError("--ssl-keyfile", options.key_file, "not a PEM private key", ec);
  }
  if (absl::Status s = CheckReadable("--ssl-certfile", options.cert_file); !s.ok()) return s;
  if (context->use_certificate_chain_file(options.cert_file, ec)) {
    return LoadError("--ssl-certfile", options.cert_file, "not a PEM certificate chain", ec);
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("--ssl-keyfile " + options.key_file +
                                      " does not match the certificate in --ssl-certfile " +
                                      options.cert_file);
  }
  if (!options.ca_certs_file.empty()) {
    if (absl::Status s = CheckReadable("--ssl-ca-certs", options.ca_certs_file); !s.ok()) return s;
    if (context->load_verify_file(options.ca_certs_file, ec)) {
      return LoadError("--ssl-ca-certs", options.ca_certs_file, "not a PEM CA bundle", ec);
    }
  }
  // As Python's ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED.
  ssl::verify_mode mode = ssl::verify_none;
  if (options.cert_reqs == 1) mode = ssl::verify_peer;
  if (options.cert_reqs == 2) mode = ssl::verify_peer | ssl::verify_fail_if_no_peer_cert;
  context->set_verify_mode(mode);
  return context;
}

}  // namespace fox
