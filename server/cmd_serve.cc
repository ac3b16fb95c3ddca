// `foxserve serve`: the OpenAI-compatible HTTP server and the gRPC server over
// one engine. Prints one JSON line on stdout once both listen:
//   {"event":"serving","model":"fox-tiny","http_port":8000,"grpc_port":50051}
// SIGINT or SIGTERM: stop accepting (/ready turns 503, gRPC health
// NOT_SERVING), let running requests finish for up to --shutdown-timeout,
// abort the rest (each gets its terminal event), close, exit 0.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/engine.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/cli_flags.h"
#include "server/commands.h"
#include "server/engine_flags.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"
#include "server/loaded_model.h"
#include "server/metrics/server_metrics.h"
#include "server/model_paths.h"
#include "server/openai/openai_error.h"
#include "server/openai/openai_routes.h"
#include "server/request_log.h"
#include "server/serving_context.h"
#ifdef FOX_HAVE_CUDA
#include "kernels/cuda/device_info.h"
#endif

namespace fox {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "foxserve serve: %s\n", std::string(status.message()).c_str());
  return 1;
}

std::string FolderName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status CheckPort(const char* flag, int64_t port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be in [0, 65535] (0: any free port), got ", port));
  }
  return absl::OkStatus();
}

// --device: the model runs on the CPU until the CUDA model backend is wired,
// so auto logs why it chose the CPU and cuda is refused with the reason.
absl::Status ChooseDevice(const std::string& device) {
#ifdef FOX_HAVE_CUDA
  const int num_gpus = CudaDeviceCount();
  const char* why_not_cuda = num_gpus == 0 ? "no CUDA device answers (no GPU or no driver)"
                                           : "the CUDA model backend is not wired yet";
#else
  const int num_gpus = 0;
  const char* why_not_cuda = "this build has no CUDA support (built without nvcc)";
#endif
  if (device == "cuda") {
    return absl::UnavailableError(
        absl::StrCat("--device cuda: ", why_not_cuda, "; use --device cpu or auto"));
  }
  Log(LogLevel::kInfo, "device chosen",
      {{"device", "cpu"},
       {"requested", device},
       {"cuda_devices", num_gpus},
       {"reason", device == "cpu" ? "requested" : why_not_cuda}});
  return absl::OkStatus();
}

}  // namespace

int RunServeCommand(int argc, char** argv) {
  // Signals are taken by sigwait on this thread: block them before any other
  // thread (OpenMP, gRPC, Asio) exists, so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string model_dir = DefaultModelDir(), served_name, host = "127.0.0.1", device = "auto",
              dtype, api_key, cors_origins, chat_template_path, log_level = "info";
  int64_t http_port = 8000, grpc_port = 50051, http_threads = 2, keep_alive_ms = 5000,
          max_request_bytes = 8 << 20;
  double shutdown_timeout = 30.0;
  bool help = false, metrics_require_api_key = false;
  EngineFlags engine_flags;
  FlagSet flags("serve");
  flags.Add("model", &model_dir, "checkpoint directory (default: the embedded tiny model)");
  flags.Add("served-model-name", &served_name,
            "model id in the API (default: the model folder's name)");
  flags.Add("host", &host, "address to listen on");
  flags.Add("http-port", &http_port, "OpenAI-compatible HTTP port (0: any free port)");
  flags.Add("grpc-port", &grpc_port, "gRPC port (0: any free port)");
  flags.Add("device", &device, "auto, cpu or cuda (auto: the GPU when one answers, else the CPU)");
  flags.Add("dtype", &dtype, "weight dtype in memory: float32 or bfloat16 (default: the file's)");
  flags.Add("api-key", &api_key,
            "require \"Authorization: Bearer KEY\" (default: $FOXSERVE_API_KEY)");
  flags.Add("metrics-require-api-key", &metrics_require_api_key,
            "/metrics needs the API key too (default: open, as in vLLM)");
  flags.Add("cors-origins", &cors_origins,
            "comma-separated allowed CORS origins, or * (default: none)");
  flags.Add("chat-template", &chat_template_path, "chat template file (JSON, see the README)");
  flags.Add("max-request-bytes", &max_request_bytes, "largest request body accepted (413 above)");
  flags.Add("http-threads", &http_threads, "threads serving HTTP connections");
  flags.Add("sse-keep-alive-ms", &keep_alive_ms, "SSE comment after this long without output");
  // HTTP connection limits and TLS (the HTTP port; the --ssl-* names are vLLM's).
  double header_timeout = 10, keep_alive_timeout = 5, write_timeout = 30;
  int64_t max_connections = 0, max_unsent_bytes = 1 << 20, ssl_cert_reqs = 0;
  TlsOptions tls;
  flags.Add("header-timeout", &header_timeout,
            "seconds a client gets to send a whole request head (from connecting, or from the "
            "request's first byte on a kept-alive connection)");
  flags.Add("keep-alive-timeout", &keep_alive_timeout,
            "seconds an idle kept-alive HTTP connection stays open");
  flags.Add("write-timeout", &write_timeout,
            "seconds a client may take no byte of a response before it is dropped");
  flags.Add("max-unsent-bytes", &max_unsent_bytes,
            "stream bytes a client may leave unread before it is dropped");
  flags.Add("max-connections", &max_connections,
            "HTTP connections served at once, 503 past it (0: the open-file limit less 128)");
  flags.Add("ssl-keyfile", &tls.key_file, "PEM private key: serve HTTP over TLS");
  flags.Add("ssl-certfile", &tls.cert_file, "PEM certificate chain for --ssl-keyfile");
  flags.Add("ssl-ca-certs", &tls.ca_certs_file, "PEM CA bundle for client certificates");
  flags.Add("ssl-cert-reqs", &ssl_cert_reqs,
            "client certificates: 0 not asked, 1 optional, 2 required (as Python's ssl.CERT_*)");
  flags.Add("shutdown-timeout", &shutdown_timeout,
            "seconds running requests get to finish on SIGTERM");
  flags.Add("log-level", &log_level,
            "debug, info (one JSON line per finished request), warning or error");
  engine_flags.Register(flags);
  flags.Add("help", &help, "show this help");
  if (absl::Status s = flags.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), flags.Usage().c_str());
    return 2;
  }
  if (help) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  if (absl::Status s = CheckPort("--http-port", http_port); !s.ok()) return Fail(s);
  if (absl::Status s = CheckPort("--grpc-port", grpc_port); !s.ok()) return Fail(s);
  if (http_threads < 1 || http_threads > 256) {
    return Fail(absl::InvalidArgumentError("--http-threads must be in [1, 256]"));
  }
  if (max_request_bytes < 1)
    return Fail(absl::InvalidArgumentError("--max-request-bytes must be positive"));
  if (keep_alive_ms < 1)
    return Fail(absl::InvalidArgumentError("--sse-keep-alive-ms must be positive"));
  for (const auto& [flag, seconds] : {std::pair{"--header-timeout", header_timeout},
                                      std::pair{"--keep-alive-timeout", keep_alive_timeout},
                                      std::pair{"--write-timeout", write_timeout}}) {
    if (!(seconds > 0 && seconds < 1e6))
      return Fail(absl::InvalidArgumentError(absl::StrCat(flag, " must be in (0, 1e6) seconds")));
  }
  if (max_unsent_bytes < 1)
    return Fail(absl::InvalidArgumentError("--max-unsent-bytes must be positive"));
  if (max_connections < 0 || max_connections > (1 << 24))
    return Fail(absl::InvalidArgumentError("--max-connections must be in [0, 16777216]"));
  if (ssl_cert_reqs < 0 || ssl_cert_reqs > 2) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--ssl-cert-reqs must be 0 (none), 1 (optional) or 2 (required), got ", ssl_cert_reqs)));
  }
  tls.cert_reqs = static_cast<int>(ssl_cert_reqs);
  if (!tls.enabled() && (ssl_cert_reqs != 0 || !tls.ca_certs_file.empty())) {
    return Fail(absl::InvalidArgumentError(
        "--ssl-ca-certs and --ssl-cert-reqs need --ssl-keyfile and --ssl-certfile"));
  }
  if (!(shutdown_timeout >= 0))
    return Fail(absl::InvalidArgumentError("--shutdown-timeout must be >= 0"));
  if (device != "auto" && device != "cpu" && device != "cuda") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--device must be auto, cpu or cuda, got ", device)));
  }
  absl::StatusOr<LogLevel> level = ParseLogLevel(log_level);
  if (!level.ok()) return Fail(level.status());
  SetLogLevel(*level);
  if (absl::Status s = ChooseDevice(device); !s.ok()) return Fail(s);
  if (!flags.WasSet("api-key")) {
    if (const char* env = std::getenv("FOXSERVE_API_KEY")) api_key = env;
  }

  ChatTemplate chat_template;
  if (!chat_template_path.empty()) {
    absl::StatusOr<ChatTemplate> loaded = ChatTemplate::Load(chat_template_path);
    if (!loaded.ok()) return Fail(loaded.status());
    chat_template = std::move(*loaded);
  }
  absl::StatusOr<LoadedModel> loaded = LoadModelForEngine(model_dir, dtype, engine_flags);
  if (!loaded.ok()) return Fail(loaded.status());
  absl::StatusOr<std::unique_ptr<EngineCore>> core =
      EngineCore::ForCheckpoint(loaded->checkpoint, loaded->tokenizer.get(), loaded->engine_config);
  if (!core.ok()) return Fail(core.status());
  const std::string model_name = served_name.empty() ? FolderName(model_dir) : served_name;
  // Observers outlive the engine, which reports to them from its thread.
  ServerMetrics metrics(model_name, (*core)->config().max_model_len,
                        loaded->checkpoint.config.num_layers);
  RequestLog request_log;
  (*core)->AddObserver(&metrics);
  (*core)->AddObserver(&request_log);
  Engine engine(std::move(*core));

  ServingContext context(&engine, loaded->tokenizer.get(), model_name, api_key);
  HttpServerOptions http_options;
  http_options.host = host;
  http_options.port = static_cast<int>(http_port);
  http_options.num_threads = static_cast<int>(http_threads);
  http_options.max_request_bytes = static_cast<size_t>(max_request_bytes);
  http_options.keep_alive_interval = std::chrono::milliseconds(keep_alive_ms);
  auto to_ms = [](double seconds) {
    return std::chrono::milliseconds(std::max<int64_t>(1, std::llround(seconds * 1000)));
  };
  http_options.header_timeout = to_ms(header_timeout);
  http_options.keep_alive_timeout = to_ms(keep_alive_timeout);
  http_options.write_timeout = to_ms(write_timeout);
  http_options.max_unsent_bytes = static_cast<size_t>(max_unsent_bytes);
  http_options.max_connections = static_cast<int>(max_connections);
  http_options.tls = tls;  // its files are read (and refused, naming them) by HttpServer::Start
  http_options.log = [](const std::string& message,
                        const std::vector<std::pair<std::string, std::string>>& fields) {
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [key, value] : fields) json[key] = value;
    Log(LogLevel::kWarning, message, std::move(json));
  };
  for (absl::string_view origin : absl::StrSplit(cors_origins, ',', absl::SkipWhitespace())) {
    http_options.cors_origins.emplace_back(origin);
  }
  http_options.make_error = [](int status, const std::string& message) {
    return OpenAiErrorResponse(status, message);
  };
  http_options.on_response = [&metrics](const HttpResponseRecord& record) {
    const char* incomplete = record.end == HttpResponseRecord::End::kComplete     ? ""
                             : record.end == HttpResponseRecord::End::kClientGone ? "client_gone"
                                                                                  : "write_timeout";
    metrics.OnHttpResponse(RouteLabel(record.path), record.status, record.seconds, incomplete);
  };
  OpenAiRoutesOptions routes_options;
  routes_options.metrics_need_api_key = metrics_require_api_key;
  absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start(
      http_options, MakeOpenAiRoutes(&context, chat_template, &metrics, routes_options));
  if (!http.ok()) return Fail(http.status());
  absl::StatusOr<std::unique_ptr<GrpcServer>> grpc =
      GrpcServer::Start(&context, host, static_cast<int>(grpc_port));
  if (!grpc.ok()) return Fail(grpc.status());

  std::cout << nlohmann::json{{"event", "serving"},
                              {"model", context.model_name()},
                              {"host", host},
                              {"http_port", (*http)->port()},
                              {"grpc_port", (*grpc)->port()},
                              {"max_model_len", context.max_model_len()},
                              {"kv_blocks", engine.Stats().kv_blocks_total}}
                   .dump()
            << std::endl;

  Log(LogLevel::kInfo, "serving",
      {{"model", context.model_name()},
       {"http", absl::StrCat(host, ":", (*http)->port())},
       {"grpc", absl::StrCat(host, ":", (*grpc)->port())}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(LogLevel::kInfo, "draining",
      {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
       {"live_requests", engine.num_live_requests()},
       {"shutdown_timeout_s", shutdown_timeout}});
  (*grpc)->SetServing(false);
  // New requests get 503 / UNAVAILABLE from here on; running ones may finish
  // within the timeout, and the rest end with an abort event. Their last
  // events then reach the clients before the front ends close.
  engine.Shutdown(absl::Seconds(shutdown_timeout));
  const bool delivered = (*http)->WaitForResponses(std::chrono::seconds(5));
  (*grpc)->Stop(std::chrono::milliseconds(2000));
  (*http)->Stop();
  Log(LogLevel::kInfo, "stopped", {{"all_responses_delivered", delivered}});
  return 0;
}

}  // namespace fox
