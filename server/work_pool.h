// A small fixed pool of threads for the request work that is too heavy for
// an I/O thread: parsing a large body, rendering a chat template, tokenizing
// an 8 MB prompt. An I/O thread that did this itself would stall every other
// connection on it (their stream chunks, their keep-alive comments) for as
// long as the parse takes. The queue is bounded: past it, TryPost refuses,
// and the caller answers 429 instead of queueing without limit.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fox {

class WorkPool {
 public:
  // `num_threads` >= 1 workers; at most `max_queued` tasks wait for one.
  WorkPool(int num_threads, size_t max_queued);
  // Runs what is queued, then joins the workers.
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task` (run on a worker, in order of posting among waiting tasks);
  // false, and `task` dropped, when max_queued tasks already wait. A task
  // must not throw.
  bool TryPost(std::function<void()> task);

  // Tasks waiting for a worker (not counting those running).
  size_t num_queued() const;

 private:
  void Run();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fox
