// knsock::send_stream (a callable or a std::istream, size unknown or stated) and knsock::Store
// (the embedding program's storage): bytes arrive identical; a callable that throws, a stream
// past the maximum size, a store whose write throws: nothing is committed, the sender gets the
// reason, and the server goes on.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "util.hpp"

namespace {

using test::TempDir;

/// Objects in memory, committed only through commit().
class MemoryStore : public knsock::Store {
 public:
  struct Pending {
    std::string name;
    Object object;
    std::vector<uint8_t> data;
  };

  void *begin(const std::string &name, const Object &object) override {
    return new Pending{name, object, {}};
  }
  void write(void *handle, const uint8_t *bytes, std::size_t length) override {
    auto *p = static_cast<Pending *>(handle);
    if (p->name.find("boom") != std::string::npos) throw std::runtime_error("the vault is sealed");
    p->data.insert(p->data.end(), bytes, bytes + length);
  }
  void commit(void *handle) override {
    std::unique_ptr<Pending> p(static_cast<Pending *>(handle));
    std::lock_guard<std::mutex> lock(mu);
    objects[p->name] = std::move(*p);
  }
  void abort(void *handle) noexcept override {
    delete static_cast<Pending *>(handle);
    std::lock_guard<std::mutex> lock(mu);
    aborted++;
  }
  std::optional<Object> stat(const std::string &name) override {
    std::lock_guard<std::mutex> lock(mu);
    auto it = objects.find(name);
    if (it == objects.end()) return std::nullopt;
    return it->second.object;
  }

  std::mutex mu;
  std::map<std::string, Pending> objects;
  int aborted = 0;
};

std::vector<uint8_t> bytes_of(const std::vector<char> &v) { return {v.begin(), v.end()}; }

TEST(Stream, AnIstreamAndACallableArriveIdentical) {
  TempDir dst("dst");
  knsock::Server srv(test::local_config(dst));
  auto data = test::random_bytes(3 << 20, 1);
  std::istringstream in(std::string(data.begin(), data.end()));
  knsock::send_stream("127.0.0.1", srv.port(), "in.bin", in);
  EXPECT_EQ(test::read_file(dst / "in.bin"), data);

  std::size_t at = 0;
  std::vector<uint64_t> totals;
  knsock::SendOptions o;
  o.progress = [&](std::string_view, uint64_t, uint64_t total) {
    totals.push_back(total);
    return true;
  };
  auto read = [&](uint8_t *buf, std::size_t len) {
    std::size_t n = std::min(len, data.size() - at);
    std::memcpy(buf, data.data() + at, n);
    at += n;
    return n;
  };
  knsock::send_stream("127.0.0.1", srv.port(), "fn.bin", read, std::nullopt, o);
  EXPECT_EQ(test::read_file(dst / "fn.bin"), data);
  ASSERT_FALSE(totals.empty());
  for (uint64_t t : totals) EXPECT_EQ(t, 0u);
}

TEST(Stream, ACallableThatThrowsStoresNothingAndSaysWhy) {
  TempDir dst("dst");
  knsock::Server srv(test::local_config(dst));
  std::size_t given = 0;
  auto read = [&](uint8_t *buf, std::size_t len) -> std::size_t {
    if (given > (2u << 20)) throw std::runtime_error("pg_dump died");
    std::memset(buf, 'x', len);
    given += len;
    return len;
  };
  knsock::Result r = knsock::try_send_stream("127.0.0.1", srv.port(), "dump.sql", read);
  EXPECT_EQ(r.code, KNSOCK_RESULT_ABORTED_BY_CALLBACK);
  EXPECT_NE(r.message.find("pg_dump died"), std::string::npos) << r.message;
  EXPECT_FALSE(test::fs::exists(dst / "dump.sql"));

  // A stated size the source does not meet.
  std::istringstream shorter("only this");
  r = knsock::try_send_stream("127.0.0.1", srv.port(), "short", shorter, uint64_t{100});
  EXPECT_EQ(r.code, KNSOCK_RESULT_IO);
  EXPECT_NE(r.message.find("ended after 9 of its 100 bytes"), std::string::npos) << r.message;
  EXPECT_FALSE(test::fs::exists(dst / "short"));
}

TEST(Stream, AStreamPastTheMaximumSizeIsRefusedAndTheServerGoesOn) {
  TempDir dst("dst");
  auto cfg = test::local_config(dst);
  cfg.max_file_size = 1 << 20;
  knsock::Server srv(cfg);
  auto endless = [](uint8_t *buf, std::size_t len) {
    std::memset(buf, 7, len);
    return len;
  };
  knsock::Result r = knsock::try_send_stream("127.0.0.1", srv.port(), "big", endless);
  EXPECT_EQ(r.code, KNSOCK_RESULT_REJECTED);
  EXPECT_EQ(r.peer_code, 4);
  EXPECT_NE(r.peer_reason.find("exceeds the limit of 1048576 bytes"), std::string::npos)
      << r.peer_reason;
  EXPECT_FALSE(test::fs::exists(dst / "big"));
  std::istringstream small("small");
  knsock::send_stream("127.0.0.1", srv.port(), "small", small);
  EXPECT_EQ(test::read_file(dst / "small").size(), 5u);
}

TEST(Store, FilesGoIntoTheStoreAndAThrowingWriteCommitsNothing) {
  TempDir src("src"), spool("spool");
  auto store = std::make_shared<MemoryStore>();
  auto cfg = test::local_config(spool);
  cfg.store = store;
  knsock::Server srv(cfg);
  std::vector<std::string> paths;
  std::vector<std::vector<char>> datas;
  for (int i = 0; i < 50; i++) {
    paths.push_back(src / ("f" + std::to_string(i)));
    datas.push_back(test::random_file(paths.back(), static_cast<std::size_t>(i) * 3001, i));
  }
  auto outcomes = knsock::send_files("127.0.0.1", srv.port(), paths);
  for (const auto &o : outcomes) EXPECT_TRUE(o.result.ok()) << o.result.message;
  ASSERT_EQ(store->objects.size(), 50u);
  for (int i = 0; i < 50; i++) {
    const auto &obj = store->objects["f" + std::to_string(i)];
    EXPECT_EQ(obj.data, bytes_of(datas[i]));
    EXPECT_EQ(obj.object.size, datas[i].size());
    EXPECT_TRUE(obj.object.digest.has_value());
  }

  test::random_file(src / "boom.bin", 100000, 99);
  knsock::Result r = knsock::try_send_file("127.0.0.1", srv.port(), src / "boom.bin");
  EXPECT_EQ(r.code, KNSOCK_RESULT_STORE);
  EXPECT_NE(r.peer_reason.find("the vault is sealed"), std::string::npos) << r.peer_reason;
  EXPECT_EQ(store->objects.count("boom.bin"), 0u);
  EXPECT_EQ(store->aborted, 1);

  // A stream into the store, after the failure: the server goes on.
  std::istringstream in("streamed into the store");
  knsock::send_stream("127.0.0.1", srv.port(), "s.txt", in);
  const auto &s = store->objects["s.txt"].data;
  EXPECT_EQ(std::string(s.begin(), s.end()), "streamed into the store");
}

}  // namespace
