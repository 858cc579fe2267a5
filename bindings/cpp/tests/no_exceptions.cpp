// Built with -fno-exceptions: the header compiles on its own (included twice), and the
// non-throwing API sends a file and reports a failure. A plain program, no GoogleTest (which
// needs exceptions).
#include <knsock.hpp>
#include <knsock.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

static_assert(KNSOCK_HPP_EXCEPTIONS == 0, "this test must be built without exceptions");

#define REQUIRE(cond)                                                 \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                   \
    }                                                                 \
  } while (0)

int main() {
  char tmpl[] = "/tmp/knsock-cpp-noexc-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  const std::string src = dir + "/source.txt", dst = dir + "/in";
  { std::ofstream(src) << "sent without exceptions\n"; }
  REQUIRE(std::system(("mkdir " + dst).c_str()) == 0);

  knsock::ServerConfig cfg;
  cfg.dir = dst;
  cfg.host = "127.0.0.1";
  cfg.validate_before = [](const knsock::FileInfo &f) -> std::optional<std::string> {
    if (f.name == "nope.txt") return std::string("not this one");
    return std::nullopt;
  };
  knsock::Result r;
  knsock::Server server = knsock::Server::start(cfg, &r);
  REQUIRE(r.ok());
  REQUIRE(server);

  r = knsock::try_send_file("127.0.0.1", server.port(), src);
  REQUIRE(r.ok());
  std::ifstream in(dst + "/source.txt");
  std::string line;
  REQUIRE(std::getline(in, line) && line == "sent without exceptions");

  knsock::SendOptions opts;
  opts.remote_name = "nope.txt";
  r = knsock::try_send_file("127.0.0.1", server.port(), src, opts);
  REQUIRE(r.code == KNSOCK_RESULT_REJECTED);
  REQUIRE(r.peer_reason == "not this one");

  knsock::Transfer t = knsock::Transfer::start("127.0.0.1", server.port(), src, {}, &r);
  REQUIRE(r.ok());
  REQUIRE(t.wait().ok());

  server.stop();
  REQUIRE(std::system(("rm -rf " + dir).c_str()) == 0);
  std::puts("no-exceptions API: ok");
  return 0;
}
