// One Generate call: submits the request to the engine, streams its events to
// the client and ends the call exactly once.
//
//   engine thread: push -> notifier -> Pump   (gRPC thread: OnWriteDone -> Pump)
//   Pump: at most one write in flight; each write takes every event queued
//         since the last one (one chunk), the finish event becomes the final
//         message, written together with the OK status.
//
// A cancelled call (client cancel, deadline, server shutdown) aborts the
// engine request and finishes as soon as no write is in flight. The reactor
// owns itself and is deleted in OnDone, after the stream's notifier has been
// cleared, so the engine thread never reaches a deleted reactor.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/request_stream.h"
#include "foxserve/v1/foxserve.pb.h"
#include "grpcpp/support/server_callback.h"
#include "server/serving_context.h"

namespace fox {

class GenerateReactor final : public grpc::ServerWriteReactor<foxserve::v1::GenerateResponse> {
 public:
  // Builds and submits the engine request (id: the request's request_id, or
  // a new "grpc-..." one), or finishes the call with the error. `context`
  // must outlive the call.
  GenerateReactor(ServingContext* context, const foxserve::v1::GenerateRequest& request);

 private:
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Starts the next write or the finish, if one is due and none is in flight.
  void Pump();
  // Aborts the engine request unless it has ended or was aborted already.
  void AbortEngineRequest();

  ServingContext* const context_;
  std::string request_id_;
  bool with_logprobs_ = false;
  std::shared_ptr<RequestStream> stream_;  // null when Submit refused the request

  std::mutex mu_;
  bool write_in_flight_ = false;
  bool cancelled_ = false;                    // the client is gone: write nothing more
  bool finish_taken_ = false;                 // the engine's finish event has been taken
  bool aborted_ = false;                      // Abort(request_id_) was called
  bool final_written_ = false;                // the final message has been written or started
  bool finish_started_ = false;               // Finish or StartWriteAndFinish was called
  std::optional<TokenEvent> finish_;          // taken, not yet written
  std::optional<grpc::Status> error_status_;  // an error finish: the status after the final
  foxserve::v1::GenerateResponse response_;   // the write in flight; untouched until it is done
};

}  // namespace fox
