// The server's TLS context from TlsOptions (vLLM's --ssl-* flags): the
// certificate chain and key, and for client certificates the CA bundle and
// the verify mode. TLS 1.2 and later only.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "absl/status/statusor.h"
#include "server/tls_options.h"

namespace fox {

// InvalidArgument naming the flag and the file when a file cannot be read or
// parsed, when the key does not match the certificate, or when the options
// do not fit together (a key without a certificate, cert_reqs outside 0..2,
// client certificates asked for without --ssl-ca-certs).
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeTlsServerContext(
    const TlsOptions& options);

}  // namespace fox
