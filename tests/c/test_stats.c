/* knsock_server_stats: the counters after files stored, skipped and refused, a caller that
 * knows an older, shorter knsock_stats (only its prefix is written), and bad arguments. */
#include <stddef.h>

#include "check.h"

/* What a program built against an older header knows: the size and the first three values,
 * then memory of its own that the library must not touch. */
struct old_stats {
  uint64_t size;
  uint64_t connections_open;
  uint64_t connections_accepted;
  uint64_t files_received;
  unsigned char guard[64];
};

static int refuse_no(void *userdata, const knsock_file_info *info, char *reason, size_t len) {
  (void)userdata;
  if (strncmp(knsock_file_info_name(info), "no", 2) != 0) return KNSOCK_VALIDATOR_ACCEPT;
  snprintf(reason, len, "no files named no");
  return KNSOCK_VALIDATOR_REJECT;
}

static knsock_server *start(const char *dir) {
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  /* The cap in force is the one set, the descriptor limit permitting. */
  CHECK_RC(knsock_server_config_set_max_connections(c, 64), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_pre_validator(c, refuse_no, NULL), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  return s;
}

static void test_counters(knsock_server *s, const char *root) {
  char ok[4300], no[4300];
  snprintf(ok, sizeof ok, "%s/ok.bin", root);
  snprintf(no, sizeof no, "%s/no.bin", root);
  write_random_file(ok, 5000, 1);
  write_random_file(no, 100000, 2); /* larger than an eager file: refused on its offer */
  uint16_t port = knsock_server_port(s);
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_skip_unchanged(o, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", port, ok, o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", port, ok, o, NULL), KNSOCK_RESULT_OK); /* skipped */
  CHECK_RC(knsock_send_file("127.0.0.1", port, no, o, NULL), KNSOCK_RESULT_REJECTED);
  knsock_send_options_free(o);

  knsock_stats st;
  memset(&st, 0xff, sizeof st);
  st.size = sizeof st;
  CHECK_RC(knsock_server_stats(s, &st), KNSOCK_RESULT_OK);
  CHECK(st.size == sizeof st && sizeof st == sizeof st.size + sizeof st.values);
  CHECK(st.values.connections_accepted >= 3);
  CHECK(st.values.files_received == 1);
  CHECK(st.values.files_skipped == 1);
  CHECK(st.values.bytes_stored == 5000);
  CHECK(st.values.bytes_received >= 5000);
  CHECK(st.values.files_rejected[1] == 1); /* code 1: the validator */
  uint64_t rejected = 0, failed = 0;
  for (int i = 0; i < KNSOCK_STATS_CODES; i++) {
    rejected += st.values.files_rejected[i];
    failed += st.values.files_failed[i];
  }
  CHECK(rejected == 1 && failed == 0);
  CHECK(st.values.auth_failures == 0 && st.values.tls_handshakes == 0);
  CHECK(st.values.store_requests == 0 && st.values.store_failures == 0);
  CHECK(st.values.connections_max == 64 && st.values.decoders_max == 16);
  CHECK(st.values.files_in_flight == 0 && st.values.space_reserved == 0);
  CHECK(st.values.descriptors_limit > 0 && st.values.descriptors_open > 0);
}

static void test_older_caller(knsock_server *s) {
  struct old_stats old;
  memset(&old, 0xab, sizeof old);
  old.size = offsetof(struct old_stats, guard);
  CHECK_RC(knsock_server_stats(s, (knsock_stats *)&old), KNSOCK_RESULT_OK);
  CHECK(old.size == offsetof(struct old_stats, guard));
  CHECK(old.files_received == 1);
  CHECK(old.connections_accepted >= 3);
  int intact = 1;
  for (size_t i = 0; i < sizeof old.guard; i++) intact &= old.guard[i] == 0xab;
  CHECK(intact);

  /* Only the size field known: nothing but it is written. */
  struct {
    uint64_t size;
    unsigned char guard[8];
  } tiny;
  memset(&tiny, 0xcd, sizeof tiny);
  tiny.size = sizeof tiny.size;
  CHECK_RC(knsock_server_stats(s, (knsock_stats *)&tiny), KNSOCK_RESULT_OK);
  CHECK(tiny.size == sizeof tiny.size && tiny.guard[0] == 0xcd && tiny.guard[7] == 0xcd);
}

static void test_bad_arguments(knsock_server *s) {
  knsock_stats st;
  st.size = sizeof st;
  CHECK_RC(knsock_server_stats(NULL, &st), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_stats(s, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  memset(&st, 0xee, sizeof st);
  st.size = 4; /* smaller than the size field: refused, nothing written */
  CHECK_RC(knsock_server_stats(s, &st), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(st.size == 4 && st.values.files_received == 0xeeeeeeeeeeeeeeeeULL);
}

int main(void) {
  char root[4096], dir[4200];
  make_temp_dir(root, sizeof root, "stats");
  snprintf(dir, sizeof dir, "%s/recv", root);
  mkdir(dir, 0755);
  knsock_server *s = start(dir);
  test_counters(s, root);
  test_older_caller(s);
  test_bad_arguments(s);
  knsock_server_free(s);
  remove_tree(root);
  return finish("test_stats");
}
