#include "server/work_pool.h"

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace fox {
namespace {

TEST(WorkPoolTest, RunsEveryTaskOnItsWorkers) {
  std::atomic<int> ran{0};
  std::mutex mu;
  std::set<std::thread::id> threads;
  {
    WorkPool pool(2, 1000);
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(pool.TryPost([&] {
        ++ran;
        std::lock_guard<std::mutex> lock(mu);
        threads.insert(std::this_thread::get_id());
      }));
    }
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_LE(threads.size(), 2u);
}

TEST(WorkPoolTest, RefusesPastTheQueueBound) {
  WorkPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.TryPost([&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();  // the worker is busy: the next ones queue
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.TryPost([&] { ++ran; }));
  EXPECT_TRUE(pool.TryPost([&] { ++ran; }));
  EXPECT_EQ(pool.num_queued(), 2u);
  EXPECT_FALSE(pool.TryPost([&] { ran += 100; })) << "a third waiting task is refused";
  release.set_value();
  while (pool.num_queued() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(pool.TryPost([&] { ++ran; })) << "room again once the queue drains";
  while (ran.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(ran.load(), 3);
}

}  // namespace
}  // namespace fox
