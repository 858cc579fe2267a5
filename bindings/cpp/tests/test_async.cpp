// knsock::Transfer: async sends, futures, cancel, timeouts, destruction while running.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

/// Options whose progress callback holds the sender after its first chunk until `gate` opens.
knsock::SendOptions held_by(test::Gate &gate) {
  knsock::SendOptions opts;
  opts.chunk_size = 64 * 1024;
  opts.progress = [&gate](std::string_view, uint64_t sent, uint64_t) {
    if (sent == 64 * 1024) {
      gate.arrive();
      return gate.wait_open();
    }
    return true;
  };
  return opts;
}

TEST(Async, FutureCompletesAfterTheReceiverHasTheFile) {
  TempDir src("src"), dst("dst");
  auto data = test::random_file(src / "a.bin", 2 * 1024 * 1024, 30);
  knsock::Server server(test::local_config(dst));
  knsock::Transfer t = knsock::send_file_async("127.0.0.1", server.port(), src / "a.bin");
  std::future<void> done = t.get_future();
  done.get();  // throws knsock::Error on failure
  EXPECT_EQ(test::read_file(dst / "a.bin"), data);
  auto [sent, total] = t.progress();
  EXPECT_EQ(sent, data.size());
  EXPECT_EQ(total, data.size());
  EXPECT_TRUE(t.wait());
}

TEST(Async, FutureCarriesTheError) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "a.bin", 100, 31);
  auto cfg = test::local_config(dst);
  cfg.validate_before = [](const knsock::FileInfo &) -> std::optional<std::string> {
    return "closed for maintenance";
  };
  knsock::Server server(cfg);
  knsock::Transfer t = knsock::send_file_async("127.0.0.1", server.port(), src / "a.bin");
  auto done = t.get_future();
  try {
    done.get();
    FAIL() << "must throw";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_REJECTED);
    EXPECT_EQ(e.peer_reason(), "closed for maintenance");
  }
  EXPECT_THROW(t.get(), knsock::Error);
}

TEST(Async, TwentyConcurrentSendsToOneServer) {
  TempDir src("src"), dst("dst");
  constexpr int kSends = 20;
  std::vector<std::vector<char>> data;
  for (int i = 0; i < kSends; ++i)
    data.push_back(test::random_file(src / ("f" + std::to_string(i)), 256 * 1024 + i, 40 + i));
  knsock::Server server(test::local_config(dst));
  std::vector<knsock::Transfer> transfers;
  for (int i = 0; i < kSends; ++i)
    transfers.push_back(
        knsock::send_file_async("127.0.0.1", server.port(), src / ("f" + std::to_string(i))));
  for (auto &t : transfers) {
    knsock::Result r = t.wait();
    EXPECT_TRUE(r) << r.message;
  }
  for (int i = 0; i < kSends; ++i)
    EXPECT_EQ(test::read_file(dst / ("f" + std::to_string(i))), data[i]) << i;
  EXPECT_EQ(dst.entries().size(), static_cast<std::size_t>(kSends));
}

TEST(Async, CancelMidTransfer) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "big.bin", 8 * 1024 * 1024, 50);
  knsock::Server server(test::local_config(dst));
  test::Gate gate;
  knsock::Transfer t =
      knsock::send_file_async("127.0.0.1", server.port(), src / "big.bin", held_by(gate));
  ASSERT_TRUE(gate.wait_arrived(1));
  EXPECT_FALSE(t.wait_for(std::chrono::milliseconds(50)));  // held: the wait expires
  t.cancel();
  gate.open();
  knsock::Result r = t.wait();
  EXPECT_EQ(r.code, KNSOCK_RESULT_CANCELLED);
  EXPECT_FALSE(r.message.empty());
  server.stop();
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Async, DestroyingARunningTransferCancelsIt) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "big.bin", 1024 * 1024, 51);
  test::Gate gate;  // declared before the server, whose validator uses it
  auto cfg = test::local_config(dst);
  // The server holds the offer in its validator: the sender waits for the answer.
  cfg.validate_before = [&gate](const knsock::FileInfo &) -> std::optional<std::string> {
    gate.arrive();
    if (!gate.wait_open()) return "test gate never opened";
    return std::nullopt;
  };
  knsock::Server server(cfg);
  {
    knsock::Transfer t = knsock::send_file_async("127.0.0.1", server.port(), src / "big.bin");
    ASSERT_TRUE(gate.wait_arrived(1));
    EXPECT_FALSE(t.wait_for(std::chrono::milliseconds(0)));
  }  // ~Transfer: cancels, and waits for its thread
  gate.open();
  server.stop();  // the worker has seen the sender go
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Async, MovedTransfersKeepWorking) {
  TempDir src("src"), dst("dst");
  auto data = test::random_file(src / "a.bin", 300000, 52);
  knsock::Server server(test::local_config(dst));
  knsock::Transfer a = knsock::send_file_async("127.0.0.1", server.port(), src / "a.bin");
  knsock::Transfer b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.wait().code, KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock::Transfer c;
  c = std::move(b);
  EXPECT_TRUE(c.wait());
  EXPECT_EQ(test::read_file(dst / "a.bin"), data);
}

TEST(Async, StartFailureIsReported) {
  knsock::Result r;
  knsock::Transfer t = knsock::Transfer::start("127.0.0.1", 1, "/nonexistent/file", {}, &r);
  // The path is checked on the transfer's thread or at once; either way the outcome says so.
  if (t) r = t.wait();
  EXPECT_EQ(r.code, KNSOCK_RESULT_NOT_FOUND);
  EXPECT_FALSE(r.message.empty());
}

}  // namespace

namespace {

// A duration too long for int64_t milliseconds waits without limit instead of overflowing to
// an immediate timeout.
TEST(Async, WaitForTheLongestDurationWaitsForTheEnd) {
  TempDir src("src"), dst("dst");
  auto data = test::random_file(src / "a.bin", 1024 * 1024, 40);
  knsock::Server server(test::local_config(dst));
  knsock::Transfer t = knsock::send_file_async("127.0.0.1", server.port(), src / "a.bin");
  EXPECT_TRUE(t.wait_for(std::chrono::hours::max()));
  EXPECT_TRUE(t.wait());
  EXPECT_EQ(test::read_file(dst / "a.bin"), data);
  knsock::Transfer u = knsock::send_file_async("127.0.0.1", server.port(), src / "a.bin");
  EXPECT_TRUE(u.wait_for(std::chrono::duration<double>(1e300)));
  EXPECT_TRUE(u.wait());
}

TEST(Async, TimeoutsSaturateAndRoundUp) {
  using knsock::detail::timeout_ms;
  EXPECT_EQ(timeout_ms(std::chrono::hours::max()), -1);
  EXPECT_EQ(timeout_ms(std::chrono::nanoseconds::max()), 9223372036855);
  EXPECT_EQ(timeout_ms(std::chrono::hours::min()), 0);
  EXPECT_EQ(timeout_ms(std::chrono::seconds(-1)), 0);
  EXPECT_EQ(timeout_ms(std::chrono::microseconds(1)), 1);
  EXPECT_EQ(timeout_ms(std::chrono::milliseconds(1500)), 1500);
  EXPECT_EQ(timeout_ms(std::chrono::duration<double>(1e300)), -1);
}

// get_future() on a transfer with no state throws std::future_error(no_state), as
// std::promise does, instead of dereferencing nothing.
TEST(Async, GetFutureOnAnEmptyTransferThrows) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "a.bin", 100, 41);
  knsock::Server server(test::local_config(dst));
  knsock::Transfer t = knsock::send_file_async("127.0.0.1", server.port(), src / "a.bin");
  knsock::Transfer moved = std::move(t);
  try {
    (void)t.get_future();  // NOLINT(bugprone-use-after-move): the point of the test
    FAIL() << "must throw";
  } catch (const std::future_error &e) {
    EXPECT_EQ(e.code(), std::future_errc::no_state);
  }
  EXPECT_THROW((void)knsock::Transfer().get_future(), std::future_error);
  auto done = moved.get_future();
  EXPECT_THROW((void)moved.get_future(), std::future_error);
  done.get();
}

}  // namespace
