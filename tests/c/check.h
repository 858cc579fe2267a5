/* A minimal test harness for the C suite: CHECK records failures and goes on; each program
 * ends with "N passed, N failed" and exits non-zero on any failure. */
#ifndef KNSOCK_TEST_CHECK_H
#define KNSOCK_TEST_CHECK_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "knsock.h"

static int checks_passed, checks_failed;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) {                                                                  \
      checks_passed++;                                                           \
    } else {                                                                     \
      checks_failed++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                            \
  } while (0)

#define CHECK_RC(expr, want)                                                     \
  do {                                                                           \
    int got_ = (int)(expr);                                                      \
    if (got_ == (int)(want)) {                                                   \
      checks_passed++;                                                           \
    } else {                                                                     \
      checks_failed++;                                                           \
      fprintf(stderr, "%s:%d: %s gave %d (%s), want %d (%s)\n", __FILE__,        \
              __LINE__, #expr, got_, knsock_result_str(got_), (int)(want),       \
              knsock_result_str((int)(want)));                                   \
    }                                                                            \
  } while (0)

#define CHECK_CONTAINS(haystack, needle)                                         \
  do {                                                                           \
    const char *h_ = (haystack);                                                 \
    if (h_ && strstr(h_, (needle))) {                                            \
      checks_passed++;                                                           \
    } else {                                                                     \
      checks_failed++;                                                           \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,       \
              __LINE__, h_ ? h_ : "(null)", (needle));                           \
    }                                                                            \
  } while (0)

static inline int finish(const char *suite) {
  printf("%s: %d passed, %d failed\n", suite, checks_passed, checks_failed);
  return checks_failed == 0 ? 0 : 1;
}

/* A fresh directory under $TMPDIR (or /tmp). */
static inline void make_temp_dir(char *out, size_t len, const char *tag) {
  const char *base = getenv("TMPDIR");
  snprintf(out, len, "%s/knsock-%s-XXXXXX", base ? base : "/tmp", tag);
  if (!mkdtemp(out)) {
    perror("mkdtemp");
    exit(2);
  }
}

static inline void write_random_file(const char *path, size_t size, unsigned seed) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(2);
  }
  unsigned x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; i++) {
    x = x * 1103515245u + 12345u;
    fputc((int)(x >> 16) & 0xff, f);
  }
  fclose(f);
}

/* 1 when both files exist and hold the same bytes. */
static inline int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) same = 0;
    if (ca == EOF || cb == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

static inline int path_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Entries in a directory, "." and ".." aside. */
static inline int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  if (!d) return -1;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* A loopback port that refuses connections while `*fd` stays open: bound, never listening (a
 * port merely closed again could become a connection's own source port and be reached). */
static inline uint16_t refusing_port(int *fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(*fd, (struct sockaddr *)&a, &len) != 0) {
    perror("refusing_port");
    exit(2);
  }
  return ntohs(a.sin_port);
}

static inline void remove_tree(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A one-shot event: set once, waited for with an upper bound. */
struct event {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int set;
};
#define EVENT_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static inline void event_set(struct event *e) {
  pthread_mutex_lock(&e->mu);
  e->set = 1;
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* 1 if set within `seconds`. */
static inline int event_wait(struct event *e, int seconds) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds;
  pthread_mutex_lock(&e->mu);
  while (!e->set && pthread_cond_timedwait(&e->cv, &e->mu, &deadline) != ETIMEDOUT) {
  }
  int set = e->set;
  pthread_mutex_unlock(&e->mu);
  return set;
}

/* A pre-validator refusing every file whose name holds "secret", with a reason. */
static inline int refuse_secret(void *userdata, const knsock_file_info *info, char *reason,
                                size_t reason_len) {
  (void)userdata;
  if (strstr(knsock_file_info_name(info), "secret")) {
    snprintf(reason, reason_len, "secrets stay home");
    return 1;
  }
  return 0;
}

#endif
