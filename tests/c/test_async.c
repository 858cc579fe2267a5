/* knsock_send_file_async and the transfer handle: concurrency, cancel, wait timeouts, free while
 * running. Transfers are held at known points by a server validator that waits for the test, so
 * nothing depends on timing. */
#include "check.h"

#define CONCURRENT 20

struct gate {
  struct event offered; /* the server has the OFFER in its validator */
  struct event release; /* the test lets the validator return */
  struct event server_error;
  int last_error_code;
};

static int held_validator(void *userdata, const knsock_file_info *info, char *reason,
                          size_t reason_len) {
  struct gate *g = userdata;
  (void)reason;
  (void)reason_len;
  if (strncmp(knsock_file_info_name(info), "held", 4) != 0) return 0;
  event_set(&g->offered);
  CHECK(event_wait(&g->release, 30));
  return 0;
}

static void gate_error(void *userdata, knsock_result code, const char *message, const char *peer) {
  struct gate *g = userdata;
  (void)message;
  (void)peer;
  g->last_error_code = (int)code;
  event_set(&g->server_error);
}

struct done_log {
  pthread_mutex_t mu;
  int calls;
  int code;
  char message[512];
};

static void on_done(void *userdata, knsock_result code, const knsock_error *err) {
  struct done_log *d = userdata;
  pthread_mutex_lock(&d->mu);
  d->calls++;
  d->code = (int)code;
  if (err) snprintf(d->message, sizeof d->message, "%s", knsock_error_message(err));
  CHECK((code == KNSOCK_RESULT_OK) == (err == NULL));
  pthread_mutex_unlock(&d->mu);
}

static knsock_server *start(const char *dir, struct gate *g) {
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dir);
  knsock_server_config_set_host(c, "127.0.0.1");
  knsock_server_config_set_max_connections(c, CONCURRENT);
  knsock_server_config_set_pre_validator(c, held_validator, g);
  knsock_server_config_set_error_handler(c, gate_error, g);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  return s;
}

static void reset_gate(struct gate *g) {
  struct event e = EVENT_INIT;
  g->offered = e;
  g->release = e;
  g->server_error = e;
  g->last_error_code = 0;
}

static void test_concurrent(const char *src, const char *dst, uint16_t port) {
  char paths[CONCURRENT][1100], out[1100];
  knsock_transfer *t[CONCURRENT];
  struct done_log done[CONCURRENT];
  for (int i = 0; i < CONCURRENT; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/file-%02d.bin", src, i);
    write_random_file(paths[i], 200000 + (size_t)i * 7919, (unsigned)i + 10);
    memset(&done[i], 0, sizeof done[i]);
    pthread_mutex_init(&done[i].mu, NULL);
    t[i] = NULL;
    CHECK_RC(knsock_send_file_async("127.0.0.1", port, paths[i], NULL, on_done, &done[i], &t[i],
                                    NULL),
             KNSOCK_RESULT_OK);
  }
  for (int i = 0; i < CONCURRENT; i++) {
    CHECK_RC(knsock_transfer_wait(t[i], -1), KNSOCK_RESULT_OK);
    CHECK(knsock_transfer_error(t[i]) == NULL);
    uint64_t sent = 0, total = 0;
    CHECK_RC(knsock_transfer_progress(t[i], &sent, &total), KNSOCK_RESULT_OK);
    CHECK(sent == total && total == 200000 + (uint64_t)i * 7919);
    CHECK(done[i].calls == 1 && done[i].code == KNSOCK_RESULT_OK);
    knsock_transfer_free(t[i]);
    snprintf(out, sizeof out, "%s/file-%02d.bin", dst, i);
    CHECK(same_file(paths[i], out));
    pthread_mutex_destroy(&done[i].mu);
  }
}

/* Starts a transfer of "held.bin" and returns once the server holds it in its validator. */
static knsock_transfer *start_held(const char *src, uint16_t port, struct gate *g,
                                   struct done_log *d) {
  char path[1100];
  snprintf(path, sizeof path, "%s/held.bin", src);
  write_random_file(path, 1 << 20, 99);
  reset_gate(g);
  memset(d, 0, sizeof *d);
  pthread_mutex_init(&d->mu, NULL);
  knsock_transfer *t = NULL;
  CHECK_RC(knsock_send_file_async("127.0.0.1", port, path, NULL, on_done, d, &t, NULL),
           KNSOCK_RESULT_OK);
  CHECK(event_wait(&g->offered, 30));
  return t;
}

static void test_wait_timeout_then_complete(const char *src, const char *dst, uint16_t port,
                                            struct gate *g) {
  struct done_log d;
  char out[1100];
  knsock_transfer *t = start_held(src, port, g, &d);
  CHECK_RC(knsock_transfer_wait(t, 0), KNSOCK_RESULT_IN_PROGRESS);
  CHECK_RC(knsock_transfer_wait(t, 50), KNSOCK_RESULT_IN_PROGRESS);
  CHECK(knsock_transfer_error(t) == NULL);
  CHECK(d.calls == 0);
  event_set(&g->release);
  CHECK_RC(knsock_transfer_wait(t, 30000), KNSOCK_RESULT_OK);
  CHECK(d.calls == 1);
  knsock_transfer_free(t);
  snprintf(out, sizeof out, "%s/held.bin", dst);
  CHECK(path_exists(out));
  remove(out);
  pthread_mutex_destroy(&d.mu);
}

static void test_cancel(const char *src, const char *dst, uint16_t port, struct gate *g) {
  struct done_log d;
  char out[1100];
  knsock_transfer *t = start_held(src, port, g, &d);
  CHECK_RC(knsock_transfer_cancel(t), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_transfer_wait(t, 30000), KNSOCK_RESULT_CANCELLED);
  CHECK_RC(knsock_error_code(knsock_transfer_error(t)), KNSOCK_RESULT_CANCELLED);
  CHECK_CONTAINS(knsock_error_message(knsock_transfer_error(t)), "cancelled");
  CHECK(d.calls == 1 && d.code == KNSOCK_RESULT_CANCELLED);
  CHECK_RC(knsock_transfer_cancel(t), KNSOCK_RESULT_OK); /* after the end: harmless */
  event_set(&g->release);
  CHECK(event_wait(&g->server_error, 30)); /* the server saw the sender go */
  snprintf(out, sizeof out, "%s/held.bin", dst);
  CHECK(!path_exists(out));
  CHECK(count_entries(dst) == CONCURRENT); /* no temporary file left */
  knsock_transfer_free(t);
  pthread_mutex_destroy(&d.mu);
}

static void test_free_while_running(const char *src, const char *dst, uint16_t port,
                                    struct gate *g) {
  struct done_log d;
  char out[1100];
  knsock_transfer *t = start_held(src, port, g, &d);
  knsock_transfer_free(t); /* cancels, waits for the thread, runs on_done */
  CHECK(d.calls == 1 && d.code == KNSOCK_RESULT_CANCELLED);
  event_set(&g->release);
  CHECK(event_wait(&g->server_error, 30));
  snprintf(out, sizeof out, "%s/held.bin", dst);
  CHECK(!path_exists(out));
  CHECK(count_entries(dst) == CONCURRENT);
  pthread_mutex_destroy(&d.mu);
}

static void free_self(void *userdata, knsock_result code, const knsock_error *err) {
  (void)err;
  struct done_log *d = userdata;
  d->code = (int)code;
  d->calls++;
}

static void test_failure_detail(uint16_t port) {
  struct done_log d;
  memset(&d, 0, sizeof d);
  knsock_transfer *t = NULL;
  CHECK_RC(knsock_send_file_async("127.0.0.1", port, "/nonexistent/x.bin", NULL, free_self, &d,
                                  &t, NULL),
           KNSOCK_RESULT_OK);
  CHECK_RC(knsock_transfer_wait(t, -1), KNSOCK_RESULT_NOT_FOUND);
  CHECK(d.calls == 1 && d.code == KNSOCK_RESULT_NOT_FOUND);
  CHECK_CONTAINS(knsock_error_message(knsock_transfer_error(t)), "/nonexistent/x.bin");
  knsock_transfer_free(t);
  /* Bad options are refused synchronously, before any thread starts. */
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file_async("127.0.0.1", port, NULL, NULL, NULL, NULL, &t, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "path is NULL");
  knsock_error_free(err);
}

int main(void) {
  char src[512], dst[512];
  make_temp_dir(src, sizeof src, "asrc");
  make_temp_dir(dst, sizeof dst, "adst");
  struct gate g;
  reset_gate(&g);
  knsock_server *s = start(dst, &g);
  uint16_t port = knsock_server_port(s);
  test_concurrent(src, dst, port);
  test_wait_timeout_then_complete(src, dst, port, &g);
  test_cancel(src, dst, port, &g);
  test_free_while_running(src, dst, port, &g);
  test_failure_detail(port);
  knsock_server_free(s);
  remove_tree(src);
  remove_tree(dst);
  return finish("test_async");
}
