/* Helpers of the TLS tests: a server started with TLS and tokens as asked, what its handlers
 * saw (with a bounded wait for the received handler, which runs after the sender was told), a
 * tokens file made with knsock_hash_token(), and certificates made with openssl. */
#ifndef KNSOCK_TEST_TLS_UTIL_H
#define KNSOCK_TEST_TLS_UTIL_H

#include "check.h"



/* What a server's handlers saw. */
struct seen {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int received, errors;
  knsock_result last_error;
  char identity[128]; /* of the last received file; "(none)" for an anonymous sender */
  char name[512];     /* the name the last received file was stored under */
};

static inline void seen_init(struct seen *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
}

static inline void seen_destroy(struct seen *s) {
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
}

static void on_received(void *ud, const knsock_file_info *info) {
  struct seen *s = ud;
  const char *id = knsock_file_info_identity(info);
  pthread_mutex_lock(&s->mu);
  snprintf(s->identity, sizeof s->identity, "%s", id ? id : "(none)");
  snprintf(s->name, sizeof s->name, "%s", knsock_file_info_name(info));
  s->received++;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void on_error(void *ud, knsock_result code, const char *message, const char *peer) {
  struct seen *s = ud;
  (void)message;
  (void)peer;
  pthread_mutex_lock(&s->mu);
  s->errors++;
  s->last_error = code;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* 1 once the server has called its received handler `n` times in all (within 30 s). */
static inline int wait_received(struct seen *s, int n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 30;
  pthread_mutex_lock(&s->mu);
  while (s->received < n && pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != ETIMEDOUT) {
  }
  int ok = s->received >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

/* Same for the error handler. */
static inline int wait_errors(struct seen *s, int n) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 30;
  pthread_mutex_lock(&s->mu);
  while (s->errors < n && pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != ETIMEDOUT) {
  }
  int ok = s->errors >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

enum { WITH_TLS = 1, WITH_CONFINE = 2 };

/* A server on 127.0.0.1 storing into `<root>/<tag>/recv` (made here; written to `dir`), resume
 * on, TLS self-signed with its state in `<root>/state` (so every TLS server of a test program
 * has the same pin) when `flags` has WITH_TLS, requiring the tokens in `tokens` unless NULL. */
static inline knsock_server *start_server(const char *root, const char *tag, int flags,
                                          const char *tokens, struct seen *seen, char *dir,
                                          size_t dir_len) {
  char base[4200], state[4200];
  snprintf(base, sizeof base, "%s/%s", root, tag);
  snprintf(state, sizeof state, "%s/state", root);
  mkdir(base, 0755);
  snprintf(dir, dir_len, "%s/recv", base);
  mkdir(dir, 0755);
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_directory(c, dir), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_host(c, "127.0.0.1"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_config_set_resume_ttl_ms(c, 600000), KNSOCK_RESULT_OK);
  if (flags & WITH_TLS) CHECK_RC(knsock_server_config_set_tls_self_signed(c, state), KNSOCK_RESULT_OK);
  if (tokens) CHECK_RC(knsock_server_config_set_tokens_file(c, tokens), KNSOCK_RESULT_OK);
  if (flags & WITH_CONFINE)
    CHECK_RC(knsock_server_config_set_confine_identities(c, true), KNSOCK_RESULT_OK);
  if (seen) {
    CHECK_RC(knsock_server_config_set_received_handler(c, on_received, seen), KNSOCK_RESULT_OK);
    CHECK_RC(knsock_server_config_set_error_handler(c, on_error, seen), KNSOCK_RESULT_OK);
  }
  knsock_server *s = NULL;
  knsock_error *err = NULL;
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_OK);
  if (err) fprintf(stderr, "server start: %s\n", knsock_error_message(err));
  knsock_error_free(err);
  knsock_server_config_free(c);
  return s;
}

/* Options that verify the server by `pin`, with `token` unless NULL. */
static inline knsock_send_options *pinned(const char *pin, const char *token) {
  knsock_send_options *o = knsock_send_options_new();
  CHECK_RC(knsock_send_options_set_pin(o, pin), KNSOCK_RESULT_OK);
  if (token) CHECK_RC(knsock_send_options_set_token(o, token), KNSOCK_RESULT_OK);
  return o;
}

/* `<dir>/tokens` (mode 0600) accepting alice:alice-secret and bob:bob-secret. */
static inline void write_tokens(const char *dir, char *path, size_t len) {
  const char *names[] = {"alice", "bob"}, *secrets[] = {"alice-secret", "bob-secret"};
  snprintf(path, len, "%s/tokens", dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(2);
  }
  for (int i = 0; i < 2; i++) {
    char *hash = NULL;
    knsock_error *err = NULL;
    CHECK_RC(knsock_hash_token(secrets[i], &hash, &err), KNSOCK_RESULT_OK);
    CHECK(err == NULL && hash != NULL);
    fprintf(f, "%s:%s\n", names[i], hash ? hash : "");
    knsock_string_free(hash);
  }
  fclose(f);
  chmod(path, 0600);
}

/* Writes `text` to `<dir>/<name>`. */
static inline void write_text(const char *dir, const char *name, const char *text) {
  char p[4300];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (!f) {
    perror(p);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/* Runs a shell command in `dir`; 1 on success. */
static inline int run_in(const char *dir, const char *cmd) {
  char full[8600];
  snprintf(full, sizeof full, "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
  return system(full) == 0;
}

/* In `dir`: ca.pem/ca.key (a CA named `ca_name`), server.pem/server.key for "localhost" and
 * client-carol.pem/.key (subject CN carol), both issued by that CA. 1 on success. */
static inline int make_pki(const char *dir, const char *ca_name) {
  char ca_cnf[256];
  snprintf(ca_cnf, sizeof ca_cnf,
           "[req]\ndistinguished_name=dn\nx509_extensions=v3\nprompt=no\n[dn]\nCN=%s\n"
           "[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
           "subjectKeyIdentifier=hash\n",
           ca_name);
  write_text(dir, "ca.cnf", ca_cnf);
  write_text(dir, "server.cnf", "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=localhost\n");
  write_text(dir, "client.cnf", "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=carol\n");
  write_text(dir, "server.ext",
             "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\n"
             "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
  write_text(dir, "client.ext",
             "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
             "keyUsage=critical,digitalSignature\n");
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -config ca.cnf %s -keyout ca.key -out ca.pem -days 2 && "
           "openssl req -new -config server.cnf %s -keyout server.key -out server.csr && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 "
           "-extfile server.ext -out server.pem && "
           "openssl req -new -config client.cnf %s -keyout client-carol.key -out client.csr && "
           "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 3 -days 2 "
           "-extfile client.ext -out client-carol.pem",
           ec, ec, ec);
  return run_in(dir, cmd);
}

#endif
