// knsock::Server: RAII, move semantics, handlers, stopping during transfers.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

TEST(Server, StartFailureThrowsOrReports) {
  TempDir dst("dst");
  auto cfg = test::local_config(dst);
  cfg.dir = dst / "does-not-exist";
  try {
    knsock::Server s(cfg);
    FAIL() << "a missing directory must throw";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("does-not-exist"), std::string::npos) << e.what();
  }
  knsock::Result r;
  knsock::Server s = knsock::Server::start(cfg, &r);
  EXPECT_FALSE(s);
  EXPECT_EQ(s.port(), 0);
  EXPECT_EQ(r.code, KNSOCK_RESULT_NOT_FOUND);

  cfg.dir = std::string(dst.str()) + std::string("\0/etc", 5);
  s = knsock::Server::start(cfg, &r);
  EXPECT_FALSE(s);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
}

TEST(Server, MoveKeepsTheServerAndMoveAssignmentStopsTheOldOne) {
  TempDir src("src"), dst1("dst1"), dst2("dst2");
  auto data = test::random_file(src / "f.bin", 50000, 10);

  knsock::Server a(test::local_config(dst1));
  const uint16_t port_a = a.port();
  knsock::Server b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(a.port(), 0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.port(), port_a);
  knsock::send_file("127.0.0.1", port_a, src / "f.bin");
  EXPECT_EQ(test::read_file(dst1 / "f.bin"), data);

  // Assigning another server over b stops the one b held: its port refuses connections.
  b = knsock::Server(test::local_config(dst2));
  EXPECT_NE(b.port(), port_a);
  knsock::SendOptions quick;
  quick.connect_timeout = std::chrono::milliseconds(2000);
  EXPECT_EQ(knsock::try_send_file("127.0.0.1", port_a, src / "f.bin", quick).code,
            KNSOCK_RESULT_CONNECT);
  knsock::send_file("127.0.0.1", b.port(), src / "f.bin");
  EXPECT_EQ(test::read_file(dst2 / "f.bin"), data);

  // Self-move leaves it running.
  knsock::Server &same = b;
  b = std::move(same);
  ASSERT_TRUE(b);
  knsock::send_file("127.0.0.1", b.port(), src / "f.bin");
}

TEST(Server, ErrorHandlerHearsOfRefusals) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "f.bin", 100, 11);
  auto cfg = test::local_config(dst);
  cfg.max_file_size = 10;
  std::mutex mu;
  std::vector<std::pair<knsock_result, std::string>> errors;
  cfg.on_error = [&](knsock_result code, const std::string &message, const std::string &peer) {
    std::lock_guard<std::mutex> lock(mu);
    errors.emplace_back(code, message + " from " + peer);
  };
  knsock::Server server(cfg);
  knsock::Result r = knsock::try_send_file("127.0.0.1", server.port(), src / "f.bin");
  EXPECT_EQ(r.code, KNSOCK_RESULT_REJECTED);
  server.stop();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, KNSOCK_RESULT_REJECTED);
  EXPECT_NE(errors[0].second.find("127.0.0.1:"), std::string::npos) << errors[0].second;
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Server, ThrowingHandlerDoesNotLoseTheFileAndIsReported) {
  TempDir src("src"), dst("dst");
  auto data = test::random_file(src / "f.bin", 1000, 12);
  auto cfg = test::local_config(dst);
  cfg.on_received = [](const knsock::FileInfo &) { throw std::runtime_error("handler bug"); };
  std::mutex mu;
  std::vector<std::string> errors;
  cfg.on_error = [&](knsock_result code, const std::string &message, const std::string &peer) {
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(std::to_string(code) + " " + message + " " + peer.substr(0, 10));
  };
  knsock::Server server(cfg);
  knsock::send_file("127.0.0.1", server.port(), src / "f.bin");
  knsock::send_file("127.0.0.1", server.port(), src / "f.bin");  // and the server goes on
  EXPECT_EQ(test::read_file(dst / "f.bin"), data);
  server.stop();
  std::lock_guard<std::mutex> lock(mu);
  const std::string want = std::to_string(KNSOCK_RESULT_ABORTED_BY_CALLBACK) +
                           " received handler threw: handler bug 127.0.0.1:";
  EXPECT_EQ(errors, (std::vector<std::string>{want, want}));
}

TEST(Server, DestructorDuringTransfersAbortsThemCleanly) {
  TempDir src("src"), dst("dst");
  constexpr int kSenders = 4;
  for (int i = 0; i < kSenders; ++i)
    test::random_file(src / ("f" + std::to_string(i)), 8 * 1024 * 1024, 20 + i);

  test::Gate gate;
  knsock::SendOptions opts;
  opts.chunk_size = 64 * 1024;
  opts.timeout = std::chrono::milliseconds(30000);
  // Each sender pauses once, after its first chunk went out: the server is mid-file.
  opts.progress = [&gate](std::string_view, uint64_t sent, uint64_t) {
    if (sent == 64 * 1024) {
      gate.arrive();
      return gate.wait_open();
    }
    return true;
  };
  std::vector<knsock::Transfer> transfers;
  {
    knsock::Server server(test::local_config(dst));
    for (int i = 0; i < kSenders; ++i)
      transfers.push_back(
          knsock::send_file_async("127.0.0.1", server.port(), src / ("f" + std::to_string(i)), opts));
    ASSERT_TRUE(gate.wait_arrived(kSenders));
  }  // ~Server: stops, aborts the four uploads, frees
  gate.open();
  for (auto &t : transfers) {
    knsock::Result r = t.wait();
    EXPECT_NE(r.code, KNSOCK_RESULT_OK);
    EXPECT_FALSE(r.message.empty());
  }
  EXPECT_TRUE(dst.entries().empty());  // no file, no temporary file
}

TEST(Server, WaitReturnsWhenStoppedFromACallback) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "last.bin", 10, 13);
  auto cfg = test::local_config(dst);
  // The callbacks outlive this scope's locals only through the server, so capture by pointer
  // to a value set after start.
  std::atomic<knsock::Server *> self{nullptr};
  cfg.on_received = [&self](const knsock::FileInfo &) { self.load()->stop(); };
  knsock::Server server(cfg);
  self = &server;
  std::thread sender([&] { knsock::send_file("127.0.0.1", server.port(), src / "last.bin"); });
  knsock::Result r = server.wait();  // the blocking server: returns once the handler stopped it
  sender.join();
  EXPECT_TRUE(r) << r.message;
  EXPECT_TRUE(std::filesystem::exists(dst / "last.bin"));
}

TEST(Server, StatsCountStoredAndRefusedFiles) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "ok.bin", 8, 12);
  test::random_file(src / "big.bin", 100, 13);
  auto cfg = test::local_config(dst);
  cfg.max_file_size = 10;
  knsock::Server server(cfg);
  knsock::send_file("127.0.0.1", server.port(), src / "ok.bin");
  EXPECT_EQ(knsock::try_send_file("127.0.0.1", server.port(), src / "big.bin").code,
            KNSOCK_RESULT_REJECTED);
  knsock::ServerStats s = server.stats();
  EXPECT_EQ(s.files_received, 1u);
  EXPECT_EQ(s.bytes_stored, 8u);
  EXPECT_EQ(s.connections_accepted, 2u);
  // Code 4: larger than the maximum (refused on its offer, or after it if sent eagerly).
  EXPECT_EQ(s.files_rejected[4] + s.files_failed[4], 1u);
  server.stop();
  EXPECT_EQ(server.stats().files_received, 1u);  // still readable once stopped
  knsock::Server empty;
  EXPECT_EQ(empty.stats().files_received, 0u);
}

}  // namespace
