// C trampolines for the Go binding; see trampolines.h.
#include "trampolines.h"

#include "_cgo_export.h"

void *knsock_go_userdata(uintptr_t handle) { return (void *)handle; }

int knsock_go_progress_tramp(void *userdata, const char *filename, uint64_t sent, uint64_t total) {
  (void)filename;
  return knsockGoProgress((uintptr_t)userdata, sent, total);
}

int knsock_go_batch_progress_tramp(void *userdata, const char *filename, size_t index, size_t count,
                                   uint64_t file_sent, uint64_t file_total, uint64_t sent,
                                   uint64_t total) {
  return knsockGoBatchProgress((uintptr_t)userdata, 0, (char *)filename, index, count, file_sent,
                               file_total, sent, total);
}

int knsock_go_multi_progress_tramp(void *userdata, size_t receiver, const char *filename,
                                   size_t index, size_t count, uint64_t file_sent,
                                   uint64_t file_total, uint64_t sent, uint64_t total) {
  return knsockGoBatchProgress((uintptr_t)userdata, receiver, (char *)filename, index, count,
                               file_sent, file_total, sent, total);
}

void knsock_go_done_tramp(void *userdata, enum knsock_result code, const struct knsock_error *error) {
  knsockGoDone((uintptr_t)userdata, (int)code, (knsock_error *)error);
}

int knsock_go_pre_validator_tramp(void *userdata, const struct knsock_file_info *info, char *reason,
                                  size_t reason_len) {
  return knsockGoValidate((uintptr_t)userdata, 0, (knsock_file_info *)info, reason, reason_len);
}

int knsock_go_post_validator_tramp(void *userdata, const struct knsock_file_info *info, char *reason,
                                   size_t reason_len) {
  return knsockGoValidate((uintptr_t)userdata, 1, (knsock_file_info *)info, reason, reason_len);
}

void knsock_go_received_tramp(void *userdata, const struct knsock_file_info *info) {
  knsockGoReceived((uintptr_t)userdata, (knsock_file_info *)info);
}

void knsock_go_error_tramp(void *userdata, enum knsock_result code, const char *message,
                           const char *peer) {
  knsockGoError((uintptr_t)userdata, (int)code, (char *)message, (char *)peer);
}

void knsock_go_finalizer_tramp(void *userdata) { knsockGoFinalize((uintptr_t)userdata); }

size_t knsock_go_read_tramp(void *userdata, uint8_t *buffer, size_t length) {
  return knsockGoRead((uintptr_t)userdata, buffer, length);
}

static int store_begin(void *userdata, const char *name, const struct knsock_store_object *object,
                       void **handle, char *reason) {
  uintptr_t h = knsockGoStoreBegin((uintptr_t)userdata, (char *)name,
                                   (struct knsock_store_object *)object, reason);
  if (!h) return KNSOCK_STORE_FAILED;
  *handle = (void *)h;
  return KNSOCK_STORE_OK;
}

static int store_write(void *userdata, void *handle, const uint8_t *bytes, size_t length,
                       char *reason) {
  return knsockGoStoreWrite((uintptr_t)userdata, (uintptr_t)handle, (uint8_t *)bytes, length,
                            reason);
}

static int store_commit(void *userdata, void *handle, char *reason) {
  return knsockGoStoreCommit((uintptr_t)userdata, (uintptr_t)handle, reason);
}

static void store_abort(void *userdata, void *handle) {
  knsockGoStoreAbort((uintptr_t)userdata, (uintptr_t)handle);
}

static int store_stat(void *userdata, const char *name, struct knsock_store_object *object,
                      char *reason) {
  return knsockGoStoreStat((uintptr_t)userdata, (char *)name, object, reason);
}

enum knsock_result knsock_go_set_store(struct knsock_server_config *config, uintptr_t handle) {
  struct knsock_store_vtable vt = {store_begin, store_write, store_commit, store_abort,
                                   store_stat, knsock_go_finalizer_tramp};
  return knsock_server_config_set_store(config, &vt, (void *)handle);
}
