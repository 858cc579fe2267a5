// knsock::fetch_files / fetch_file and their async form: a tree sent, then fetched back with
// progress; a missing name; a receiver that does not serve fetches; the fetch-only mode mask
// and partial copies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

knsock::ServerConfig fetching(const TempDir &dir) {
  auto cfg = test::local_config(dir);
  cfg.allow_fetch = true;
  cfg.allow_anonymous_fetch = true;
  return cfg;
}

TEST(Fetch, TreeComesBackWithProgressAndOutcomes) {
  TempDir src("fsrc"), srv("fsrv"), dst("fdst");
  std::filesystem::create_directories(src.path() / "tree" / "sub");
  auto a = test::random_file(src / "tree/a.bin", 500000, 1);
  auto b = test::random_file(src / "tree/sub/b.txt", 100, 2);
  knsock::Server server(fetching(srv));
  knsock::SendOptions opts;
  opts.recursive = true;
  auto sent = knsock::send_files("127.0.0.1", server.port(), {src / "tree"}, opts);
  ASSERT_EQ(sent.size(), 2u);

  uint64_t last = 0;
  int calls = 0;
  opts.progress = [&](std::string_view, uint64_t got, uint64_t) {
    last = got;
    ++calls;
    return true;
  };
  auto got = knsock::fetch_files("127.0.0.1", server.port(), {"tree", "nope"}, dst.str(), opts);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].name, "tree/a.bin");
  EXPECT_TRUE(got[0].result) << got[0].result.message;
  EXPECT_EQ(got[0].path, dst / "tree/a.bin");
  EXPECT_EQ(got[2].name, "nope");
  EXPECT_EQ(got[2].result.code, KNSOCK_RESULT_NOT_FOUND);
  EXPECT_EQ(test::read_file(dst / "tree/a.bin"), a);
  EXPECT_EQ(test::read_file(dst / "tree/sub/b.txt"), b);
  EXPECT_GE(calls, 2);
  EXPECT_EQ(last, 100u);  // the last file's last piece

  opts.skip_unchanged = true;
  got = knsock::fetch_files("127.0.0.1", server.port(), {"tree"}, dst.str(), opts);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].skipped && got[1].skipped);

  // The async form, one file.
  TempDir other("fother");
  auto t = knsock::fetch_file_async("127.0.0.1", server.port(), "tree/sub/b.txt", other.str());
  EXPECT_NO_THROW(t.get());
  EXPECT_EQ(test::read_file(other / "b.txt"), b);
  auto missing = knsock::fetch_file_async("127.0.0.1", server.port(), "nope", other.str());
  knsock::Result r = missing.wait();
  EXPECT_EQ(r.code, KNSOCK_RESULT_NOT_FOUND);
  EXPECT_NE(r.message.find("no such file"), std::string::npos) << r.message;
}

TEST(Fetch, ModeMaskAndPartialCopies) {
  TempDir srv("fmsrv"), dst("fmdst");
  knsock::Server server(fetching(srv));
  auto data = test::random_file(srv / "f.bin", 600000, 3);
  std::filesystem::permissions(srv / "f.bin", std::filesystem::perms(0644));
  knsock::SendOptions opts;
  opts.fetch_mode_mask = 0700;
  knsock::fetch_file("127.0.0.1", server.port(), "f.bin", dst.str(), opts);
  auto perms = std::filesystem::status(dst / "f.bin").permissions();
  EXPECT_EQ(static_cast<unsigned>(perms) & 07777, 0600u);
  opts.fetch_mode_mask = 010000;
  knsock::Result bad = knsock::try_fetch_file("127.0.0.1", server.port(), "f.bin", dst.str(), opts);
  EXPECT_EQ(bad.code, KNSOCK_RESULT_INVALID_ARGUMENT) << bad.message;
  opts.fetch_mode_mask = 0755;

  // Cut short by the progress callback: with partial copies kept, the data stays hidden and the
  // next fetch resumes it; without, nothing is left.
  auto hidden = [](const TempDir &d) {
    std::vector<std::string> names;
    for (const auto &e : std::filesystem::directory_iterator(d.path()))
      names.push_back(e.path().filename().string());
    return names;
  };
  for (bool partial : {false, true}) {
    TempDir cut(partial ? "fcut1" : "fcut0");
    opts.fetch_partial = partial;
    opts.progress = [](std::string_view, uint64_t, uint64_t) { return false; };
    knsock::Result r = knsock::try_fetch_file("127.0.0.1", server.port(), "f.bin", cut.str(), opts);
    EXPECT_EQ(r.code, KNSOCK_RESULT_ABORTED_BY_CALLBACK) << r.message;
    auto left = hidden(cut);
    if (partial) {
      ASSERT_EQ(left.size(), 1u);
      EXPECT_EQ(left[0].rfind(".knsock-partial-", 0), 0u) << left[0];
    } else {
      EXPECT_TRUE(left.empty());
    }
    opts.progress = nullptr;
    knsock::fetch_file("127.0.0.1", server.port(), "f.bin", cut.str(), opts);
    EXPECT_EQ(test::read_file(cut / "f.bin"), data);
    EXPECT_EQ(hidden(cut), std::vector<std::string>{"f.bin"});
  }
}

TEST(Fetch, ReceiverWithoutAllowFetchRefuses) {
  TempDir srv("fsrv"), dst("fdst");
  knsock::Server server(test::local_config(srv));
  knsock::Result r = knsock::try_fetch_file("127.0.0.1", server.port(), "x", dst.str());
  EXPECT_EQ(r.code, KNSOCK_RESULT_REJECTED);
  EXPECT_NE(r.message.find("does not serve fetches"), std::string::npos) << r.message;
  EXPECT_THROW(knsock::fetch_file("127.0.0.1", server.port(), "x", dst.str()), knsock::Error);
  r = knsock::try_fetch_file("127.0.0.1", server.port(), std::string("a\0b", 3), dst.str());
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_TRUE(dst.entries().empty());
}

}  // namespace
