// control/preclass_pool: results equal to a direct classify(), the queue's bound with exact counts,
// every callback on the io_context's thread exactly once, stop with work queued and under way. The
// engine is the real one (pipeline/preclass.h) over the fixtures of tests/data/preclass.
#include "control/preclass_pool.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sluice::control {
namespace {

using pipeline::Preclassifier;
using pipeline::PreclassLimits;
using pipeline::PreclassResult;

const std::filesystem::path kData = std::filesystem::path(__FILE__).parent_path() / "../../data/preclass";

PreclassPool::Bytes bytes_of(const std::string& s) {
  return std::make_shared<const std::vector<uint8_t>>(s.begin(), s.end());
}

PreclassPool::Bytes fixture(const std::string& name) {
  std::ifstream in(kData / name, std::ios::binary);
  const std::string s(std::istreambuf_iterator<char>(in), {});
  EXPECT_FALSE(s.empty()) << name;
  return bytes_of(s);
}

// Everything a result says but how long it took.
void expect_same(const PreclassResult& got, const PreclassResult& want, const std::string& what) {
  EXPECT_EQ(got.dynamic, want.dynamic) << what;
  EXPECT_EQ(got.reasons, want.reasons) << what;
  EXPECT_EQ(got.alerts, want.alerts) << what;
  EXPECT_EQ(got.limits, want.limits) << what;
  EXPECT_EQ(got.clam_type, want.clam_type) << what;
  EXPECT_EQ(got.metadata, want.metadata) << what;
  EXPECT_EQ(got.error, want.error) << what;
}

class PreclassPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    engine_ = Preclassifier::create(PreclassLimits{}, pipeline::default_signatures_dir(), error).release();
    ASSERT_NE(engine_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  static const Preclassifier& engine() { return *engine_; }

  static Preclassifier* engine_;
};
Preclassifier* PreclassPoolTest::engine_ = nullptr;

TEST_F(PreclassPoolTest, ResultsEqualADirectClassify) {
  const std::vector<std::string> names = {"macro.docm", "plain.docx", "macro.doc", "plain.doc", "js.pdf",
                                          "plain.pdf",  "setup.exe",  "pe.zip",    "notes.txt", "cradle.ps1"};
  PreclassPool pool(engine(), {2, 16});
  pool.start();
  boost::asio::io_context io;
  std::map<std::string, PreclassResult> got;
  std::map<std::string, std::thread::id> thread_of;
  uint64_t bytes = 0;
  for (const std::string& name : names) {
    const auto data = fixture(name);
    bytes += data->size();
    ASSERT_TRUE(pool.submit(data, name, [&, name](PreclassResult r) {
      thread_of[name] = std::this_thread::get_id();
      got[name] = std::move(r);
    }, io));
  }
  // No bytes at all: an empty file.
  ASSERT_TRUE(pool.submit(nullptr, "empty.txt", [&](PreclassResult r) { got["(null)"] = std::move(r); }, io));
  // Each accepted job holds work on the io_context: run() returns once every result is in.
  io.run();

  ASSERT_EQ(got.size(), names.size() + 1);
  for (const std::string& name : names) {
    const auto data = fixture(name);
    expect_same(got[name], engine().classify(data->data(), data->size(), name), name);
    EXPECT_EQ(thread_of[name], std::this_thread::get_id()) << name << ": not on the io_context's thread";
  }
  expect_same(got["(null)"], engine().classify(nullptr, 0, "empty.txt"), "(null)");
  // The pairs really differ: the comparison above is not between empty results.
  EXPECT_TRUE(got["macro.docm"].dynamic);
  EXPECT_FALSE(got["plain.docx"].dynamic);

  const PreclassPoolStats s = pool.stats();
  EXPECT_EQ(s.submitted, names.size() + 1);
  EXPECT_EQ(s.done, names.size() + 1);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.stopped, 0u);
  EXPECT_EQ(s.rejected_full, 0u);
  EXPECT_EQ(s.bytes, bytes);
  EXPECT_GT(s.busy_ms, 0);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.running, 0u);
}

TEST_F(PreclassPoolTest, AFailedScanIsDeliveredAndCountedAsFailed) {
  PreclassLimits small;
  small.max_file_bytes = 1 << 20;
  std::string error;
  const auto strict = Preclassifier::create(small, pipeline::default_signatures_dir(), error);
  ASSERT_NE(strict, nullptr) << error;
  PreclassPool pool(*strict, {});
  pool.start();
  boost::asio::io_context io;
  const auto big = bytes_of(std::string((1 << 20) + 1, 'a'));
  PreclassResult got;
  int calls = 0;
  ASSERT_TRUE(pool.submit(big, "big.txt", [&](PreclassResult r) {
    ++calls;
    got = std::move(r);
  }, io));
  io.run();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(got.error.empty());
  expect_same(got, strict->classify(big->data(), big->size(), "big.txt"), "big.txt");
  const PreclassPoolStats s = pool.stats();
  EXPECT_EQ(s.done, 0u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.bytes, big->size());
}

TEST_F(PreclassPoolTest, TheQueueIsBoundedWithExactCounts) {
  // Not started yet: nothing leaves the queue, so the count is exact.
  PreclassPool pool(engine(), {1, 3});
  boost::asio::io_context io;
  const auto text = fixture("notes.txt");
  int calls = 0;
  std::vector<bool> accepted;
  for (int i = 0; i < 5; ++i) accepted.push_back(pool.submit(text, "notes.txt", [&](PreclassResult) { ++calls; }, io));
  EXPECT_EQ(accepted, (std::vector<bool>{true, true, true, false, false}));
  PreclassPoolStats s = pool.stats();
  EXPECT_EQ(s.submitted, 3u);
  EXPECT_EQ(s.rejected_full, 2u);
  EXPECT_EQ(s.queued, 3u);

  pool.start();
  io.run();
  EXPECT_EQ(calls, 3);  // the refused jobs' callbacks are never called
  s = pool.stats();
  EXPECT_EQ(s.done, 3u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.rejected_full, 2u);

  // Room again once the queue drained.
  io.restart();
  EXPECT_TRUE(pool.submit(text, "notes.txt", [&](PreclassResult) { ++calls; }, io));
  io.run();
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(pool.stats().submitted, 4u);
}

TEST_F(PreclassPoolTest, ConcurrentSubmittersAreCountedExactly) {
  PreclassPool pool(engine(), {2, 4});
  pool.start();
  boost::asio::io_context io;
  const auto text = fixture("notes.txt");
  std::atomic<int> accepted{0};
  int calls = 0;  // only the io_context's thread touches it
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t)
    submitters.emplace_back([&] {
      for (int i = 0; i < 50; ++i)
        if (pool.submit(text, "notes.txt", [&](PreclassResult r) { calls += r.error.empty(); }, io)) ++accepted;
    });
  for (auto& t : submitters) t.join();
  io.run();
  const PreclassPoolStats s = pool.stats();
  EXPECT_EQ(s.submitted + s.rejected_full, 200u);
  EXPECT_EQ(s.submitted, static_cast<uint64_t>(accepted.load()));
  EXPECT_EQ(calls, accepted.load());
  EXPECT_EQ(s.done, s.submitted);
  EXPECT_GE(s.submitted, 4u);  // at least the queue's worth went in
}

TEST_F(PreclassPoolTest, CallbacksRunOnTheIoContextsThread) {
  PreclassPool pool(engine(), {2, 8});
  pool.start();
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::promise<std::thread::id> io_id;
  std::thread io_thread([&] {
    io_id.set_value(std::this_thread::get_id());
    io.run();
  });
  const std::thread::id io_thread_id = io_id.get_future().get();

  std::vector<std::thread::id> seen;  // written on the io thread only
  std::promise<void> all;
  const int n = 6;
  for (int i = 0; i < n; ++i)
    ASSERT_TRUE(pool.submit(fixture(i % 2 ? "js.pdf" : "macro.docm"), "f", [&](PreclassResult r) {
      EXPECT_EQ(r.error, "");
      seen.push_back(std::this_thread::get_id());
      if (static_cast<int>(seen.size()) == n) all.set_value();
    }, io));
  all.get_future().wait();
  guard.reset();
  io_thread.join();
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(n));
  for (const auto& id : seen) {
    EXPECT_EQ(id, io_thread_id);
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST_F(PreclassPoolTest, StopDeliversQueuedWorkAsStoppedAndRefusesMore) {
  PreclassPool pool(engine(), {1, 4});  // never started: everything is still queued at stop()
  boost::asio::io_context io;
  std::vector<int> calls(4, 0);
  std::vector<PreclassResult> got(4);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(pool.submit(fixture("macro.docm"), "macro.docm", [&, i](PreclassResult r) {
      ++calls[i];
      got[i] = std::move(r);
    }, io));
  pool.stop();
  EXPECT_FALSE(pool.submit(fixture("notes.txt"), "notes.txt", [&](PreclassResult) { ADD_FAILURE(); }, io));
  pool.stop();  // idempotent
  pool.start();  // does nothing after stop()
  io.run();
  EXPECT_EQ(calls, (std::vector<int>{1, 1, 1, 1}));
  for (const PreclassResult& r : got) {
    EXPECT_EQ(r.error, PreclassPool::kStopped);
    EXPECT_EQ(r.error, "stopped");
    EXPECT_FALSE(r.dynamic);
  }
  const PreclassPoolStats s = pool.stats();
  EXPECT_EQ(s.submitted, 4u);
  EXPECT_EQ(s.stopped, 4u);
  EXPECT_EQ(s.done, 0u);
  EXPECT_EQ(s.rejected_stopped, 1u);
  EXPECT_EQ(s.queued, 0u);
}

TEST_F(PreclassPoolTest, StopWithScansUnderWayLosesNoCallback) {
  boost::asio::io_context io;
  const int n = 8;
  std::vector<int> calls(n, 0);
  std::vector<PreclassResult> got(n);
  PreclassPoolStats s;
  {
    PreclassPool pool(engine(), {1, 8});
    pool.start();
    // A first file long enough (8 MiB of text, tens of milliseconds) that the thread is most
    // likely scanning it when stop() comes; which jobs ran is up to the scheduler, the counts
    // below hold either way.
    ASSERT_TRUE(pool.submit(bytes_of(std::string(8 << 20, 'x')), "big.txt", [&](PreclassResult r) {
      ++calls[0];
      got[0] = std::move(r);
    }, io));
    for (int i = 1; i < n; ++i)
      ASSERT_TRUE(pool.submit(fixture("plain.pdf"), "plain.pdf", [&, i](PreclassResult r) {
        ++calls[i];
        got[i] = std::move(r);
      }, io));
    pool.stop();
    s = pool.stats();
  }  // the destructor after stop() does nothing more
  io.run();
  EXPECT_EQ(calls, std::vector<int>(n, 1));
  uint64_t stopped = 0;
  for (const PreclassResult& r : got) {
    if (r.error == PreclassPool::kStopped) {
      ++stopped;
    } else {
      EXPECT_EQ(r.error, "");
    }
  }
  EXPECT_EQ(s.submitted, static_cast<uint64_t>(n));
  EXPECT_EQ(s.stopped, stopped);
  EXPECT_EQ(s.done + s.failed + s.stopped, s.submitted);
  EXPECT_EQ(s.running, 0u);
  EXPECT_EQ(s.queued, 0u);
}

TEST_F(PreclassPoolTest, TheDestructorStopsAndStillDelivers) {
  boost::asio::io_context io;
  int stopped = 0;
  {
    PreclassPool pool(engine(), {1, 2});  // never started
    for (int i = 0; i < 2; ++i)
      ASSERT_TRUE(pool.submit(fixture("notes.txt"), "notes.txt",
                              [&](PreclassResult r) { stopped += r.error == PreclassPool::kStopped; }, io));
  }
  io.run();
  EXPECT_EQ(stopped, 2);
}

TEST_F(PreclassPoolTest, ZeroLimitsAreReadAsOne) {
  PreclassPool pool(engine(), {0, 0});
  EXPECT_EQ(pool.limits().threads, 1u);
  EXPECT_EQ(pool.limits().max_queued, 1u);
}

}  // namespace
}  // namespace sluice::control
