/* Every exported function of knsock.h: argument checking, NULL handling, a real round trip with
 * every callback and its userdata, refusals with reasons, and cleanup. */
#include "check.h"

struct server_log {
  pthread_mutex_t mu;
  int pre_calls, post_calls, received, errors;
  int post_saw_temp_file;
  char received_name[256], received_path[4200], peer[64];
  int last_error_code;
  char last_error[1100];
  struct event error_event;
};

static int finalized;
static void finalize(void *userdata) { *(int *)userdata += 1; }

static int pre_validator(void *userdata, const knsock_file_info *info, char *reason,
                         size_t reason_len) {
  struct server_log *log = userdata;
  pthread_mutex_lock(&log->mu);
  log->pre_calls++;
  pthread_mutex_unlock(&log->mu);
  CHECK(knsock_file_info_path(info) == NULL); /* no data yet */
  CHECK(reason_len >= 1025);
  if (strncmp(knsock_file_info_name(info), "bad", 3) == 0) {
    snprintf(reason, reason_len, "names starting with bad are refused (%s)",
             knsock_file_info_name(info));
    return 1;
  }
  return 0;
}

static int post_validator(void *userdata, const knsock_file_info *info, char *reason,
                          size_t reason_len) {
  struct server_log *log = userdata;
  struct stat st;
  const char *p = knsock_file_info_path(info);
  int ok = p && stat(p, &st) == 0 && (uint64_t)st.st_size == knsock_file_info_size(info);
  pthread_mutex_lock(&log->mu);
  log->post_calls++;
  log->post_saw_temp_file += ok && strstr(p, "/.knsock-") != NULL;
  pthread_mutex_unlock(&log->mu);
  if (strstr(knsock_file_info_name(info), "postreject")) {
    snprintf(reason, reason_len, "content check failed");
    return 7;
  }
  return 0;
}

static void on_received(void *userdata, const knsock_file_info *info) {
  struct server_log *log = userdata;
  pthread_mutex_lock(&log->mu);
  log->received++;
  snprintf(log->received_name, sizeof log->received_name, "%s", knsock_file_info_name(info));
  snprintf(log->received_path, sizeof log->received_path, "%s", knsock_file_info_path(info));
  snprintf(log->peer, sizeof log->peer, "%s", knsock_file_info_peer(info));
  CHECK(knsock_file_info_mode(info) == 0640);
  CHECK(knsock_file_info_mtime(info) == 1700000000);
  pthread_mutex_unlock(&log->mu);
}

static void on_error(void *userdata, knsock_result code, const char *message, const char *peer) {
  struct server_log *log = userdata;
  pthread_mutex_lock(&log->mu);
  log->errors++;
  log->last_error_code = (int)code;
  snprintf(log->last_error, sizeof log->last_error, "%s", message);
  CHECK(peer != NULL);
  pthread_mutex_unlock(&log->mu);
  event_set(&log->error_event);
}

struct progress_log {
  int calls, monotonic, abort_after;
  uint64_t last_sent, last_total;
  char name[64];
};

static int on_progress(void *userdata, const char *filename, uint64_t sent, uint64_t total) {
  struct progress_log *p = userdata;
  if (p->calls > 0 && sent < p->last_sent) p->monotonic = 0;
  p->calls++;
  p->last_sent = sent;
  p->last_total = total;
  snprintf(p->name, sizeof p->name, "%s", filename);
  if (p->abort_after && sent >= (uint64_t)p->abort_after) return 42;
  return KNSOCK_CONTINUE;
}

static void test_version_and_codes(void) {
  CHECK(strcmp(knsock_version(), KNSOCK_VERSION_STRING) == 0);
  char v[32];
  snprintf(v, sizeof v, "%d.%d.%d", KNSOCK_VERSION_MAJOR, KNSOCK_VERSION_MINOR,
           KNSOCK_VERSION_PATCH);
  CHECK(strcmp(v, KNSOCK_VERSION_STRING) == 0);
  CHECK(strcmp(knsock_result_str(KNSOCK_RESULT_OK), "success") == 0);
  CHECK(strcmp(knsock_result_str(KNSOCK_RESULT_REJECTED), "rejected by the receiver") == 0);
  CHECK(strcmp(knsock_result_str(-1), "unknown result code") == 0);
  CHECK(strcmp(knsock_result_str(9999), "unknown result code") == 0);
  /* Every code up to the last the header knows has its own text; the next is unknown. */
  for (int c = 0; c <= KNSOCK_RESULT_LAST; c++) {
    CHECK(strcmp(knsock_result_str(c), "unknown result code") != 0);
    for (int d = 0; d < c; d++) CHECK(strcmp(knsock_result_str(c), knsock_result_str(d)) != 0);
  }
  CHECK(KNSOCK_RESULT_LAST >= KNSOCK_RESULT_BUSY);
  CHECK(strcmp(knsock_result_str(KNSOCK_RESULT_STORE), "the receiver's object store failed") == 0);
  CHECK(strcmp(knsock_result_str(KNSOCK_RESULT_BUSY), "the receiver is busy: retry later") == 0);
  CHECK(strcmp(knsock_result_str(KNSOCK_RESULT_LAST + 1), "unknown result code") == 0);
}

static void test_null_arguments(void) {
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file(NULL, 1, "/x", NULL, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_error_code(err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "host is NULL");
  CHECK(knsock_error_peer_reason(err) == NULL);
  CHECK(knsock_error_peer_code(err) == 0);
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", 1, NULL, NULL, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "path is NULL");
  knsock_error_free(err);
  CHECK_RC(knsock_send_file(NULL, 1, NULL, NULL, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);

  CHECK_RC(knsock_error_code(NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(knsock_error_message(NULL) == NULL);
  CHECK(knsock_error_peer_reason(NULL) == NULL);
  CHECK(knsock_error_peer_code(NULL) == 0);
  knsock_error_free(NULL);

  CHECK(knsock_file_info_name(NULL) == NULL);
  CHECK(knsock_file_info_size(NULL) == 0);
  CHECK(knsock_file_info_mtime(NULL) == 0);
  CHECK(knsock_file_info_mode(NULL) == 0);
  CHECK(knsock_file_info_peer(NULL) == NULL);
  CHECK(knsock_file_info_path(NULL) == NULL);

  CHECK_RC(knsock_send_options_set_show_progress(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_progress_callback(NULL, on_progress, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_chunk_size(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_timeout_ms(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_connect_timeout_ms(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_remote_name(NULL, "x"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_legacy(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_retries(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_retry_delay_ms(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_resume_ttl_ms(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_compress(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_accept_compression(NULL, true),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_send_options_free(NULL);

  CHECK_RC(knsock_server_config_set_directory(NULL, "/tmp"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_host(NULL, "x"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_port(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_max_connections(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_idle_timeout_ms(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_max_file_size(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_reserve_bytes(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_overwrite(NULL, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_pre_validator(NULL, pre_validator, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_post_validator(NULL, post_validator, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_received_handler(NULL, on_received, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_error_handler(NULL, on_error, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_finalizer(NULL, finalize, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_server_config_free(NULL);

  knsock_server *server = NULL;
  err = NULL;
  CHECK_RC(knsock_server_start(NULL, &server, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(server == NULL);
  CHECK_CONTAINS(knsock_error_message(err), "config is NULL");
  knsock_error_free(err);
  CHECK(knsock_server_port(NULL) == 0);
  CHECK_RC(knsock_server_stop(NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_wait(NULL, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_server_free(NULL);

  knsock_transfer *t = NULL;
  CHECK_RC(knsock_send_file_async(NULL, 1, "/x", NULL, NULL, NULL, &t, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_file_async("127.0.0.1", 1, "/x", NULL, NULL, NULL, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(t == NULL);
  CHECK_RC(knsock_transfer_wait(NULL, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(knsock_transfer_error(NULL) == NULL);
  CHECK_RC(knsock_transfer_cancel(NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_transfer_progress(NULL, NULL, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_transfer_free(NULL);
}

/* A setter call refused with KNSOCK_RESULT_INVALID_ARGUMENT and `message` in its detail. */
#define CHECK_REFUSED(c, call, message)                                                  \
  do {                                                                                   \
    CHECK_RC(call, KNSOCK_RESULT_INVALID_ARGUMENT);                                      \
    const knsock_error *e_ = knsock_server_config_last_error(c);                        \
    CHECK(e_ != NULL);                                                                   \
    if (e_) CHECK_CONTAINS(knsock_error_message(e_), message);                           \
  } while (0)

/* Each server-config setter refuses, at set time and with the start's own message, every value
 * the start would refuse. */
static void test_values_the_start_would_refuse(knsock_server_config *c) {
  CHECK_REFUSED(c, knsock_server_config_set_idle_timeout_ms(c, UINT64_MAX),
                "idle timeout must be above 0 and at most 86400 s");
  CHECK_REFUSED(c, knsock_server_config_set_idle_timeout_ms(c, 86400001), "at most 86400 s");
  CHECK_REFUSED(c, knsock_server_config_set_header_timeout_ms(c, UINT64_MAX),
                "header timeout must be");
  CHECK_REFUSED(c, knsock_server_config_set_header_timeout_ms(c, 0), "header timeout must be");
  CHECK_REFUSED(c, knsock_server_config_set_resume_ttl_ms(c, UINT64_MAX),
                "resume time must be at most");
  CHECK_REFUSED(c, knsock_server_config_set_max_connections(c, 1000001),
                "max connections must be 1 to");
  CHECK_REFUSED(c, knsock_server_config_set_max_connections(c, UINT32_MAX),
                "max connections must be 1 to");
  CHECK_REFUSED(c, knsock_server_config_set_mode_mask(c, 010000), "beyond 0o7777");
  /* The largest accepted values are accepted, and a success clears the detail. */
  CHECK_RC(knsock_server_config_set_idle_timeout_ms(c, 86400000), KNSOCK_RESULT_OK);
  CHECK(knsock_server_config_last_error(c) == NULL);
  CHECK_RC(knsock_server_config_set_resume_ttl_ms(c, 365ull * 86400000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_max_connections(c, 1000000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_idle_timeout_ms(c, 30000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_resume_ttl_ms(c, 0), KNSOCK_RESULT_OK);
}

static void test_bad_values(void) {
  knsock_send_options *o = knsock_send_options_new();
  CHECK(o != NULL);
  CHECK_RC(knsock_send_options_set_chunk_size(o, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_chunk_size(o, (size_t)65 << 20), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_chunk_size(o, 4096), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_timeout_ms(o, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_connect_timeout_ms(o, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_remote_name(o, "\xff\xfe"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_remote_name(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_progress_callback(o, NULL, NULL), KNSOCK_RESULT_OK);
  /* A remote name the receiver would refuse is caught before connecting. */
  CHECK_RC(knsock_send_options_set_remote_name(o, "../escape"), KNSOCK_RESULT_OK);
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", 9, "/etc/hostname", o, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "'..' path component");
  knsock_error_free(err);
  knsock_send_options_free(o);

  knsock_server_config *c = knsock_server_config_new();
  CHECK(c != NULL);
  CHECK_RC(knsock_server_config_set_overwrite(c, 3), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_overwrite(c, KNSOCK_OVERWRITE_RENAME), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_max_connections(c, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_idle_timeout_ms(c, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  test_values_the_start_would_refuse(c);
  CHECK_RC(knsock_server_config_set_directory(c, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_directory(c, ""), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_host(c, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_server *s = NULL;
  err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "no directory set");
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_server_config_set_directory(c, "/nonexistent/knsock/dir"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_NOT_FOUND);
  CHECK_CONTAINS(knsock_error_message(err), "/nonexistent/knsock/dir");
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_server_config_set_directory(c, "/tmp"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_start(c, NULL, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_error_free(err);
  CHECK(s == NULL);
  knsock_server_config_free(c);
}

static knsock_server *start_server(const char *dir, struct server_log *log, uint32_t policy) {
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_port(c, 0), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_max_connections(c, 8), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_idle_timeout_ms(c, 5000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_max_file_size(c, 8 << 20), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_reserve_bytes(c, 0), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_resume_ttl_ms(c, 0), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_accept_compression(c, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_overwrite(c, policy), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_pre_validator(c, pre_validator, log), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_post_validator(c, post_validator, log), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_received_handler(c, on_received, log), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_error_handler(c, on_error, log), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_finalizer(c, finalize, &finalized), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_OK);
  if (err) fprintf(stderr, "start: %s\n", knsock_error_message(err));
  knsock_error_free(err);
  knsock_server_config_free(c);
  CHECK(finalized == 0); /* the server still holds the callbacks */
  CHECK(knsock_server_port(s) != 0);
  return s;
}

static void test_round_trip_and_refusals(void) {
  char src[512], dst[512], path[1100], out[1100];
  make_temp_dir(src, sizeof src, "src");
  make_temp_dir(dst, sizeof dst, "dst");
  struct server_log log;
  memset(&log, 0, sizeof log);
  pthread_mutex_init(&log.mu, NULL);
  struct event ev = EVENT_INIT;
  log.error_event = ev;
  finalized = 0;
  knsock_server *s = start_server(dst, &log, KNSOCK_OVERWRITE_REFUSE);
  uint16_t port = knsock_server_port(s);

  /* A round trip with a progress callback, chunk boundaries crossed. */
  snprintf(path, sizeof path, "%s/data.bin", src);
  write_random_file(path, 1000003, 1);
  chmod(path, 0640);
  struct timespec times[2] = {{1700000000, 0}, {1700000000, 0}};
  utimensat(AT_FDCWD, path, times, 0);
  knsock_send_options *o = knsock_send_options_new();
  struct progress_log prog = {0, 1, 0, 0, 0, ""};
  CHECK_RC(knsock_send_options_set_progress_callback(o, on_progress, &prog), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_chunk_size(o, 65536), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_timeout_ms(o, 5000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_connect_timeout_ms(o, 5000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_show_progress(o, false), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_retries(o, 2), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_retry_delay_ms(o, 10), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_legacy(o, false), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_compress(o, true), KNSOCK_RESULT_OK); /* random data: raw */
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err), KNSOCK_RESULT_OK);
  CHECK(err == NULL);
  snprintf(out, sizeof out, "%s/data.bin", dst);
  CHECK(same_file(path, out));
  CHECK(prog.monotonic);
  CHECK(prog.calls == 1 + (1000003 + 65535) / 65536);
  CHECK(prog.last_sent == 1000003 && prog.last_total == 1000003);
  CHECK(strcmp(prog.name, "data.bin") == 0);
  /* Remote name with a subdirectory. */
  CHECK_RC(knsock_send_options_set_remote_name(o, "sub/dir/renamed.bin"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, NULL), KNSOCK_RESULT_OK);
  snprintf(out, sizeof out, "%s/sub/dir/renamed.bin", dst);
  CHECK(same_file(path, out));
  CHECK_RC(knsock_send_options_set_remote_name(o, NULL), KNSOCK_RESULT_OK);

  /* The same name again: the policy is "refuse". */
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err), KNSOCK_RESULT_REJECTED);
  CHECK(knsock_error_peer_code(err) == 2);
  CHECK_CONTAINS(knsock_error_peer_reason(err), "exists");
  knsock_error_free(err);

  /* The pre-data validator refuses with a reason that reaches the sender; nothing is stored. */
  snprintf(path, sizeof path, "%s/bad-name.txt", src);
  write_random_file(path, 100, 2);
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err), KNSOCK_RESULT_REJECTED);
  CHECK_RC(knsock_error_code(err), KNSOCK_RESULT_REJECTED);
  CHECK(knsock_error_peer_code(err) == 1);
  CHECK_CONTAINS(knsock_error_peer_reason(err), "names starting with bad are refused (bad-name.txt)");
  CHECK_CONTAINS(knsock_error_message(err), "names starting with bad are refused");
  knsock_error_free(err);
  snprintf(out, sizeof out, "%s/bad-name.txt", dst);
  CHECK(!path_exists(out));

  /* The post-data validator refuses after the upload; nothing is stored either. */
  snprintf(path, sizeof path, "%s/postreject.txt", src);
  write_random_file(path, 5000, 3);
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err), KNSOCK_RESULT_REJECTED);
  CHECK_CONTAINS(knsock_error_peer_reason(err), "content check failed");
  knsock_error_free(err);
  snprintf(out, sizeof out, "%s/postreject.txt", dst);
  CHECK(!path_exists(out));

  /* Too large for the server's limit: refused before any data. */
  snprintf(path, sizeof path, "%s/huge.bin", src);
  write_random_file(path, (8 << 20) + 1, 4);
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err), KNSOCK_RESULT_REJECTED);
  CHECK(knsock_error_peer_code(err) == 4);
  CHECK_CONTAINS(knsock_error_peer_reason(err), "exceeds the limit");
  knsock_error_free(err);

  /* The progress callback aborts: a distinct code, and the receiver keeps nothing. */
  snprintf(path, sizeof path, "%s/aborted.bin", src);
  write_random_file(path, 300000, 5);
  struct progress_log abort_prog = {0, 1, 65536, 0, 0, ""};
  CHECK_RC(knsock_send_options_set_progress_callback(o, on_progress, &abort_prog),
           KNSOCK_RESULT_OK);
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err),
           KNSOCK_RESULT_ABORTED_BY_CALLBACK);
  CHECK_CONTAINS(knsock_error_message(err), "aborted by the progress callback");
  knsock_error_free(err);
  CHECK(abort_prog.last_sent == 65536);
  CHECK(event_wait(&log.error_event, 10)); /* the server noticed the aborted upload */
  snprintf(out, sizeof out, "%s/aborted.bin", dst);
  CHECK(!path_exists(out));

  /* A missing local file is named in the message. */
  err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, "/nonexistent/file.bin", o, &err),
           KNSOCK_RESULT_NOT_FOUND);
  CHECK_CONTAINS(knsock_error_message(err), "/nonexistent/file.bin");
  knsock_error_free(err);
  knsock_send_options_free(o);

  knsock_server_stop(s);
  CHECK_RC(knsock_server_stop(s), KNSOCK_RESULT_OK); /* twice is fine */
  CHECK_RC(knsock_server_wait(s, NULL), KNSOCK_RESULT_OK);
  pthread_mutex_lock(&log.mu);
  CHECK(log.received == 2);
  CHECK(strcmp(log.received_name, "sub/dir/renamed.bin") == 0);
  snprintf(out, sizeof out, "%s/sub/dir/renamed.bin", dst);
  CHECK(strcmp(log.received_path, out) == 0);
  CHECK_CONTAINS(log.peer, "127.0.0.1:");
  CHECK(log.pre_calls == 5); /* data, renamed, postreject, aborted, and bad-name */
  CHECK(log.post_calls == 3);
  CHECK(log.post_saw_temp_file == 3);
  CHECK(log.errors >= 5);
  pthread_mutex_unlock(&log.mu);
  CHECK(count_entries(dst) == 2); /* data.bin and sub/: no temporary files */
  CHECK(finalized == 0);
  knsock_server_free(s);
  CHECK(finalized == 1); /* the last holder is gone: finalizer ran exactly once */

  /* A port nothing listens on. */
  int refusing;
  uint16_t closed = refusing_port(&refusing);
  err = NULL;
  snprintf(path, sizeof path, "%s/data.bin", src);
  CHECK_RC(knsock_send_file("127.0.0.1", closed, path, NULL, &err), KNSOCK_RESULT_CONNECT);
  CHECK_CONTAINS(knsock_error_message(err), "cannot connect");
  knsock_error_free(err);
  close(refusing);

  pthread_mutex_destroy(&log.mu);
  remove_tree(src);
  remove_tree(dst);
}

static void test_finalizer_without_server(void) {
  int count = 0;
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_finalizer(c, finalize, &count), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_finalizer(c, finalize, &count), KNSOCK_RESULT_OK);
  CHECK(count == 1); /* the first was released when replaced */
  knsock_server_config_free(c);
  CHECK(count == 2);
}

struct stop_state {
  knsock_server *server;
  int received;
};

static void stop_from_handler(void *userdata, const knsock_file_info *info) {
  struct stop_state *st = userdata;
  (void)info;
  st->received++;
  CHECK_RC(knsock_server_stop(st->server), KNSOCK_RESULT_OK); /* must not deadlock */
}

static void test_stop_from_handler(void) {
  char src[512], dst[512], path[1100];
  make_temp_dir(src, sizeof src, "src");
  make_temp_dir(dst, sizeof dst, "dst");
  struct stop_state st = {NULL, 0};
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dst);
  knsock_server_config_set_host(c, "127.0.0.1");
  knsock_server_config_set_received_handler(c, stop_from_handler, &st);
  CHECK_RC(knsock_server_start(c, &st.server, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  snprintf(path, sizeof path, "%s/one.txt", src);
  write_random_file(path, 10, 6);
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(st.server), path, NULL, NULL),
           KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_wait(st.server, NULL), KNSOCK_RESULT_OK);
  CHECK(st.received == 1);
  knsock_server_free(st.server);
  remove_tree(src);
  remove_tree(dst);
}

int main(void) {
  test_version_and_codes();
  test_null_arguments();
  test_bad_values();
  test_round_trip_and_refusals();
  test_finalizer_without_server();
  test_stop_from_handler();
  return finish("test_api");
}
