// knsock::send_files: a tree over one connection, filters, per-file outcomes, batch progress.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

/// src/logs/{a.log, b.txt, sub/secret.log, sub/c.log}
std::vector<std::vector<char>> make_tree(const TempDir &src) {
  std::filesystem::create_directories(src.path() / "logs" / "sub");
  std::vector<std::vector<char>> data;
  const char *names[] = {"logs/a.log", "logs/b.txt", "logs/sub/secret.log", "logs/sub/c.log"};
  for (uint32_t i = 0; i < 4; ++i) data.push_back(test::random_file(src / names[i], 20000 + i, 60 + i));
  return data;
}

knsock::ServerConfig refusing_secrets(const TempDir &dst) {
  auto cfg = test::local_config(dst);
  cfg.validate_before = [](const knsock::FileInfo &f) -> std::optional<std::string> {
    if (f.name.find("secret") != std::string::npos) return "secrets stay home";
    return std::nullopt;
  };
  return cfg;
}

TEST(Batch, TreeWithFiltersAndPerFileOutcomes) {
  TempDir src("src"), dst("dst");
  auto data = make_tree(src);
  knsock::Server server(refusing_secrets(dst));

  knsock::SendOptions opts;
  opts.recursive = true;
  opts.include = {"*.log"};
  std::vector<knsock::BatchProgress> seen;
  std::vector<std::string> names;
  opts.batch_progress = [&](const knsock::BatchProgress &p) {
    seen.push_back(p);
    names.emplace_back(p.name);  // the view is only valid during the call
    return true;
  };
  auto outcomes = knsock::send_files("127.0.0.1", server.port(), {src / "logs"}, opts);

  ASSERT_EQ(outcomes.size(), 3u);  // b.txt filtered out
  EXPECT_EQ(outcomes[0].name, "logs/a.log");
  EXPECT_TRUE(outcomes[0].result) << outcomes[0].result.message;
  EXPECT_EQ(outcomes[0].bytes, 20000u);
  EXPECT_EQ(outcomes[0].path, src / "logs/a.log");
  EXPECT_EQ(outcomes[1].name, "logs/sub/c.log");
  EXPECT_TRUE(outcomes[1].result);
  EXPECT_EQ(outcomes[2].name, "logs/sub/secret.log");
  EXPECT_EQ(outcomes[2].result.code, KNSOCK_RESULT_REJECTED);
  EXPECT_EQ(outcomes[2].result.peer_reason, "secrets stay home");

  EXPECT_EQ(test::read_file(dst / "logs/a.log"), data[0]);
  EXPECT_EQ(test::read_file(dst / "logs/sub/c.log"), data[3]);
  EXPECT_FALSE(std::filesystem::exists(dst / "logs/sub/secret.log"));
  EXPECT_FALSE(std::filesystem::exists(dst / "logs/b.txt"));

  ASSERT_FALSE(seen.empty());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].count, 3u);
    EXPECT_EQ(seen[i].total, 20000u + 20003u + 20002u);
    if (i) {
      EXPECT_GE(seen[i].sent, seen[i - 1].sent);
    }
  }
  // Small files go eagerly: the refused one streams too, and is refused after its data.
  EXPECT_EQ(names.front(), "logs/a.log");
  EXPECT_EQ(names.back(), "logs/sub/secret.log");
  EXPECT_EQ(seen.back().sent, seen.back().total);
}

TEST(Batch, SkipUnchangedReportsSkips) {
  TempDir src("src"), dst("dst");
  make_tree(src);
  knsock::Server server(test::local_config(dst));
  knsock::SendOptions opts;
  opts.recursive = true;
  opts.skip_unchanged = true;
  auto first = knsock::send_files("127.0.0.1", server.port(), {src / "logs"}, opts);
  auto second = knsock::send_files("127.0.0.1", server.port(), {src / "logs"}, opts);
  ASSERT_EQ(second.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(first[i].skipped);
    EXPECT_EQ(first[i].bytes_sent, first[i].bytes);
    EXPECT_TRUE(second[i].skipped) << second[i].name;
    EXPECT_EQ(second[i].bytes_sent, 0u);
    EXPECT_TRUE(second[i].result);
  }
  // checksum compares content digests: still unchanged.
  opts.checksum = true;
  opts.delta = false;
  auto third = knsock::send_files("127.0.0.1", server.port(), {src / "logs"}, opts);
  ASSERT_EQ(third.size(), 4u);
  for (const auto& f : third) EXPECT_TRUE(f.skipped) << f.name;
}

TEST(Batch, ThrowingBatchProgressAbortsWithItsMessage) {
  TempDir src("src"), dst("dst");
  make_tree(src);
  knsock::Server server(test::local_config(dst));
  knsock::SendOptions opts;
  opts.recursive = true;
  opts.batch_progress = [](const knsock::BatchProgress &p) -> bool {
    if (p.index == 1) throw std::runtime_error("enough");
    return true;
  };
  auto outcomes = knsock::send_files("127.0.0.1", server.port(), {src / "logs"}, opts);
  ASSERT_EQ(outcomes.size(), 4u);
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(outcomes[i].result.code, KNSOCK_RESULT_ABORTED_BY_CALLBACK);
    EXPECT_EQ(outcomes[i].result.message, "progress callback threw: enough");
  }
  server.stop();
  EXPECT_FALSE(std::filesystem::exists(dst / "logs/b.txt"));
}

TEST(Batch, NothingAttemptedThrows) {
  TempDir src("src");
  make_tree(src);
  knsock::SendOptions opts;  // not recursive: a directory is an error
  try {
    (void)knsock::send_files("127.0.0.1", 1, {src / "logs"}, opts);
    FAIL() << "must throw";
  } catch (const knsock::Error &e) {
    EXPECT_EQ(e.code(), KNSOCK_RESULT_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  opts.recursive = true;
  opts.include = {"["};
  std::vector<knsock::FileOutcome> out;
  knsock::Result r = knsock::try_send_files("127.0.0.1", 1, {src / "logs"}, opts, &out);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_TRUE(out.empty());
}

}  // namespace
