/* A file server with a handler and a validator, as kn-sock's start_file_server.
 *   file_server PORT DIR [MAX_FILES]
 * Prints "listening on PORT", then one line per file; refuses names ending in ".exe".
 * With MAX_FILES, the handler stops the server after that many files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knsock.h"

struct state {
  knsock_server *server;
  int received;
  int max_files;
};

static int refuse_executables(void *userdata, const knsock_file_info *info, char *reason,
                              size_t reason_len) {
  (void)userdata;
  const char *name = knsock_file_info_name(info);
  size_t n = strlen(name);
  if (n >= 4 && strcmp(name + n - 4, ".exe") == 0) {
    snprintf(reason, reason_len, "executables are not accepted: %s", name);
    return 1;
  }
  return 0;
}

static void on_received(void *userdata, const knsock_file_info *info) {
  struct state *st = userdata;
  printf("received %s (%llu bytes) from %s -> %s\n", knsock_file_info_name(info),
         (unsigned long long)knsock_file_info_size(info), knsock_file_info_peer(info),
         knsock_file_info_path(info));
  fflush(stdout);
  /* Runs on a worker thread; stop only asks the server to stop and returns at once. */
  if (st->max_files > 0 && ++st->received >= st->max_files) knsock_server_stop(st->server);
}

static void on_error(void *userdata, knsock_result code, const char *message, const char *peer) {
  (void)userdata;
  fprintf(stderr, "error %d (%s) from %s: %s\n", (int)code, knsock_result_str(code),
          peer ? peer : "-", message);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PORT DIR [MAX_FILES]\n", argv[0]);
    return 2;
  }
  struct state st = {NULL, 0, argc > 3 ? atoi(argv[3]) : 0};
  knsock_server_config *cfg = knsock_server_config_new();
  knsock_server_config_set_directory(cfg, argv[2]);
  knsock_server_config_set_host(cfg, "127.0.0.1");
  knsock_server_config_set_port(cfg, (uint16_t)atoi(argv[1]));
  knsock_server_config_set_pre_validator(cfg, refuse_executables, NULL);
  knsock_server_config_set_received_handler(cfg, on_received, &st);
  knsock_server_config_set_error_handler(cfg, on_error, NULL);

  knsock_error *err = NULL;
  knsock_result rc = knsock_server_start(cfg, &st.server, &err);
  knsock_server_config_free(cfg);
  if (rc != KNSOCK_RESULT_OK) {
    fprintf(stderr, "file_server: %s\n", knsock_error_message(err));
    knsock_error_free(err);
    return 1;
  }
  printf("listening on %u\n", knsock_server_port(st.server));
  fflush(stdout);
  rc = knsock_server_wait(st.server, NULL); /* blocks until the handler stops the server */
  knsock_server_free(st.server);
  return rc == KNSOCK_RESULT_OK ? 0 : 1;
}
