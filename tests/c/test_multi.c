/* knsock_send_files_multi and knsock_multi_report: the same files to three receivers (one
 * refusing a file, one unreachable), per-receiver and per-file outcomes, the progress callback
 * with the receiver's index (called from several threads), and argument checking. */
#include "check.h"

/* What the progress callback saw, per receiver; it runs on the receivers' threads. */
struct multi_log {
  pthread_mutex_t mu;
  int calls[3], bad_receiver;
  uint64_t last_sent[3];
};

static int on_progress(void *userdata, size_t receiver, const char *filename, size_t index,
                       size_t count, uint64_t file_sent, uint64_t file_total, uint64_t sent,
                       uint64_t total) {
  struct multi_log *l = userdata;
  (void)filename, (void)index, (void)count, (void)file_sent, (void)file_total, (void)total;
  pthread_mutex_lock(&l->mu);
  if (receiver >= 3) {
    l->bad_receiver++;
  } else {
    l->calls[receiver]++;
    l->last_sent[receiver] = sent;
  }
  pthread_mutex_unlock(&l->mu);
  return KNSOCK_CONTINUE;
}

static knsock_server *start_server(const char *dir, int picky) {
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dir);
  knsock_server_config_set_host(c, "127.0.0.1");
  if (picky) knsock_server_config_set_pre_validator(c, refuse_secret, NULL);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  return s;
}

static void bad_arguments(const char *const *paths, knsock_receiver *good) {
  knsock_multi_report *r = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_files_multi(NULL, 1, paths, 1, NULL, NULL, NULL, &r, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "receivers is NULL");
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_send_files_multi(good, 0, paths, 1, NULL, NULL, NULL, &r, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "no receivers");
  knsock_error_free(err);
  err = NULL;
  knsock_receiver two[2] = {good[0], {NULL, 9}};
  CHECK_RC(knsock_send_files_multi(two, 2, paths, 1, NULL, NULL, NULL, &r, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "receiver 1: host is NULL");
  knsock_error_free(err);
  err = NULL;
  two[1].host = "";
  CHECK_RC(knsock_send_files_multi(two, 2, paths, 1, NULL, NULL, NULL, &r, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "receiver 1: host is empty");
  knsock_error_free(err);
  CHECK_RC(knsock_send_files_multi(good, 1, NULL, 1, NULL, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_files_multi(good, 1, paths, 1, NULL, NULL, NULL, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(r == NULL);
  /* Nothing to send: empty batches, no receiver contacted. */
  CHECK_RC(knsock_send_files_multi(good, 1, NULL, 0, NULL, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_OK);
  CHECK(knsock_multi_report_count(r) == 1 && knsock_multi_report_failed(r) == 0);
  CHECK(knsock_batch_report_count(knsock_multi_report_batch(r, 0)) == 0);
  knsock_multi_report_free(r);
  CHECK(knsock_multi_report_count(NULL) == 0 && knsock_multi_report_failed(NULL) == 0);
  CHECK_RC(knsock_multi_report_result(NULL, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(knsock_multi_report_batch(NULL, 0) == NULL && knsock_multi_report_error(NULL, 0) == NULL);
  knsock_multi_report_free(NULL);
}

int main(void) {
  char src[512], dst[2][512], p[3][1200], q[1200];
  const char *names[] = {"big.bin", "a.txt", "secret.txt"};
  const size_t sizes[] = {3u << 20, 10000, 500};
  make_temp_dir(src, sizeof src, "msrc");
  for (int i = 0; i < 3; i++) {
    snprintf(p[i], sizeof p[i], "%s/%s", src, names[i]);
    write_random_file(p[i], sizes[i], (unsigned)i + 1);
  }
  make_temp_dir(dst[0], sizeof dst[0], "mdst0");
  make_temp_dir(dst[1], sizeof dst[1], "mdst1");
  knsock_server *healthy = start_server(dst[0], 0), *picky = start_server(dst[1], 1);
  int refusing_fd;
  knsock_receiver receivers[3] = {{"127.0.0.1", knsock_server_port(healthy)},
                                  {"127.0.0.1", knsock_server_port(picky)},
                                  {"127.0.0.1", refusing_port(&refusing_fd)}};
  const char *paths[] = {p[0], p[1], p[2]};
  struct multi_log log = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, {0}};

  knsock_multi_report *r = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_files_multi(receivers, 3, paths, 3, NULL, on_progress, &log, &r, &err),
           KNSOCK_RESULT_OK);
  CHECK(err == NULL);
  CHECK(knsock_multi_report_count(r) == 3);
  CHECK(knsock_multi_report_failed(r) == 2);
  /* The healthy receiver got everything, byte for byte. */
  const knsock_batch_report *b = knsock_multi_report_batch(r, 0);
  CHECK_RC(knsock_multi_report_result(r, 0), KNSOCK_RESULT_OK);
  CHECK(knsock_multi_report_error(r, 0) == NULL);
  CHECK(knsock_batch_report_count(b) == 3 && knsock_batch_report_failed(b) == 0);
  for (int i = 0; i < 3; i++) {
    CHECK(knsock_batch_report_bytes(b, (size_t)i) == sizes[i]);
    snprintf(q, sizeof q, "%s/%s", dst[0], names[i]);
    CHECK(same_file(p[i], q));
  }
  /* The picky one refused secret.txt with its reason and took the rest. */
  b = knsock_multi_report_batch(r, 1);
  CHECK_RC(knsock_multi_report_result(r, 1), KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_failed(b) == 1);
  CHECK_RC(knsock_batch_report_result(b, 0), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_batch_report_result(b, 2), KNSOCK_RESULT_REJECTED);
  CHECK_CONTAINS(knsock_error_peer_reason(knsock_batch_report_error(b, 2)), "secrets stay home");
  snprintf(q, sizeof q, "%s/big.bin", dst[1]);
  CHECK(same_file(p[0], q));
  snprintf(q, sizeof q, "%s/secret.txt", dst[1]);
  CHECK(!path_exists(q));
  /* The unreachable one has an error and no batch. */
  CHECK_RC(knsock_multi_report_result(r, 2), KNSOCK_RESULT_CONNECT);
  CHECK_CONTAINS(knsock_error_message(knsock_multi_report_error(r, 2)), "cannot connect");
  CHECK(knsock_multi_report_batch(r, 2) == NULL);
  CHECK_RC(knsock_multi_report_result(r, 3), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(knsock_multi_report_batch(r, 3) == NULL && knsock_multi_report_error(r, 3) == NULL);
  knsock_multi_report_free(r);
  /* Progress came for both reachable receivers, each up to the whole list. */
  uint64_t total = sizes[0] + sizes[1] + sizes[2];
  CHECK(log.bad_receiver == 0 && log.calls[0] > 0 && log.calls[1] > 0 && log.calls[2] == 0);
  CHECK(log.last_sent[0] == total && log.last_sent[1] >= sizes[0] + sizes[1]);

  bad_arguments(paths, receivers);
  close(refusing_fd);
  knsock_server_free(healthy);
  knsock_server_free(picky);
  remove_tree(src);
  remove_tree(dst[0]);
  remove_tree(dst[1]);
  return finish("test_multi");
}
