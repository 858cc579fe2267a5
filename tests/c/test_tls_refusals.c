/* Refusals over TLS from C, each checked by its code and message at the sender and by nothing
 * stored: a wrong pin, no token, a wrong token, a plain client against a TLS-only server, a TLS
 * client against a plain server (at once, no hang), and confinement (identity A cannot
 * overwrite B's file). Tokens reach the server's received handler as the identity. */
#include "tls_util.h"

static const char *WRONG_PIN = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/* Sends `path` and checks the refusal: KNSOCK_RESULT_AUTH, `want` in the message, the peer
 * code (0: none). */
static void refused(uint16_t port, const char *path, const knsock_send_options *o,
                    const char *want, uint16_t peer_code) {
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, path, o, &err), KNSOCK_RESULT_AUTH);
  CHECK_RC(knsock_error_code(err), KNSOCK_RESULT_AUTH);
  CHECK_CONTAINS(knsock_error_message(err), want);
  CHECK(knsock_error_peer_code(err) == peer_code);
  if (knsock_error_peer_code(err) != peer_code)
    fprintf(stderr, "peer code %u, want %u (%s)\n", knsock_error_peer_code(err), peer_code,
            knsock_error_message(err));
  knsock_error_free(err);
}

static void test_verification(const char *root, const char *file) {
  char dir[4200];
  struct seen seen;
  seen_init(&seen);
  /* A wrong pin: the handshake is refused by the sender, nothing is offered. */
  knsock_server *s = start_server(root, "pin", WITH_TLS, NULL, &seen, dir, sizeof dir);
  knsock_send_options *o = pinned(WRONG_PIN, NULL);
  refused(knsock_server_port(s), file, o, "does not match the pin", 0);
  CHECK(count_entries(dir) == 0);
  knsock_send_options_free(o);

  /* A plain client against a TLS-only server: told so, with ERROR code 13. */
  refused(knsock_server_port(s), file, NULL, "this server requires TLS", 13);
  CHECK(wait_errors(&seen, 1));
  CHECK(count_entries(dir) == 0);
  knsock_server_free(s);

  /* A TLS client against a plain server: a clear error at once, not a hang. */
  s = start_server(root, "plain", 0, NULL, NULL, dir, sizeof dir);
  o = pinned(WRONG_PIN, NULL);
  time_t started = time(NULL);
  refused(knsock_server_port(s), file, o, "does not speak TLS", 0);
  CHECK(time(NULL) - started < 10);
  CHECK(count_entries(dir) == 0);
  knsock_send_options_free(o);
  knsock_server_free(s);
  seen_destroy(&seen);
}

static void test_tokens(const char *root, const char *tokens, const char *file) {
  char dir[4200];
  struct seen seen;
  seen_init(&seen);
  knsock_server *s = start_server(root, "tok", WITH_TLS, tokens, &seen, dir, sizeof dir);
  uint16_t port = knsock_server_port(s);
  const char *pin = knsock_server_tls_pin(s);

  /* No token, then a wrong one: ERROR 12 before any OFFER. */
  knsock_send_options *o = pinned(pin, NULL);
  refused(port, file, o, "authentication required", 12);
  knsock_send_options_free(o);
  o = pinned(pin, "alice:guess");
  refused(port, file, o, "wrong token", 12);
  knsock_send_options_free(o);
  CHECK(wait_errors(&seen, 2));
  CHECK(seen.last_error == KNSOCK_RESULT_AUTH);
  CHECK(count_entries(dir) == 0);

  /* The right token: stored, and the handler is told who sent it. */
  o = pinned(pin, "alice:alice-secret");
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, file, o, &err), KNSOCK_RESULT_OK);
  CHECK(wait_received(&seen, 1));
  CHECK(strcmp(seen.identity, "alice") == 0);
  CHECK(strcmp(seen.name, "x.txt") == 0);
  CHECK(count_entries(dir) == 1);
  knsock_send_options_free(o);
  knsock_server_free(s);
  seen_destroy(&seen);
}

/* Reads a small file into `buf`. */
static void read_text(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = '\0';
  if (f) fclose(f);
}

static void test_confinement(const char *root, const char *tokens) {
  char dir[4200], src[4200], p[4300], q[4400], text[64];
  struct seen seen;
  seen_init(&seen);
  knsock_server *s =
      start_server(root, "confined", WITH_TLS | WITH_CONFINE, tokens, &seen, dir, sizeof dir);
  uint16_t port = knsock_server_port(s);
  const char *pin = knsock_server_tls_pin(s);
  snprintf(src, sizeof src, "%s/confined-src", root);
  mkdir(src, 0755);
  snprintf(p, sizeof p, "%s/f.txt", src);

  write_text(src, "f.txt", "bob's");
  knsock_send_options *bob = pinned(pin, "bob:bob-secret");
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, bob, &err), KNSOCK_RESULT_OK);
  CHECK(wait_received(&seen, 1));
  CHECK(strcmp(seen.name, "bob/f.txt") == 0 && strcmp(seen.identity, "bob") == 0);

  /* Alice's f.txt lands in her own directory; bob's is untouched. */
  write_text(src, "f.txt", "alice's");
  knsock_send_options *alice = pinned(pin, "alice:alice-secret");
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, alice, &err), KNSOCK_RESULT_OK);
  CHECK(wait_received(&seen, 2));
  CHECK(strcmp(seen.name, "alice/f.txt") == 0);
  snprintf(q, sizeof q, "%s/alice/f.txt", dir);
  read_text(q, text, sizeof text);
  CHECK(strcmp(text, "alice's") == 0);

  /* Names that try to reach bob's file are refused, by the sender's own check or the
   * receiver's. */
  const char *hostile[] = {"../bob/f.txt", "/bob/f.txt", "x/../../bob/f.txt", ".."};
  for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
    CHECK_RC(knsock_send_options_set_remote_name(alice, hostile[i]), KNSOCK_RESULT_OK);
    knsock_result rc = knsock_send_file("127.0.0.1", port, p, alice, &err);
    CHECK(rc == KNSOCK_RESULT_REJECTED || rc == KNSOCK_RESULT_INVALID_ARGUMENT);
    knsock_error_free(err);
    err = NULL;
  }
  snprintf(q, sizeof q, "%s/bob/f.txt", dir);
  read_text(q, text, sizeof text);
  CHECK(strcmp(text, "bob's") == 0);
  CHECK(count_entries(dir) == 2); /* alice/ and bob/ only */
  knsock_send_options_free(alice);
  knsock_send_options_free(bob);
  knsock_server_free(s);
  seen_destroy(&seen);

  /* knsock_server_config_set_identity_dir(): alice writes beneath in/alice. */
  char state[4300], recv[4300];
  snprintf(state, sizeof state, "%s/state", root);
  snprintf(recv, sizeof recv, "%s/dirs-recv", root);
  mkdir(recv, 0755);
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, recv);
  knsock_server_config_set_host(c, "127.0.0.1");
  knsock_server_config_set_tls_self_signed(c, state);
  knsock_server_config_set_tokens_file(c, tokens);
  CHECK_RC(knsock_server_config_set_identity_dir(c, "alice", "in/alice"), KNSOCK_RESULT_OK);
  CHECK_RC(knsock_server_start(c, &s, &err), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  alice = pinned(knsock_server_tls_pin(s), "alice:alice-secret");
  CHECK_RC(knsock_send_file("127.0.0.1", knsock_server_port(s), p, alice, &err), KNSOCK_RESULT_OK);
  snprintf(q, sizeof q, "%s/in/alice/f.txt", recv);
  CHECK(path_exists(q));
  knsock_send_options_free(alice);
  knsock_server_free(s);
}

int main(void) {
  char root[4096], tokens[4300], file[4300];
  make_temp_dir(root, sizeof root, "tls-refusals");
  write_tokens(root, tokens, sizeof tokens);
  write_text(root, "x.txt", "data");
  snprintf(file, sizeof file, "%s/x.txt", root);
  test_verification(root, file);
  test_tokens(root, tokens, file);
  test_confinement(root, tokens);
  remove_tree(root);
  return finish("test_tls_refusals");
}
