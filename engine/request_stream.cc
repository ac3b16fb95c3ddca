#include "engine/request_stream.h"

#include <utility>

namespace fox {

std::optional<TokenEvent> RequestStream::PopLocked() {
  if (events_.empty()) return std::nullopt;
  TokenEvent event = std::move(events_.front());
  events_.pop_front();
  if (event.is_finish()) finish_taken_ = true;
  return event;
}

std::optional<TokenEvent> RequestStream::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !events_.empty() || finish_taken_; });
  return PopLocked();
}

std::optional<TokenEvent> RequestStream::NextUntil(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return !events_.empty() || finish_taken_; });
  return PopLocked();
}

std::optional<TokenEvent> RequestStream::TryNext() {
  std::lock_guard<std::mutex> lock(mu_);
  return PopLocked();
}

bool RequestStream::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finish_taken_;
}

void RequestStream::SetNotifier(std::function<void()> notifier) {
  std::lock_guard<std::mutex> lock(notifier_mu_);
  notifier_ = std::move(notifier);
}

void RequestStream::Push(TokenEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
  std::lock_guard<std::mutex> lock(notifier_mu_);
  if (notifier_) notifier_();
}

}  // namespace fox
