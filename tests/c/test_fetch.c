/* knsock_fetch_files and knsock_fetch_files_async: files sent are fetched back through the
 * callbacks (progress, fetched, error) and the report; a receiver that does not serve fetches,
 * or does not serve them to an anonymous client, refuses; NULL arguments. */
#include "check.h"

struct fetch_log {
  pthread_mutex_t mu;
  int progress_calls, fetched, unchanged, errors;
  uint64_t last_got, last_total;
  char last_path[1200], last_error_name[64], last_error[512];
};

static int on_progress(void *userdata, const char *name, uint64_t got, uint64_t total) {
  struct fetch_log *l = userdata;
  (void)name;
  pthread_mutex_lock(&l->mu);
  l->progress_calls++;
  l->last_got = got;
  l->last_total = total;
  pthread_mutex_unlock(&l->mu);
  return KNSOCK_CONTINUE;
}

static void on_fetched(void *userdata, const char *name, const char *path, uint64_t size,
                       bool unchanged) {
  struct fetch_log *l = userdata;
  (void)name;
  (void)size;
  pthread_mutex_lock(&l->mu);
  if (unchanged) l->unchanged++;
  else l->fetched++;
  snprintf(l->last_path, sizeof l->last_path, "%s", path);
  pthread_mutex_unlock(&l->mu);
}

static void on_error(void *userdata, const char *name, const knsock_error *e) {
  struct fetch_log *l = userdata;
  pthread_mutex_lock(&l->mu);
  l->errors++;
  snprintf(l->last_error_name, sizeof l->last_error_name, "%s", name);
  snprintf(l->last_error, sizeof l->last_error, "%s", knsock_error_message(e));
  pthread_mutex_unlock(&l->mu);
}

static struct event done_event = EVENT_INIT;
static int done_code = -1;

static void on_done(void *userdata, knsock_result code, const knsock_error *e) {
  (void)userdata;
  (void)e;
  done_code = (int)code;
  event_set(&done_event);
}

static knsock_server *start(const char *dir, bool allow, bool anonymous) {
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dir);
  knsock_server_config_set_host(c, "127.0.0.1");
  CHECK_RC(knsock_server_config_set_allow_fetch(c, allow), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_allow_anonymous_fetch(c, anonymous), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_allow_fetch(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_allow_anonymous_fetch(NULL, true),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  return s;
}

int main(void) {
  char src[512], srv[512], dst[512], p[1200], q[1200];
  make_temp_dir(src, sizeof src, "fsrc");
  make_temp_dir(srv, sizeof srv, "fsrv");
  make_temp_dir(dst, sizeof dst, "fdst");
  snprintf(p, sizeof p, "%s/tree", src);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/tree/a.bin", src);
  write_random_file(p, 600000, 1);
  snprintf(p, sizeof p, "%s/tree/b.txt", src);
  write_random_file(p, 100, 2);

  knsock_server *s = start(srv, true, true);
  uint16_t port = knsock_server_port(s);
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_recursive(o, true), KNSOCK_RESULT_OK);
  snprintf(p, sizeof p, "%s/tree", src);
  const char *paths[] = {p};
  knsock_batch_report *r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, o, &r, NULL), KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_failed(r) == 0);
  knsock_batch_report_free(r);

  /* Fetched back, with every callback. */
  struct fetch_log log;
  memset(&log, 0, sizeof log);
  pthread_mutex_init(&log.mu, NULL);
  knsock_fetch_callbacks cbs = {on_progress, on_fetched, on_error, &log};
  const char *names[] = {"tree", "nope"};
  knsock_error *err = NULL;
  r = NULL;
  CHECK_RC(knsock_fetch_files("127.0.0.1", port, names, 2, dst, o, &cbs, &r, &err),
           KNSOCK_RESULT_OK);
  CHECK(err == NULL);
  CHECK(knsock_batch_report_count(r) == 3);
  CHECK(knsock_batch_report_failed(r) == 1);
  CHECK(strcmp(knsock_batch_report_name(r, 0), "tree/a.bin") == 0);
  CHECK(knsock_batch_report_bytes(r, 0) == 600000);
  /* No old copy here: every byte came over the wire, none from a local copy. */
  CHECK(knsock_batch_report_bytes_sent(r, 0) == 600000);
  CHECK(knsock_batch_report_bytes_reused(r, 0) == 0);
  CHECK(strcmp(knsock_batch_report_name(r, 2), "nope") == 0);
  CHECK_RC(knsock_batch_report_result(r, 2), KNSOCK_RESULT_NOT_FOUND);
  CHECK_CONTAINS(knsock_error_message(knsock_batch_report_error(r, 2)), "no such file: 'nope'");
  knsock_batch_report_free(r);
  snprintf(p, sizeof p, "%s/tree/a.bin", src);
  snprintf(q, sizeof q, "%s/tree/a.bin", dst);
  CHECK(same_file(p, q));
  snprintf(p, sizeof p, "%s/tree/b.txt", src);
  snprintf(q, sizeof q, "%s/tree/b.txt", dst);
  CHECK(same_file(p, q));
  CHECK(log.fetched == 2 && log.unchanged == 0);
  CHECK(log.progress_calls >= 3);
  CHECK(log.errors == 1);
  CHECK(strcmp(log.last_error_name, "nope") == 0);
  CHECK_CONTAINS(log.last_error, "no such file");

  /* Again, skipping what is unchanged: nothing moves. */
  CHECK_RC(knsock_send_options_set_skip_unchanged(o, true), KNSOCK_RESULT_OK);
  memset(&log, 0, sizeof log);
  pthread_mutex_init(&log.mu, NULL);
  r = NULL;
  CHECK_RC(knsock_fetch_files("127.0.0.1", port, names, 1, dst, o, &cbs, &r, NULL),
           KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_skipped(r, 0) && knsock_batch_report_skipped(r, 1));
  CHECK(log.unchanged == 2 && log.fetched == 0 && log.progress_calls == 0);
  CHECK_CONTAINS(log.last_path, "/tree/");
  knsock_batch_report_free(r);

  /* The fetch-only settings: a mode mask (0644 within 0700 gives 0600) and partial copies. */
  CHECK_RC(knsock_send_options_set_fetch_mode_mask(o, 010000), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_fetch_mode_mask(NULL, 0700), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_fetch_partial(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_fetch_mode_mask(o, 0700), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_fetch_partial(o, true), KNSOCK_RESULT_OK);
  char dst3[512];
  make_temp_dir(dst3, sizeof dst3, "fdst3");
  const char *one[] = {"tree/b.txt"};
  r = NULL;
  CHECK_RC(knsock_fetch_files("127.0.0.1", port, one, 1, dst3, o, NULL, &r, NULL),
           KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_failed(r) == 0);
  knsock_batch_report_free(r);
  struct stat st;
  snprintf(q, sizeof q, "%s/b.txt", dst3);
  CHECK(stat(q, &st) == 0 && (st.st_mode & 07777) == 0600);
  CHECK_RC(knsock_send_options_set_fetch_mode_mask(o, 0755), KNSOCK_RESULT_OK);
  remove_tree(dst3);

  /* The async form, into a new directory: the transfer ends OK and the files are there. */
  char dst2[512];
  make_temp_dir(dst2, sizeof dst2, "fdst2");
  knsock_transfer *t = NULL;
  CHECK_RC(knsock_fetch_files_async("127.0.0.1", port, names, 1, dst2, o, NULL, on_done, NULL,
                                    &t, NULL),
           KNSOCK_RESULT_OK);
  CHECK_RC(knsock_transfer_wait(t, -1), KNSOCK_RESULT_OK);
  CHECK(event_wait(&done_event, 30) && done_code == KNSOCK_RESULT_OK);
  knsock_transfer_free(t);
  snprintf(q, sizeof q, "%s/tree/b.txt", dst2);
  CHECK(same_file(p, q));
  /* An async fetch that fails ends with the first error. */
  const char *missing[] = {"nope"};
  t = NULL;
  CHECK_RC(knsock_fetch_files_async("127.0.0.1", port, missing, 1, dst2, o, NULL, NULL, NULL,
                                    &t, NULL),
           KNSOCK_RESULT_OK);
  CHECK_RC(knsock_transfer_wait(t, -1), KNSOCK_RESULT_NOT_FOUND);
  CHECK_CONTAINS(knsock_error_message(knsock_transfer_error(t)), "no such file");
  knsock_transfer_free(t);
  knsock_server_free(s);

  /* Refusals: no --allow-fetch; an anonymous client without the opt-in. */
  knsock_server *closed = start(srv, false, false);
  err = NULL;
  CHECK_RC(knsock_fetch_files("127.0.0.1", knsock_server_port(closed), names, 1, dst, NULL,
                              NULL, &r, &err),
           KNSOCK_RESULT_REJECTED);
  CHECK_CONTAINS(knsock_error_message(err), "does not serve fetches");
  knsock_error_free(err);
  knsock_server_free(closed);
  knsock_server *authed = start(srv, true, false);
  err = NULL;
  CHECK_RC(knsock_fetch_files("127.0.0.1", knsock_server_port(authed), names, 1, dst, NULL,
                              NULL, &r, &err),
           KNSOCK_RESULT_AUTH);
  CHECK(knsock_error_peer_code(err) == 20);
  knsock_error_free(err);
  knsock_server_free(authed);

  /* NULL arguments. */
  CHECK_RC(knsock_fetch_files(NULL, 1, names, 1, dst, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_fetch_files("127.0.0.1", 1, NULL, 1, dst, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_fetch_files("127.0.0.1", 1, names, 1, NULL, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_fetch_files("127.0.0.1", 1, names, 1, dst, NULL, NULL, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_fetch_files("127.0.0.1", 1, names, 0, dst, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  const char *climbing[] = {"../x"};
  CHECK_RC(knsock_fetch_files("127.0.0.1", 1, climbing, 1, dst, NULL, NULL, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_fetch_files_async("127.0.0.1", 1, names, 1, dst, NULL, NULL, NULL, NULL, NULL,
                                    NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_send_options_free(o);
  remove_tree(src);
  remove_tree(srv);
  remove_tree(dst);
  remove_tree(dst2);
  return finish("test_fetch");
}
