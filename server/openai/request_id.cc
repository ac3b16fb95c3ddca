#include "server/openai/request_id.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/openai/api_error.h"

namespace fox {
namespace {

// Forwards everything, adding the header to whichever head goes out.
class EchoingExchange : public HttpExchange {
 public:
  EchoingExchange(std::shared_ptr<HttpExchange> inner, std::string id)
      : inner_(std::move(inner)), id_(std::move(id)) {}

  void Respond(HttpResponse response) override {
    response.headers.emplace_back("X-Request-Id", id_);
    inner_->Respond(std::move(response));
  }
  void StartStream(std::vector<std::pair<std::string, std::string>> headers) override {
    headers.emplace_back("X-Request-Id", id_);
    inner_->StartStream(std::move(headers));
  }
  void Write(std::string bytes) override { inner_->Write(std::move(bytes)); }
  void EndStream() override { inner_->EndStream(); }
  void Post(std::function<void()> fn) override { inner_->Post(std::move(fn)); }
  void OnClose(std::function<void()> fn) override { inner_->OnClose(std::move(fn)); }
  bool closed() const override { return inner_->closed(); }

 private:
  const std::shared_ptr<HttpExchange> inner_;
  const std::string id_;
};

}  // namespace

absl::Status CheckClientRequestId(const std::string& id, const char* where) {
  bool printable = true;
  for (const char c : id) printable = printable && c >= 0x20 && c <= 0x7e;
  if (id.size() > kMaxClientRequestIdBytes || !printable) {
    return InvalidParam(where, absl::StrCat(where, " must be at most ", kMaxClientRequestIdBytes,
                                            " printable ASCII characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ClientRequestId(const HttpRequest& request) {
  std::string id = request.Header("x-request-id");
  if (absl::Status s = CheckClientRequestId(id, "X-Request-Id"); !s.ok()) return s;
  return id;
}

std::shared_ptr<HttpExchange> EchoingRequestId(std::shared_ptr<HttpExchange> exchange,
                                               std::string id) {
  return std::make_shared<EchoingExchange>(std::move(exchange), std::move(id));
}

}  // namespace fox
