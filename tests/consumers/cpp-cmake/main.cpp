// A program outside the knsock tree: the C++ binding from an installed knsock. It serves a
// temporary directory on 127.0.0.1, sends a file there asynchronously and checks the bytes.
#include <knsock.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

static std::vector<char> slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

int main() {
  char tmpl[] = "/tmp/knsock-cpp-consumer-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl, src = dir + "/data.bin", inbox = dir + "/inbox";
  if (std::system(("mkdir " + inbox).c_str()) != 0) return 1;
  std::vector<char> data(200 * 1024 + 3);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(src, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));

  int rc = 1;
  {
    knsock::ServerConfig cfg;
    cfg.dir = inbox;
    cfg.host = "127.0.0.1";
    knsock::Server server(cfg);
    knsock::Transfer t = knsock::send_file_async("127.0.0.1", server.port(), src);
    if (!t.wait_for(std::chrono::hours::max())) {
      std::cerr << "consumer: wait_for(hours::max()) returned before the end\n";
    } else if (knsock::Result r = t.wait(); !r) {
      std::cerr << "consumer: " << r.message << "\n";
    } else if (slurp(inbox + "/data.bin") != data) {
      std::cerr << "consumer: the received copy differs\n";
    } else {
      std::cout << "consumer (C++): knsock " << knsock_version() << " sent " << data.size()
                << " bytes over 127.0.0.1, received copy identical\n";
      rc = 0;
    }
  }
  (void)std::system(("rm -rf " + dir).c_str());
  return rc;
}
