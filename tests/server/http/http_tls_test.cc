// TLS (vLLM's --ssl-* options as TlsOptions): certificates made with the
// openssl command line at test time, curl as the client. A TLS port answers
// over TLS, shrugs off plain HTTP, and with cert_reqs 2 takes only clients
// whose certificate the CA signed; unusable files fail Start naming the file.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"
#include "tests/server/http/http_test_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using http_test::StartOrDie;
using http_test::TestClient;
using http_test::TestServerOptions;
using testing::RunProcess;

// ca.pem/ca.key (a CA), server.pem/server.key (self-signed, for 127.0.0.1
// and localhost), client.pem/client.key (signed by the CA), other.pem/
// other.key (a self-signed client the CA never saw).
class TlsFiles {
 public:
  TlsFiles() {
    const std::string san = "subjectAltName=IP:127.0.0.1,DNS:localhost";
    Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", san, "-keyout",
         File("server.key"), "-out", File("server.pem")});
    Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=test CA", "-keyout", File("ca.key"), "-out",
         File("ca.pem")});
    Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=client", "-keyout", File("client.key"), "-out",
         File("client.csr")});
    Run({"openssl", "x509", "-req", "-in", File("client.csr"), "-CA", File("ca.pem"), "-CAkey",
         File("ca.key"), "-CAcreateserial", "-days", "2", "-out", File("client.pem")});
    Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=stranger", "-keyout", File("other.key"), "-out",
         File("other.pem")});
  }
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  void Run(const std::vector<std::string>& argv) {
    const auto result = RunProcess(argv);
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }
  testing::TempDir dir_;
};

HttpHandler Health() {
  return [](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    if (request.path == "/events") {
      exchange->StartStream();
      std::thread([exchange] {
        for (int i = 0; i < 50; ++i) exchange->Write("data: " + std::to_string(i) + "\n\n");
        exchange->EndStream();
      }).detach();
      return;
    }
    exchange->Respond(HttpResponse{200, "application/json", {}, "{\"status\":\"ok\"}"});
  };
}

HttpServerOptions TlsServerOptions(const TlsFiles& files, int cert_reqs = 0) {
  HttpServerOptions options = TestServerOptions();
  options.tls.cert_file = files.File("server.pem");
  options.tls.key_file = files.File("server.key");
  options.tls.cert_reqs = cert_reqs;
  if (cert_reqs != 0) options.tls.ca_certs_file = files.File("ca.pem");
  return options;
}

testing::ProcessResult Curl(const TlsFiles& files, const std::string& url,
                            std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"curl", "-sS",      "--max-time",
                                   "10",   "--cacert", files.File("server.pem")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return RunProcess(argv);
}

std::string Url(const HttpServer& server, const std::string& host, const std::string& path) {
  return "https://" + host + ":" + std::to_string(server.port()) + path;
}

TEST(HttpTls, HealthAnswersOverTlsAndStreamsToo) {
  TlsFiles files;
  auto server = StartOrDie(TlsServerOptions(files), Health());
  ASSERT_NE(server, nullptr);
  auto by_ip = Curl(files, Url(*server, "127.0.0.1", "/health"));
  ASSERT_EQ(by_ip.exit_code, 0) << by_ip.err;
  EXPECT_EQ(by_ip.out, "{\"status\":\"ok\"}");
  // Two URLs: the connection is reused over TLS.
  auto by_name = Curl(files, Url(*server, "localhost", "/health"),
                      {"-v", Url(*server, "localhost", "/health")});
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(by_name.out, "{\"status\":\"ok\"}{\"status\":\"ok\"}");
  EXPECT_NE(by_name.err.find("Re-using existing connection"), std::string::npos) << by_name.err;
  auto events = Curl(files, Url(*server, "127.0.0.1", "/events"), {"-N"});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  std::string expected;
  for (int i = 0; i < 50; ++i) expected += "data: " + std::to_string(i) + "\n\n";
  EXPECT_EQ(events.out, expected);
}

TEST(HttpTls, PlainHttpToTheTlsPortIsClosedAndTheServerGoesOn) {
  TlsFiles files;
  auto server = StartOrDie(TlsServerOptions(files), Health());
  ASSERT_NE(server, nullptr);
  {
    TestClient plain(server->port(), std::chrono::seconds(5));
    plain.Send("GET /health HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_TRUE(plain.WaitEof(std::chrono::seconds(3)));
    EXPECT_EQ(plain.buffered().find("ok"), std::string::npos);
  }
  auto curl_plain = RunProcess({"curl", "-sS", "--max-time", "5",
                                "http://127.0.0.1:" + std::to_string(server->port()) + "/health"});
  EXPECT_NE(curl_plain.exit_code, 0);
  EXPECT_EQ(curl_plain.out, "");
  EXPECT_TRUE(http_test::WaitFor([&] { return server->num_connections() == 0; }));
  auto tls = Curl(files, Url(*server, "127.0.0.1", "/health"));
  ASSERT_EQ(tls.exit_code, 0) << tls.err;
  EXPECT_EQ(tls.out, "{\"status\":\"ok\"}");
}

TEST(HttpTls, RequiredClientCertificateMustBeSignedByTheCa) {
  TlsFiles files;
  auto server = StartOrDie(TlsServerOptions(files, /*cert_reqs=*/2), Health());
  ASSERT_NE(server, nullptr);
  const std::string url = Url(*server, "127.0.0.1", "/health");
  auto without = Curl(files, url);
  EXPECT_NE(without.exit_code, 0);
  EXPECT_EQ(without.out, "");
  auto stranger =
      Curl(files, url, {"--cert", files.File("other.pem"), "--key", files.File("other.key")});
  EXPECT_NE(stranger.exit_code, 0);
  EXPECT_EQ(stranger.out, "");
  auto with =
      Curl(files, url, {"--cert", files.File("client.pem"), "--key", files.File("client.key")});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  EXPECT_EQ(with.out, "{\"status\":\"ok\"}");
}

TEST(HttpTls, OptionalClientCertificateIsVerifiedOnlyWhenSent) {
  TlsFiles files;
  auto server = StartOrDie(TlsServerOptions(files, /*cert_reqs=*/1), Health());
  ASSERT_NE(server, nullptr);
  const std::string url = Url(*server, "127.0.0.1", "/health");
  auto without = Curl(files, url);
  ASSERT_EQ(without.exit_code, 0) << without.err;
  auto with =
      Curl(files, url, {"--cert", files.File("client.pem"), "--key", files.File("client.key")});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  auto stranger =
      Curl(files, url, {"--cert", files.File("other.pem"), "--key", files.File("other.key")});
  EXPECT_NE(stranger.exit_code, 0);
}

// Start fails with the flag and the file named.
void ExpectStartError(const HttpServerOptions& options, const std::string& expected) {
  auto server = HttpServer::Start(options, Health());
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(), expected);
}

TEST(HttpTls, UnusableFilesFailStartNamingTheFile) {
  TlsFiles files;
  HttpServerOptions missing_key = TlsServerOptions(files);
  missing_key.tls.key_file = files.File("nope.key");
  ExpectStartError(missing_key, "--ssl-keyfile " + files.File("nope.key") +
                                    ": cannot open: No such file or directory");

  testing::WriteFileOrDie(files.File("garbage.pem"), "not a certificate\n");
  HttpServerOptions garbage_cert = TlsServerOptions(files);
  garbage_cert.tls.cert_file = files.File("garbage.pem");
  auto garbage = HttpServer::Start(garbage_cert, Health());
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(
      garbage.status().message().rfind(
          "--ssl-certfile " + files.File("garbage.pem") + ": not a PEM certificate chain: ", 0),
      0u)
      << garbage.status();

  HttpServerOptions mismatched = TlsServerOptions(files);
  mismatched.tls.key_file = files.File("client.key");
  ExpectStartError(mismatched, "--ssl-keyfile " + files.File("client.key") +
                                   " does not match the certificate in --ssl-certfile " +
                                   files.File("server.pem"));

  HttpServerOptions key_only = TlsServerOptions(files);
  key_only.tls.cert_file.clear();
  ExpectStartError(key_only,
                   "--ssl-keyfile and --ssl-certfile must be given together (--ssl-certfile is "
                   "missing)");

  HttpServerOptions no_ca = TlsServerOptions(files, 2);
  no_ca.tls.ca_certs_file.clear();
  ExpectStartError(no_ca,
                   "--ssl-cert-reqs 2 asks for client certificates: --ssl-ca-certs must name the "
                   "CAs that sign them");

  HttpServerOptions bad_reqs = TlsServerOptions(files);
  bad_reqs.tls.cert_reqs = 3;
  ExpectStartError(bad_reqs,
                   "--ssl-cert-reqs must be 0 (none), 1 (optional) or 2 (required), got 3");
}

}  // namespace
}  // namespace fox
