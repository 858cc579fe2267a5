/* A program outside the knsock tree: it starts a knsock server on 127.0.0.1 in a temporary
 * directory, sends it a file through the loopback and checks the received bytes. Built by
 * tests/consumers/run.sh against an installed knsock (pkg-config shared and static, CMake).
 * With KNSOCK_CONSUMER_ZSTD it also links the system's libzstd and checks that the zstd it
 * reaches is the system's, not the copy inside libknsock.a. */
#define _POSIX_C_SOURCE 200809L
#include <knsock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>
#ifdef KNSOCK_CONSUMER_ZSTD
#include <zstd.h>
#endif

#define SIZE (300 * 1024 + 7)

static int fail(const char *what, knsock_error *err) {
  fprintf(stderr, "consumer: %s: %s\n", what, err ? knsock_error_message(err) : "failed");
  knsock_error_free(err);
  return 1;
}

static int write_all(const char *path, const unsigned char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = malloc(SIZE + 1);
  *n = buf ? fread(buf, 1, SIZE + 1, f) : 0;
  fclose(f);
  return buf;
}

int main(void) {
  if (strcmp(knsock_version(), KNSOCK_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: library %s, header %s\n", knsock_version(), KNSOCK_VERSION_STRING);
    return 1;
  }
#ifdef KNSOCK_CONSUMER_ZSTD
  if (ZSTD_versionNumber() != ZSTD_VERSION_NUMBER) {
    fprintf(stderr, "consumer: ZSTD_versionNumber() is %u, the system's zstd.h says %u: "
            "libknsock.a leaked its bundled zstd\n", ZSTD_versionNumber(), ZSTD_VERSION_NUMBER);
    return 1;
  }
#endif
  char dir[] = "/tmp/knsock-consumer-XXXXXX";
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  char inbox[sizeof dir + 16], src[sizeof dir + 16], dst[sizeof dir + 32];
  snprintf(inbox, sizeof inbox, "%s/inbox", dir);
  snprintf(src, sizeof src, "%s/data.bin", dir);
  snprintf(dst, sizeof dst, "%s/inbox/data.bin", dir);
  if (mkdir(inbox, 0755) != 0) return perror("mkdir"), 1;
  unsigned char *data = malloc(SIZE);
  if (!data) return 1;
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < SIZE; i++) { /* xorshift: incompressible, reproducible */
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    data[i] = (unsigned char)x;
  }
  if (write_all(src, data, SIZE) != 0) return perror(src), 1;

  knsock_server_config *cfg = knsock_server_config_new();
  knsock_server *srv = NULL;
  knsock_error *err = NULL;
  if (!cfg || knsock_server_config_set_directory(cfg, inbox) != KNSOCK_RESULT_OK ||
      knsock_server_config_set_host(cfg, "127.0.0.1") != KNSOCK_RESULT_OK ||
      knsock_server_config_set_port(cfg, 0) != KNSOCK_RESULT_OK)
    return fail("server settings", NULL);
  if (knsock_server_start(cfg, &srv, &err) != KNSOCK_RESULT_OK) return fail("server start", err);
  knsock_server_config_free(cfg);

  knsock_send_options *opts = knsock_send_options_new();
  if (!opts || knsock_send_options_set_compress(opts, true) != KNSOCK_RESULT_OK)
    return fail("send options", NULL);
  if (knsock_send_file("127.0.0.1", knsock_server_port(srv), src, opts, &err) != KNSOCK_RESULT_OK)
    return fail("send", err);
  knsock_send_options_free(opts);
  knsock_server_stop(srv);
  knsock_server_free(srv);

  size_t n = 0;
  unsigned char *got = read_all(dst, &n);
  int same = got && n == SIZE && memcmp(got, data, SIZE) == 0;
  unlink(dst);
  unlink(src);
  rmdir(inbox);
  rmdir(dir);
  free(got);
  free(data);
  if (!same) {
    fprintf(stderr, "consumer: the received copy differs\n");
    return 1;
  }
  printf("consumer: knsock %s sent %d bytes over 127.0.0.1, received copy identical\n",
         knsock_version(), SIZE);
  return 0;
}
