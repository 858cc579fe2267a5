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
