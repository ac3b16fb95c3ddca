#include "server/openai/generation_call.h"

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/openai/openai_error.h"
#include "server/openai/response_format.h"

namespace fox {
namespace {

using nlohmann::json;

// One engine request: a (prompt, sample) pair of the call.
struct Choice {
  int index = 0;  // OpenAI's choice index: prompt_index * n + sample
  int prompt_index = 0;
  std::string engine_id;
  std::shared_ptr<RequestStream> stream;
  std::atomic<bool> drain_posted{false};

  // Strand only.
  bool started = false;  // streaming: the first chunk (role, echo) has gone out
  bool finished = false;
  std::string text;         // non-streaming: everything so far
  int64_t text_length = 0;  // characters sent, for completion logprobs' text_offset
  TokenLogprobs logprobs;
  TokenEvent finish;
};

class GenerationCall : public std::enable_shared_from_this<GenerationCall> {
 public:
  GenerationCall(GenerationRequest request, ServingContext& context,
                 std::shared_ptr<HttpExchange> exchange)
      : request_(std::move(request)), context_(context), exchange_(std::move(exchange)) {
    const bool chat = request_.api == GenerationRequest::Api::kChat;
    header_.api = request_.api;
    header_.id = context_.NewRequestId(chat ? "chatcmpl" : "cmpl");
    header_.created = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    header_.model = request_.model;
  }

  void Start() {
    const int num_choices = static_cast<int>(request_.prompts.size()) * request_.n;
    for (int i = 0; i < num_choices; ++i) {
      auto choice = std::make_unique<Choice>();
      choice->index = i;
      choice->prompt_index = i / request_.n;
      choice->engine_id = num_choices == 1 ? header_.id : absl::StrCat(header_.id, "-", i);
      choices_.push_back(std::move(choice));
    }
    // Submit every choice; if one is refused, abort those already queued and
    // answer with the refusal (their finish events are drained and dropped).
    for (auto& choice : choices_) {
      EngineRequest engine_request;
      engine_request.id = choice->engine_id;
      engine_request.prompt_ids = request_.prompts[choice->prompt_index];
      engine_request.params = request_.params;
      engine_request.client_id = request_.client_request_id;
      const int sample = choice->index % request_.n;
      if (engine_request.params.seed.has_value() && sample > 0)
        *engine_request.params.seed += sample;
      absl::StatusOr<std::shared_ptr<RequestStream>> stream =
          context_.engine().Submit(std::move(engine_request));
      if (!stream.ok()) {
        refused_ = true;
        for (auto& other : choices_) {
          if (other->stream != nullptr) context_.engine().Abort(other->engine_id);
        }
        exchange_->Respond(OpenAiErrorResponse(stream.status()));
        return;
      }
      choice->stream = *stream;
    }
    std::weak_ptr<GenerationCall> weak = shared_from_this();
    exchange_->OnClose([weak] {
      if (auto self = weak.lock()) self->AbortAll();
    });
    if (request_.stream) exchange_->StartStream();
    for (auto& choice : choices_) {
      Choice* c = choice.get();
      c->stream->SetNotifier([self = shared_from_this(), c] { self->ScheduleDrain(c); });
      ScheduleDrain(c);  // events may have arrived before the notifier was set
    }
  }

 private:
  // Engine thread (or Start): at most one drain of a choice queued at a time.
  void ScheduleDrain(Choice* c) {
    if (c->drain_posted.exchange(true)) return;
    exchange_->Post([self = shared_from_this(), c] {
      c->drain_posted = false;
      self->Drain(c);
    });
  }

  void AbortAll() {
    for (auto& choice : choices_) {
      if (choice->stream != nullptr) context_.engine().Abort(choice->engine_id);
    }
  }

  // Strand: takes every queued event of `c` and writes what they make. A
  // token and the finish right behind it go out as one chunk, as OpenAI
  // sends the last token with its finish_reason.
  void Drain(Choice* c) {
    std::string out;
    bool finished_now = false;
    std::optional<TokenEvent> held;  // streaming: a token waiting to see if the finish follows
    while (std::optional<TokenEvent> event = c->stream->TryNext()) {
      const bool is_finish = event->is_finish();
      if (refused_ || exchange_->closed()) {
        // Nobody to answer: just wait for the finish.
      } else if (request_.stream) {
        if (held.has_value()) {
          AppendChunk(*c, &*held, is_finish ? &*event : nullptr, out);
          held.reset();
          if (is_finish) {
            finished_now = c->finished = true;
            continue;
          }
        }
        if (is_finish) {
          AppendChunk(*c, nullptr, &*event, out);
        } else {
          held = std::move(event);
          continue;
        }
      } else {
        c->text += event->text;
        if (!is_finish && request_.params.logprobs.has_value()) c->logprobs.Add(*event);
        if (is_finish) c->finish = std::move(*event);
      }
      if (is_finish) finished_now = c->finished = true;
    }
    if (held.has_value() && !refused_ && !exchange_->closed())
      AppendChunk(*c, &*held, nullptr, out);
    if (finished_now) {
      // The stream has ended: drop its notifier, which holds this call.
      c->stream->SetNotifier(nullptr);
      ++num_finished_;
    }
    if (refused_ || exchange_->closed()) return;
    if (num_finished_ == static_cast<int>(choices_.size()) && !answered_) {
      answered_ = true;
      if (request_.stream) {
        FinishStream(out);
      } else {
        RespondFull();
      }
      return;
    }
    if (!out.empty()) exchange_->Write(std::move(out));
  }

  std::string EchoText(int prompt_index) {
    std::string& text = request_.prompt_texts[prompt_index];
    if (text.empty()) {
      absl::StatusOr<std::string> decoded =
          context_.tokenizer().Decode(request_.prompts[prompt_index]);
      if (decoded.ok()) text = std::move(*decoded);
    }
    return text;
  }

  // One chunk for `token`, `finish`, or a token with the finish behind it.
  void AppendChunk(Choice& c, const TokenEvent* token, const TokenEvent* finish, std::string& out) {
    if (finish != nullptr) c.finish = *finish;
    if (finish != nullptr && finish->finish_reason == FinishReason::kError) {
      // vLLM's convention: an error object in the stream, then [DONE].
      out += SseEvent(json::parse(OpenAiErrorBody(500, finish->error)));
      return;
    }
    std::string text;
    const bool first = !c.started;
    if (first && request_.echo) text = EchoText(c.prompt_index);
    c.started = true;
    if (token != nullptr) text += token->text;
    if (finish != nullptr) text += finish->text;
    json logprobs = nullptr;
    if (token != nullptr && request_.params.logprobs.has_value()) {
      TokenLogprobs one;
      one.Add(*token);
      logprobs = request_.api == GenerationRequest::Api::kChat
                     ? ChatLogprobs(one, context_.tokenizer())
                     : CompletionLogprobs(one, context_.tokenizer(), c.text_length);
    }
    c.text_length += NumCharacters(text);
    const bool chat_role = first && request_.api == GenerationRequest::Api::kChat;
    json chunk = StreamChunk(header_, c.index, text, chat_role, std::move(logprobs), finish);
    if (request_.include_usage) chunk["usage"] = nullptr;
    out += SseEvent(chunk);
  }

  json TotalUsage() const {
    int64_t prompt_tokens = 0, completion_tokens = 0;
    for (const auto& c : choices_) {
      // Choices of one prompt share it: count it once, as OpenAI and vLLM do.
      if (c->index % request_.n == 0) prompt_tokens += c->finish.prompt_tokens;
      completion_tokens += c->finish.completion_tokens;
    }
    return Usage(prompt_tokens, completion_tokens);
  }

  void FinishStream(std::string& out) {
    if (request_.include_usage) out += SseEvent(UsageChunk(header_, TotalUsage()));
    out += "data: [DONE]\n\n";
    exchange_->Write(std::move(out));
    exchange_->EndStream();
  }

  void RespondFull() {
    json choices = json::array();
    for (const auto& c : choices_) {
      if (c->finish.finish_reason == FinishReason::kError) {
        exchange_->Respond(OpenAiErrorResponse(500, c->finish.error));
        return;
      }
      const std::string echo = request_.echo ? EchoText(c->prompt_index) : std::string();
      json logprobs = nullptr;
      if (request_.params.logprobs.has_value()) {
        logprobs = request_.api == GenerationRequest::Api::kChat
                       ? ChatLogprobs(c->logprobs, context_.tokenizer())
                       : CompletionLogprobs(c->logprobs, context_.tokenizer(),
                                            NumCharacters(echo));
      }
      const std::string text = echo + c->text;
      choices.push_back(FullChoice(header_, c->index, text, std::move(logprobs), c->finish));
    }
    HttpResponse response;
    response.body = FullResponse(header_, std::move(choices), TotalUsage())
                        .dump(-1, ' ', false, json::error_handler_t::replace);
    exchange_->Respond(std::move(response));
  }

  GenerationRequest request_;
  ServingContext& context_;
  std::shared_ptr<HttpExchange> exchange_;
  ResponseHeader header_;
  std::vector<std::unique_ptr<Choice>> choices_;

  // Strand only (Start runs before any drain can).
  bool refused_ = false;
  bool answered_ = false;
  int num_finished_ = 0;
};

}  // namespace

void StartGenerationCall(GenerationRequest request, ServingContext& context,
                         std::shared_ptr<HttpExchange> exchange) {
  auto call = std::make_shared<GenerationCall>(std::move(request), context, std::move(exchange));
  call->Start();
}

}  // namespace fox
