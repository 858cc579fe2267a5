/* Byte-exact paths: a server whose directory name is not UTF-8 hands its validator and handler
 * paths that exist, and a batch report gives back a non-UTF-8 source path as it was passed. */
#include "check.h"

struct seen {
  pthread_mutex_t mu;
  const char *dir; /* the server's directory, "…/caf\xe9" */
  int pre_calls, pre_no_path;
  int post_calls, post_exists, post_in_dir, post_bytes_match, post_null_len;
  int received, received_exists, received_bytes_match;
  char received_path[4200];
};

/* knsock_file_info_path_bytes agrees with knsock_file_info_path, byte for byte. */
static int bytes_match(const knsock_file_info *info) {
  size_t len = 999999;
  const char *p = knsock_file_info_path(info);
  const char *b = knsock_file_info_path_bytes(info, &len);
  return p && b && len == strlen(p) && memcmp(b, p, len) == 0 && b[len] == '\0';
}

static int pre(void *userdata, const knsock_file_info *info, char *reason, size_t reason_len) {
  struct seen *s = userdata;
  size_t len = 777;
  const char *b = knsock_file_info_path_bytes(info, &len);
  (void)reason;
  (void)reason_len;
  pthread_mutex_lock(&s->mu);
  s->pre_calls++;
  s->pre_no_path += knsock_file_info_path(info) == NULL && b == NULL && len == 0;
  pthread_mutex_unlock(&s->mu);
  return KNSOCK_VALIDATOR_ACCEPT;
}

static int post(void *userdata, const knsock_file_info *info, char *reason, size_t reason_len) {
  struct seen *s = userdata;
  struct stat st;
  const char *p = knsock_file_info_path(info);
  (void)reason;
  (void)reason_len;
  pthread_mutex_lock(&s->mu);
  s->post_calls++;
  s->post_exists += p && stat(p, &st) == 0 && (uint64_t)st.st_size == knsock_file_info_size(info);
  s->post_in_dir += p && strncmp(p, s->dir, strlen(s->dir)) == 0 && p[strlen(s->dir)] == '/';
  s->post_bytes_match += bytes_match(info);
  s->post_null_len += knsock_file_info_path_bytes(info, NULL) == NULL;
  pthread_mutex_unlock(&s->mu);
  return KNSOCK_VALIDATOR_ACCEPT;
}

static void received(void *userdata, const knsock_file_info *info) {
  struct seen *s = userdata;
  struct stat st;
  const char *p = knsock_file_info_path(info);
  pthread_mutex_lock(&s->mu);
  s->received++;
  s->received_exists += p && stat(p, &st) == 0;
  s->received_bytes_match += bytes_match(info);
  snprintf(s->received_path, sizeof s->received_path, "%s", p ? p : "");
  pthread_mutex_unlock(&s->mu);
}

int main(void) {
  char root[4096], dir[4200], src_dir[4200], src[4300], want[4400];
  make_temp_dir(root, sizeof root, "paths");
  snprintf(dir, sizeof dir, "%s/caf\xe9", root);       /* Latin-1 "café": not UTF-8 */
  snprintf(src_dir, sizeof src_dir, "%s/src\xff", root); /* 0xff is never UTF-8 */
  if (mkdir(dir, 0755) != 0 || mkdir(src_dir, 0755) != 0) {
    perror("mkdir");
    return 2;
  }
  snprintf(src, sizeof src, "%s/a.txt", src_dir);
  write_random_file(src, 70000, 3);

  struct seen s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  s.dir = dir;
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_pre_validator(c, pre, &s), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_post_validator(c, post, &s), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_received_handler(c, received, &s), KNSOCK_RESULT_OK);
  knsock_server *srv = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &srv, &err), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  uint16_t port = knsock_server_port(srv);

  /* A batch of one non-UTF-8 source path into the non-UTF-8 server directory. */
  const char *paths[] = {src};
  knsock_batch_report *r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, 1, NULL, &r, &err), KNSOCK_RESULT_OK);
  CHECK(r != NULL && knsock_batch_report_count(r) == 1 && knsock_batch_report_failed(r) == 0);
  const char *rp = knsock_batch_report_path(r, 0);
  CHECK(rp != NULL && strcmp(rp, src) == 0); /* byte-exact, not "src\xef\xbf\xbd" */
  size_t len = 999999;
  const char *rb = knsock_batch_report_path_bytes(r, 0, &len);
  CHECK(rb != NULL && len == strlen(src) && memcmp(rb, src, len) == 0 && rb[len] == '\0');
  CHECK(rb != NULL && rp != NULL && path_exists(rb));

  /* NULL and out-of-range arguments: NULL, and *len untouched. */
  len = 42;
  CHECK(knsock_batch_report_path_bytes(NULL, 0, &len) == NULL && len == 42);
  CHECK(knsock_batch_report_path_bytes(r, 1, &len) == NULL && len == 42);
  CHECK(knsock_batch_report_path_bytes(r, 0, NULL) == NULL);
  CHECK(knsock_file_info_path_bytes(NULL, &len) == NULL && len == 42);
  knsock_batch_report_free(r);

  /* The single-file send lands in the same directory through the same callbacks. */
  CHECK_RC(knsock_send_file("127.0.0.1", port, src, NULL, &err), KNSOCK_RESULT_OK);
  knsock_server_stop(srv);
  knsock_server_free(srv);

  snprintf(want, sizeof want, "%s/a.txt", dir);
  CHECK(same_file(src, want));
  CHECK(s.pre_calls == 2 && s.pre_no_path == 2);
  CHECK(s.post_calls == 2);
  CHECK(s.post_exists == 2);
  CHECK(s.post_in_dir == 2);
  CHECK(s.post_bytes_match == 2);
  CHECK(s.post_null_len == 2);
  CHECK(s.received == 2 && s.received_exists == 2 && s.received_bytes_match == 2);
  CHECK(strcmp(s.received_path, want) == 0);
  if (err) fprintf(stderr, "unexpected error: %s\n", knsock_error_message(err));
  knsock_error_free(err);
  pthread_mutex_destroy(&s.mu);
  remove_tree(root);
  return finish("test_paths");
}
