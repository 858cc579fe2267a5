/* The numeric version, the validator's named constants and reason size, setter error detail,
 * and an empty batch that contacts no one. */
#include "check.h"

#if KNSOCK_VERSION_NUM < 0x000100
#error "KNSOCK_VERSION_NUM must be usable in #if"
#endif

struct verdicts {
  pthread_mutex_t mu;
  size_t smallest_reason_len;
};

/* Accepts "ok*"; refuses the rest with a reason that fills the whole guaranteed buffer. */
static int validator(void *userdata, const knsock_file_info *info, char *reason, size_t reason_len) {
  struct verdicts *v = userdata;
  pthread_mutex_lock(&v->mu);
  if (reason_len < v->smallest_reason_len) v->smallest_reason_len = reason_len;
  pthread_mutex_unlock(&v->mu);
  if (strncmp(knsock_file_info_name(info), "ok", 2) == 0) return KNSOCK_VALIDATOR_ACCEPT;
  memset(reason, 'r', KNSOCK_REASON_MAX - 1);
  reason[KNSOCK_REASON_MAX - 1] = '\0';
  return KNSOCK_VALIDATOR_REJECT;
}

static void test_version(void) {
  unsigned major = 99, minor = 99, patch = 99;
  CHECK(knsock_version_num() == KNSOCK_VERSION_NUM);
  CHECK(KNSOCK_VERSION_NUM == ((KNSOCK_VERSION_MAJOR << 16) | (KNSOCK_VERSION_MINOR << 8) |
                               KNSOCK_VERSION_PATCH));
  CHECK(sscanf(knsock_version(), "%u.%u.%u", &major, &minor, &patch) == 3);
  CHECK(knsock_version_num() == ((major << 16) | (minor << 8) | patch));
}

static void test_validator_constants(const char *root) {
  char dir[4200], ok[4300], no[4300];
  struct verdicts v = {PTHREAD_MUTEX_INITIALIZER, (size_t)-1};
  CHECK(KNSOCK_VALIDATOR_ACCEPT == 0);
  CHECK(KNSOCK_VALIDATOR_REJECT == 1);
  CHECK(KNSOCK_REASON_MAX == 1025);
  snprintf(dir, sizeof dir, "%s/recv", root);
  snprintf(ok, sizeof ok, "%s/ok.bin", root);
  snprintf(no, sizeof no, "%s/no.bin", root);
  mkdir(dir, 0755);
  write_random_file(ok, 1000, 1);
  write_random_file(no, 1000, 2);
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_pre_validator(c, validator, &v), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(s), ok, NULL, &err), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(s), no, NULL, &err),
           KNSOCK_RESULT_REJECTED);
  const char *why = knsock_error_peer_reason(err);
  CHECK(why != NULL && strlen(why) == KNSOCK_REASON_MAX - 1 && why[0] == 'r');
  knsock_error_free(err);
  knsock_server_free(s);
  CHECK(v.smallest_reason_len >= KNSOCK_REASON_MAX && v.smallest_reason_len != (size_t)-1);
  CHECK(count_entries(dir) == 1);
}

static void test_setter_detail(void) {
  knsock_send_options *o = knsock_send_options_new();
  CHECK(knsock_send_options_last_error(o) == NULL);
  CHECK(knsock_send_options_last_error(NULL) == NULL);
  CHECK_RC(knsock_send_options_add_include(o, "["), KNSOCK_RESULT_INVALID_ARGUMENT);
  const knsock_error *e = knsock_send_options_last_error(o);
  CHECK_RC(knsock_error_code(e), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(e), "bad pattern \"[\": ");
  CHECK_RC(knsock_send_options_add_include(o, "*.txt"), KNSOCK_RESULT_OK);
  CHECK(knsock_send_options_last_error(o) == NULL); /* a success clears it */
  CHECK_RC(knsock_send_options_add_exclude(o, "a[b"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)), "bad pattern \"a[b\"");
  CHECK_RC(knsock_send_options_add_include(o, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)), "glob is NULL");
  CHECK_RC(knsock_send_options_set_chunk_size(o, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "chunk size must be 1 to 67108864");
  CHECK_RC(knsock_send_options_set_timeout_ms(o, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)), "above zero");
  CHECK_RC(knsock_send_options_set_retries(o, 1001), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "retries must be at most 1000");
  CHECK_RC(knsock_send_options_set_retry_delay_ms(o, 3600001), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "retry delay must be at most 3600 s");
  CHECK_RC(knsock_send_options_set_retries(o, 1000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_retry_delay_ms(o, 3600000), KNSOCK_RESULT_OK);
  knsock_send_options_free(o);

  knsock_server_config *c = knsock_server_config_new();
  CHECK(knsock_server_config_last_error(c) == NULL);
  CHECK(knsock_server_config_last_error(NULL) == NULL);
  CHECK_RC(knsock_server_config_set_max_connections(c, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_error_code(knsock_server_config_last_error(c)), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "max connections must be 1 to 1000000");
  CHECK_RC(knsock_server_config_set_overwrite(c, 9), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "unknown overwrite policy 9");
  CHECK_RC(knsock_server_config_set_port(c, 0), KNSOCK_RESULT_OK);
  CHECK(knsock_server_config_last_error(c) == NULL);
  knsock_server_config_free(c);
}

/* A batch with nothing in it succeeds without a connection: the port is bound but does not
 * listen, so any dial would fail. */
static void test_empty_batch(const char *root) {
  int fd;
  uint16_t port = refusing_port(&fd);
  char file[4300], empty[4300];
  knsock_error *err = NULL;
  knsock_batch_report *r = NULL;
  snprintf(file, sizeof file, "%s/ok.bin", root);
  CHECK_RC(knsock_send_file("127.0.0.1", port, file, NULL, &err), KNSOCK_RESULT_CONNECT);
  knsock_error_free(err);
  err = NULL;

  CHECK_RC(knsock_send_files("127.0.0.1", port, NULL, 0, NULL, &r, &err), KNSOCK_RESULT_OK);
  CHECK(err == NULL);
  CHECK(r != NULL && knsock_batch_report_count(r) == 0 && knsock_batch_report_failed(r) == 0);
  CHECK(knsock_batch_report_name(r, 0) == NULL);
  knsock_batch_report_free(r);

  /* A directory whose walk keeps nothing is an empty batch too. */
  snprintf(empty, sizeof empty, "%s/empty", root);
  mkdir(empty, 0755);
  const char *paths[] = {empty};
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_recursive(o, true), KNSOCK_RESULT_OK);
  r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, o, &r, &err), KNSOCK_RESULT_OK);
  CHECK(err == NULL && r != NULL && knsock_batch_report_count(r) == 0);
  knsock_batch_report_free(r);
  knsock_send_options_free(o);

  /* Still checked: the report pointer and the host. */
  CHECK_RC(knsock_send_files("127.0.0.1", port, NULL, 0, NULL, NULL, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "report output pointer is NULL");
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_send_files(NULL, port, NULL, 0, NULL, &r, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "host is NULL");
  knsock_error_free(err);
  close(fd);
}

/* A graceful shutdown: OK when nothing runs; TIMEOUT when a connection is still busy (a peer
 * that said hello and then nothing) when the time is up. */
static void test_shutdown(const char *root) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/shutdown", root);
  mkdir(dir, 0755);
  CHECK_RC(knsock_server_shutdown(NULL, 10), KNSOCK_RESULT_INVALID_ARGUMENT);
  for (int busy = 0; busy < 2; busy++) {
    knsock_server_config *c = knsock_server_config_new();
    CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
    CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
    knsock_server *s = NULL;
    CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
    knsock_server_config_free(c);
    int fd = -1;
    if (busy) {
      struct sockaddr_in a = {0};
      a.sin_family = AF_INET;
      a.sin_port = htons(knsock_server_port(s));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      fd = socket(AF_INET, SOCK_STREAM, 0);
      CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
      /* A whole hello, and its reply read back: a worker serves this connection now. */
      static const unsigned char hello[] = {0x89, 'K', 'N', 'S', 'O', 'C', 'K', 0, 0, 1, 0, 1, 0, 0};
      CHECK(write(fd, hello, sizeof hello) == (ssize_t)sizeof hello);
      unsigned char reply[16];
      size_t got = 0;
      while (got < 12) {
        ssize_t n = read(fd, reply + got, sizeof reply - got);
        if (n <= 0) break;
        got += (size_t)n;
      }
      CHECK(got >= 12 && reply[0] == 0x89);
    }
    CHECK_RC(knsock_server_shutdown(s, busy ? 300 : 10000),
             busy ? KNSOCK_RESULT_TIMEOUT : KNSOCK_RESULT_OK);
    if (fd >= 0) close(fd);
    CHECK_RC(knsock_server_shutdown(s, 10), KNSOCK_RESULT_OK); /* again: already stopped */
    knsock_server_free(s);
  }
}

/* Peers that send garbage and vanish (a reset) make the server write to a dead socket: that must
 * never raise SIGPIPE in this process, which leaves SIGPIPE at its default (terminate). */
static void test_no_sigpipe(const char *root) {
  char dir[4200], file[4300];
  snprintf(dir, sizeof dir, "%s/sigpipe", root);
  snprintf(file, sizeof file, "%s/after.bin", root);
  mkdir(dir, 0755);
  write_random_file(file, 100000, 7);
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  for (int i = 0; i < 20; i++) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(knsock_server_port(s));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    /* A knsock hello, then a frame of an unknown type: the server answers ERROR. */
    static const unsigned char junk[] = {0x89, 'K', 'N', 'S', 'O', 'C', 'K', 0, 0, 1, 0, 1, 0, 0,
                                          42,   0,   0,   0,   0};
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    struct linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
  }
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(s), file, NULL, &err),
           KNSOCK_RESULT_OK);
  knsock_server_free(s);
}

int main(void) {
  char root[4096];
  make_temp_dir(root, sizeof root, "details");
  test_version();
  test_validator_constants(root);
  test_setter_detail();
  test_empty_batch(root);
  test_shutdown(root);
  test_no_sigpipe(root);
  remove_tree(root);
  return finish("test_details");
}
