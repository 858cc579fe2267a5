/* TLS from C: every new export with NULL arguments, the setters' checks and their detail, the
 * pin, round trips over TLS (one file, 2,000 small files, resume after a cut connection,
 * compression), a CA-issued server certificate and a client certificate (openssl). */
#include "tls_util.h"

static const char *WRONG_PIN = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

static void test_null_arguments(void) {
  knsock_send_options *o = knsock_send_options_new();
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_send_options_set_tls(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_ca_file(NULL, "/ca.pem"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_pin(NULL, WRONG_PIN), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_server_name(NULL, "x"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_client_cert(NULL, "/c", "/k"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_token(NULL, "a:b"), KNSOCK_RESULT_INVALID_ARGUMENT);
  /* NULL values clear (and are accepted). */
  CHECK_RC(knsock_send_options_set_ca_file(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_pin(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_server_name(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_client_cert(o, NULL, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_token(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_client_cert(o, "/c", NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "a client certificate needs its key");

  CHECK_RC(knsock_server_config_set_tls_cert(NULL, "/c", "/k"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_tls_cert(c, NULL, "/k"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)), "certificate is NULL");
  CHECK_RC(knsock_server_config_set_tls_cert(c, "/c", NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)), "key is NULL");
  CHECK_RC(knsock_server_config_set_tls_self_signed(NULL, "/s"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_tls_self_signed(c, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_tls_self_signed(c, ""), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_tokens_file(NULL, "/t"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_tokens_file(c, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_client_ca(NULL, "/ca"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_client_ca(c, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_confine_identities(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_identity_dir(NULL, "a", "b"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_identity_dir(c, NULL, "b"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_identity_dir(c, "a", NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_allow_plaintext(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_allow_legacy(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_header_timeout_ms(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_max_decoders(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_hash_budget(NULL, 1), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_mode_mask(NULL, 0644), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_raise_fd_limit(NULL, true), KNSOCK_RESULT_INVALID_ARGUMENT);

  CHECK(knsock_server_tls_pin(NULL) == NULL);
  CHECK(knsock_file_info_identity(NULL) == NULL);
  char *hash = (char *)"untouched";
  knsock_error *err = NULL;
  CHECK_RC(knsock_hash_token(NULL, &hash, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "secret is NULL");
  CHECK(strcmp(hash, "untouched") == 0);
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_hash_token("s", NULL, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "output pointer is NULL");
  knsock_error_free(err);
  err = NULL;
  CHECK_RC(knsock_hash_token("", &hash, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "the secret is empty");
  knsock_error_free(err);
  CHECK_RC(knsock_hash_token("s", &hash, NULL), KNSOCK_RESULT_OK);
  CHECK(strncmp(hash, "pbkdf2-sha256$", 14) == 0);
  knsock_string_free(hash);
  knsock_string_free(NULL);

  CHECK(KNSOCK_RESULT_AUTH == 14);
  CHECK(strcmp(knsock_result_str(KNSOCK_RESULT_AUTH), "authentication failed") == 0);
  knsock_send_options_free(o);
  knsock_server_config_free(c);
}

static void test_setter_detail(void) {
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_pin(o, "sha256//short"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "pin must look like sha256//BASE64");
  CHECK_RC(knsock_send_options_set_pin(o, WRONG_PIN), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_ca_file(o, "/ca.pem"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "give a pin or a CA file, not both");
  CHECK_RC(knsock_send_options_set_pin(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_ca_file(o, "/ca.pem"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_server_name(o, ""), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)), "server name is empty");
  CHECK_RC(knsock_send_options_set_token(o, "no-colon"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_send_options_last_error(o)),
                 "a token must be NAME:SECRET");
  CHECK_RC(knsock_send_options_set_token(o, "alice:"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_token(o, ".hidden:s"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_options_set_token(o, "alice:s"), KNSOCK_RESULT_OK);
  CHECK(knsock_send_options_last_error(o) == NULL);
  knsock_send_options_free(o);

  /* A token without TLS is refused before any connection (the port refuses connections). */
  int fd;
  uint16_t port = refusing_port(&fd);
  o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_token(o, "alice:s"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_tls(o, false), KNSOCK_RESULT_OK);
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, "/etc/hostname", o, &err),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "a token is sent only over TLS");
  knsock_error_free(err);
  knsock_send_options_free(o);
  close(fd);

  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_identity_dir(c, ".bad", "x"), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)), "identity \".bad\"");
  CHECK_RC(knsock_server_config_set_identity_dir(c, "alice", "../x"),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "directory of identity alice");
  CHECK_RC(knsock_server_config_set_identity_dir(c, "alice", "in/alice"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_header_timeout_ms(c, 0), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)),
                 "header timeout must be above 0");
  CHECK_RC(knsock_server_config_set_header_timeout_ms(c, 86400001), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_server_config_set_header_timeout_ms(c, 5000), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_mode_mask(c, 010000), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(knsock_server_config_last_error(c)), "mode mask");
  CHECK_RC(knsock_server_config_set_mode_mask(c, 0700), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_max_decoders(c, 0), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_hash_budget(c, 0), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_raise_fd_limit(c, false), KNSOCK_RESULT_OK);
  CHECK(knsock_server_config_last_error(c) == NULL);
  knsock_server_config_free(c);
}

/* Combinations refused at start, with the reason. */
static void test_start_refusals(const char *root) {
  char dir[4200], tokens[4300];
  snprintf(dir, sizeof dir, "%s/refused", root);
  mkdir(dir, 0755);
  write_tokens(dir, tokens, sizeof tokens);
  struct {
    int tls, confine;
    const char *tokens, *plaintext_with, *want;
  } cases[] = {
      {0, 0, tokens, NULL, "need TLS"},
      {1, 1, NULL, NULL, "confinement needs authenticated senders"},
      {1, 1, tokens, "plaintext", "cannot be combined with allow_plaintext"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    knsock_server_config *c = knsock_server_config_new();
    CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
    CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
    if (cases[i].tls) knsock_server_config_set_tls_self_signed(c, dir);
    if (cases[i].tokens) knsock_server_config_set_tokens_file(c, cases[i].tokens);
    if (cases[i].confine) knsock_server_config_set_confine_identities(c, true);
    if (cases[i].plaintext_with) knsock_server_config_set_allow_plaintext(c, true);
    knsock_server *s = NULL;
    knsock_error *err = NULL;
    CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_CONTAINS(knsock_error_message(err), cases[i].want);
    knsock_error_free(err);
    knsock_server_config_free(c);
  }
  /* A tokens file others may read. */
  chmod(tokens, 0644);
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dir);
  knsock_server_config_set_host(c, "127.0.0.1");
  knsock_server_config_set_tls_self_signed(c, dir);
  knsock_server_config_set_tokens_file(c, tokens);
  knsock_server *s = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_CONTAINS(knsock_error_message(err), "chmod 600");
  knsock_error_free(err);
  knsock_server_config_free(c);
}

/* Aborts a send once `*limit` bytes are out; records the first `sent` of each attempt. */
struct cut {
  uint64_t limit, first, last;
  int calls;
};

static int cut_progress(void *ud, const char *name, uint64_t sent, uint64_t total) {
  struct cut *c = ud;
  (void)name;
  (void)total;
  if (c->calls++ == 0) c->first = sent;
  c->last = sent;
  return c->limit && sent >= c->limit ? KNSOCK_CONTINUE + 1 : KNSOCK_CONTINUE;
}

static void test_round_trips(const char *root) {
  struct seen seen;
  char dir[4200], src[4200], p[4400], q[4400];
  seen_init(&seen);
  knsock_server *plain = start_server(root, "plain", 0, NULL, NULL, dir, sizeof dir);
  CHECK(knsock_server_tls_pin(plain) == NULL);
  snprintf(src, sizeof src, "%s/src", root);
  mkdir(src, 0755);
  snprintf(p, sizeof p, "%s/plain.txt", src);
  write_random_file(p, 100, 3);
  /* Forgetting TLS details (NULL) does not turn TLS on: this send stays plain and succeeds. */
  knsock_send_options *forgot = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_pin(forgot, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_ca_file(forgot, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_server_name(forgot, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_client_cert(forgot, NULL, NULL), KNSOCK_RESULT_OK);
  knsock_error *perr = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(plain), p, forgot, &perr),
           KNSOCK_RESULT_OK);
  knsock_error_free(perr);
  knsock_send_options_free(forgot);
  knsock_server_free(plain);

  knsock_server *s = start_server(root, "trips", WITH_TLS, NULL, &seen, dir, sizeof dir);
  uint16_t port = knsock_server_port(s);
  const char *pin = knsock_server_tls_pin(s);
  CHECK(pin != NULL && strncmp(pin, "sha256//", 8) == 0 && strlen(pin) == 52);

  /* One file. */
  knsock_send_options *o = pinned(pin, NULL);
  knsock_error *err = NULL;
  snprintf(p, sizeof p, "%s/one.bin", src);
  write_random_file(p, 3 << 20, 1);
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, o, &err), KNSOCK_RESULT_OK);
  snprintf(q, sizeof q, "%s/one.bin", dir);
  CHECK(same_file(p, q));
  CHECK(wait_received(&seen, 1));
  CHECK(strcmp(seen.identity, "(none)") == 0);

  /* Resume after a cut: the first attempt stops at 3/4 (its connection closed in the middle of
   * the content), the second starts where the receiver's kept data ends. What the receiver kept
   * is what it had read when the connection went: at most the socket buffers (a few MiB) less
   * than what was sent, so the bound below leaves a wide margin. */
  const uint64_t big = 32 << 20;
  snprintf(p, sizeof p, "%s/big.bin", src);
  write_random_file(p, big, 2);
  struct cut cut = {big / 4 * 3, 0, 0, 0};
  CHECK_RC(knsock_send_options_set_progress_callback(o, cut_progress, &cut), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, o, &err), KNSOCK_RESULT_ABORTED_BY_CALLBACK);
  knsock_error_free(err);
  err = NULL;
  snprintf(q, sizeof q, "%s/big.bin", dir);
  CHECK(!path_exists(q));
  struct cut resumed = {0, 0, 0, 0};
  CHECK_RC(knsock_send_options_set_progress_callback(o, cut_progress, &resumed), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, o, &err), KNSOCK_RESULT_OK);
  CHECK(resumed.first >= big / 8 && resumed.first <= big / 4 * 3 + (1 << 20));
  CHECK(resumed.last == big);
  CHECK(same_file(p, q));
  CHECK_RC(knsock_send_options_set_progress_callback(o, NULL, NULL), KNSOCK_RESULT_OK);

  /* Compression. */
  snprintf(p, sizeof p, "%s/text.log", src);
  FILE *f = fopen(p, "w");
  for (int i = 0; i < 100000; i++) fputs("compressible line of text\n", f);
  fclose(f);
  CHECK_RC(knsock_send_options_set_compress(o, true), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, o, &err), KNSOCK_RESULT_OK);
  snprintf(q, sizeof q, "%s/text.log", dir);
  CHECK(same_file(p, q));
  knsock_send_options_free(o);

  /* 2,000 small files over one connection. */
  char many[4300];
  snprintf(many, sizeof many, "%s/many", root);
  mkdir(many, 0755);
  enum { N = 2000 };
  char **paths = calloc(N, sizeof *paths);
  for (int i = 0; i < N; i++) {
    paths[i] = malloc(4400);
    snprintf(paths[i], 4400, "%s/f%d.txt", many, i);
    write_random_file(paths[i], 4096, (unsigned)i + 10);
  }
  knsock_server *b = start_server(root, "batch", WITH_TLS, NULL, NULL, dir, sizeof dir);
  o = pinned(knsock_server_tls_pin(b), NULL);
  knsock_batch_report *r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", knsock_server_port(b), (const char *const *)paths, N, o,
                             &r, &err),
           KNSOCK_RESULT_OK);
  CHECK(r != NULL && knsock_batch_report_count(r) == N && knsock_batch_report_failed(r) == 0);
  CHECK(count_entries(dir) == N);
  snprintf(q, sizeof q, "%s/f1999.txt", dir);
  CHECK(same_file(paths[N - 1], q));
  knsock_batch_report_free(r);
  knsock_send_options_free(o);
  knsock_server_free(b);
  for (int i = 0; i < N; i++) free(paths[i]);
  free(paths);
  knsock_server_free(s);
  seen_destroy(&seen);
}

/* A server certificate issued by a CA (verified with its host name), an unknown CA, and a
 * client certificate giving the identity. */
static void test_ca_and_client_certificates(const char *root) {
  char pki[4200], other[4200], dir[4200], p[4300], cert[4300], key[4300], ca[4300];
  snprintf(pki, sizeof pki, "%s/pki", root);
  snprintf(other, sizeof other, "%s/pki-other", root);
  mkdir(pki, 0755);
  mkdir(other, 0755);
  CHECK(make_pki(pki, "knsock C test CA"));
  CHECK(make_pki(other, "another CA"));
  snprintf(cert, sizeof cert, "%s/server.pem", pki);
  snprintf(key, sizeof key, "%s/server.key", pki);
  snprintf(ca, sizeof ca, "%s/ca.pem", pki);
  snprintf(dir, sizeof dir, "%s/ca-recv", root);
  mkdir(dir, 0755);
  snprintf(p, sizeof p, "%s/ca.cnf", pki); /* any small file to send */

  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dir);
  knsock_server_config_set_host(c, "127.0.0.1");
  CHECK_RC(knsock_server_config_set_tls_cert(c, cert, key), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  CHECK(knsock_server_tls_pin(s) != NULL);
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_ca_file(o, ca), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("localhost", knsock_server_port(s), p, o, &err), KNSOCK_RESULT_OK);
  CHECK(count_entries(dir) == 1);
  /* The same certificate for another name. */
  CHECK_RC(knsock_send_options_set_server_name(o, "elsewhere.example"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("localhost", knsock_server_port(s), p, o, &err), KNSOCK_RESULT_AUTH);
  CHECK(err && strcasestr(knsock_error_message(err), "not valid for name"));
  knsock_error_free(err);
  err = NULL;
  /* Unknown CA: the sender trusts another one. */
  snprintf(ca, sizeof ca, "%s/ca.pem", other);
  CHECK_RC(knsock_send_options_set_server_name(o, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_options_set_ca_file(o, ca), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("localhost", knsock_server_port(s), p, o, &err), KNSOCK_RESULT_AUTH);
  CHECK(err && strcasestr(knsock_error_message(err), "unknownissuer"));
  knsock_error_free(err);
  err = NULL;
  CHECK(count_entries(dir) == 1);
  knsock_send_options_free(o);
  knsock_server_free(s);

  /* A client certificate proves the identity "carol". */
  struct seen seen;
  seen_init(&seen);
  char state[4300];
  snprintf(state, sizeof state, "%s/state", root);
  snprintf(ca, sizeof ca, "%s/ca.pem", pki);
  snprintf(dir, sizeof dir, "%s/mtls-recv", root);
  mkdir(dir, 0755);
  c = knsock_server_config_new();
  knsock_server_config_set_directory(c, dir);
  knsock_server_config_set_host(c, "127.0.0.1");
  knsock_server_config_set_tls_self_signed(c, state);
  CHECK_RC(knsock_server_config_set_client_ca(c, ca), KNSOCK_RESULT_OK);
  knsock_server_config_set_received_handler(c, on_received, &seen);
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  snprintf(cert, sizeof cert, "%s/client-carol.pem", pki);
  snprintf(key, sizeof key, "%s/client-carol.key", pki);
  o = pinned(knsock_server_tls_pin(s), NULL);
  CHECK_RC(knsock_send_options_set_client_cert(o, cert, key), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(s), p, o, &err), KNSOCK_RESULT_OK);
  CHECK(wait_received(&seen, 1));
  CHECK(strcmp(seen.identity, "carol") == 0);
  /* Without it: refused. */
  CHECK_RC(knsock_send_options_set_client_cert(o, NULL, NULL), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(s), p, o, &err), KNSOCK_RESULT_AUTH);
  CHECK_CONTAINS(knsock_error_message(err), "client certificate");
  knsock_error_free(err);
  CHECK(count_entries(dir) == 1);
  knsock_send_options_free(o);
  knsock_server_free(s);
  seen_destroy(&seen);
}

int main(void) {
  char root[4096];
  make_temp_dir(root, sizeof root, "tls");
  test_null_arguments();
  test_setter_detail();
  test_start_refusals(root);
  test_round_trips(root);
  test_ca_and_client_certificates(root);
  remove_tree(root);
  return finish("test_tls");
}
