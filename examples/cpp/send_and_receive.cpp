// knsock from C++: start a server, send it a file, and check what arrived.
//
//   send_and_receive [FILE]     (without FILE it sends a generated 1 MiB file)
//
// Build: link knsock::cpp (bindings/cpp/CMakeLists.txt) or, by hand,
//   c++ -std=c++17 -Iinclude -Ibindings/cpp/include examples/cpp/send_and_receive.cpp
//       target/release/libknsock.a -lpthread -ldl -lm     (one line)
#include <knsock.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

static std::vector<char> slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/knsock-example-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const fs::path work = tmpl, inbox = work / "inbox";
  fs::create_directory(inbox);
  fs::path file = argc > 1 ? fs::path(argv[1]) : work / "hello.bin";
  if (argc <= 1) {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < (1 << 20); ++i) out.put(static_cast<char>(i * 7));
  }

  int status = 0;
  try {
    knsock::ServerConfig cfg;
    cfg.dir = inbox.string();
    cfg.host = "127.0.0.1";
    cfg.validate_before = [](const knsock::FileInfo &f) -> std::optional<std::string> {
      if (f.size > (1ull << 30)) return "files over 1 GiB are not accepted";
      return std::nullopt;
    };
    cfg.on_received = [](const knsock::FileInfo &f) {
      std::printf("server: stored %s (%llu bytes) from %s\n", f.name.c_str(),
                  static_cast<unsigned long long>(f.size), f.peer.c_str());
    };
    knsock::Server server(cfg);  // stops and frees itself at the end of the scope

    knsock::SendOptions opts;
    opts.progress = [](std::string_view name, uint64_t sent, uint64_t total) {
      if (sent == total) std::printf("sender: %.*s: %llu bytes sent\n", int(name.size()),
                                     name.data(), static_cast<unsigned long long>(sent));
      return true;  // false would abort the transfer
    };
    knsock::send_file("127.0.0.1", server.port(), file.string(), opts);  // throws knsock::Error

    const bool same = slurp(file) == slurp(inbox / file.filename());
    std::printf("received copy is %s\n", same ? "identical" : "DIFFERENT");
    status = same ? 0 : 1;
  } catch (const knsock::Error &e) {
    std::fprintf(stderr, "knsock error %d: %s\n", static_cast<int>(e.code()), e.what());
    if (!e.peer_reason().empty()) std::fprintf(stderr, "server said: %s\n", e.peer_reason().c_str());
    status = 1;
  }
  fs::remove_all(work);
  return status;
}
