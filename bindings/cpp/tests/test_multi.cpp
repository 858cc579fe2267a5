// knsock::send_files_multi: the same files to several receivers, per-receiver and per-file
// outcomes, progress with the receiver's index, bad arguments.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

TEST(Multi, SameFilesToEachReceiverWithPerReceiverOutcomes) {
  TempDir src("src"), a_dir("a"), b_dir("b");
  auto big = test::random_file(src / "big.bin", 2u << 20, 7);
  auto small = test::random_file(src / "secret.txt", 300, 8);
  knsock::Server a(test::local_config(a_dir));
  auto picky = test::local_config(b_dir);
  picky.validate_before = [](const knsock::FileInfo &f) -> std::optional<std::string> {
    if (f.name.find("secret") != std::string::npos) return "secrets stay home";
    return std::nullopt;
  };
  knsock::Server b(picky);
  test::RefusingPort refusing;
  std::atomic<int> calls[3] = {0, 0, 0};
  auto outcomes = knsock::send_files_multi(
      {{"127.0.0.1", a.port()}, {"127.0.0.1", b.port()}, {"127.0.0.1", refusing.port()}},
      {src / "big.bin", src / "secret.txt"}, {},
      [&](std::size_t receiver, const knsock::BatchProgress &p) {
        if (receiver < 3 && p.count == 2) calls[receiver]++;
        return true;
      });

  ASSERT_EQ(outcomes.size(), 3u);
  ASSERT_TRUE(outcomes[0].result) << outcomes[0].result.message;
  ASSERT_EQ(outcomes[0].files.size(), 2u);
  EXPECT_TRUE(outcomes[0].files[0].result && outcomes[0].files[1].result);
  EXPECT_EQ(test::read_file(a_dir / "big.bin"), big);
  EXPECT_EQ(test::read_file(a_dir / "secret.txt"), small);

  ASSERT_TRUE(outcomes[1].result);
  EXPECT_TRUE(outcomes[1].files[0].result);
  EXPECT_EQ(outcomes[1].files[0].bytes, 2u << 20);
  EXPECT_EQ(outcomes[1].files[1].result.code, KNSOCK_RESULT_REJECTED);
  EXPECT_EQ(outcomes[1].files[1].result.peer_reason, "secrets stay home");
  EXPECT_EQ(test::read_file(b_dir / "big.bin"), big);

  EXPECT_EQ(outcomes[2].receiver.port, refusing.port());
  EXPECT_EQ(outcomes[2].result.code, KNSOCK_RESULT_CONNECT);
  EXPECT_TRUE(outcomes[2].files.empty());
  EXPECT_GT(calls[0].load(), 0);
  EXPECT_GT(calls[1].load(), 0);
  EXPECT_EQ(calls[2].load(), 0);
}

TEST(Multi, BadArgumentsFailTheCall) {
  TempDir src("src");
  test::random_file(src / "f.bin", 10, 1);
  std::vector<knsock::ReceiverOutcome> out;
  knsock::Result r = knsock::try_send_files_multi({}, {src / "f.bin"}, {}, {}, &out);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("no receivers"), std::string::npos) << r.message;
  r = knsock::try_send_files_multi({{"", 9}}, {src / "f.bin"}, {}, {}, &out);
  EXPECT_EQ(r.code, KNSOCK_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("host is empty"), std::string::npos) << r.message;
  EXPECT_TRUE(out.empty());
  EXPECT_THROW((void)knsock::send_files_multi({}, {src / "f.bin"}), knsock::Error);
}

}  // namespace
