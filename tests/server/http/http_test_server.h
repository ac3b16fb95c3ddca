// Starting a real HttpServer for the transport tests: loopback, a free port,
// two I/O threads.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "server/http/http_server.h"

namespace fox::http_test {

inline HttpServerOptions TestServerOptions() {
  HttpServerOptions options;
  options.port = 0;
  options.num_threads = 2;
  return options;
}

// The started server; a failed start fails the test (and returns null).
inline std::unique_ptr<HttpServer> StartOrDie(const HttpServerOptions& options,
                                              HttpHandler handler) {
  auto server = HttpServer::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

}  // namespace fox::http_test
