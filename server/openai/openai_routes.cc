#include "server/openai/openai_routes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/openai/api_error.h"
#include "server/openai/generation_call.h"
#include "server/openai/generation_request.h"
#include "server/openai/json_fields.h"
#include "server/openai/openai_error.h"
#include "server/openai/request_id.h"
#include "server/request_log.h"
#include "server/work_pool.h"

namespace fox {
namespace {

using nlohmann::json;

HttpResponse Json(const json& body, int status = 200) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return response;
}

HttpResponse Error(const absl::Status& status) {
  return OpenAiErrorResponse(status, ParamOf(status));
}

json ModelCard(const ServingContext& context) {
  return {{"id", context.model_name()},
          {"object", "model"},
          {"created", 0},
          {"owned_by", "foxserve"},
          {"root", context.model_name()},
          {"parent", nullptr},
          {"max_model_len", context.max_model_len()}};
}

json Stats(const Engine& engine) {
  const EngineStats stats = engine.Stats();
  const EngineCounters& c = stats.counters;
  return {{"num_running", stats.num_running},
          {"num_waiting", stats.num_waiting},
          {"num_live_requests", engine.num_live_requests()},
          {"kv_blocks_total", stats.kv_blocks_total},
          {"kv_blocks_free", stats.kv_blocks_free},
          {"kv_blocks_live", stats.kv_blocks_live},
          {"steps", c.steps},
          {"step_seconds", c.schedule_seconds + c.prepare_seconds + c.execute_seconds +
                               c.sample_seconds + c.evict_seconds},
          {"preemptions", c.preemptions},
          {"blocks_evicted", c.blocks_evicted},
          {"prompt_tokens", c.prompt_tokens},
          {"generation_tokens", c.generation_tokens}};
}

// POST /tokenize: {"prompt": text} or {"messages": [...]}, add_special_tokens.
HttpResponse Tokenize(const HttpRequest& request, const ServingContext& context,
                      const ChatTemplate& chat_template) {
  absl::StatusOr<json> body = ParseJsonObject(request.body);
  if (!body.ok()) return Error(body.status());
  JsonFields fields(*body);
  const bool add_special = fields.Bool("add_special_tokens").value_or(true);
  std::optional<std::string> prompt = fields.String("prompt");
  if (!fields.status().ok()) return Error(fields.status());
  if (!prompt.has_value()) {
    if (fields.Find("messages") == nullptr) {
      return Error(InvalidParam("prompt", "give prompt (text) or messages"));
    }
    // Render the messages exactly as a chat request would.
    json chat = *body;
    chat["model"] = context.model_name();
    absl::StatusOr<GenerationRequest> parsed =
        ParseChatRequest(chat.dump(), context, chat_template);
    if (!parsed.ok()) return Error(parsed.status());
    return Json({{"tokens", parsed->prompts[0]},
                 {"count", parsed->prompts[0].size()},
                 {"max_model_len", context.max_model_len()}});
  }
  absl::StatusOr<std::vector<int32_t>> ids = context.tokenizer().Encode(*prompt, add_special);
  if (!ids.ok()) return Error(WithParam(ids.status(), "prompt"));
  return Json(
      {{"tokens", *ids}, {"count", ids->size()}, {"max_model_len", context.max_model_len()}});
}

// POST /detokenize: {"tokens": [ids]}.
HttpResponse Detokenize(const HttpRequest& request, const ServingContext& context) {
  absl::StatusOr<json> body = ParseJsonObject(request.body);
  if (!body.ok()) return Error(body.status());
  const auto tokens = body->find("tokens");
  if (tokens == body->end() || !tokens->is_array()) {
    return Error(InvalidParam("tokens", "tokens must be a list of token ids"));
  }
  std::vector<int32_t> ids;
  for (const json& value : *tokens) {
    const std::optional<int64_t> id = IntegerIn(value, 0, context.tokenizer().vocab_size() - 1);
    if (!id.has_value() || !context.tokenizer().IsKnown(static_cast<int32_t>(*id))) {
      return Error(InvalidParam(
          "tokens", absl::StrCat("tokens must be token ids in [0, ",
                                 context.tokenizer().vocab_size(), "), got ", Describe(value))));
    }
    ids.push_back(static_cast<int32_t>(*id));
  }
  absl::StatusOr<std::string> text = context.tokenizer().Decode(ids);
  if (!text.ok()) return Error(WithParam(text.status(), "tokens"));
  return Json({{"prompt", *text}});
}

// The methods each known path answers; a known path asked with another
// method gets 405 with an Allow header, as HTTP servers answer.
const char* AllowedMethods(const std::string& path) {
  static const char kGet[] = "GET, HEAD";
  static const char kPost[] = "POST";
  if (path == "/health" || path == "/ready" || path == "/version" || path == "/stats" ||
      path == "/metrics" || path == "/v1/models" || absl::StartsWith(path, "/v1/models/")) {
    return kGet;
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions" || path == "/tokenize" ||
      path == "/detokenize") {
    return kPost;
  }
  return nullptr;
}

bool Allows(const char* allowed, const std::string& method) {
  return allowed[0] == 'P' ? method == "POST" : method == "GET" || method == "HEAD";
}

class Routes {
 public:
  Routes(ServingContext* context, ChatTemplate chat_template, ServerMetrics* metrics,
         const OpenAiRoutesOptions& options)
      : context_(*context),
        chat_template_(std::move(chat_template)),
        metrics_(metrics),
        options_(options),
        work_(options.num_parse_threads, options.max_queued_parses) {}

  void Handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    absl::StatusOr<std::string> client_id = ClientRequestId(request);
    if (!client_id.ok()) return exchange->Respond(Error(client_id.status()));
    if (!client_id->empty()) exchange = EchoingRequestId(std::move(exchange), *client_id);

    const std::string& path = request.path;
    const char* allowed = AllowedMethods(path);
    if (allowed == nullptr || (path == "/metrics" && metrics_ == nullptr)) {
      return exchange->Respond(NotFound(request));
    }
    // Probes: open, answered at once.
    const bool is_probe = path == "/health" || path == "/ready" || path == "/version" ||
                          (path == "/metrics" && !options_.metrics_need_api_key);
    if (!is_probe && !context_.IsAuthorized(request.Header("authorization"))) {
      return exchange->Respond(OpenAiErrorResponse(
          401, "missing or invalid API key: send it as \"Authorization: Bearer <key>\""));
    }
    if (!Allows(allowed, request.method)) {
      HttpResponse response = OpenAiErrorResponse(
          405, absl::StrCat(request.method, " is not allowed on ", path, "; use ", allowed));
      response.headers.emplace_back("Allow", allowed);
      return exchange->Respond(std::move(response));
    }

    if (path == "/health") return exchange->Respond(Json(json::object()));
    if (path == "/ready") {
      return context_.engine().accepting()
                 ? exchange->Respond(Json({{"status", "ready"}}))
                 : exchange->Respond(OpenAiErrorResponse(503, "the server is shutting down"));
    }
    if (path == "/version") return exchange->Respond(Json({{"version", kFoxserveVersion}}));
    if (path == "/stats") return exchange->Respond(Json(Stats(context_.engine())));
    if (path == "/metrics") {
      HttpResponse response;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = metrics_->Scrape(context_.engine().Stats());
      return exchange->Respond(std::move(response));
    }
    if (path == "/v1/models") {
      return exchange->Respond(
          Json({{"object", "list"}, {"data", json::array({ModelCard(context_)})}}));
    }
    if (absl::StartsWith(path, "/v1/models/")) {
      if (path.substr(11) != context_.model_name()) return exchange->Respond(NotFound(request));
      return exchange->Respond(Json(ModelCard(context_)));
    }
    // The rest parses a body and tokenizes: off the I/O thread.
    if (!context_.engine().accepting()) {
      return exchange->Respond(OpenAiErrorResponse(503, "the server is shutting down"));
    }
    auto shared_request = std::make_shared<HttpRequest>(std::move(request));
    std::shared_ptr<HttpExchange> answer = exchange;
    const bool queued = work_.TryPost(
        [this, shared_request, answer = std::move(answer), id = *client_id]() mutable {
          RunParsed(*shared_request, std::move(answer), id);
        });
    if (!queued) {
      exchange->Respond(OpenAiErrorResponse(
          429, "too many requests are waiting to be parsed; retry shortly"));
    }
  }

 private:
  // A worker: parses, tokenizes and submits. Nothing a client sends may
  // escape as an exception and end the process.
  void RunParsed(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange,
                 const std::string& client_id) {
    if (exchange->closed()) return;  // the client left while it waited
    try {
      const std::string& path = request.path;
      if (path == "/tokenize") return exchange->Respond(Tokenize(request, context_, chat_template_));
      if (path == "/detokenize") return exchange->Respond(Detokenize(request, context_));
      absl::StatusOr<GenerationRequest> parsed =
          path == "/v1/completions" ? ParseCompletionRequest(request.body, context_)
                                    : ParseChatRequest(request.body, context_, chat_template_);
      if (!parsed.ok()) return exchange->Respond(Error(parsed.status()));
      if (!client_id.empty()) parsed->client_request_id = client_id;
      if (!parsed->unknown_fields.empty()) {
        Log(LogLevel::kWarning, "ignored request fields foxserve does not know",
            {{"route", path}, {"fields", parsed->unknown_fields},
             {"client_request_id", parsed->client_request_id}});
      }
      StartGenerationCall(std::move(*parsed), context_, std::move(exchange));
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "request failed with an exception",
          {{"route", request.path}, {"what", e.what()}});
      exchange->Respond(OpenAiErrorResponse(500, "internal error while handling the request"));
    }
  }

  static HttpResponse NotFound(const HttpRequest& request) {
    // The path is the client's: cut it short in the message.
    const std::string path =
        request.path.size() <= 128 ? request.path : absl::StrCat(request.path.substr(0, 128), "...");
    return OpenAiErrorResponse(404, absl::StrCat("no route for ", request.method, " ", path));
  }

  ServingContext& context_;
  const ChatTemplate chat_template_;
  ServerMetrics* const metrics_;
  const OpenAiRoutesOptions options_;
  WorkPool work_;  // last: joined first, while the rest still exists
};

}  // namespace

std::string RouteLabel(const std::string& path) {
  if (AllowedMethods(path) == nullptr) return "other";
  if (absl::StartsWith(path, "/v1/models/")) return "/v1/models/{model}";
  return path;
}

HttpHandler MakeOpenAiRoutes(ServingContext* context, ChatTemplate chat_template,
                             ServerMetrics* metrics, const OpenAiRoutesOptions& options) {
  auto routes = std::make_shared<Routes>(context, std::move(chat_template), metrics, options);
  return [routes](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    routes->Handle(std::move(request), std::move(exchange));
  };
}

}  // namespace fox
