// The connection registry and the stop handshake of HttpContext.
#include "server/http/http_context.h"

#include <thread>

namespace fox {

HttpContext::Admission HttpContext::Register(HttpSession* session,
                                             std::weak_ptr<HttpSession> weak) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_.load()) return Admission::kStopped;
  const bool is_served = num_served_ < options_.max_connections;
  num_served_ += is_served;
  sessions_.emplace(session, Entry{std::move(weak), is_served});
  return is_served ? Admission::kServe : Admission::kRefuse;
}

void HttpContext::Unregister(HttpSession* session) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  num_served_ -= it->second.is_served;
  sessions_.erase(it);
}

int64_t HttpContext::num_connections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(sessions_.size());
}

std::vector<std::shared_ptr<HttpSession>> HttpContext::BeginStop() {
  std::vector<std::shared_ptr<HttpSession>> open;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_.store(true);
    for (auto& [raw, entry] : sessions_) {
      if (auto session = entry.session.lock()) open.push_back(std::move(session));
    }
  }
  // A PostUnlessStopped that read stopped_ == false may still be queueing;
  // both sides use sequentially consistent atomics, so waiting for the
  // counter to drain means every such post has landed before we close.
  while (num_posting_.load() != 0) std::this_thread::yield();
  return open;
}

}  // namespace fox
