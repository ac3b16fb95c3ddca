// TLS settings shared by both front ends, named as vLLM's flags name them
// (--ssl-keyfile, --ssl-certfile, --ssl-ca-certs, --ssl-cert-reqs). A plain
// record; each front end turns it into its own credentials.
#pragma once

#include <string>

namespace fox {

struct TlsOptions {
  // Both empty: plain TCP. Both set: TLS with this PEM key and certificate chain.
  std::string key_file;
  std::string cert_file;
  // PEM bundle of the CAs whose client certificates are accepted.
  std::string ca_certs_file;
  // Python's ssl.VerifyMode, as vLLM takes it: 0 CERT_NONE (no client
  // certificate asked for), 1 CERT_OPTIONAL (verified when sent), 2
  // CERT_REQUIRED (the handshake fails without a valid one).
  int cert_reqs = 0;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

}  // namespace fox
