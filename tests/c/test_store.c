/* knsock_server_config_set_store and knsock_send_stream: 1,000 files received into an
 * in-memory store through the vtable, each verified; skip-unchanged through stat; a store whose
 * write fails, a read callback that aborts or lies, a stream past the maximum size: nothing is
 * committed, the sender gets the reason, and the server goes on. */
#include "check.h"

#define FILES 1000
#define MAX_OBJECTS 1100

struct object {
  char name[64];
  unsigned char *data;
  size_t len;
  knsock_store_object meta;
};

struct store {
  pthread_mutex_t lock;
  struct object objects[MAX_OBJECTS];
  int count, begun, aborted, freed;
};

struct pending {
  char name[64];
  unsigned char *data;
  size_t len, cap;
  knsock_store_object meta;
};

static struct object *find(struct store *s, const char *name) {
  for (int i = 0; i < s->count; i++)
    if (strcmp(s->objects[i].name, name) == 0) return &s->objects[i];
  return NULL;
}

static int st_begin(void *ud, const char *name, const knsock_store_object *o, void **handle,
                    char *reason) {
  struct store *s = ud;
  if (strlen(name) >= 64) {
    snprintf(reason, KNSOCK_REASON_MAX, "name too long for the test store");
    return KNSOCK_STORE_REFUSED;
  }
  struct pending *p = calloc(1, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->meta = *o;
  *handle = p;
  pthread_mutex_lock(&s->lock);
  s->begun++;
  pthread_mutex_unlock(&s->lock);
  return KNSOCK_STORE_OK;
}

static int st_write(void *ud, void *handle, const uint8_t *bytes, size_t len, char *reason) {
  (void)ud;
  struct pending *p = handle;
  if (strstr(p->name, "fail-write")) {
    snprintf(reason, KNSOCK_REASON_MAX, "the test store's quota is spent");
    return KNSOCK_STORE_FAILED;
  }
  if (p->len + len > p->cap) {
    p->cap = (p->len + len) * 2;
    p->data = realloc(p->data, p->cap);
  }
  memcpy(p->data + p->len, bytes, len);
  p->len += len;
  return KNSOCK_STORE_OK;
}

static int st_commit(void *ud, void *handle, char *reason) {
  struct store *s = ud;
  struct pending *p = handle;
  (void)reason;
  pthread_mutex_lock(&s->lock);
  struct object *o = find(s, p->name);
  if (!o && s->count < MAX_OBJECTS) o = &s->objects[s->count++];
  if (o) {
    free(o->data);
    snprintf(o->name, sizeof o->name, "%s", p->name);
    o->data = p->data;
    o->len = p->len;
    o->meta = p->meta;
  }
  pthread_mutex_unlock(&s->lock);
  free(p);
  return o ? KNSOCK_STORE_OK : KNSOCK_STORE_FAILED;
}

static void st_abort(void *ud, void *handle) {
  struct store *s = ud;
  struct pending *p = handle;
  pthread_mutex_lock(&s->lock);
  s->aborted++;
  pthread_mutex_unlock(&s->lock);
  free(p->data);
  free(p);
}

static int st_stat(void *ud, const char *name, knsock_store_object *out, char *reason) {
  struct store *s = ud;
  (void)reason;
  pthread_mutex_lock(&s->lock);
  struct object *o = find(s, name);
  if (o) *out = o->meta;
  pthread_mutex_unlock(&s->lock);
  return o ? KNSOCK_STORE_OK : KNSOCK_STORE_NOT_FOUND;
}

static void st_free(void *ud) { ((struct store *)ud)->freed++; }

/* A read callback over pseudo-random bytes: `total` of them (or endless with UINT64_MAX), then
 * the end; or an abort, or a lie, after `fail_at`. */
struct source {
  uint64_t total, made, fail_at;
  int lie;
  unsigned x;
  unsigned char *copy; /* what was produced, when not NULL */
};

static size_t produce(void *ud, uint8_t *buf, size_t len) {
  struct source *s = ud;
  if (s->made >= s->fail_at) return s->lie ? len + 1 : KNSOCK_READ_ABORT;
  if (s->made >= s->total) return 0;
  size_t n = len;
  if (n > s->total - s->made) n = (size_t)(s->total - s->made);
  if (n > 100000) n = 100000;
  for (size_t i = 0; i < n; i++) {
    s->x = s->x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(s->x >> 16);
  }
  if (s->copy) memcpy(s->copy + s->made, buf, n);
  s->made += n;
  return n;
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

static knsock_server *start(const char *spool, struct store *st, uint64_t max_size) {
  knsock_store_vtable vt = {st_begin, st_write, st_commit, st_abort, st_stat, st_free};
  knsock_server_config *c = knsock_server_config_new();
  knsock_server_config_set_directory(c, spool);
  knsock_server_config_set_host(c, "127.0.0.1");
  if (max_size) knsock_server_config_set_max_file_size(c, max_size);
  CHECK_RC(knsock_server_config_set_store(c, &vt, st), KNSOCK_RESULT_OK);
  knsock_server *s = NULL;
  CHECK_RC(knsock_server_start(c, &s, NULL), KNSOCK_RESULT_OK);
  knsock_server_config_free(c);
  return s;
}

/* The 1,000 files: sent as one batch, each in the store with the bytes of its source. */
static void thousand_files(uint16_t port, struct store *st, const char *src) {
  static char names[FILES][1200];
  const char *paths[FILES];
  for (int i = 0; i < FILES; i++) {
    snprintf(names[i], sizeof names[i], "%s/f%04d.bin", src, i);
    /* Mostly small (gathered in memory), some above 64 KiB (streamed), some empty. */
    write_random_file(names[i], (size_t)((i * 7919) % (i % 10 == 0 ? 300000 : 20000)),
                      (unsigned)i);
    paths[i] = names[i];
  }
  knsock_batch_report *r = NULL;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, FILES, NULL, &r, NULL), KNSOCK_RESULT_OK);
  CHECK(knsock_batch_report_count(r) == FILES && knsock_batch_report_failed(r) == 0);
  knsock_batch_report_free(r);
  CHECK(st->count == FILES);
  int same = 0;
  for (int i = 0; i < FILES; i++) {
    size_t len = 0;
    unsigned char *want = read_all(names[i], &len);
    char name[32];
    snprintf(name, sizeof name, "f%04d.bin", i);
    struct object *o = find(st, name);
    if (o && want && o->len == len && (len == 0 || memcmp(o->data, want, len) == 0) &&
        o->meta.size == len && o->meta.has_digest)
      same++;
    free(want);
  }
  CHECK(same == FILES);

  /* Again with skip-unchanged: stat knows every one (size and mtime), nothing is sent. */
  knsock_send_options *o = knsock_send_options_new();
  knsock_send_options_set_skip_unchanged(o, true);
  int begun = st->begun;
  CHECK_RC(knsock_send_files("127.0.0.1", port, paths, FILES, o, &r, NULL), KNSOCK_RESULT_OK);
  int skipped = 0;
  for (size_t i = 0; i < FILES; i++) skipped += knsock_batch_report_skipped(r, i);
  CHECK(skipped == FILES);
  CHECK(st->begun == begun);
  knsock_batch_report_free(r);
  knsock_send_options_free(o);
}

static void a_small_stream_goes_through(uint16_t port, struct store *st, const char *name) {
  struct source ok = {20000, 0, UINT64_MAX, 0, 5, malloc(20000)};
  CHECK_RC(knsock_send_stream("127.0.0.1", port, name, produce, &ok, KNSOCK_SIZE_UNKNOWN, NULL,
                              NULL),
           KNSOCK_RESULT_OK);
  struct object *o = find(st, name);
  CHECK(o && o->len == 20000 && memcmp(o->data, ok.copy, 20000) == 0);
  free(ok.copy);
}

static void bad_input(uint16_t port, struct store *st) {
  /* A store whose write fails: the sender hears the store's reason, nothing is committed. */
  char src[512], p[1200];
  make_temp_dir(src, sizeof src, "stsrc2");
  snprintf(p, sizeof p, "%s/fail-write.bin", src);
  write_random_file(p, 200000, 3);
  knsock_error *err = NULL;
  int aborted = st->aborted;
  CHECK_RC(knsock_send_file("127.0.0.1", port, p, NULL, &err), KNSOCK_RESULT_STORE);
  CHECK_CONTAINS(knsock_error_peer_reason(err), "the test store's quota is spent");
  knsock_error_free(err);
  CHECK(find(st, "fail-write.bin") == NULL && st->aborted == aborted + 1);
  remove_tree(src);

  /* A read callback that aborts midway, and one that returns more than it was given. */
  struct source abort_at = {UINT64_MAX, 0, 3 << 20, 0, 1, NULL};
  err = NULL;
  CHECK_RC(knsock_send_stream("127.0.0.1", port, "aborted.bin", produce, &abort_at,
                              KNSOCK_SIZE_UNKNOWN, NULL, &err),
           KNSOCK_RESULT_ABORTED_BY_CALLBACK);
  CHECK_CONTAINS(knsock_error_message(err), "aborted by the read callback");
  knsock_error_free(err);
  struct source lie = {UINT64_MAX, 0, 1 << 20, 1, 2, NULL};
  err = NULL;
  CHECK_RC(knsock_send_stream("127.0.0.1", port, "lie.bin", produce, &lie, KNSOCK_SIZE_UNKNOWN,
                              NULL, &err),
           KNSOCK_RESULT_IO);
  CHECK_CONTAINS(knsock_error_message(err), "returned");
  knsock_error_free(err);
  /* A stated size the source does not meet. */
  struct source short_one = {1000, 0, UINT64_MAX, 0, 3, NULL};
  err = NULL;
  CHECK_RC(knsock_send_stream("127.0.0.1", port, "short.bin", produce, &short_one, 2000, NULL,
                              &err),
           KNSOCK_RESULT_IO);
  CHECK_CONTAINS(knsock_error_message(err), "ended after 1000 of its 2000 bytes");
  knsock_error_free(err);
  CHECK(!find(st, "aborted.bin") && !find(st, "lie.bin") && !find(st, "short.bin"));

  /* NULL arguments. */
  knsock_store_vtable vt = {st_begin, st_write, st_commit, st_abort, NULL, NULL};
  CHECK_RC(knsock_server_config_set_store(NULL, &vt, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_server_config *c = knsock_server_config_new();
  CHECK_RC(knsock_server_config_set_store(c, NULL, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  vt.commit = NULL;
  CHECK_RC(knsock_server_config_set_store(c, &vt, NULL), KNSOCK_RESULT_INVALID_ARGUMENT);
  knsock_server_config_free(c);
  CHECK_RC(knsock_send_stream(NULL, port, "x", produce, &lie, 1, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_stream("127.0.0.1", port, NULL, produce, &lie, 1, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_stream("127.0.0.1", port, "x", NULL, &lie, 1, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
  CHECK_RC(knsock_send_stream("127.0.0.1", port, "../x", produce, &lie, 1, NULL, NULL),
           KNSOCK_RESULT_INVALID_ARGUMENT);
}

int main(void) {
  char spool[512], src[512];
  make_temp_dir(spool, sizeof spool, "stspool");
  make_temp_dir(src, sizeof src, "stsrc");
  static struct store st = {PTHREAD_MUTEX_INITIALIZER, {{{0}, NULL, 0, {0}}}, 0, 0, 0, 0};
  knsock_server *s = start(spool, &st, 0);
  uint16_t port = knsock_server_port(s);
  thousand_files(port, &st, src);
  bad_input(port, &st);
  a_small_stream_goes_through(port, &st, "after-bad-input.bin");
  CHECK(st.freed == 0);
  knsock_server_free(s);
  CHECK(st.freed == 1);

  /* A stream past the maximum size: refused while it arrives, with the receiver's reason. */
  static struct store small = {PTHREAD_MUTEX_INITIALIZER, {{{0}, NULL, 0, {0}}}, 0, 0, 0, 0};
  s = start(spool, &small, 1 << 20);
  port = knsock_server_port(s);
  struct source endless = {UINT64_MAX, 0, UINT64_MAX, 0, 4, NULL};
  knsock_error *err = NULL;
  CHECK_RC(knsock_send_stream("127.0.0.1", port, "endless.bin", produce, &endless,
                              KNSOCK_SIZE_UNKNOWN, NULL, &err),
           KNSOCK_RESULT_REJECTED);
  CHECK_CONTAINS(knsock_error_peer_reason(err), "exceeds the limit of 1048576 bytes");
  knsock_error_free(err);
  CHECK(small.count == 0 && small.begun == 0);
  a_small_stream_goes_through(port, &small, "then.bin");
  knsock_server_free(s);

  remove_tree(spool);
  remove_tree(src);
  for (int i = 0; i < st.count; i++) free(st.objects[i].data);
  for (int i = 0; i < small.count; i++) free(small.objects[i].data);
  return finish("test_store");
}
