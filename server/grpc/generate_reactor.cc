#include "server/grpc/generate_reactor.h"

#include <utility>

#include "server/grpc/proto_convert.h"

namespace fox {

GenerateReactor::GenerateReactor(ServingContext* context,
                                 const foxserve::v1::GenerateRequest& request)
    : context_(context) {
  request_id_ =
      request.request_id().empty() ? context_->NewRequestId("grpc") : request.request_id();
  with_logprobs_ = request.sampling().logprobs() > 0;
  absl::StatusOr<EngineRequest> engine_request =
      ToEngineRequest(request, context_->tokenizer(), request_id_);
  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      engine_request.ok() ? context_->engine().Submit(std::move(*engine_request))
                          : absl::StatusOr<std::shared_ptr<RequestStream>>(engine_request.status());
  if (!stream.ok()) {
    finish_started_ = true;
    Finish(ToGrpcStatus(stream.status()));
    return;
  }
  stream_ = std::move(*stream);
  stream_->SetNotifier([this] { Pump(); });
  Pump();  // events pushed before the notifier was set
}

void GenerateReactor::Pump() {
  std::unique_lock<std::mutex> lock(mu_);
  if (write_in_flight_ || finish_started_) return;
  if (cancelled_) {
    finish_started_ = true;
    lock.unlock();
    Finish(grpc::Status::CANCELLED);
    return;
  }
  if (error_status_) {  // the final message of an error finish is out
    finish_started_ = true;
    lock.unlock();
    Finish(*error_status_);
    return;
  }
  response_.Clear();
  foxserve::v1::GenerateChunk* chunk = nullptr;
  while (!finish_taken_) {
    std::optional<TokenEvent> event = stream_->TryNext();
    if (!event) break;
    if (!event->is_finish() || !event->text.empty()) {
      if (chunk == nullptr) chunk = response_.mutable_chunk();
      AppendToChunk(*event, with_logprobs_, chunk);
    }
    if (event->is_finish()) {
      finish_taken_ = true;
      finish_ = std::move(event);
    }
  }
  if (chunk != nullptr) {
    write_in_flight_ = true;
    lock.unlock();
    StartWrite(&response_);
    return;
  }
  if (!finish_ || final_written_) return;
  final_written_ = true;
  ToFinal(*finish_, response_.mutable_final());
  if (finish_->finish_reason == FinishReason::kError) {
    // The final message first (it carries the usage), then the error status.
    error_status_ = grpc::Status(grpc::StatusCode::INTERNAL, finish_->error);
    write_in_flight_ = true;
    lock.unlock();
    StartWrite(&response_);
    return;
  }
  finish_started_ = true;
  lock.unlock();
  StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
}

void GenerateReactor::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    write_in_flight_ = false;
    // A failed write means the stream is broken: nothing more can be delivered.
    if (!ok) cancelled_ = true;
  }
  if (!ok) AbortEngineRequest();
  Pump();
}

void GenerateReactor::OnCancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  AbortEngineRequest();
  Pump();
}

void GenerateReactor::AbortEngineRequest() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // After its finish event the id may belong to a newer request.
    if (stream_ == nullptr || finish_taken_ || aborted_) return;
    aborted_ = true;
  }
  context_->engine().Abort(request_id_);
}

void GenerateReactor::OnDone() {
  if (stream_ != nullptr) {
    // Waits for a notifier call in progress, so nothing reaches `this` afterwards.
    // mu_ must not be held here: the notifier takes it.
    stream_->SetNotifier(nullptr);
    AbortEngineRequest();  // normally done already or not needed; never leave it running
  }
  delete this;
}

}  // namespace fox
