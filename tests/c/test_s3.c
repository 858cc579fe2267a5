/* A receiver that stores into an S3-compatible bucket, from C, against the real engine
 * scripts/test.sh starts (KNSOCK_S3_ENDPOINT, KNSOCK_S3_BUCKET; skipped without one unless
 * KNSOCK_REQUIRE_S3=1): a round trip whose object is checked through skip-unchanged with
 * checksums (no S3 client here), and the setters' and start's refusals. */
#include "check.h"

#include <utime.h>

static const char *ACCESS_KEY = "knsock-test";
static const char *SECRET_KEY = "knsock-test-secret";

struct received {
  pthread_mutex_t mu;
  struct event done;
  char path[4200];
};

static void on_received(void *userdata, const knsock_file_info *info) {
  struct received *r = userdata;
  pthread_mutex_lock(&r->mu);
  snprintf(r->path, sizeof r->path, "%s", knsock_file_info_path(info));
  pthread_mutex_unlock(&r->mu);
  event_set(&r->done);
}

/* A config storing into s3://BUCKET/PREFIX at `endpoint` with `secret`, spooling in `dir`. */
static knsock_server_config *s3_config(const char *dir, const char *url, const char *endpoint,
                                       const char *secret) {
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_s3(c, url), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_s3_endpoint(c, endpoint, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_s3_region(c, "us-east-1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_s3_credentials(c, ACCESS_KEY, secret, NULL), KNSOCK_RESULT_OK);
  return c;
}

/* Sends `path` with skip-unchanged and checksums; returns whether the receiver skipped it (-1
 * when the send failed). */
static int send_checked(uint16_t port, const char *path) {
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_skip_unchanged(o, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_checksum(o, true), KNSOCK_RESULT_OK);
  knsock_batch_report *r = NULL;
  knsock_error *err = NULL;
  int skipped = -1;
  CHECK_RC(knsock_send_files("127.0.0.1", port, &path, 1, o, &r, &err), KNSOCK_RESULT_OK);
  if (err) fprintf(stderr, "send: %s\n", knsock_error_message(err));
  if (r && knsock_batch_report_count(r) == 1 &&
      knsock_batch_report_result(r, 0) == KNSOCK_RESULT_OK)
    skipped = knsock_batch_report_skipped(r, 0);
  else if (r)
    fprintf(stderr, "send: %s\n", knsock_error_message(knsock_batch_report_error(r, 0)));
  knsock_batch_report_free(r);
  knsock_error_free(err);
  knsock_send_options_free(o);
  return skipped;
}

static void test_round_trip(const char *root, const char *endpoint, const char *bucket) {
  char spool[4200], file[4300], url[512], want[600];
  snprintf(spool, sizeof spool, "%s/spool", root);
  snprintf(file, sizeof file, "%s/report.bin", root);
  snprintf(url, sizeof url, "s3://%s/c-%ld", bucket, (long)getpid());
  snprintf(want, sizeof want, "%s/report.bin", url);
  mkdir(spool, 0755);
  write_random_file(file, 300000, 1);

  struct received rec = {PTHREAD_MUTEX_INITIALIZER, EVENT_INIT, ""};
  knsock_server_config *c = s3_config(spool, url, endpoint, SECRET_KEY);
  CHECK_RC(knsock_server_config_set_received_handler(c, on_received, &rec), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  if (!s) {
    fprintf(stderr, "start: %s\n", knsock_error_message(err));
    knsock_error_free(err);
    return;
  }
  uint16_t port = knsock_server_port(s);

  CHECK_RC(knsock_send_file("127.0.0.1", port, file, NULL, &err), KNSOCK_RESULT_OK);
  if (err) fprintf(stderr, "send: %s\n", knsock_error_message(err));
  knsock_error_free(err);
  CHECK(event_wait(&rec.done, 30));
  pthread_mutex_lock(&rec.mu);
  CHECK(strcmp(rec.path, want) == 0);
  if (strcmp(rec.path, want) != 0) fprintf(stderr, "received at \"%s\", want \"%s\"\n", rec.path, want);
  pthread_mutex_unlock(&rec.mu);
  char in_spool[4400];
  snprintf(in_spool, sizeof in_spool, "%s/report.bin", spool);
  CHECK(!path_exists(in_spool)); /* the bucket holds it, not the directory */

  /* The object is there with the file's digest: the receiver skips the same content. */
  CHECK(send_checked(port, file) == 1);

  /* Other bytes, same size and mtime: only the digest tells them apart, and they are sent. */
  struct stat st;
  CHECK(stat(file, &st) == 0);
  write_random_file(file, 300000, 2);
  struct utimbuf times = {st.st_atime, st.st_mtime};
  CHECK(utime(file, &times) == 0);
  CHECK(send_checked(port, file) == 0);
  CHECK(send_checked(port, file) == 1); /* and now that content is the object's */

  knsock_server_free(s);
}

/* Starts a server from `c` (then freed), which must fail with `code` and `want` in the message. */
static void start_fails(knsock_server_config *c, knsock_result code, const char *want) {
  knsock_server *s = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), code);
  CHECK(s == NULL);
  CHECK_RC(knsock_error_code(err), code);
  CHECK_CONTAINS(knsock_error_message(err), want);
  knsock_error_free(err);
  knsock_server_free(s);
  knsock_server_config_free(c);
}

static void test_refusals(const char *root, const char *endpoint, const char *bucket) {
  char spool[4200], url[512];
  snprintf(spool, sizeof spool, "%s/refusals", root);
  snprintf(url, sizeof url, "s3://%s/c-%ld-refused", bucket, (long)getpid());
  mkdir(spool, 0755);

  /* The adjusters need the bucket first, and say so. */
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_s3_endpoint(c, endpoint, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "knsock_server_config_set_s3");
  CHECK_RC(knsock_server_config_set_s3_region(c, "us-east-1"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_s3_credentials(c, ACCESS_KEY, SECRET_KEY, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_s3_ca_file(c, "/nonexistent.pem"),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_s3(c, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)), "S3 URL is NULL");
  CHECK_RC(knsock_server_config_set_s3(c, "http://x"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "is not an s3://bucket/prefix URL");
  CHECK_RC(knsock_server_config_set_s3(NULL, url), KNSOCK_RESULT_INVALID_ARGUMENT);
  /* Values the start would refuse are refused when set. */
  CHECK_RC(knsock_server_config_set_s3(c, url), KNSOCK_RESULT_OK);
  const char *not_urls[] = {"", "127.0.0.1:8333", "ftp://host", "http://", "https://:80"};
  for (size_t i = 0; i < sizeof not_urls / sizeof not_urls[0]; i++) {
    CHECK_RC(knsock_server_config_set_s3_endpoint(c, not_urls[i], true),
             KNSOCK_RESULT_INVALID_ARGUMENT);
    CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                   "is not an http(s) URL");
  }
  CHECK_RC(knsock_server_config_set_s3_region(c, ""), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)), "S3 region is empty");
  CHECK_RC(knsock_server_config_set_s3_credentials(c, "", SECRET_KEY, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "S3 access key is empty");
  CHECK_RC(knsock_server_config_set_s3_endpoint(c, endpoint, true), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);

  /* Nothing listens at the endpoint: start fails, the store unreachable. */
  int fd;
  char closed[64];
  snprintf(closed, sizeof closed, "http://127.0.0.1:%u", (unsigned)refusing_port(&fd));
  start_fails(s3_config(spool, url, closed, SECRET_KEY), KNSOCK_RESULT_STORE, "unreachable");
  close(fd);

  /* The store refuses the keys. */
  start_fails(s3_config(spool, url, endpoint, "wrong-secret"), KNSOCK_RESULT_STORE,
              "access denied");

  /* Keep-both needs to see the names a directory holds: refused with a bucket. */
  c = s3_config(spool, url, endpoint, SECRET_KEY);
  CHECK_RC(knsock_server_config_set_overwrite(c, KNSOCK_OVERWRITE_RENAME), KNSOCK_RESULT_OK);
  start_fails(c, KNSOCK_RESULT_INVALID_ARGUMENT, "object store");
}

int main(void) {
  const char *endpoint = getenv("KNSOCK_S3_ENDPOINT");
  const char *bucket = getenv("KNSOCK_S3_BUCKET");
  if (!endpoint || !*endpoint || !bucket || !*bucket) {
    /* Skipped (77: CTest's SKIP_RETURN_CODE) unless KNSOCK_REQUIRE_S3=1, which scripts/test.sh
     * sets so that CI never skips it silently. */
    const char *require = getenv("KNSOCK_REQUIRE_S3");
    bool required = require && strcmp(require, "1") == 0;
    fprintf(stderr,
            "test_s3: %s: no S3 engine: set KNSOCK_S3_ENDPOINT and KNSOCK_S3_BUCKET (an existing "
            "bucket there; keys knsock-test / knsock-test-secret), as scripts/test.sh does when "
            "it starts SeaweedFS (%s)\n",
            required ? "FAILED" : "skipped",
            required ? "KNSOCK_REQUIRE_S3=1: S3 tests must run"
                     : "KNSOCK_REQUIRE_S3=1 makes this a failure");
    return required ? 1 : 77;
  }
  char root[4096];
  make_temp_dir(root, sizeof root, "s3");
  test_round_trip(root, endpoint, bucket);
  test_refusals(root, endpoint, bucket);
  remove_tree(root);
  return finish("test_s3");
}
