// TLS and authentication through the C++ binding: round trips with a pin (one file, 2,000
// files, resume after a cut, compression), a wrong pin refused with KNSOCK_RESULT_AUTH, a token
// whose identity reaches the received handler, a wrong token, and the settings' own checks.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;


const char *const kWrongPin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// What the received handler saw; it runs after the sender was told, so tests wait for it.
struct Received {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<knsock::FileInfo> files;

  std::function<void(const knsock::FileInfo &)> handler() {
    return [this](const knsock::FileInfo &f) {
      std::lock_guard<std::mutex> lock(mu);
      files.push_back(f);
      cv.notify_all();
    };
  }
  /// The n-th file received (from 1); fails the test after 30 s.
  knsock::FileInfo wait(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    bool ok = cv.wait_for(lock, std::chrono::seconds(30), [&] { return files.size() >= n; });
    EXPECT_TRUE(ok) << "the received handler was not called";
    return ok ? files[n - 1] : knsock::FileInfo{};
  }
};

/// A TLS server (self-signed identity in `state`) on 127.0.0.1 storing into `dst`.
knsock::ServerConfig tls_config(const TempDir &dst, const TempDir &state) {
  auto cfg = test::local_config(dst);
  cfg.tls_self_signed = state / "identity";
  cfg.resume_ttl = std::chrono::minutes(10);
  return cfg;
}

/// `<dir>/tokens`, mode 0600, accepting alice:alice-secret.
std::string tokens_file(const TempDir &dir) {
  std::string path = dir / "tokens";
  std::string line = "alice:" + knsock::hash_token("alice-secret") + "\n";
  test::write_file(path, std::vector<char>(line.begin(), line.end()));
  chmod(path.c_str(), 0600);
  return path;
}

knsock::SendOptions pinned(const std::string &pin, const std::string &token = {}) {
  knsock::SendOptions o;
  o.pin = pin;
  o.token = token;
  return o;
}

TEST(Tls, OneFileWithThePinAndNoIdentity) {
  TempDir src("src"), dst("dst"), state("state");
  Received got;
  auto cfg = tls_config(dst, state);
  cfg.on_received = got.handler();
  knsock::Server server(cfg);
  std::string pin = server.tls_pin();
  ASSERT_EQ(pin.rfind("sha256//", 0), 0u) << pin;
  ASSERT_EQ(pin.size(), 52u);
  auto data = test::random_file(src / "one.bin", 3 << 20, 1);
  knsock::send_file("127.0.0.1", server.port(), src / "one.bin", pinned(pin));
  EXPECT_EQ(test::read_file(dst / "one.bin"), data);
  EXPECT_EQ(got.wait(1).identity, "");
  // A plain server has no pin.
  TempDir plain_dst("plain");
  knsock::Server plain(test::local_config(plain_dst));
  EXPECT_EQ(plain.tls_pin(), "");
}

TEST(Tls, TwoThousandFilesResumeAndCompression) {
  TempDir src("src"), dst("dst"), state("state");
  knsock::Server server(tls_config(dst, state));
  auto opts = pinned(server.tls_pin());
  std::vector<std::string> paths;
  for (uint32_t i = 0; i < 2000; ++i) {
    paths.push_back(src / ("f" + std::to_string(i) + ".txt"));
    test::random_file(paths.back(), 4096, i);
  }
  auto outcomes = knsock::send_files("127.0.0.1", server.port(), paths, opts);
  ASSERT_EQ(outcomes.size(), 2000u);
  for (const auto &o : outcomes) ASSERT_TRUE(o.result) << o.name << ": " << o.result.message;
  EXPECT_EQ(dst.entries().size(), 2000u);
  EXPECT_EQ(test::read_file(dst / "f1999.txt"), test::read_file(paths.back()));

  // Resume: the first attempt is cut at 3/4 (its connection closed mid-content); the second
  // starts where the receiver's kept data ends: what it had read when the connection went, at
  // most the socket buffers (a few MiB) less than was sent, hence the wide margin below.
  const uint64_t big = 32 << 20;
  auto data = test::random_file(src / "big.bin", big, 7);
  auto cut = opts;
  cut.progress = [&](std::string_view, uint64_t sent, uint64_t) { return sent < big / 4 * 3; };
  auto r = knsock::try_send_file("127.0.0.1", server.port(), src / "big.bin", cut);
  ASSERT_EQ(r.code, KNSOCK_RESULT_ABORTED_BY_CALLBACK) << r.message;
  uint64_t first = 0;
  bool called = false;
  auto again = opts;
  again.progress = [&](std::string_view, uint64_t sent, uint64_t) {
    if (!called) first = sent;
    called = true;
    return true;
  };
  knsock::send_file("127.0.0.1", server.port(), src / "big.bin", again);
  EXPECT_GE(first, big / 8);
  EXPECT_EQ(test::read_file(dst / "big.bin"), data);

  // Compression.
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "compressible line of text\n";
  test::write_file(src / "text.log", std::vector<char>(text.begin(), text.end()));
  auto zopts = opts;
  zopts.compress = true;
  knsock::send_file("127.0.0.1", server.port(), src / "text.log", zopts);
  EXPECT_EQ(test::read_file(dst / "text.log"), test::read_file(src / "text.log"));
}

TEST(Tls, AWrongPinIsAnAuthenticationFailure) {
  TempDir src("src"), dst("dst"), state("state");
  knsock::Server server(tls_config(dst, state));
  test::random_file(src / "x.bin", 100, 2);
  auto r = knsock::try_send_file("127.0.0.1", server.port(), src / "x.bin", pinned(kWrongPin));
  EXPECT_EQ(r.code, KNSOCK_RESULT_AUTH);
  EXPECT_NE(r.message.find("does not match the pin"), std::string::npos) << r.message;
  EXPECT_TRUE(dst.entries().empty());
  try {
    knsock::send_file("127.0.0.1", server.port(), src / "x.bin", pinned(kWrongPin));
    ADD_FAILURE() << "no exception";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_AUTH);
  }
}

TEST(Tls, ATokenGivesTheIdentityAndAWrongOneIsRefused) {
  TempDir src("src"), dst("dst"), state("state");
  Received got;
  auto cfg = tls_config(dst, state);
  cfg.tokens_file = tokens_file(state);
  cfg.on_received = got.handler();
  knsock::Server server(cfg);
  test::random_file(src / "a.bin", 1000, 3);

  auto r = knsock::try_send_file("127.0.0.1", server.port(), src / "a.bin",
                                 pinned(server.tls_pin(), "alice:guess"));
  EXPECT_EQ(r.code, KNSOCK_RESULT_AUTH);
  EXPECT_EQ(r.peer_code, 12);
  EXPECT_NE(r.message.find("wrong token"), std::string::npos) << r.message;
  EXPECT_TRUE(dst.entries().empty());

  knsock::send_file("127.0.0.1", server.port(), src / "a.bin",
                    pinned(server.tls_pin(), "alice:alice-secret"));
  auto info = got.wait(1);
  EXPECT_EQ(info.identity, "alice");
  EXPECT_EQ(info.name, "a.bin");
}

TEST(Tls, SettingsAreCheckedWithTheirReason) {
  TempDir src("src"), dst("dst"), state("state");
  test::random_file(src / "x.bin", 10, 4);
  auto bad_pin = pinned("sha256//short");
  auto r = knsock::try_send_file("127.0.0.1", 9, src / "x.bin", bad_pin);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("pin must look like"), std::string::npos) << r.message;
  auto bad_token = pinned(kWrongPin, "no-colon");
  r = knsock::try_send_file("127.0.0.1", 9, src / "x.bin", bad_token);
  EXPECT_NE(r.message.find("NAME:SECRET"), std::string::npos) << r.message;

  auto cfg = test::local_config(dst);
  cfg.tokens_file = tokens_file(state);  // without TLS
  knsock::Result started;
  auto server = knsock::Server::start(cfg, &started);
  EXPECT_FALSE(server);
  EXPECT_EQ(started.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(started.message.find("need TLS"), std::string::npos) << started.message;
  cfg.tokens_file.clear();
  cfg.mode_mask = 010000;
  server = knsock::Server::start(cfg, &started);
  EXPECT_NE(started.message.find("mode mask"), std::string::npos) << started.message;

  std::string hash;
  EXPECT_EQ(knsock::try_hash_token("", &hash).code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_TRUE(knsock::try_hash_token("s", &hash));
  EXPECT_EQ(hash.rfind("pbkdf2-sha256$", 0), 0u) << hash;
}

}  // namespace
