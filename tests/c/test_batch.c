/* knsock_send_files and knsock_batch_report: a tree over one connection, filters, per-file
 * outcomes with the receiver's reasons, and argument checking. */
#include "check.h"

/* What the batch progress callback saw. */
struct batch_log {
  int calls, went_back, wrong_count;
  size_t last_index;
  uint64_t last_sent, total;
  char last_name[64];
};

static int on_batch(void *userdata, const char *filename, size_t index, size_t count,
                    uint64_t file_sent, uint64_t file_total, uint64_t sent, uint64_t total) {
  struct batch_log *l = userdata;
  if (sent < l->last_sent || file_sent > file_total || sent > total) l->went_back++;
  if (count != 3) l->wrong_count++;
  l->calls++;
  l->last_index = index;
  l->last_sent = sent;
  l->total = total;
  snprintf(l->last_name, sizeof l->last_name, "%s", filename);
  return KNSOCK_CONTINUE;
}

int main(void) {
  char src[512], dst[512], p[1200], q[1200];
  make_temp_dir(src, sizeof src, "bsrc");
  make_temp_dir(dst, sizeof dst, "bdst");
  snprintf(p, sizeof p, "%s/logs", src);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/logs/sub", src);
  mkdir(p, 0755);
  const char *files[] = {"logs/a.log", "logs/sub/b.log", "logs/sub/secret.log", "logs/c.tmp"};
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s/%s", src, files[i]);
    write_random_file(p, 10000 + (size_t)i, (unsigned)i);
  }

  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dst);
  knsock_server_config_set_host(c, "127.0.0.1");
  knsock_server_config_set_pre_validator(c, refuse_secret, NULL);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  uint16_t port = knsock_server_port(s);

  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_recursive(o, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_add_include(o, "*.log"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_add_exclude(o, "*.tmp"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_add_include(o, "["), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_add_include(o, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_follow_symlinks(o, false), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_stop_on_error(o, false), KNSOCK_RESULT_OK);
  struct batch_log blog = {0};
  CHECK_RC(knsock_send_options_set_batch_progress_callback(o, on_batch, &blog), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_batch_progress_callback(NULL, on_batch, &blog),
           KNSOCK_RESULT_INVALID_ARGUMENT);

  snprintf(p, sizeof p, "%s/logs", src);
  const char *paths[] = {p};
  knsock_batch_report *r = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, o, &r, &err), KNSOCK_RESULT_OK);
  CHECK(err == NULL);
  CHECK(knsock_batch_report_count(r) == 3);
  CHECK(knsock_batch_report_failed(r) == 1);
  CHECK(strcmp(knsock_batch_report_name(r, 0), "logs/a.log") == 0);
  CHECK(strcmp(knsock_batch_report_name(r, 1), "logs/sub/b.log") == 0);
  CHECK(strcmp(knsock_batch_report_name(r, 2), "logs/sub/secret.log") == 0);
  CHECK_CONTAINS(knsock_batch_report_path(r, 0), "/logs/a.log");
  CHECK_RC(knsock_batch_report_result(r, 0), KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_bytes(r, 1) == 10001);
  CHECK(knsock_batch_report_bytes_sent(r, 1) == 10001 && knsock_batch_report_bytes_reused(r, 1) == 0);
  CHECK(knsock_batch_report_error(r, 0) == NULL);
  CHECK_RC(knsock_batch_report_result(r, 2), KNSOCK_RESULT_REJECTED);
  CHECK_CONTAINS(knsock_error_peer_reason(knsock_batch_report_error(r, 2)), "secrets stay home");
  CHECK_RC(knsock_batch_report_result(r, 3), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(knsock_batch_report_name(r, 3) == NULL);
  CHECK(knsock_batch_report_error(r, 3) == NULL);
  knsock_batch_report_free(r);
  /* Overall progress over the three files: small files in a batch go eagerly (content right
   * after the offer), so secret.log streams too and is refused after its data. */
  CHECK(blog.calls >= 6 && blog.went_back == 0 && blog.wrong_count == 0);
  CHECK(blog.total == 10000 + 10001 + 10002);
  CHECK(blog.last_index == 2 && blog.last_sent == blog.total);
  CHECK(strcmp(blog.last_name, "logs/sub/secret.log") == 0);
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", src, files[i]);
    snprintf(q, sizeof q, "%s/%s", dst, files[i]);
    CHECK(same_file(p, q));
  }
  snprintf(q, sizeof q, "%s/logs/sub/secret.log", dst);
  CHECK(!path_exists(q));
  snprintf(q, sizeof q, "%s/logs/c.tmp", dst);
  CHECK(!path_exists(q));

  /* Again with skip_unchanged: the two delivered files are already there, unchanged. */
  CHECK_RC(knsock_send_options_set_skip_unchanged(o, true), KNSOCK_RESULT_OK);
  memset(&blog, 0, sizeof blog);
  snprintf(p, sizeof p, "%s/logs", src); /* paths[0] is p */
  r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, o, &r, NULL), KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_skipped(r, 0) && knsock_batch_report_skipped(r, 1));
  CHECK(knsock_batch_report_bytes_sent(r, 0) == 0 && knsock_batch_report_bytes_reused(r, 0) == 0);
  CHECK(knsock_batch_report_bytes_sent(r, 9) == 0 && knsock_batch_report_bytes_sent(NULL, 0) == 0);
  CHECK(knsock_batch_report_bytes_reused(NULL, 0) == 0);
  CHECK(!knsock_batch_report_skipped(r, 2)); /* refused, not skipped */
  CHECK(!knsock_batch_report_skipped(r, 9));
  CHECK_RC(knsock_batch_report_result(r, 0), KNSOCK_RESULT_OK);
  knsock_batch_report_free(r);
  /* Skipped files still move the overall progress, one call each; secret.log, which a probe
   * finds changed (the receiver has none), is sent again eagerly and refused after its data. */
  CHECK(blog.calls >= 3 && blog.went_back == 0);
  CHECK(blog.last_sent == 10000 + 10001 + 10002);
  CHECK(strcmp(blog.last_name, "logs/sub/secret.log") == 0);
  CHECK_RC(knsock_send_options_set_batch_progress_callback(o, NULL, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_skip_unchanged(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  /* With checksum the digests are compared: still unchanged, still skipped. */
  CHECK_RC(knsock_send_options_set_checksum(o, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_delta(o, false), KNSOCK_RESULT_OK);
  r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, o, &r, NULL), KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_skipped(r, 0) && knsock_batch_report_skipped(r, 1));
  knsock_batch_report_free(r);
  CHECK_RC(knsock_send_options_set_checksum(o, false), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_checksum(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_delta(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);

  /* A directory without recursion is refused before connecting, with no report. */
  knsock_send_options *plain = knsock_send_options_new();
  snprintf(p, sizeof p, "%s/logs", src);
  r = NULL;
  err = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, plain, &r, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(r == NULL);
  CHECK_CONTAINS(knsock_error_message(err), "is a directory");
  knsock_error_free(err);
  CHECK_RC(knsock_send_files("127.0.0.1", port, NULL, 1, plain, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, plain, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_files(NULL, port, paths, 1, plain, &r, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_recursive(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_follow_symlinks(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_stop_on_error(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_add_exclude(NULL, "x"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK(knsock_batch_report_count(NULL) == 0);
  CHECK(knsock_batch_report_failed(NULL) == 0);
  knsock_batch_report_free(NULL);
  knsock_send_options_free(plain);
  knsock_send_options_free(o);
  knsock_server_free(s);
  remove_tree(src);
  remove_tree(dst);
  return finish("test_batch");
}
