// ServerConfig::s3*: a server storing into the S3 engine scripts/test.sh starts
// (KNSOCK_S3_ENDPOINT, KNSOCK_S3_BUCKET; skipped without one unless KNSOCK_REQUIRE_S3=1); the
// object is checked through skip-unchanged with checksums, with no S3 client here.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#include "util.hpp"

namespace {

using test::TempDir;

/// The S3 tests: skipped without an engine, unless KNSOCK_REQUIRE_S3=1 (which scripts/test.sh
/// sets, so CI never skips them silently): then they fail.
class S3 : public ::testing::Test {
 protected:
  void SetUp() override {
    const char *endpoint = std::getenv("KNSOCK_S3_ENDPOINT");
    const char *bucket = std::getenv("KNSOCK_S3_BUCKET");
    if (endpoint && *endpoint && bucket && *bucket) return;
    const std::string why =
        "no S3 engine: set KNSOCK_S3_ENDPOINT and KNSOCK_S3_BUCKET (an existing bucket there; "
        "keys knsock-test / knsock-test-secret), as scripts/test.sh does when it starts "
        "SeaweedFS";
    const char *require = std::getenv("KNSOCK_REQUIRE_S3");
    if (require && std::string(require) == "1")
      FAIL() << why << " (KNSOCK_REQUIRE_S3=1: S3 tests must run)";
    GTEST_SKIP() << why << " (KNSOCK_REQUIRE_S3=1 makes this a failure)";
  }
};

/// A config storing into s3://BUCKET/cpp-PID-TAG on the test engine (S3::SetUp checked it).
knsock::ServerConfig s3_config(const TempDir &spool, const std::string &tag) {
  const char *endpoint = std::getenv("KNSOCK_S3_ENDPOINT");
  const char *bucket = std::getenv("KNSOCK_S3_BUCKET");
  auto cfg = test::local_config(spool);
  cfg.s3 = std::string("s3://") + bucket + "/cpp-" + std::to_string(getpid()) + "-" + tag;
  cfg.s3_endpoint = endpoint;
  cfg.s3_path_style = true;
  cfg.s3_region = "us-east-1";
  cfg.s3_access_key = "knsock-test";
  cfg.s3_secret_key = "knsock-test-secret";
  return cfg;
}

/// Sends `path` with skip-unchanged and checksums; whether the receiver skipped it.
bool skipped(uint16_t port, const std::string &path) {
  knsock::SendOptions o;
  o.skip_unchanged = true;
  o.checksum = true;
  auto out = knsock::send_files("127.0.0.1", port, {path}, o);
  EXPECT_EQ(out.size(), 1u);
  if (out.size() != 1) return false;
  EXPECT_TRUE(out[0].result.ok()) << out[0].result.message;
  return out[0].skipped;
}

TEST_F(S3, RoundTripIntoTheBucket) {
  TempDir src("src"), spool("spool");
  const std::string file = src / "report.bin";
  test::random_file(file, 300000, 1);
  std::mutex mu;
  std::vector<std::string> paths;
  auto cfg = s3_config(spool, "trip");
  cfg.on_received = [&](const knsock::FileInfo &f) {
    std::lock_guard<std::mutex> lock(mu);
    paths.push_back(f.path);
  };
  knsock::Server server(cfg);
  knsock::send_file("127.0.0.1", server.port(), file);
  EXPECT_FALSE(std::filesystem::exists(spool / "report.bin"));  // the bucket has it

  // The object holds the file's digest: the same content is skipped.
  EXPECT_TRUE(skipped(server.port(), file));
  // Other bytes, same size and mtime: only the digest tells them apart, so they are sent.
  auto mtime = std::filesystem::last_write_time(file);
  test::random_file(file, 300000, 2);
  std::filesystem::last_write_time(file, mtime);
  EXPECT_FALSE(skipped(server.port(), file));
  EXPECT_TRUE(skipped(server.port(), file));

  server = knsock::Server();  // stopped: every handler has run
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], cfg.s3 + "/report.bin");
  EXPECT_EQ(paths[1], cfg.s3 + "/report.bin");
}

TEST_F(S3, RefusedKeysAndMisuseFailTheStart) {
  TempDir spool("spool");
  auto cfg = s3_config(spool, "refused");
  cfg.s3_secret_key = "wrong-secret";
  try {
    knsock::Server s(cfg);
    FAIL() << "a wrong secret must fail the start";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_STORE);
    EXPECT_NE(std::string(e.what()).find("access denied"), std::string::npos) << e.what();
  }

  // The adjusters without a bucket: refused, and the message says what comes first.
  cfg = s3_config(spool, "refused");
  cfg.s3.clear();
  knsock::Result r;
  knsock::Server s = knsock::Server::start(cfg, &r);
  EXPECT_FALSE(s);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("knsock_server_config_set_s3"), std::string::npos) << r.message;
}

}  // namespace
