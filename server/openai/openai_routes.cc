#include "server/openai/openai_routes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/openai/api_error.h"
#include "server/openai/generation_call.h"
#include "server/openai/generation_request.h"
#include "server/openai/json_fields.h"
#include "server/openai/openai_error.h"

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

class Routes {
 public:
  Routes(ServingContext* context, ChatTemplate chat_template, ServerMetrics* metrics)
      : context_(*context), chat_template_(std::move(chat_template)), metrics_(metrics) {}

  void Handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    const std::string& path = request.path;
    const bool get = request.method == "GET" || request.method == "HEAD";
    const bool post = request.method == "POST";
    // Probes and statistics: open, answered at once.
    if (path == "/health") return exchange->Respond(Json(json::object()));
    if (path == "/ready") {
      return context_.engine().accepting()
                 ? exchange->Respond(Json({{"status", "ready"}}))
                 : exchange->Respond(OpenAiErrorResponse(503, "the server is shutting down"));
    }
    if (path == "/version") return exchange->Respond(Json({{"version", kFoxserveVersion}}));
    if (path == "/stats" && get) return exchange->Respond(Json(Stats(context_.engine())));
    if (path == "/metrics" && get && metrics_ != nullptr) {
      HttpResponse response;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = metrics_->Scrape(context_.engine().Stats());
      return exchange->Respond(std::move(response));
    }

    const bool guarded =
        absl::StartsWith(path, "/v1/") || path == "/tokenize" || path == "/detokenize";
    if (!guarded) return exchange->Respond(NotFound(request));
    if (!context_.IsAuthorized(request.Header("authorization"))) {
      return exchange->Respond(OpenAiErrorResponse(
          401, "missing or invalid API key: send it as \"Authorization: Bearer <key>\""));
    }
    if (path == "/v1/models" && get) {
      return exchange->Respond(
          Json({{"object", "list"}, {"data", json::array({ModelCard(context_)})}}));
    }
    if (absl::StartsWith(path, "/v1/models/") && get) {
      if (path.substr(11) != context_.model_name()) return exchange->Respond(NotFound(request));
      return exchange->Respond(Json(ModelCard(context_)));
    }
    if (path == "/tokenize" && post)
      return exchange->Respond(Tokenize(request, context_, chat_template_));
    if (path == "/detokenize" && post) return exchange->Respond(Detokenize(request, context_));
    if ((path == "/v1/completions" || path == "/v1/chat/completions") && post) {
      if (!context_.engine().accepting()) {
        return exchange->Respond(OpenAiErrorResponse(503, "the server is shutting down"));
      }
      absl::StatusOr<GenerationRequest> parsed =
          path == "/v1/completions" ? ParseCompletionRequest(request.body, context_)
                                    : ParseChatRequest(request.body, context_, chat_template_);
      if (!parsed.ok()) return exchange->Respond(Error(parsed.status()));
      return StartGenerationCall(std::move(*parsed), context_, std::move(exchange));
    }
    exchange->Respond(NotFound(request));
  }

 private:
  static HttpResponse NotFound(const HttpRequest& request) {
    return OpenAiErrorResponse(404,
                               absl::StrCat("no route for ", request.method, " ", request.path));
  }

  ServingContext& context_;
  const ChatTemplate chat_template_;
  ServerMetrics* const metrics_;
};

}  // namespace

HttpHandler MakeOpenAiRoutes(ServingContext* context, ChatTemplate chat_template,
                             ServerMetrics* metrics) {
  auto routes = std::make_shared<Routes>(context, std::move(chat_template), metrics);
  return [routes](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    routes->Handle(std::move(request), std::move(exchange));
  };
}

}  // namespace fox
