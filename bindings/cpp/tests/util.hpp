// Helpers for the C++ binding's tests: temporary directories, random files, a gate.
#ifndef KNSOCK_CPP_TEST_UTIL_HPP
#define KNSOCK_CPP_TEST_UTIL_HPP

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <knsock.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace test {

namespace fs = std::filesystem;

/// A fresh directory, removed with everything in it at the end of the scope.
class TempDir {
 public:
  explicit TempDir(const char *tag) {
    std::string tmpl = (fs::temp_directory_path() / (std::string("knsock-cpp-") + tag + "-XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const fs::path &path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string &name) const { return (path_ / name).string(); }

  /// Names of the entries in it (no "." or "..").
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto &e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

inline std::vector<char> random_bytes(std::size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<char> data(size);
  for (auto &c : data) c = static_cast<char>(rng() & 0xff);
  return data;
}

inline void write_file(const std::string &path, const std::vector<char> &data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("could not write " + path);
}

inline std::vector<char> read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Writes `size` random bytes to `path` and returns them.
inline std::vector<char> random_file(const std::string &path, std::size_t size, uint32_t seed) {
  auto data = random_bytes(size, seed);
  write_file(path, data);
  return data;
}

/// A counter threads can wait on: holds senders in their callbacks until the test opens it.
class Gate {
 public:
  void arrive() {
    std::lock_guard<std::mutex> lock(mu_);
    ++arrived_;
    cv_.notify_all();
  }
  /// Waits until `n` arrived; false after 60 s (a broken test, not a slow machine).
  bool wait_arrived(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return arrived_ >= n; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  /// Waits until opened; false after 60 s.
  bool wait_open() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool open_ = false;
};

/// A loopback port that refuses connections while this lives: bound, never listening (a port
/// merely closed again could become a connection's own source port and be reached).
class RefusingPort {
 public:
  RefusingPort() {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
      throw std::runtime_error("could not bind a refusing port");
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() {
    if (fd_ >= 0) close(fd_);
  }
  RefusingPort(const RefusingPort &) = delete;
  RefusingPort &operator=(const RefusingPort &) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

/// A server configuration on 127.0.0.1, an ephemeral port, storing into `dir`.
inline knsock::ServerConfig local_config(const TempDir &dir) {
  knsock::ServerConfig cfg;
  cfg.dir = dir.str();
  cfg.host = "127.0.0.1";
  return cfg;
}

}  // namespace test

#endif
