// Blocking sends through the C++ binding: round trip, refusals as exceptions, throwing callbacks.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

TEST(Send, RoundTripWithLambdaCallbacks) {
  TempDir src("src"), dst("dst");
  auto data = test::random_file(src / "photo.raw", 3 * 1024 * 1024 + 17, 1);

  std::mutex mu;
  std::vector<knsock::FileInfo> received;
  auto cfg = test::local_config(dst);
  cfg.on_received = [&](const knsock::FileInfo &f) {
    std::lock_guard<std::mutex> lock(mu);
    received.push_back(f);
  };
  knsock::Server server(cfg);
  ASSERT_NE(server.port(), 0);

  uint64_t last_sent = 0, calls = 0;
  knsock::SendOptions opts;
  opts.chunk_size = 256 * 1024;
  opts.progress = [&](std::string_view name, uint64_t sent, uint64_t total) {
    EXPECT_EQ(name, "photo.raw");
    EXPECT_EQ(total, data.size());
    EXPECT_GE(sent, last_sent);
    last_sent = sent;
    ++calls;
    return true;
  };
  knsock::send_file("127.0.0.1", server.port(), src / "photo.raw", opts);

  EXPECT_EQ(test::read_file(dst / "photo.raw"), data);
  EXPECT_EQ(last_sent, data.size());
  EXPECT_GE(calls, 13u);  // once at 0, then per 256 KiB chunk
  // send_file returns after the receiver acknowledged; the handler runs after that.
  server.stop();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].name, "photo.raw");
  EXPECT_EQ(received[0].size, data.size());
  EXPECT_EQ(received[0].path, dst / "photo.raw");
  EXPECT_NE(received[0].peer.find("127.0.0.1:"), std::string::npos);
}

TEST(Send, RemoteNameAndEmptyFile) {
  TempDir src("src"), dst("dst");
  test::write_file(src / "empty", {});
  knsock::Server server(test::local_config(dst));
  knsock::SendOptions opts;
  opts.remote_name = "renamed.txt";
  knsock::send_file("127.0.0.1", server.port(), src / "empty", opts);
  EXPECT_EQ(dst.entries(), std::vector<std::string>{"renamed.txt"});
  EXPECT_TRUE(test::read_file(dst / "renamed.txt").empty());
}

TEST(Send, ValidatorRejectionIsAnExceptionWithTheServersReason) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "tool.exe", 4096, 2);
  auto cfg = test::local_config(dst);
  std::atomic<int> asked{0};
  cfg.validate_before = [&](const knsock::FileInfo &f) -> std::optional<std::string> {
    ++asked;
    if (f.name.size() >= 4 && f.name.compare(f.name.size() - 4, 4, ".exe") == 0)
      return "executables are not accepted here";
    return std::nullopt;
  };
  knsock::Server server(cfg);
  try {
    knsock::send_file("127.0.0.1", server.port(), src / "tool.exe");
    FAIL() << "a refused file must throw";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_REJECTED);
    EXPECT_EQ(e.peer_reason(), "executables are not accepted here");
    EXPECT_NE(std::string(e.what()).find("executables are not accepted here"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(asked.load(), 1);
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Send, PostValidatorSeesTheVerifiedTemporaryFile) {
  TempDir src("src"), dst("dst");
  auto data = test::random_file(src / "report.csv", 100000, 3);
  auto cfg = test::local_config(dst);
  std::vector<char> seen;
  cfg.validate_after = [&](const knsock::FileInfo &f) -> std::optional<std::string> {
    seen = test::read_file(f.path);
    return "checked and refused";
  };
  knsock::Server server(cfg);
  knsock::Result r = knsock::try_send_file("127.0.0.1", server.port(), src / "report.csv");
  EXPECT_EQ(r.code, KNSOCK_RESULT_REJECTED);
  EXPECT_EQ(r.peer_reason, "checked and refused");
  EXPECT_EQ(seen, data);
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Send, ThrowingValidatorRefusesWithItsMessageAndTheServerGoesOn) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "a.bin", 1000, 4);
  auto cfg = test::local_config(dst);
  std::atomic<bool> fail{true};
  cfg.validate_before = [&](const knsock::FileInfo &) -> std::optional<std::string> {
    if (fail) throw std::runtime_error("quota lookup failed");
    return std::nullopt;
  };
  knsock::Server server(cfg);
  try {
    knsock::send_file("127.0.0.1", server.port(), src / "a.bin");
    FAIL() << "must throw";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_REJECTED);
    EXPECT_EQ(e.peer_reason(), "validator threw: quota lookup failed");
  }
  EXPECT_TRUE(dst.entries().empty());
  fail = false;
  knsock::send_file("127.0.0.1", server.port(), src / "a.bin");
  EXPECT_EQ(test::read_file(dst / "a.bin"), test::read_file(src / "a.bin"));
}

TEST(Send, ThrowingProgressCallbackAbortsWithItsMessage) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "big.bin", 4 * 1024 * 1024, 5);
  knsock::Server server(test::local_config(dst));
  knsock::SendOptions opts;
  opts.chunk_size = 64 * 1024;
  opts.progress = [](std::string_view, uint64_t sent, uint64_t) -> bool {
    if (sent >= 1024 * 1024) throw std::runtime_error("user pressed stop");
    return true;
  };
  try {
    knsock::send_file("127.0.0.1", server.port(), src / "big.bin", opts);
    FAIL() << "must throw";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_ABORTED_BY_CALLBACK);
    EXPECT_STREQ(e.what(), "progress callback threw: user pressed stop");
  }
  server.stop();  // the receiver has noticed the abort once its workers are done
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Send, ProgressReturningFalseAborts) {
  TempDir src("src"), dst("dst");
  test::random_file(src / "big.bin", 2 * 1024 * 1024, 6);
  knsock::Server server(test::local_config(dst));
  knsock::SendOptions opts;
  opts.chunk_size = 64 * 1024;
  opts.progress = [](std::string_view, uint64_t sent, uint64_t) { return sent < 512 * 1024; };
  knsock::Result r = knsock::try_send_file("127.0.0.1", server.port(), src / "big.bin", opts);
  EXPECT_EQ(r.code, KNSOCK_RESULT_ABORTED_BY_CALLBACK);
  EXPECT_FALSE(r.message.empty());
  server.stop();
  EXPECT_TRUE(dst.entries().empty());
}

TEST(Send, NonThrowingOverloadReportsCodeAndMessage) {
  TempDir src("src");
  test::random_file(src / "a.bin", 10, 7);
  test::RefusingPort refusing;
  const uint16_t port = refusing.port();
  knsock::SendOptions opts;
  opts.connect_timeout = std::chrono::milliseconds(2000);
  knsock::Result r = knsock::try_send_file("127.0.0.1", port, src / "a.bin", opts);
  EXPECT_FALSE(r);
  EXPECT_EQ(r.code, KNSOCK_RESULT_CONNECT);
  EXPECT_FALSE(r.message.empty());
  EXPECT_TRUE(r.peer_reason.empty());

  r = knsock::try_send_file("127.0.0.1", port, src / "missing.bin");
  EXPECT_EQ(r.code, KNSOCK_RESULT_NOT_FOUND);
  EXPECT_NE(r.message.find("missing.bin"), std::string::npos) << r.message;
}

TEST(Send, InvalidArgumentsAreErrorsNotCrashes) {
  TempDir src("src");
  test::random_file(src / "a.bin", 10, 8);
  knsock::Result r = knsock::try_send_file("", 1, src / "a.bin");
  EXPECT_NE(r.code, KNSOCK_RESULT_OK);
  EXPECT_FALSE(r.message.empty());
  // A string with an inner NUL would reach C cut short (here: naming a file that exists); the
  // binding refuses it instead.
  r = knsock::try_send_file("127.0.0.1", 1, std::string(src / "a.bin") + std::string("\0x", 2));
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("NUL"), std::string::npos) << r.message;
  knsock::SendOptions opts;
  opts.remote_name = std::string("a\0b", 3);
  r = knsock::try_send_file("127.0.0.1", 1, src / "a.bin", opts);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
}

}  // namespace
